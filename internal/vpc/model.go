package vpc

import (
	"net/netip"
	"strings"
	"time"
)

// Tags are a resource's EC2 tags (key → value).
type Tags map[string]string

// Account is a tenant: a 12-digit account id owning resources.
type Account struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Vpc is a virtual private cloud.
type Vpc struct {
	ID                 string       `json:"id"`
	OwnerID            string       `json:"owner_id"`
	CidrBlock          netip.Prefix `json:"cidr_block"`
	DhcpOptionsID      string       `json:"dhcp_options_id"` // dopt-… or "default"
	State              string       `json:"state"`           // pending | available
	IsDefault          bool         `json:"is_default,omitempty"`
	InstanceTenancy    string       `json:"instance_tenancy,omitempty"`
	EnableDNSSupport   bool         `json:"enable_dns_support"`
	EnableDNSHostnames bool         `json:"enable_dns_hostnames"`
	Tags               Tags         `json:"tags,omitempty"`
	// Network marks a VPC made as a Neutron network: its block is the
	// smallest prefix covering its subnets (none until the first), where an
	// EC2 VPC's block is chosen first and holds its subnets.
	Network bool `json:"network,omitempty"`
	// PortSecurityOff is a Neutron network's port_security_enabled false:
	// the default of its new ports' port_security_enabled (nothing else).
	PortSecurityOff bool `json:"port_security_off,omitempty"`
	// SNATAddress, when valid, is a public address (an Address of the
	// pool the VPC's owner holds) that what leaves through the VPC's
	// internet gateway from an address without a public one of its own is
	// translated to (TCP, UDP and ICMP, stateful PAT): a Neutron router's
	// external gateway with enable_snat. EC2 VPCs have none (AWS's internet
	// gateway translates only public addresses).
	SNATAddress netip.Addr `json:"snat_address,omitzero"`
	// TransitIndex places the VPC's router on the transit network: its
	// address there is the transit prefix's base + TransitIndex. The EC2
	// server assigns it once at create (AllocTransitIndex) and never
	// changes it, so a new VPC never moves an existing one.
	TransitIndex int `json:"transit_index"`
}

// Subnet is a range of a VPC in one availability zone.
type Subnet struct {
	ID                  string       `json:"id"`
	OwnerID             string       `json:"owner_id"`
	VpcID               string       `json:"vpc_id"`
	CidrBlock           netip.Prefix `json:"cidr_block"`
	AvailabilityZone    string       `json:"availability_zone"`
	State               string       `json:"state"` // pending | available
	DefaultForAz        bool         `json:"default_for_az,omitempty"`
	MapPublicIPOnLaunch bool         `json:"map_public_ip_on_launch,omitempty"`
	Tags                Tags         `json:"tags,omitempty"`

	// Neutron's subnet attributes; their zero values are a VPC subnet's.
	// GatewayIP is the network router's address on the subnet (zero: the
	// first address); NoGateway leaves the subnet unrouted (no router
	// port, no router handed out). Pools are the ranges addresses are
	// allocated from (none: the fifth address to the last but one).
	// DNSServers and HostRoutes are handed out by DHCP (DNSServers
	// instead of the VPC's), which DHCPDisabled turns off.
	GatewayIP    netip.Addr   `json:"gateway_ip,omitzero"`
	NoGateway    bool         `json:"no_gateway,omitempty"`
	Pools        []AddrRange  `json:"pools,omitempty"`
	DNSServers   []netip.Addr `json:"dns_servers,omitempty"`
	HostRoutes   []HostRoute  `json:"host_routes,omitempty"`
	DHCPDisabled bool         `json:"dhcp_disabled,omitempty"`
	// SubnetPoolID is the Neutron subnet pool the block was taken from.
	SubnetPoolID string `json:"subnet_pool_id,omitempty"`
}

