package neutron

import (
	"encoding/json"
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Tags that hold a Neutron object's name and description on its VPC
// object (the name is the EC2 Name tag, so both APIs show it).
const (
	tagName        = "Name"
	tagDescription = "Description"
)

func nameOf(t vpc.Tags) string { return t[tagName] }

// withText sets or clears the name and description tags.
func withText(t vpc.Tags, name, desc string) vpc.Tags {
	out := vpc.Tags{}
	for k, v := range t {
		out[k] = v
	}
	for k, v := range map[string]string{tagName: name, tagDescription: desc} {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func networkNotFound(id string) *Error { return notFound("NetworkNotFound", "Network", id) }

func (s *Server) networks() *resource {
	return &resource{
		collection: "networks", member: "network", bulk: true, notFound: networkNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			if _, ok := s.externalPrefix(); ok {
				out = append(out, s.renderExternalNetwork())
			}
			err := c.read(func(st *vpc.State) error {
				for _, v := range st.SortedVpcs() {
					if c.sees(v.OwnerID) {
						out = append(out, s.renderNetwork(st, v))
					}
				}
				return nil
			})
			return out, err
		},
		create: s.createNetwork,
		update: s.updateNetwork,
		del:    s.deleteNetwork,
	}
}

func (s *Server) renderNetwork(st *vpc.State, v *vpc.Vpc) obj {
	subnets := []string{}
	for _, sub := range st.SubnetsOf(v.ID) {
		subnets = append(subnets, sub.ID)
	}
	return obj{
		"id": v.ID, "name": nameOf(v.Tags), "description": v.Tags[tagDescription],
		"tenant_id": v.OwnerID, "project_id": v.OwnerID,
		"admin_state_up": true, "status": "ACTIVE", "subnets": subnets,
		"shared": false, "router:external": false, "mtu": s.cfg.MTU, "port_security_enabled": !v.PortSecurityOff,
		"availability_zone_hints": []string{}, "availability_zones": []string{},
		"ipv4_address_scope": nil, "ipv6_address_scope": nil, "l2_adjacency": false,
		"tags": neutronTags(v.Tags),
	}
}

// networkAttrs are what POST and PUT take: name and description, and the
// attributes whose only value here is Neutron's default.
func (s *Server) networkAttrs(a attrs) (name, desc string, err error) {
	if name, desc, err = a.nameDesc(); err != nil {
		return
	}
	for _, f := range []struct {
		k    string
		want any
		why  string
	}{
		{"admin_state_up", true, "a network is always up on Canopy"},
		{"shared", false, "shared networks are not supported"},
		{"router:external", false, "external networks are not supported yet"},
		{"mtu", s.cfg.MTU, "a network's MTU is the overlay's"},
		{"availability_zone_hints", []any{}, "availability zone hints are not supported"},
	} {
		if err = a.fixed(f.k, f.want, f.why); err != nil {
			return
		}
	}
	return
}

func (s *Server) createNetwork(c *call, a attrs) (string, error) {
	if err := a.only("name", "description", "admin_state_up", "shared", "router:external", "port_security_enabled",
		"mtu", "tenant_id", "project_id", "availability_zone_hints"); err != nil {
		return "", err
	}
	name, desc, err := s.networkAttrs(a)
	if err != nil {
		return "", err
	}
	psec, err := a.boolean("port_security_enabled", true)
	if err != nil {
		return "", err
	}
	var id string
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		owner, err := c.owner(a, func(p string) bool { return st.Accounts[p] != nil })
		if err != nil {
			return err
		}
		if err := checkQuota(st, owner, "network"); err != nil {
			return err
		}
		if _, err := defaultGroup(tx, owner); err != nil {
			return err
		}
		v, err := s.cfg.EC2.NewVpc(tx, owner, netip.Prefix{}, withText(nil, name, desc))
		if err != nil {
			return err
		}
		v = clone(v)
		// No VPC resolver: a network has no block to place it in.
		v.Network, v.EnableDNSSupport = true, false
		v.PortSecurityOff = !psec
		id = v.ID
		return tx.Put(v.ID, v)
	})
	return id, err
}

