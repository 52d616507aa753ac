package sim

import (
	"cmp"
	"slices"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// route is a compiled routing-table entry.
type route struct {
	id           string
	tag          flow.Tag
	typ          topology.RouteType
	src, srcMask uint32
	dst, dstMask uint32
	port         int32 // next-hop port, none for non-normal routes
	in           int32 // the ingress port it is limited to, none = any
	gw           uint32
	weight       int
	plen         uint8
	need         string // the part of the topology it leads into, not held (WithElsewhere)
	// down: its next hop is an exterior port on a host whose agent is not
	// alive (WithHostsDown). Such a route is used only when no route
	// through a live host matches (lookup).
	down bool
}

// routeTable groups routes by destination prefix length, longest first, and
// within a length by masked destination, so a lookup costs one map probe per
// distinct prefix length present. The routes are in one array (all), each
// destination's a run of it: an edge with a /32 per elastic IP costs a
// route and a small map entry each, not a slice of its own.
type routeTable struct {
	lens   []uint8
	masks  []uint32
	byDst  []map[uint32]span // parallel to lens: each destination's run in all
	all    []route
	routes int
}

// span is a run of routeTable.all.
type span struct{ at, n int32 }

func (s *Snapshot) compileRoutes(r topology.Reader, devIdx map[string]int32, extra []*topology.Route) {
	per := map[int32][]route{}
	explicit := map[int32]map[uint64]bool{} // router → dst prefix present
	held := r.List(topology.KindRoute)
	for i := range len(held) + len(extra) {
		var rt *topology.Route
		if i < len(held) {
			rt = held[i].(*topology.Route)
		} else {
			rt = extra[i-len(held)]
		}
		di, ok := devIdx[rt.RouterID]
		if !ok || !s.devs[di].router {
			continue
		}
		c, ok := compileRoute(s, rt)
		if !ok {
			continue
		}
		per[di] = append(per[di], c)
		if explicit[di] == nil {
			explicit[di] = map[uint64]bool{}
		}
		explicit[di][uint64(c.dst)<<8|uint64(c.plen)] = true
	}
	// Every router port implies a connected route to its subnet and a local
	// route to its address, as on any router; explicit routes to the same
	// prefix take their place.
	for i := range s.ports {
		p := &s.ports[i]
		d := &s.devs[p.dev]
		if !d.router || !p.hasAddr {
			continue
		}
		plen := uint8(32 - bitsZero(p.mask))
		if !explicit[p.dev][uint64(p.addr&p.mask)<<8|uint64(plen)] {
			per[p.dev] = append(per[p.dev], route{id: "connected:" + p.id, tag: p.tag, typ: topology.RouteNormal, dst: p.addr & p.mask, dstMask: p.mask, port: int32(i), in: none, weight: topology.DefaultRouteWeight, plen: plen, down: s.portDown(int32(i))})
		}
		if !explicit[p.dev][uint64(p.addr)<<8|32] {
			per[p.dev] = append(per[p.dev], route{id: "local:" + p.id, tag: p.tag, typ: topology.RouteLocal, dst: p.addr, dstMask: ^uint32(0), port: none, in: none, weight: topology.DefaultRouteWeight, plen: 32})
		}
	}
	for di, rs := range per {
		s.devs[di].routes = buildTable(rs)
	}
}

func bitsZero(m uint32) int {
	n := 0
	for m&1 == 0 && n < 32 {
		m >>= 1
		n++
	}
	return n
}

func compileRoute(s *Snapshot, rt *topology.Route) (route, bool) {
	dst, dmask, ok := prefixOf(rt.DstPrefix)
	if !ok {
		return route{}, false
	}
	src, smask, _ := prefixOf(rt.EffectiveSrc())
	c := route{
		id: rt.ID, tag: flow.TagOf(string(topology.KindRoute), rt.ID), typ: rt.Type,
		src: src, srcMask: smask, dst: dst, dstMask: dmask, port: none, in: none,
		weight: rt.EffectiveWeight(), plen: uint8(rt.DstPrefix.Bits()),
	}
	if c.typ == "" {
		c.typ = topology.RouteNormal
	}
	if s.elsewhere != nil {
		c.need = s.elsewhere(rt)
	}
	if rt.NextHopGateway.Is4() {
		c.gw = packet.U32(rt.NextHopGateway)
	}
	if rt.InPort != "" {
		pi, ok := s.portIdx[rt.InPort]
		if !ok {
			return route{}, false // limited to a port this router lacks: never applies
		}
		c.in = pi
	}
	if c.typ == topology.RouteNormal {
		pi, ok := s.portIdx[rt.NextHopPort]
		if !ok {
			return route{}, false
		}
		c.port, c.down = pi, s.portDown(pi)
	}
	return c, true
}

// buildTable sorts routes into lookup order. Within one destination, routes
// are ordered by id so ECMP picks the same member on every host.
func buildTable(rs []route) routeTable {
	var t routeTable
	slices.SortFunc(rs, func(a, b route) int {
		if c := cmp.Compare(b.plen, a.plen); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.dst, b.dst), cmp.Compare(a.id, b.id))
	})
	t.all = make([]route, len(rs))
	copy(t.all, rs)
	for i, r := range t.all {
		if n := len(t.lens); n == 0 || t.lens[n-1] != r.plen {
			t.lens = append(t.lens, r.plen)
			t.masks = append(t.masks, r.dstMask)
			t.byDst = append(t.byDst, map[uint32]span{})
		}
		m := t.byDst[len(t.byDst)-1]
		sp := m[r.dst]
		if sp.n == 0 {
			sp.at = int32(i)
		}
		sp.n++
		m[r.dst] = sp
		t.routes++
	}
	return t
}

