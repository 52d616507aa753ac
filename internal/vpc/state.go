package vpc

import (
	"maps"
	"slices"
)

// State is the whole VPC view of the cloud: every object of every account,
// keyed by id. The EC2 server keeps one (loaded from the store) and the
// translator reads one. Maps, not slices: the order objects were created in
// must never matter, and the translator sorts what it walks.
type State struct {
	Accounts          map[string]*Account          `json:"accounts,omitempty"`
	Vpcs              map[string]*Vpc              `json:"vpcs,omitempty"`
	Subnets           map[string]*Subnet           `json:"subnets,omitempty"`
	InternetGateways  map[string]*InternetGateway  `json:"internet_gateways,omitempty"`
	RouteTables       map[string]*RouteTable       `json:"route_tables,omitempty"`
	SecurityGroups    map[string]*SecurityGroup    `json:"security_groups,omitempty"`
	NetworkACLs       map[string]*NetworkACL       `json:"network_acls,omitempty"`
	NetworkInterfaces map[string]*NetworkInterface `json:"network_interfaces,omitempty"`
	Addresses         map[string]*Address          `json:"addresses,omitempty"` // by allocation id
	NatGateways       map[string]*NatGateway       `json:"nat_gateways,omitempty"`
	DhcpOptions       map[string]*DhcpOptions      `json:"dhcp_options,omitempty"`
	Instances         map[string]*Instance         `json:"instances,omitempty"`
	KeyPairs          map[string]*KeyPair          `json:"key_pairs,omitempty"`
	SubnetPools       map[string]*SubnetPool       `json:"subnet_pools,omitempty"`

	ix index // nil: not indexed (index.go)
}

// NewState returns an empty state with every map made.
func NewState() *State {
	return &State{
		Accounts:          map[string]*Account{},
		Vpcs:              map[string]*Vpc{},
		Subnets:           map[string]*Subnet{},
		InternetGateways:  map[string]*InternetGateway{},
		RouteTables:       map[string]*RouteTable{},
		SecurityGroups:    map[string]*SecurityGroup{},
		NetworkACLs:       map[string]*NetworkACL{},
		NetworkInterfaces: map[string]*NetworkInterface{},
		Addresses:         map[string]*Address{},
		NatGateways:       map[string]*NatGateway{},
		DhcpOptions:       map[string]*DhcpOptions{},
		Instances:         map[string]*Instance{},
		KeyPairs:          map[string]*KeyPair{},
		SubnetPools:       map[string]*SubnetPool{},
	}
}

