package controller

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The VPC objects as the store keeps them (internal/nsdb/vpcstore.go): one
// key <prefix>vpc/<collection>/<id> per object, <collection> the json name
// of its map in vpc.State, the value its JSON. The controller decodes them
// itself, with a type switch, because it needs each change's old and new
// value to know which VPCs it touches.
const (
	collVpcs      = "vpcs"
	collSubnets   = "subnets"
	collIGWs      = "internet_gateways"
	collRTBs      = "route_tables"
	collSGs       = "security_groups"
	collACLs      = "network_acls"
	collENIs      = "network_interfaces"
	collAddresses = "addresses"
	collNATs      = "nat_gateways"
	collDHCP      = "dhcp_options"
	collInstances = "instances"
	collAccounts  = "accounts"
	// collKeyPairs holds SSH keys, which translate to nothing: the
	// controller does not read them.
	collKeyPairs = "key_pairs"
	// collSubnetPools holds Neutron's subnet pools, which translate to
	// nothing either (a subnet has its block already).
	collSubnetPools = "subnet_pools"
)

// vpcChange is one decoded VPC key: obj is nil for a delete.
type vpcChange struct {
	coll, id string
	obj      any
}

// parseVPCKey splits "<coll>/<id>" (the key without <prefix>vpc/).
func parseVPCKey(rel string) (coll, id string, ok bool) {
	coll, id, ok = strings.Cut(rel, "/")
	return coll, id, ok && id != "" && !strings.Contains(id, "/")
}

// decodeVPC decodes one value of a collection into its vpc struct.
func decodeVPC(coll string, b []byte) (any, error) {
	var obj any
	switch coll {
	case collVpcs:
		obj = &vpc.Vpc{}
	case collSubnets:
		obj = &vpc.Subnet{}
	case collIGWs:
		obj = &vpc.InternetGateway{}
	case collRTBs:
		obj = &vpc.RouteTable{}
	case collSGs:
		obj = &vpc.SecurityGroup{}
	case collACLs:
		obj = &vpc.NetworkACL{}
	case collENIs:
		obj = &vpc.NetworkInterface{}
	case collAddresses:
		obj = &vpc.Address{}
	case collNATs:
		obj = &vpc.NatGateway{}
	case collDHCP:
		obj = &vpc.DhcpOptions{}
	case collInstances:
		obj = &vpc.Instance{}
	case collAccounts:
		obj = &vpc.Account{}
	default:
		return nil, fmt.Errorf("unknown VPC collection %q", coll)
	}
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", coll, err)
	}
	return obj, nil
}

type idset map[string]struct{}

func (s idset) add(id string) { s[id] = struct{}{} }

// mirror is the controller's copy of the VPC view, with the indexes that
// let it gather one VPC's objects without walking the whole cloud. Only the
// writer loop touches it. Objects are replaced on change, never modified,
// so a sub-state handed to the translator shares them safely.
type mirror struct {
	st  *vpc.State
	rev int64 // etcd revision the mirror reflects

	inVPC     map[string]map[string]idset // vpc id → collection → ids of the objects inside it
	igwByVPC  map[string]idset            // vpc id → internet gateways attached to it or joining it
	addrByENI map[string]idset            // eni id → allocation ids associated with it
	// readers: "<coll>/<id>" of an object outside a VPC that the VPC's last
	// translation looked up (present or not) → those VPCs; reads is the
	// reverse, to forget a VPC's reads when it is translated again.
	readers map[string]idset
	reads   map[string][]string
}

func newMirror() *mirror {
	return &mirror{
		st: vpc.NewState(), inVPC: map[string]map[string]idset{}, igwByVPC: map[string]idset{},
		addrByENI: map[string]idset{}, readers: map[string]idset{}, reads: map[string][]string{},
	}
}

// vpcOf returns the VPC an object lives in, for the collections whose
// objects belong to one VPC.
func vpcOf(obj any) string {
	switch o := obj.(type) {
	case *vpc.Vpc:
		return o.ID
	case *vpc.Subnet:
		return o.VpcID
	case *vpc.RouteTable:
		return o.VpcID
	case *vpc.SecurityGroup:
		return o.VpcID
	case *vpc.NetworkACL:
		return o.VpcID
	case *vpc.NetworkInterface:
		return o.VpcID
	case *vpc.NatGateway:
		return o.VpcID
	case *vpc.Instance:
		return o.VpcID
	}
	return ""
}

