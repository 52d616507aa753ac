package translate

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// Learned routes. A gateway host's BGP speaker learns routes (the default
// route, at least) from its peers and publishes them as that host's state;
// the controller adds them to the cloud partition as Route objects of the
// edge router, so every agent's simulation reads them like any other route
// and the REST API and `canopy trace` show them. They are an input of the
// cloud partition like the hosts: deterministic ids, owned by the
// translator, pruned when the host withdraws them or its lease expires.

// LearnedRoute is one route a gateway host's speaker learned: Prefix via
// NextHop, a router on the network of one of the host's uplinks.
type LearnedRoute struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
}

// LearnedRoutes returns the Route objects realizing what each gateway host
// learned (learned: host id → routes), given d, the cloud partition
// (TranslateCloud), whose bound uplink ports they leave through. A route
// goes out of the uplink of the host that learned it whose network holds
// the next hop; routes learned on several hosts share load (equal weights,
// ECMP). Routes that could not be realized come back as skips: a next hop
// on no uplink of the host, or a prefix overlapping a public pool or the
// transit network (a peer must not capture the cloud's own addresses).
func LearnedRoutes(cloud CloudConfig, d *Desired, learned map[string][]LearnedRoute) ([]topology.Object, []Skip) {
	cfg := cloud.withDefaults()
	var edge string
	uplinks := map[string][]*topology.Port{} // host id → bound uplink ports
	for _, o := range d.Objects {
		switch v := o.(type) {
		case *topology.Router:
			if v.ID == ObjectID(CloudObject, "edge-router") {
				edge = v.ID
			}
		case *topology.Port:
			if v.HostID != "" && v.DeviceKind == topology.KindRouter {
				uplinks[v.HostID] = append(uplinks[v.HostID], v)
			}
		}
	}
	if edge == "" {
		return nil, nil
	}
	hosts := make([]string, 0, len(learned))
	for h := range learned {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	var objs []topology.Object
	var skips []Skip
	seen := map[string]bool{}
	for _, h := range hosts {
		for _, lr := range learned[h] {
			obj := fmt.Sprintf("bgp %s via %s on host %s", lr.Prefix, lr.NextHop, h)
			if reason := cfg.unlearnable(lr.Prefix); reason != "" {
				skips = append(skips, Skip{obj, reason})
				continue
			}
			var port *topology.Port
			for _, p := range uplinks[h] {
				if p.Address.Masked().Contains(lr.NextHop) && p.Address.Addr() != lr.NextHop {
					port = p
					break
				}
			}
			if port == nil {
				skips = append(skips, Skip{obj, "the next hop is on no uplink network of the host"})
				continue
			}
			role := "route/learned/" + port.ID + "/" + lr.Prefix.Masked().String() + "/" + lr.NextHop.String()
			if seen[role] {
				continue
			}
			seen[role] = true
			objs = append(objs, &topology.Route{
				Meta:     meta(CloudObject, "", role, "bgp "+lr.Prefix.Masked().String()+" via "+lr.NextHop.String()),
				RouterID: edge, Type: topology.RouteNormal, DstPrefix: lr.Prefix.Masked(),
				NextHopPort: port.ID, NextHopGateway: lr.NextHop, Learned: true,
			})
		}
	}
	slices.SortFunc(skips, func(a, b Skip) int { return cmp.Compare(a.Object, b.Object) })
	return objs, skips
}

// unlearnable says why a learned prefix must not be routed, or "".
func (c CloudConfig) unlearnable(p netip.Prefix) string {
	if !p.IsValid() || !p.Addr().Is4() {
		return "not an IPv4 prefix"
	}
	// A covering route (the default route) is fine: the pools' and the
	// transit network's own routes are more specific.
	if p.Overlaps(c.TransitCIDR) && p.Bits() >= c.TransitCIDR.Bits() {
		return "overlaps the transit network " + c.TransitCIDR.String()
	}
	for _, pool := range c.PublicPools {
		if p.Overlaps(pool) && p.Bits() >= pool.Bits() {
			return "inside the public pool " + pool.String()
		}
	}
	return ""
}

// edgeBGP is the edge router's BGP settings (nil without c.BGP): every
// gateway's peer, once (gateways on one network may share their peer), and
// the public pools as the advertised networks.
func edgeBGP(c CloudConfig) *topology.BGP {
	if c.BGP == nil {
		return nil
	}
	b := &topology.BGP{ASN: c.BGP.ASN, HostRoutes: c.BGP.Advertise == AdvertiseAddresses}
	seen := map[netip.Addr]bool{}
	for _, g := range c.Gateways {
		if p := g.BGPPeer; p != nil && !seen[p.Address] {
			seen[p.Address] = true
			b.Peers = append(b.Peers, topology.BGPPeer{Address: p.Address, ASN: p.ASN,
				HoldTime: p.HoldTime, KeepAlive: p.KeepAlive, Password: p.Password, BFD: p.BFD})
		}
	}
	b.Networks = append(b.Networks, c.PublicPools...)
	return b
}