// network returns a network the caller sees.
func (c *call) network(st *vpc.State, id string) (*vpc.Vpc, error) {
	if c.s.isExternal(id) {
		return nil, externalRefused("changed or given subnets and ports through this API")
	}
	v := st.Vpcs[id]
	if v == nil || !c.sees(v.OwnerID) {
		return nil, networkNotFound(id)
	}
	return v, nil
}

func (s *Server) updateNetwork(c *call, id string, a attrs) error {
	if err := a.only("name", "description", "admin_state_up", "shared", "router:external", "port_security_enabled", "mtu"); err != nil {
		return err
	}
	name, desc, err := s.networkAttrs(a)
	if err != nil {
		return err
	}
	psec, err := a.boolean("port_security_enabled", true)
	if err != nil {
		return err
	}
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		v, err := c.network(st, id)
		if err != nil {
			return err
		}
		if !a.has("name") {
			name = nameOf(v.Tags)
		}
		if !a.has("description") {
			desc = v.Tags[tagDescription]
		}
		v = clone(v)
		v.Tags = withText(v.Tags, name, desc)
		if a.has("port_security_enabled") {
			// The default of new ports only, as in Neutron: existing ports
			// keep theirs.
			v.PortSecurityOff = !psec
		}
		return tx.Put(v.ID, v)
	})
}

func (s *Server) deleteNetwork(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		v, err := c.network(st, id)
		if err != nil {
			return err
		}
		for _, sub := range st.SubnetsOf(id) {
			if g := routerOn(st, sub.ID); g != nil {
				return conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network (router %s has an interface on subnet %s).", id, g.ID, sub.ID)
			}
		}
		if len(st.InterfacesOf(id)) > 0 {
			return conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", id)
		}
		// Its subnets and its copies of project groups go with it, as in
		// Neutron; anything else the EC2 API hung on it (a gateway, a
		// route table) keeps it.
		if err := deleteCopies(st, tx, id); err != nil {
			return err
		}
		for _, sub := range st.SubnetsOf(id) {
			if err := ec2.DeleteSubnet(st, tx, sub); err != nil {
				return inUse("NetworkInUse", "network", id, err)
			}
		}
		return inUse("NetworkInUse", "network", id, ec2.DeleteVpc(st, tx, v))
	})
}

// setBlock makes a Neutron network's block the smallest prefix covering
// its subnets (none without), and its main route table's local route
// follow it. An EC2 VPC keeps its block.
func setBlock(st *vpc.State, tx *nsdb.VPCTx, v *vpc.Vpc) error {
	if !v.Network {
		return nil
	}
	var ps []netip.Prefix
	for _, sub := range st.SubnetsOf(v.ID) {
		ps = append(ps, sub.CidrBlock)
	}
	block := cover(ps)
	if block == v.CidrBlock {
		return nil
	}
	old := v.CidrBlock
	v = clone(v)
	v.CidrBlock = block
	if err := tx.Put(v.ID, v); err != nil {
		return err
	}
	if t := st.MainRouteTable(v.ID); t != nil {
		t = clone(t)
		for i := range t.Routes {
			if t.Routes[i].GatewayID == vpc.LocalGateway && t.Routes[i].DestinationCidrBlock == old {
				t.Routes[i].DestinationCidrBlock = block
			}
		}
		return tx.Put(t.ID, t)
	}
	return nil
}

// cover is the smallest prefix holding every prefix of ps (the zero
// prefix for none).
func cover(ps []netip.Prefix) netip.Prefix {
	if len(ps) == 0 {
		return netip.Prefix{}
	}
	c := ps[0].Masked()
	for _, p := range ps[1:] {
		for c.Bits() > 0 && !(c.Contains(p.Addr()) && c.Bits() <= p.Bits()) {
			c = netip.PrefixFrom(c.Addr(), c.Bits()-1).Masked()
		}
	}
	return c
}

// clone deep-copies a VPC object before a change (the store's objects are
// shared with readers).
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}