// get returns the mirror's object of a collection, or nil (an untyped nil,
// never a typed nil pointer).
func (m *mirror) get(coll, id string) any {
	s := m.st
	switch coll {
	case collVpcs:
		return getMap(s.Vpcs, id)
	case collSubnets:
		return getMap(s.Subnets, id)
	case collIGWs:
		return getMap(s.InternetGateways, id)
	case collRTBs:
		return getMap(s.RouteTables, id)
	case collSGs:
		return getMap(s.SecurityGroups, id)
	case collACLs:
		return getMap(s.NetworkACLs, id)
	case collENIs:
		return getMap(s.NetworkInterfaces, id)
	case collAddresses:
		return getMap(s.Addresses, id)
	case collNATs:
		return getMap(s.NatGateways, id)
	case collDHCP:
		return getMap(s.DhcpOptions, id)
	case collInstances:
		return getMap(s.Instances, id)
	case collAccounts:
		return getMap(s.Accounts, id)
	}
	return nil
}

func getMap[T any](m map[string]*T, id string) any {
	if v, ok := m[id]; ok && v != nil {
		return v
	}
	return nil
}

// setMap stores (obj != nil) or removes an object in the state's map.
func setMap[T any](m map[string]*T, id string, obj any) {
	if obj == nil {
		delete(m, id)
		return
	}
	m[id] = obj.(*T)
}

func (m *mirror) set(coll, id string, obj any) {
	s := m.st
	switch coll {
	case collVpcs:
		setMap(s.Vpcs, id, obj)
	case collSubnets:
		setMap(s.Subnets, id, obj)
	case collIGWs:
		setMap(s.InternetGateways, id, obj)
	case collRTBs:
		setMap(s.RouteTables, id, obj)
	case collSGs:
		setMap(s.SecurityGroups, id, obj)
	case collACLs:
		setMap(s.NetworkACLs, id, obj)
	case collENIs:
		setMap(s.NetworkInterfaces, id, obj)
	case collAddresses:
		setMap(s.Addresses, id, obj)
	case collNATs:
		setMap(s.NatGateways, id, obj)
	case collDHCP:
		setMap(s.DhcpOptions, id, obj)
	case collInstances:
		setMap(s.Instances, id, obj)
	case collAccounts:
		setMap(s.Accounts, id, obj)
	}
}

// index adds (add) or removes an object from the indexes.
func (m *mirror) index(coll, id string, obj any, add bool) {
	if obj == nil {
		return
	}
	put := func(idx map[string]idset, k, v string) {
		if k == "" {
			return
		}
		if add {
			if idx[k] == nil {
				idx[k] = idset{}
			}
			idx[k].add(v)
			return
		}
		delete(idx[k], v)
		if len(idx[k]) == 0 {
			delete(idx, k)
		}
	}
	switch o := obj.(type) {
	case *vpc.InternetGateway:
		for _, a := range o.Attachments {
			put(m.igwByVPC, a.VpcID, id)
		}
		for _, v := range o.Joins {
			put(m.igwByVPC, v, id)
		}
		return
	case *vpc.Address:
		put(m.addrByENI, o.NetworkInterfaceID, id)
		return
	case *vpc.Instance, *vpc.Account, *vpc.DhcpOptions:
		return
	}
	v := vpcOf(obj)
	if v == "" {
		return
	}
	colls := m.inVPC[v]
	if colls == nil {
		if !add {
			return
		}
		colls = map[string]idset{}
		m.inVPC[v] = colls
	}
	put(colls, coll, id)
	if len(colls) == 0 {
		delete(m.inVPC, v)
	}
}

// affected returns the VPCs whose translation may read an object: the VPC
// it lives in, the VPCs an internet gateway is attached to or joins, the VPC of an
// address's interface, and every VPC whose last translation looked it up.
func (m *mirror) affected(coll, id string, obj any, into idset) {
	for v := range m.readers[coll+"/"+id] {
		into.add(v)
	}
	switch o := obj.(type) {
	case nil:
	case *vpc.InternetGateway:
		for _, a := range o.Attachments {
			into.add(a.VpcID)
		}
		for _, v := range o.Joins {
			into.add(v)
		}
	case *vpc.Address:
		if e := m.st.NetworkInterfaces[o.NetworkInterfaceID]; e != nil {
			into.add(e.VpcID)
		}
	case *vpc.Instance:
		// Its interfaces' VPCs read it (readers); its own VpcID is where
		// it was launched.
		if o.VpcID != "" {
			into.add(o.VpcID)
		}
	default:
		if v := vpcOf(obj); v != "" {
			into.add(v)
		}
	}
}