// sorted returns m's values ordered by key, keeping those keep accepts.
func sorted[T any](m map[string]*T, keep func(*T) bool) []*T {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]*T, 0, len(keys))
	for _, k := range keys {
		if v := m[k]; keep == nil || keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// SortedVpcs returns every VPC ordered by id.
func (s *State) SortedVpcs() []*Vpc { return sorted(s.Vpcs, nil) }

// SubnetsOf returns the VPC's subnets ordered by id.
func (s *State) SubnetsOf(vpcID string) []*Subnet {
	return lookup(s, s.Subnets, subnetsOfVPC, vpcID, func(x *Subnet) bool { return x.VpcID == vpcID })
}

// RouteTablesOf returns the VPC's route tables ordered by id.
func (s *State) RouteTablesOf(vpcID string) []*RouteTable {
	return lookup(s, s.RouteTables, routeTablesOfVPC, vpcID, func(x *RouteTable) bool { return x.VpcID == vpcID })
}

// SecurityGroupsOf returns the VPC's security groups ordered by id.
func (s *State) SecurityGroupsOf(vpcID string) []*SecurityGroup {
	return lookup(s, s.SecurityGroups, groupsOfVPC, vpcID, func(x *SecurityGroup) bool { return x.VpcID == vpcID })
}

// NetworkACLsOf returns the VPC's network ACLs ordered by id.
func (s *State) NetworkACLsOf(vpcID string) []*NetworkACL {
	return lookup(s, s.NetworkACLs, aclsOfVPC, vpcID, func(x *NetworkACL) bool { return x.VpcID == vpcID })
}

// InterfacesOf returns the VPC's network interfaces ordered by id.
func (s *State) InterfacesOf(vpcID string) []*NetworkInterface {
	return lookup(s, s.NetworkInterfaces, interfacesOfVPC, vpcID, func(x *NetworkInterface) bool { return x.VpcID == vpcID })
}

// InterfacesInSubnet returns the subnet's network interfaces ordered by id.
func (s *State) InterfacesInSubnet(subnetID string) []*NetworkInterface {
	return lookup(s, s.NetworkInterfaces, interfacesInSubnet, subnetID, func(x *NetworkInterface) bool { return x.SubnetID == subnetID })
}

// NatGatewaysOf returns the VPC's NAT gateways ordered by id.
func (s *State) NatGatewaysOf(vpcID string) []*NatGateway {
	return lookup(s, s.NatGateways, natGatewaysOfVPC, vpcID, func(x *NatGateway) bool { return x.VpcID == vpcID })
}

// InternetGatewayOf returns the internet gateway attached to the VPC, or nil.
func (s *State) InternetGatewayOf(vpcID string) *InternetGateway {
	for _, g := range lookup(s, s.InternetGateways, gatewaysOfVPC, vpcID, func(g *InternetGateway) bool { return g.AttachedTo(vpcID) }) {
		if g.AttachedTo(vpcID) {
			return g
		}
	}
	return nil
}

// MainRouteTable returns the VPC's main route table, or nil.
func (s *State) MainRouteTable(vpcID string) *RouteTable {
	for _, t := range s.RouteTablesOf(vpcID) {
		if t.IsMain() {
			return t
		}
	}
	return nil
}

// RouteTableFor returns the table that routes a subnet's traffic: the one
// explicitly associated with it, else its VPC's main table.
func (s *State) RouteTableFor(sub *Subnet) *RouteTable {
	for _, t := range s.RouteTablesOf(sub.VpcID) {
		for _, a := range t.Associations {
			if a.SubnetID == sub.ID {
				return t
			}
		}
	}
	return s.MainRouteTable(sub.VpcID)
}

// NetworkACLFor returns the ACL applied to a subnet: the associated one,
// else its VPC's default ACL, else nil.
func (s *State) NetworkACLFor(sub *Subnet) *NetworkACL {
	var def *NetworkACL
	for _, a := range s.NetworkACLsOf(sub.VpcID) {
		for _, as := range a.Associations {
			if as.SubnetID == sub.ID {
				return a
			}
		}
		if a.IsDefault && def == nil {
			def = a
		}
	}
	return def
}

// PrimaryInterface returns the instance's interface at device index 0, or nil.
func (s *State) PrimaryInterface(instanceID string) *NetworkInterface {
	var best *NetworkInterface
	attached := func(e *NetworkInterface) bool { return e.Attachment != nil && e.Attachment.InstanceID == instanceID }
	for _, e := range lookup(s, s.NetworkInterfaces, interfacesOfInstance, instanceID, attached) {
		if a := e.Attachment; a != nil && a.InstanceID == instanceID {
			if best == nil || a.DeviceIndex < best.Attachment.DeviceIndex {
				best = e
			}
		}
	}
	return best
}

// AddressesOfInterface returns the addresses associated with an ENI,
// ordered by public IP.
func (s *State) AddressesOfInterface(eniID string) []*Address {
	out := lookup(s, s.Addresses, addressesOfInterface, eniID, func(a *Address) bool { return a.NetworkInterfaceID == eniID })
	slices.SortFunc(out, func(a, b *Address) int { return a.PublicIP.Compare(b.PublicIP) })
	return out
}

// GroupMembers returns the interfaces that have security group sgID,
// ordered by id.
func (s *State) GroupMembers(sgID string) []*NetworkInterface {
	return lookup(s, s.NetworkInterfaces, membersOfGroup, sgID, func(e *NetworkInterface) bool { return slices.Contains(e.Groups, sgID) })
}

// owned returns v when it exists and owner may see it ("" = any owner).
func owned[T any](m map[string]*T, id, owner string, ownerOf func(*T) string, k IDKind) (*T, error) {
	v := m[id]
	if v == nil || (owner != "" && ownerOf(v) != owner) {
		// Another account's object answers NotFound, never its data.
		return nil, k.NotFoundError(id)
	}
	return v, nil
}

// Vpc looks up a VPC visible to owner ("" = any account).
func (s *State) Vpc(owner, id string) (*Vpc, error) {
	return owned(s.Vpcs, id, owner, func(v *Vpc) string { return v.OwnerID }, KindVpc)
}

// Subnet looks up a subnet visible to owner.
func (s *State) Subnet(owner, id string) (*Subnet, error) {
	return owned(s.Subnets, id, owner, func(v *Subnet) string { return v.OwnerID }, KindSubnet)
}

// SecurityGroup looks up a security group visible to owner.
func (s *State) SecurityGroup(owner, id string) (*SecurityGroup, error) {
	return owned(s.SecurityGroups, id, owner, func(v *SecurityGroup) string { return v.OwnerID }, KindSecurityGroup)
}

// RouteTable looks up a route table visible to owner.
func (s *State) RouteTable(owner, id string) (*RouteTable, error) {
	return owned(s.RouteTables, id, owner, func(v *RouteTable) string { return v.OwnerID }, KindRouteTable)
}

// InternetGateway looks up an internet gateway visible to owner.
func (s *State) InternetGateway(owner, id string) (*InternetGateway, error) {
	return owned(s.InternetGateways, id, owner, func(v *InternetGateway) string { return v.OwnerID }, KindInternetGW)
}

// NetworkACL looks up a network ACL visible to owner.
func (s *State) NetworkACL(owner, id string) (*NetworkACL, error) {
	return owned(s.NetworkACLs, id, owner, func(v *NetworkACL) string { return v.OwnerID }, KindNetworkACL)
}

// NetworkInterface looks up an ENI visible to owner.
func (s *State) NetworkInterface(owner, id string) (*NetworkInterface, error) {
	return owned(s.NetworkInterfaces, id, owner, func(v *NetworkInterface) string { return v.OwnerID }, KindInterface)
}

// Address looks up an elastic IP by allocation id, visible to owner.
func (s *State) Address(owner, id string) (*Address, error) {
	return owned(s.Addresses, id, owner, func(v *Address) string { return v.OwnerID }, KindAllocation)
}

// NatGateway looks up a NAT gateway visible to owner.
func (s *State) NatGateway(owner, id string) (*NatGateway, error) {
	return owned(s.NatGateways, id, owner, func(v *NatGateway) string { return v.OwnerID }, KindNatGateway)
}

// DhcpOptionSet looks up a DHCP option set visible to owner.
func (s *State) DhcpOptionSet(owner, id string) (*DhcpOptions, error) {
	return owned(s.DhcpOptions, id, owner, func(v *DhcpOptions) string { return v.OwnerID }, KindDhcpOptions)
}

// Instance looks up an instance visible to owner.
func (s *State) Instance(owner, id string) (*Instance, error) {
	return owned(s.Instances, id, owner, func(v *Instance) string { return v.OwnerID }, KindInstance)
}

// MaxTransitIndex is the largest transit index: the transit network is a
// /17 and index 1 is the edge router, so routers take 2..32766.
const MaxTransitIndex = 1<<15 - 2

// AllocTransitIndex returns the lowest transit index no VPC or NAT gateway
// holds, or 0 when all are taken.
func (s *State) AllocTransitIndex() int {
	used := map[int]bool{}
	for _, v := range s.Vpcs {
		used[v.TransitIndex] = true
	}
	for _, n := range s.NatGateways {
		used[n.TransitIndex] = true
	}
	for i := 2; i <= MaxTransitIndex; i++ {
		if !used[i] {
			return i
		}
	}
	return 0
}