// lookup returns the route for (src, dst) entering through port in: the
// longest destination prefix among routes whose source prefix admits src and
// whose ingress port (if any) is in; among those, the lowest
// weight; several routes with that weight share flows by hash (ECMP), and
// ecmp reports that the hash decided.
//
// Routes through a host whose agent is not alive are left out, so traffic
// moves to the live gateways at once — unless no route through a live
// host matches at all: then those routes are looked up as if alive. A lone
// gateway whose agent restarts (its kernel datapath forwarding meanwhile)
// or whose heartbeats are late is still the way out; dropping instead
// would gain nothing.
func (t *routeTable) lookup(in int32, src, dst uint32, hash uint64) (r *route, ecmp bool) {
	if r, ecmp := t.lookupLive(in, src, dst, hash, false); r != nil {
		return r, ecmp
	}
	return t.lookupLive(in, src, dst, hash, true)
}

func (t *routeTable) lookupLive(in int32, src, dst uint32, hash uint64, withDown bool) (r *route, ecmp bool) {
	for i := range t.lens {
		sp := t.byDst[i][dst&t.masks[i]]
		if sp.n == 0 {
			continue
		}
		cands := t.all[sp.at : sp.at+sp.n]
		best, n := -1, 0
		for j := range cands {
			c := &cands[j]
			if src&c.srcMask != c.src || (c.in != none && c.in != in) || c.down && !withDown {
				continue
			}
			switch {
			case best < 0 || c.weight < cands[best].weight:
				best, n = j, 1
			case c.weight == cands[best].weight:
				n++
			}
		}
		if best < 0 {
			continue
		}
		if n == 1 {
			return &cands[best], false
		}
		pick := int(hash % uint64(n))
		w := cands[best].weight
		for j := range cands {
			c := &cands[j]
			if src&c.srcMask != c.src || (c.in != none && c.in != in) || c.down && !withDown || c.weight != w {
				continue
			}
			if pick == 0 {
				return c, true
			}
			pick--
		}
	}
	return nil, false
}

// portDown reports whether port pi is an exterior port on a host whose
// agent is not alive (see WithHostsDown).
func (s *Snapshot) portDown(pi int32) bool {
	p := &s.ports[pi]
	return s.hostDown != nil && p.exterior && p.host != "" && s.hostDown(p.host)
}
