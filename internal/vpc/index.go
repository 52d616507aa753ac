package vpc

import (
	"net/netip"
	"slices"
)

// The lookups of a State by owner — a VPC's subnets, a subnet's or an
// instance's interfaces, an interface's addresses, a group's members —
// would scan (and sort) a whole collection each: at cloud scale, 20,000
// interfaces for every instance's primary interface. A State whose writer
// keeps it indexed (nsdb's VPC mirror: every change through Changed)
// answers them from the index; any other State (built by direct map
// writes: tests, the translator's per-VPC states) scans, with the same
// answers.

// refKind names one lookup.
type refKind uint8

const (
	subnetsOfVPC refKind = iota
	routeTablesOfVPC
	groupsOfVPC
	aclsOfVPC
	interfacesOfVPC
	natGatewaysOfVPC
	gatewaysOfVPC // internet gateways attached (any state)
	interfacesInSubnet
	interfacesOfInstance
	addressesOfInterface
	membersOfGroup
	// ownedBy: a collection's objects of one account (key ownerKey);
	// addressByIP: the address holding a public IP (key the IP).
	ownedBy
	addressByIP
)

// ownerKey is the ownedBy key of collection coll's objects owned by owner.
func ownerKey(coll, owner string) string { return coll + "/" + owner }

type ref struct {
	kind refKind
	key  string
}

// index maps each lookup to the ids it answers.
type index map[ref]map[string]struct{}

// refsOf lists the lookups obj answers to.
// An object's owner and an address's public IP never change.
func refsOf(obj any) []ref {
	owned := func(coll, owner string) ref { return ref{ownedBy, ownerKey(coll, owner)} }
	switch o := obj.(type) {
	case *Vpc:
		return []ref{owned("vpcs", o.OwnerID)}
	case *Instance:
		return []ref{owned("instances", o.OwnerID)}
	case *DhcpOptions:
		return []ref{owned("dhcp_options", o.OwnerID)}
	case *Subnet:
		return []ref{{subnetsOfVPC, o.VpcID}, owned("subnets", o.OwnerID)}
	case *RouteTable:
		return []ref{{routeTablesOfVPC, o.VpcID}, owned("route_tables", o.OwnerID)}
	case *SecurityGroup:
		return []ref{{groupsOfVPC, o.VpcID}, owned("security_groups", o.OwnerID)}
	case *NetworkACL:
		return []ref{{aclsOfVPC, o.VpcID}, owned("network_acls", o.OwnerID)}
	case *NatGateway:
		return []ref{{natGatewaysOfVPC, o.VpcID}, owned("nat_gateways", o.OwnerID)}
	case *InternetGateway:
		rs := []ref{owned("internet_gateways", o.OwnerID)}
		for _, a := range o.Attachments {
			rs = append(rs, ref{gatewaysOfVPC, a.VpcID})
		}
		return rs
	case *Address:
		return []ref{{addressesOfInterface, o.NetworkInterfaceID}, owned("addresses", o.OwnerID), {addressByIP, o.PublicIP.String()}}
	case *NetworkInterface:
		rs := []ref{{interfacesOfVPC, o.VpcID}, {interfacesInSubnet, o.SubnetID}, owned("network_interfaces", o.OwnerID)}
		if o.Attachment != nil {
			rs = append(rs, ref{interfacesOfInstance, o.Attachment.InstanceID})
		}
		for _, g := range o.Groups {
			rs = append(rs, ref{membersOfGroup, g})
		}
		return rs
	}
	return nil
}

// Reindex indexes s as it stands; from then on every change to its maps
// must be reported with Changed.
func (s *State) Reindex() {
	s.ix = index{}
	add := func(id string, obj any) { s.ix.add(id, obj) }
	for id, o := range s.Subnets {
		add(id, o)
	}
	for id, o := range s.RouteTables {
		add(id, o)
	}
	for id, o := range s.SecurityGroups {
		add(id, o)
	}
	for id, o := range s.NetworkACLs {
		add(id, o)
	}
	for id, o := range s.NatGateways {
		add(id, o)
	}
	for id, o := range s.InternetGateways {
		add(id, o)
	}
	for id, o := range s.Addresses {
		add(id, o)
	}
	for id, o := range s.NetworkInterfaces {
		add(id, o)
	}
	for id, o := range s.Vpcs {
		add(id, o)
	}
	for id, o := range s.Instances {
		add(id, o)
	}
	for id, o := range s.DhcpOptions {
		add(id, o)
	}
}

