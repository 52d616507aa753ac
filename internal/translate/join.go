package translate

import (
	"net/netip"
	"slices"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Joined VPCs: a Neutron router with interfaces on several networks
// (InternetGateway.Joins) routes between them, as MidoNet's one virtual
// router did. Canopy realizes it on the link every VPC router already has,
// its port on the transit bridge: each joined VPC's router routes the
// other VPCs' blocks to their routers' transit addresses, and its uplink
// chains let that traffic pass untranslated (out: from its block to
// theirs; in: from their blocks to its own, sent by their routers' uplink
// MACs) ahead of the elastic IP rules and the final drop. Everything is an
// object of the VPC it sits in, so each VPC's partition holds its half of
// the join and reads only the gateway and the other VPCs' objects. A
// gateway set down joins nothing; VPCs whose blocks overlap are not joined
// (a skip says so).

// joinedVPCs are the VPCs up gateways join v with (sorted, without v).
func (b *builder) joinedVPCs(v *vpc.Vpc) []*vpc.Vpc {
	if b.joins == nil {
		b.joins = map[string][]string{}
		for _, g := range b.st.InternetGateways {
			if g.Down || len(g.Joins) < 2 {
				continue
			}
			for _, a := range g.Joins {
				for _, o := range g.Joins {
					if o != a && !slices.Contains(b.joins[a], o) {
						b.joins[a] = append(b.joins[a], o)
					}
				}
			}
		}
	}
	var out []*vpc.Vpc
	for _, id := range b.joins[v.ID] {
		o := b.st.Vpcs[id]
		switch {
		case o == nil || !o.CidrBlock.IsValid() || !v.CidrBlock.IsValid():
			continue // a network without a subnet yet: nothing to route
		case o.TransitIndex < 2 || o.TransitIndex > vpc.MaxTransitIndex:
			continue // the VPC itself reports it
		case o.CidrBlock.Overlaps(v.CidrBlock):
			b.skip(v.ID, "not joined with %s: blocks %s and %s overlap", o.ID, v.CidrBlock, o.CidrBlock)
			continue
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(x, y *vpc.Vpc) int { return x.CidrBlock.Addr().Compare(y.CidrBlock.Addr()) })
	return out
}

// join routes v's router to the VPCs joined with it and returns the rules
// its uplink's in and out chains put first.
func (b *builder) join(x *vpcCtx) (in, out []topology.Rule) {
	v := x.v
	for _, o := range b.joinedVPCs(v) {
		b.route(v.ID, v.ID, "join/"+o.ID, x.router, topology.RouteNormal, netip.Prefix{}, o.CidrBlock, x.uplink, b.transitAddr(o.TransitIndex), 0)
		out = append(out, topology.Rule{ID: "join-" + o.ID, Action: topology.ActionAccept,
			Condition: topology.Condition{EtherType: etherIPv4, NwSrc: v.CidrBlock, NwDst: o.CidrBlock}})
		in = append(in, topology.Rule{ID: "join-" + o.ID, Action: topology.ActionAccept,
			Condition: topology.Condition{EtherType: etherIPv4, SrcMAC: routerMAC(ObjectID(o.ID, "uplink/router-port")), NwSrc: o.CidrBlock, NwDst: v.CidrBlock}})
	}
	return in, out
}