// apply applies one change and adds the VPCs it may affect to dirty: those
// of the old value and those of the new one.
func (m *mirror) apply(c vpcChange, dirty idset) {
	old := m.get(c.coll, c.id)
	m.affected(c.coll, c.id, old, dirty)
	m.index(c.coll, c.id, old, false)
	m.set(c.coll, c.id, c.obj)
	m.index(c.coll, c.id, c.obj, true)
	m.affected(c.coll, c.id, c.obj, dirty)
}

// vpcIDs returns every VPC that has objects in the mirror (the VPC object
// itself or anything inside it).
func (m *mirror) vpcIDs() idset {
	out := idset{}
	for v := range m.inVPC {
		out.add(v)
	}
	return out
}

// subState gathers what the translation of one VPC reads (see
// translate.TranslateVPC) and records the objects from outside the VPC it
// looked up, so that their changes dirty this VPC.
func (m *mirror) subState(vpcID string) *vpc.State {
	for _, k := range m.reads[vpcID] {
		delete(m.readers[k], vpcID)
		if len(m.readers[k]) == 0 {
			delete(m.readers, k)
		}
	}
	var reads []string
	read := func(coll, id string) {
		k := coll + "/" + id
		reads = append(reads, k)
		if m.readers[k] == nil {
			m.readers[k] = idset{}
		}
		m.readers[k].add(vpcID)
	}
	src, st := m.st, vpc.NewState()
	colls := m.inVPC[vpcID]
	for id := range colls[collVpcs] {
		st.Vpcs[id] = src.Vpcs[id]
	}
	for id := range colls[collSubnets] {
		st.Subnets[id] = src.Subnets[id]
	}
	for id := range colls[collRTBs] {
		st.RouteTables[id] = src.RouteTables[id]
	}
	for id := range colls[collACLs] {
		st.NetworkACLs[id] = src.NetworkACLs[id]
	}
	for id := range colls[collNATs] {
		st.NatGateways[id] = src.NatGateways[id]
	}
	for id := range colls[collSGs] {
		g := src.SecurityGroups[id]
		st.SecurityGroups[id] = g
	}
	// Groups referenced by rules but living elsewhere (or nowhere): the
	// translator checks that they exist.
	for _, g := range st.SecurityGroups {
		for _, rules := range [][]vpc.SecurityGroupRule{g.Ingress, g.Egress} {
			for _, r := range rules {
				if ref := r.ReferencedGroupID; ref != "" && st.SecurityGroups[ref] == nil {
					read(collSGs, ref)
					if o := src.SecurityGroups[ref]; o != nil {
						st.SecurityGroups[ref] = o
					}
				}
			}
		}
	}
	for id := range colls[collENIs] {
		e := src.NetworkInterfaces[id]
		st.NetworkInterfaces[id] = e
		for a := range m.addrByENI[id] {
			read(collAddresses, a)
			st.Addresses[a] = src.Addresses[a]
		}
		if e.Attachment != nil && e.Attachment.InstanceID != "" {
			iid := e.Attachment.InstanceID
			read(collInstances, iid)
			if o := src.Instances[iid]; o != nil {
				st.Instances[iid] = o
			}
		}
	}
	for id := range m.igwByVPC[vpcID] {
		g := src.InternetGateways[id]
		st.InternetGateways[id] = g
		// The VPCs a gateway joins this one with: their blocks and
		// transit addresses (translate's joinedVPCs).
		for _, o := range g.Joins {
			if o != vpcID {
				read(collVpcs, o)
				if v := src.Vpcs[o]; v != nil {
					st.Vpcs[o] = v
				}
			}
		}
	}
	if v := src.Vpcs[vpcID]; v != nil && v.DhcpOptionsID != "" {
		read(collDHCP, v.DhcpOptionsID)
		if o := src.DhcpOptions[v.DhcpOptionsID]; o != nil {
			st.DhcpOptions[v.DhcpOptionsID] = o
		}
	}
	if len(reads) > 0 {
		m.reads[vpcID] = reads
	} else {
		delete(m.reads, vpcID)
	}
	return st
}