// SubnetPool is a Neutron subnet pool: prefixes a project's subnets take
// their blocks from (a subnet names it and a prefix length, or a block
// inside it). It translates to nothing itself.
type SubnetPool struct {
	ID               string         `json:"id"`
	OwnerID          string         `json:"owner_id"`
	Prefixes         []netip.Prefix `json:"prefixes"`
	DefaultPrefixLen int            `json:"default_prefixlen"`
	MinPrefixLen     int            `json:"min_prefixlen"`
	MaxPrefixLen     int            `json:"max_prefixlen"`
	Tags             Tags           `json:"tags,omitempty"`
}

// AddrRange is an inclusive range of addresses.
type AddrRange struct {
	Start netip.Addr `json:"start"`
	End   netip.Addr `json:"end"`
}

// Contains reports whether a is in the range.
func (r AddrRange) Contains(a netip.Addr) bool {
	return r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

// HostRoute is a static route a subnet's DHCP hands out.
type HostRoute struct {
	Destination netip.Prefix `json:"destination"`
	NextHop     netip.Addr   `json:"nexthop"`
}

// Gateway is the network router's address on the subnet; false when the
// subnet has none (Neutron's gateway_ip null).
func (s *Subnet) Gateway() (netip.Addr, bool) {
	if s.NoGateway {
		return netip.Addr{}, false
	}
	if s.GatewayIP.IsValid() {
		return s.GatewayIP, true
	}
	return Nth(s.CidrBlock, 1), true
}

// custom reports whether the subnet's addresses follow Neutron's choices
// rather than a VPC's reservations.
func (s *Subnet) custom() bool { return s.NoGateway || s.GatewayIP.IsValid() || len(s.Pools) > 0 }

// AllocationPools are the ranges addresses are allocated from.
func (s *Subnet) AllocationPools() []AddrRange {
	if len(s.Pools) > 0 {
		return s.Pools
	}
	return []AddrRange{{Nth(s.CidrBlock, 4), Nth(s.CidrBlock, int(size(s.CidrBlock))-2)}}
}

// Reserved reports whether a cannot be a port's address: a VPC subnet's
// five reserved addresses, or (a subnet with Neutron's choices) its
// network and broadcast addresses and its gateway.
func (s *Subnet) Reserved(a netip.Addr) bool {
	if !s.custom() {
		return IsReserved(s.CidrBlock, a)
	}
	v, base := addrU32(a), addrU32(s.CidrBlock.Masked().Addr())
	if v == base || v == base+size(s.CidrBlock)-1 {
		return true
	}
	gw, ok := s.Gateway()
	return ok && gw == a
}

// InternetGateway connects VPCs to the public network.
type InternetGateway struct {
	ID          string          `json:"id"`
	OwnerID     string          `json:"owner_id"`
	Attachments []IGWAttachment `json:"attachments,omitempty"`
	Tags        Tags            `json:"tags,omitempty"`
	// Down is a Neutron router set admin_state_up false: still attached,
	// but it forwards nothing (the translator blackholes the routes to it
	// and its VPC's uplink translates and passes no address). EC2 never
	// sets it.
	Down bool `json:"down,omitempty"`
	// Joins are the VPCs a Neutron router with interfaces on several
	// networks routes between (two or more, its first interface's first):
	// the translator routes their routers to each other's blocks over
	// their ports on the transit bridge (translate's join.go). EC2 never
	// sets it.
	Joins []string `json:"joins,omitempty"`
}

// IGWAttachment attaches an internet gateway to a VPC. State is "available"
// once attached, as AWS answers for VPC attachments.
type IGWAttachment struct {
	VpcID string `json:"vpc_id"`
	State string `json:"state"`
}

// AttachedTo reports whether g is attached to vpcID.
func (g *InternetGateway) AttachedTo(vpcID string) bool {
	for _, a := range g.Attachments {
		if a.VpcID == vpcID && a.State == StateAvailable {
			return true
		}
	}
	return false
}

// Common resource states.
const (
	StatePending   = "pending"
	StateAvailable = "available"
	StateDeleting  = "deleting"
	StateDeleted   = "deleted"
	StateFailed    = "failed"
	StateInUse     = "in-use"
	StateAttached  = "attached"
)

// RouteTable is a VPC's routing table; Associations name the subnets it
// applies to (and Main marks the table for every other subnet).
type RouteTable struct {
	ID           string                  `json:"id"`
	OwnerID      string                  `json:"owner_id"`
	VpcID        string                  `json:"vpc_id"`
	Routes       []Route                 `json:"routes,omitempty"`
	Associations []RouteTableAssociation `json:"associations,omitempty"`
	Tags         Tags                    `json:"tags,omitempty"`
}

// IsMain reports whether t is its VPC's main route table.
func (t *RouteTable) IsMain() bool {
	for _, a := range t.Associations {
		if a.Main {
			return true
		}
	}
	return false
}

// Route is one entry of a route table. Exactly one target is set;
// GatewayID is "local" for the VPC's local route.
type Route struct {
	DestinationCidrBlock netip.Prefix `json:"destination_cidr_block"`
	GatewayID            string       `json:"gateway_id,omitempty"` // "local" or igw-…
	NatGatewayID         string       `json:"nat_gateway_id,omitempty"`
	NetworkInterfaceID   string       `json:"network_interface_id,omitempty"`
	InstanceID           string       `json:"instance_id,omitempty"`
	// NextHop is a Neutron router's static route to an address that no
	// port holds (extraroute's nexthop): the VPC router sends to it on the
	// subnet holding it. EC2 never sets it.
	NextHop netip.Addr `json:"next_hop,omitzero"`
	Origin  string     `json:"origin"` // CreateRouteTable | CreateRoute
	State   string     `json:"state"`  // active | blackhole
}

// Route states and origins.
const (
	RouteActive            = "active"
	RouteBlackhole         = "blackhole"
	OriginCreateRouteTable = "CreateRouteTable"
	OriginCreateRoute      = "CreateRoute"
	LocalGateway           = "local"
)

// TargetKind names what a route points at.
type TargetKind string

const (
	TargetNone      TargetKind = ""
	TargetLocal     TargetKind = "local"
	TargetIGW       TargetKind = "igw"
	TargetNat       TargetKind = "nat"
	TargetInterface TargetKind = "eni"
	TargetInstance  TargetKind = "instance"
	TargetAddress   TargetKind = "address" // NextHop
)

// Target returns the kind and id of the route's target, or TargetNone when
// no target is set, and the number of targets set (more than one is an
// InvalidParameterCombination).
func (r *Route) Target() (TargetKind, string, int) {
	var k TargetKind
	var id string
	n := 0
	set := func(tk TargetKind, v string) {
		if v != "" {
			k, id = tk, v
			n++
		}
	}
	if r.GatewayID == LocalGateway {
		set(TargetLocal, r.GatewayID)
	} else {
		set(TargetIGW, r.GatewayID)
	}
	set(TargetNat, r.NatGatewayID)
	set(TargetInterface, r.NetworkInterfaceID)
	set(TargetInstance, r.InstanceID)
	if r.NextHop.IsValid() {
		set(TargetAddress, r.NextHop.String())
	}
	return k, id, n
}

// RouteTableAssociation associates a route table with a subnet, or marks it
// the VPC's main table (Main, no subnet).
type RouteTableAssociation struct {
	ID       string `json:"id"` // rtbassoc-…
	SubnetID string `json:"subnet_id,omitempty"`
	Main     bool   `json:"main,omitempty"`
	State    string `json:"state"` // associated
}

// SecurityGroup is a stateful firewall applied to network interfaces.
type SecurityGroup struct {
	ID          string              `json:"id"`
	OwnerID     string              `json:"owner_id"`
	VpcID       string              `json:"vpc_id"`
	GroupName   string              `json:"group_name"`
	Description string              `json:"description"`
	Ingress     []SecurityGroupRule `json:"ingress,omitempty"`
	Egress      []SecurityGroupRule `json:"egress,omitempty"`
	Tags        Tags                `json:"tags,omitempty"`
}

// DefaultGroupName is the name of the group every VPC is created with.
const DefaultGroupName = "default"

// SecurityGroupRule is one rule in the shape of DescribeSecurityGroupRules:
// one source or destination (a CIDR or a group) per rule. The EC2 server
// groups rules into IpPermissions for DescribeSecurityGroups.
type SecurityGroupRule struct {
	ID       string `json:"id"` // sgr-…
	IsEgress bool   `json:"is_egress,omitempty"`
	// IPProtocol is "-1" (all), "tcp", "udp", "icmp" or a protocol number,
	// as NormalizeProtocol returns it.
	IPProtocol string `json:"ip_protocol"`
	// FromPort and ToPort are the port range for tcp/udp, or the ICMP type
	// and code for icmp; -1 means all.
	FromPort int          `json:"from_port"`
	ToPort   int          `json:"to_port"`
	CidrIPv4 netip.Prefix `json:"cidr_ipv4,omitzero"`
	// CidrIPv6 is stored and described; it matches nothing until a VPC
	// has IPv6 (the translator and the reachability model skip it).
	CidrIPv6          netip.Prefix `json:"cidr_ipv6,omitzero"`
	ReferencedGroupID string       `json:"referenced_group_id,omitempty"`
	Description       string       `json:"description,omitempty"`
	// How a Neutron client gave the rule, which the Neutron API shows
	// back (EC2 never sets them): GivenProtocol is the protocol as given
	// when it differs from IPProtocol ("17" for udp), AnyRemote that no
	// remote was given (CidrIPv4 is then 0.0.0.0/0; Neutron shows null).
	GivenProtocol string `json:"given_protocol,omitempty"`
	AnyRemote     bool   `json:"any_remote,omitempty"`
}

// NetworkACL is a stateless, numbered rule list applied at subnet borders.
type NetworkACL struct {
	ID           string                  `json:"id"`
	OwnerID      string                  `json:"owner_id"`
	VpcID        string                  `json:"vpc_id"`
	IsDefault    bool                    `json:"is_default,omitempty"`
	Entries      []NetworkACLEntry       `json:"entries,omitempty"`
	Associations []NetworkACLAssociation `json:"associations,omitempty"`
	Tags         Tags                    `json:"tags,omitempty"`
}

// NetworkACLEntry is one numbered rule of one direction.
type NetworkACLEntry struct {
	RuleNumber int          `json:"rule_number"` // 1..32766; 32767 is the default deny
	Egress     bool         `json:"egress,omitempty"`
	Protocol   string       `json:"protocol"`    // "-1" or a protocol number ("6", "17", "1")
	RuleAction string       `json:"rule_action"` // allow | deny
	CidrBlock  netip.Prefix `json:"cidr_block"`
	ICMPType   int          `json:"icmp_type,omitempty"` // -1 = all
	ICMPCode   int          `json:"icmp_code,omitempty"` // -1 = all
	PortFrom   int          `json:"port_from,omitempty"`
	PortTo     int          `json:"port_to,omitempty"`
}

// ACL entry actions and the default rule number.
const (
	ACLAllow          = "allow"
	ACLDeny           = "deny"
	DefaultRuleNumber = 32767
)

// NetworkACLAssociation associates an ACL with a subnet. Every subnet has
// exactly one (the VPC's default ACL unless replaced).
type NetworkACLAssociation struct {
	ID       string `json:"id"` // aclassoc-…
	SubnetID string `json:"subnet_id"`
}

// NetworkInterface (ENI) is a virtual NIC in a subnet.
type NetworkInterface struct {
	ID               string         `json:"id"`
	OwnerID          string         `json:"owner_id"`
	VpcID            string         `json:"vpc_id"`
	SubnetID         string         `json:"subnet_id"`
	AvailabilityZone string         `json:"availability_zone"`
	Description      string         `json:"description,omitempty"`
	MacAddress       string         `json:"mac_address"`
	PrivateIPs       []PrivateIP    `json:"private_ips"` // the primary first
	Groups           []string       `json:"groups,omitempty"`
	SourceDestCheck  bool           `json:"source_dest_check"`
	Status           string         `json:"status"`         // available | in-use
	InterfaceType    string         `json:"interface_type"` // interface | nat_gateway
	RequesterManaged bool           `json:"requester_managed,omitempty"`
	Attachment       *ENIAttachment `json:"attachment,omitempty"`
	// Detached is the last attachment after a detach, kept so describe
	// calls can show it "detached" for a while as AWS does (clients wait
	// for that state); it plays no part in the network.
	Detached   *ENIAttachment `json:"detached,omitempty"`
	DetachedAt time.Time      `json:"detached_at,omitzero"`
	// DeviceOwner and DeviceID are a Neutron port's device_owner and
	// device_id (who uses the port: "compute:nova" and a server id, say).
	DeviceOwner string `json:"device_owner,omitempty"`
	DeviceID    string `json:"device_id,omitempty"`
	// Binding plugs the interface on a host without an instance: a port the
	// Neutron API bound with binding:host_id (Nova's compute host names the
	// VM's TAP). An attached instance's host wins over it.
	Binding *HostBinding `json:"binding,omitempty"`
	Tags    Tags         `json:"tags,omitempty"`
	// AdminDown is a Neutron port's admin_state_up false: its bridge port
	// is down and carries nothing.
	AdminDown bool `json:"admin_down,omitempty"`
	// PortSecurityOff is a Neutron port's port_security_enabled false: its
	// bridge port has no filter chains at all (no anti-spoofing of MAC, ARP
	// or IP, no security groups: anything leaves and reaches it, as
	// Neutron's port security off). The Neutron API keeps Groups empty and
	// SourceDestCheck false with it.
	PortSecurityOff bool `json:"port_security_off,omitempty"`
	// AddressPairs are a Neutron port's allowed_address_pairs: sources it
	// may send from besides its own (anti-spoofing lets them out) and
	// addresses it receives for (ARP for them, flooded on the bridge, and
	// IPv4 to them reach it), as for a VRRP address two ports share.
	AddressPairs []AddressPair `json:"address_pairs,omitempty"`
}

// AddressPair is one allowed address pair: an IPv4 address or prefix, as
// given, and the MAC it uses (the port's unless given).
type AddressPair struct {
	IPAddress string `json:"ip_address"`
	MAC       string `json:"mac_address"`
}

// Prefix is the pair's address as a prefix (an address: its /32).
func (a AddressPair) Prefix() (netip.Prefix, error) {
	if strings.Contains(a.IPAddress, "/") {
		p, err := netip.ParsePrefix(a.IPAddress)
		return p.Masked(), err
	}
	ip, err := netip.ParseAddr(a.IPAddress)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// HostBinding is where an interface is plugged: a topology host and the
// name of the device there.
type HostBinding struct {
	HostID    string `json:"host_id"`
	HostName  string `json:"host_name"`
	Interface string `json:"interface"`
}

// Interface types.
const (
	InterfaceTypeInterface  = "interface"
	InterfaceTypeNatGateway = "nat_gateway"
)

// PrimaryIP is the ENI's primary private address (invalid if it has none).
func (e *NetworkInterface) PrimaryIP() netip.Addr {
	for _, p := range e.PrivateIPs {
		if p.Primary {
			return p.Address
		}
	}
	if len(e.PrivateIPs) > 0 {
		return e.PrivateIPs[0].Address
	}
	return netip.Addr{}
}

// PrivateIP is one private address of an ENI.
type PrivateIP struct {
	Address netip.Addr `json:"address"`
	Primary bool       `json:"primary,omitempty"`
}

// ENIAttachment attaches an ENI to an instance.
type ENIAttachment struct {
	ID                  string `json:"id"` // eni-attach-…
	InstanceID          string `json:"instance_id"`
	DeviceIndex         int    `json:"device_index"`
	Status              string `json:"status"` // attaching | attached | detaching
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
}

// Address is an elastic IP (or an auto-assigned public IP: AutoAssigned,
// released with its interface).
type Address struct {
	AllocationID       string     `json:"allocation_id"`
	OwnerID            string     `json:"owner_id"`
	PublicIP           netip.Addr `json:"public_ip"`
	Domain             string     `json:"domain"` // vpc
	AutoAssigned       bool       `json:"auto_assigned,omitempty"`
	AssociationID      string     `json:"association_id,omitempty"`
	NetworkInterfaceID string     `json:"network_interface_id,omitempty"`
	PrivateIPAddress   netip.Addr `json:"private_ip_address,omitzero"`
	InstanceID         string     `json:"instance_id,omitempty"`
	Tags               Tags       `json:"tags,omitempty"`
}

// NatGateway translates a VPC's outbound traffic to its elastic IP.
type NatGateway struct {
	ID                 string     `json:"id"`
	OwnerID            string     `json:"owner_id"`
	VpcID              string     `json:"vpc_id"`
	SubnetID           string     `json:"subnet_id"`
	State              string     `json:"state"` // pending | available | deleting | deleted | failed
	ConnectivityType   string     `json:"connectivity_type"`
	AllocationID       string     `json:"allocation_id"`
	PublicIP           netip.Addr `json:"public_ip"`
	PrivateIP          netip.Addr `json:"private_ip"`
	NetworkInterfaceID string     `json:"network_interface_id"`
	FailureCode        string     `json:"failure_code,omitempty"`
	FailureMessage     string     `json:"failure_message,omitempty"`
	CreateTime         time.Time  `json:"create_time,omitzero"`
	DeleteTime         time.Time  `json:"delete_time,omitzero"`
	Tags               Tags       `json:"tags,omitempty"`
	// TransitIndex places the gateway's router on the transit network, like
	// Vpc.TransitIndex (assigned once by AllocTransitIndex).
	TransitIndex int `json:"transit_index"`
}

// DhcpOptions is a DHCP option set; Config maps a key (domain-name,
// domain-name-servers, ntp-servers, netbios-name-servers,
// netbios-node-type) to its values.
type DhcpOptions struct {
	ID      string              `json:"id"`
	OwnerID string              `json:"owner_id"`
	Config  map[string][]string `json:"config"`
	Tags    Tags                `json:"tags,omitempty"`
}

// DHCP option keys and the special DNS value.
const (
	DhcpDomainName        = "domain-name"
	DhcpDomainNameServers = "domain-name-servers"
	DhcpNTPServers        = "ntp-servers"
	DhcpNetbiosServers    = "netbios-name-servers"
	DhcpNetbiosNodeType   = "netbios-node-type"
	AmazonProvidedDNS     = "AmazonProvidedDNS"
	DefaultDhcpOptions    = "default"
)

// Instance is an EC2 instance: what it runs (image, type, user data, for
// the metadata service), where (HostID, placed by the EC2 server's
// scheduler, moved by the controller's instance recovery) and its life cycle state. Its network interfaces point at it
// through their Attachment; SubnetID, VpcID and PrivateIP repeat those of
// the primary one (device index 0) as AWS shows them.
type Instance struct {
	ID       string `json:"id"`
	OwnerID  string `json:"owner_id"`
	VpcID    string `json:"vpc_id"`
	SubnetID string `json:"subnet_id"`
	// State is pending | running | shutting-down | terminated | stopping |
	// stopped (the Instance* constants).
	State string `json:"state"`
	// HostID is the topology host the instance runs on ("" = not placed).
	HostID string `json:"host_id,omitempty"`

	ImageID          string     `json:"image_id,omitempty"`
	InstanceType     string     `json:"instance_type,omitempty"`
	PrivateIP        netip.Addr `json:"private_ip,omitzero"` // primary address of the primary interface
	AvailabilityZone string     `json:"availability_zone,omitempty"`
	LaunchTime       time.Time  `json:"launch_time,omitzero"`
	// UserData is base64 as the client sent it (the metadata service
	// decodes it).
	UserData string `json:"user_data,omitempty"`
	KeyName  string `json:"key_name,omitempty"`
	// PublicKey is the key pair's public key as it was at launch (the
	// metadata service serves it even after the key pair is deleted).
	PublicKey string `json:"public_key,omitempty"`
	// CPUCredits is standard | unlimited for burstable types ("" = the
	// type's default, unlimited for t3).
	CPUCredits string `json:"cpu_credits,omitempty"`
	// VolumeTags are the root volume's tags (TagSpecification volume).
	VolumeTags      Tags            `json:"volume_tags,omitempty"`
	MetadataOptions MetadataOptions `json:"metadata_options,omitzero"`
	// StateReason explains the last transition AWS-style
	// ("Client.UserInitiatedShutdown: User initiated shutdown").
	StateReason string `json:"state_reason,omitempty"`
	ClientToken string `json:"client_token,omitempty"`
	Tags        Tags   `json:"tags,omitempty"`

	// ReservationID groups the instances of one RunInstances call;
	// AmiLaunchIndex is the instance's index in it.
	ReservationID  string `json:"reservation_id,omitempty"`
	AmiLaunchIndex int    `json:"ami_launch_index,omitempty"`
	// DisableAPITermination refuses TerminateInstances;
	// ShutdownBehavior is stop | terminate.
	DisableAPITermination bool   `json:"disable_api_termination,omitempty"`
	DisableAPIStop        bool   `json:"disable_api_stop,omitempty"`
	ShutdownBehavior      string `json:"shutdown_behavior,omitempty"`
	// RootVolumeSize is the root volume's size in GiB (no storage is
	// provisioned: it is what DescribeVolumes shows).
	RootVolumeSize int `json:"root_volume_size,omitempty"`
	// Reboots counts RebootInstances calls: the instance driver restarts
	// the instance's DHCP client when it changes.
	Reboots int `json:"reboots,omitempty"`
	// TerminateTime is when the instance reached terminated; it disappears
	// a retention period later.
	TerminateTime time.Time `json:"terminate_time,omitzero"`
	// AutoRecovery is "" or AutoRecoveryDefault (restarted on another host
	// of its zone when its host dies, if the cloud has recovery on) or
	// AutoRecoveryDisabled.
	AutoRecovery string `json:"auto_recovery,omitempty"`
	// Recoveries counts the restarts of the instance on another host after
	// its host died.
	Recoveries int `json:"recoveries,omitempty"`
}

// MetadataOptions are the instance metadata service settings of an
// instance (RunInstances MetadataOptions.*).
type MetadataOptions struct {
	HttpTokens              string `json:"http_tokens,omitempty"`                 // optional | required
	HttpPutResponseHopLimit int    `json:"http_put_response_hop_limit,omitempty"` // 1..64
	HttpEndpoint            string `json:"http_endpoint,omitempty"`               // enabled | disabled
}

// Instance states, as AWS names them.
const (
	InstancePending      = "pending"
	InstanceRunning      = "running"
	InstanceShuttingDown = "shutting-down"
	InstanceTerminated   = "terminated"
	InstanceStopping     = "stopping"
	InstanceStopped      = "stopped"
)

// Placed reports whether the instance runs somewhere: its interfaces are
// then bound to its host.
func (i *Instance) Placed() bool {
	return i.HostID != "" && (i.State == InstancePending || i.State == InstanceRunning)
}