// Changed reports that the object under id changed from old to obj (either
// nil: absent; both of one type): an indexed State updates its index, any
// other ignores it.
func (s *State) Changed(id string, old, obj any) {
	if s.ix == nil {
		return
	}
	for _, r := range refsOf(old) {
		if ids := s.ix[r]; ids != nil {
			delete(ids, id)
			if len(ids) == 0 {
				delete(s.ix, r)
			}
		}
	}
	s.ix.add(id, obj)
}

func (x index) add(id string, obj any) {
	for _, r := range refsOf(obj) {
		ids := x[r]
		if ids == nil {
			ids = map[string]struct{}{}
			x[r] = ids
		}
		ids[id] = struct{}{}
	}
}

// lookup returns m's objects the index lists under (k, key), ordered by id,
// keeping those keep accepts; without an index, it scans m.
func lookup[T any](s *State, m map[string]*T, k refKind, key string, keep func(*T) bool) []*T {
	if s.ix == nil {
		return sorted(m, keep)
	}
	set := s.ix[ref{k, key}]
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]*T, 0, len(ids))
	for _, id := range ids {
		if v, ok := m[id]; ok && keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// The objects of one account, ordered by id (an indexed State answers from
// its index; any other scans).

func (s *State) OwnedVpcs(owner string) []*Vpc {
	return lookup(s, s.Vpcs, ownedBy, ownerKey("vpcs", owner), func(x *Vpc) bool { return x.OwnerID == owner })
}

func (s *State) OwnedInstances(owner string) []*Instance {
	return lookup(s, s.Instances, ownedBy, ownerKey("instances", owner), func(x *Instance) bool { return x.OwnerID == owner })
}

func (s *State) OwnedDhcpOptions(owner string) []*DhcpOptions {
	return lookup(s, s.DhcpOptions, ownedBy, ownerKey("dhcp_options", owner), func(x *DhcpOptions) bool { return x.OwnerID == owner })
}

func (s *State) OwnedSubnets(owner string) []*Subnet {
	return lookup(s, s.Subnets, ownedBy, ownerKey("subnets", owner), func(x *Subnet) bool { return x.OwnerID == owner })
}

func (s *State) OwnedRouteTables(owner string) []*RouteTable {
	return lookup(s, s.RouteTables, ownedBy, ownerKey("route_tables", owner), func(x *RouteTable) bool { return x.OwnerID == owner })
}

func (s *State) OwnedSecurityGroups(owner string) []*SecurityGroup {
	return lookup(s, s.SecurityGroups, ownedBy, ownerKey("security_groups", owner), func(x *SecurityGroup) bool { return x.OwnerID == owner })
}

func (s *State) OwnedNetworkACLs(owner string) []*NetworkACL {
	return lookup(s, s.NetworkACLs, ownedBy, ownerKey("network_acls", owner), func(x *NetworkACL) bool { return x.OwnerID == owner })
}

func (s *State) OwnedNatGateways(owner string) []*NatGateway {
	return lookup(s, s.NatGateways, ownedBy, ownerKey("nat_gateways", owner), func(x *NatGateway) bool { return x.OwnerID == owner })
}

func (s *State) OwnedInternetGateways(owner string) []*InternetGateway {
	return lookup(s, s.InternetGateways, ownedBy, ownerKey("internet_gateways", owner), func(x *InternetGateway) bool { return x.OwnerID == owner })
}

func (s *State) OwnedAddresses(owner string) []*Address {
	return lookup(s, s.Addresses, ownedBy, ownerKey("addresses", owner), func(x *Address) bool { return x.OwnerID == owner })
}

func (s *State) OwnedInterfaces(owner string) []*NetworkInterface {
	return lookup(s, s.NetworkInterfaces, ownedBy, ownerKey("network_interfaces", owner), func(x *NetworkInterface) bool { return x.OwnerID == owner })
}

// AddressWithIP returns the address (elastic or auto-assigned, of any
// account) holding public IP ip, or nil.
func (s *State) AddressWithIP(ip netip.Addr) *Address {
	for _, a := range lookup(s, s.Addresses, addressByIP, ip.String(), func(x *Address) bool { return x.PublicIP == ip }) {
		return a
	}
	return nil
}
