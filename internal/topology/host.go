package topology

import (
	"fmt"
	"net/netip"
)

// Host is a machine running an agent. The object is persistent; whether the
// agent is alive is lease-bound state kept next to it by the store.
type Host struct {
	Meta
	Interfaces []HostInterface `json:"interfaces,omitempty"`
}

// HostInterface is a network interface the agent reported.
type HostInterface struct {
	Name      string         `json:"name"`
	MAC       MAC            `json:"mac,omitzero"`
	MTU       int            `json:"mtu,omitempty"`
	Addresses []netip.Prefix `json:"addresses,omitempty"`
}

// LabelZone is the label on a Host naming the availability zone it serves;
// the EC2 scheduler places a subnet's instances on hosts of its zone (or on
// hosts without the label, which serve every zone).
const LabelZone = "canopy.zone"

func (*Host) Kind() Kind           { return KindHost }
func (*Host) Refs() []Ref          { return nil }
func (*Host) Unref(string, string) {}

// TunnelType is the encapsulation of a tunnel zone.
type TunnelType string

// TunnelVXLAN is the only tunnel type Canopy speaks.
const TunnelVXLAN TunnelType = "vxlan"

// TunnelZone is a set of hosts that tunnel to each other, each with the
// underlay address the others reach it at.
type TunnelZone struct {
	Meta
	Type    TunnelType         `json:"type"`
	Members []TunnelZoneMember `json:"members,omitempty"`
}

// TunnelZoneMember is a host of a tunnel zone and its underlay address.
type TunnelZoneMember struct {
	HostID  string     `json:"host_id"`
	Address netip.Addr `json:"address"`
}

func (*TunnelZone) Kind() Kind { return KindTunnelZone }

func (z *TunnelZone) Refs() []Ref {
	refs := make([]Ref, 0, len(z.Members))
	for i, m := range z.Members {
		refs = append(refs, Ref{Field: fmt.Sprintf("members[%d].host_id", i), Kind: KindHost, ID: m.HostID, OnDelete: Clear})
	}
	return refs
}

func (z *TunnelZone) Unref(_ string, id string) {
	out := z.Members[:0]
	for _, m := range z.Members {
		if m.HostID != id {
			out = append(out, m)
		}
	}
	z.Members = out
}

// MemberIndex returns the index of the member for host, or -1.
func (z *TunnelZone) MemberIndex(hostID string) int {
	for i, m := range z.Members {
		if m.HostID == hostID {
			return i
		}
	}
	return -1
}

// DHCPSubnet is the DHCP configuration of one subnet on a bridge; the agent
// answers DHCP at the ingress port from it.
type DHCPSubnet struct {
	Meta
	BridgeID   string       `json:"bridge_id"`
	Subnet     netip.Prefix `json:"subnet"`
	Gateway    netip.Addr   `json:"gateway,omitzero"`
	ServerAddr netip.Addr   `json:"server_address,omitzero"` // defaults to Gateway
	DNSServers []netip.Addr `json:"dns_servers,omitempty"`
	DomainName string       `json:"domain_name,omitempty"`
	NTPServers []netip.Addr `json:"ntp_servers,omitempty"`
	MTU        int          `json:"mtu,omitempty"`
	LeaseTime  uint32       `json:"lease_time,omitempty"` // seconds; 0 = default
	Routes     []DHCPRoute  `json:"routes,omitempty"`     // classless static routes (option 121)
	Hosts      []DHCPHost   `json:"hosts,omitempty"`      // static MAC→IP assignments
	Disabled   bool         `json:"disabled,omitempty"`
	// DNS, when set, is the VPC's resolver the agents answer for the
	// subnet's instances (AmazonProvidedDNS).
	DNS *ProvidedDNS `json:"dns,omitempty"`
}

// ProvidedDNS is a VPC's resolver (EC2's AmazonProvidedDNS), answered by
// the agent at Address (the VPC's base + 2) and at 169.254.169.253: the
// instances' private names (ip-a-b-c-d.<PrivateDomain>) for addresses of
// VPC, public names (ec2-a-b-c-d.<PublicDomain>) when PublicDomain is set
// (the VPC has DNS hostnames on), reverse lookups of VPC addresses, and
// every other name by asking Upstreams (the cloud's resolvers).
type ProvidedDNS struct {
	Address       netip.Addr   `json:"address"`
	VPC           netip.Prefix `json:"vpc"`
	PrivateDomain string       `json:"private_domain"`
	PublicDomain  string       `json:"public_domain,omitempty"`
	Upstreams     []netip.Addr `json:"upstreams,omitempty"`
	// PublicToPrivate maps the VPC's own public addresses to the private
	// ones they are associated with: inside the VPC a public host name
	// resolves to the private address, as on AWS (so traffic between
	// instances stays inside the VPC).
	PublicToPrivate map[netip.Addr]netip.Addr `json:"public_to_private,omitempty"`
}

// DHCPRoute is a classless static route handed out with the lease.
type DHCPRoute struct {
	Dest    netip.Prefix `json:"dest"`
	Gateway netip.Addr   `json:"gateway"`
}

// DHCPHost is a static assignment.
type DHCPHost struct {
	MAC  MAC        `json:"mac"`
	IP   netip.Addr `json:"ip"`
	Name string     `json:"name,omitempty"`
}

func (*DHCPSubnet) Kind() Kind { return KindDHCP }

func (d *DHCPSubnet) Refs() []Ref {
	return []Ref{{Field: "bridge_id", Kind: KindBridge, ID: d.BridgeID, OnDelete: Cascade}}
}

func (*DHCPSubnet) Unref(string, string) {}
