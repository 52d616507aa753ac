package vpc

import (
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
)

type ref struct {
	kind refKind
	key  string
}

// index maps each lookup to the ids it answers.
type index map[ref]map[string]struct{}

// refsOf lists the lookups obj answers to.
func refsOf(obj any) []ref {
	switch o := obj.(type) {
	case *Subnet:
		return []ref{{subnetsOfVPC, o.VpcID}}
	case *RouteTable:
		return []ref{{routeTablesOfVPC, o.VpcID}}
	case *SecurityGroup:
		return []ref{{groupsOfVPC, o.VpcID}}
	case *NetworkACL:
		return []ref{{aclsOfVPC, o.VpcID}}
	case *NatGateway:
		return []ref{{natGatewaysOfVPC, o.VpcID}}
	case *InternetGateway:
		var rs []ref
		for _, a := range o.Attachments {
			rs = append(rs, ref{gatewaysOfVPC, a.VpcID})
		}
		return rs
	case *Address:
		return []ref{{addressesOfInterface, o.NetworkInterfaceID}}
	case *NetworkInterface:
		rs := []ref{{interfacesOfVPC, o.VpcID}, {interfacesInSubnet, o.SubnetID}}
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
