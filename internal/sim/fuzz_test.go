package sim

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// byteSource turns fuzz input into choices; exhausted input reads as zeros.
type byteSource struct {
	b []byte
}

func (s *byteSource) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	v := s.b[0]
	s.b = s.b[1:]
	return v
}

func (s *byteSource) n(k int) int { return int(s.next()) % k }

// randomTopology builds a small topology from the input: up to 3 routers and
// 3 bridges, ports linked at random (loops included), routes, and chains
// whose rules jump at random (cycles included) and NAT.
func randomTopology(s *byteSource) (*topology.Index, []string) {
	x := topology.NewIndex()
	l := &lab{x}
	nr, nb := 1+s.n(3), 1+s.n(3)
	var devs []string
	for i := 0; i < nr; i++ {
		devs = append(devs, fmt.Sprintf("r%d", i))
	}
	for i := 0; i < nb; i++ {
		devs = append(devs, fmt.Sprintf("b%d", i))
	}
	// Chains first, so devices and ports can name them.
	nc := s.n(4)
	chainID := func() string {
		if nc == 0 || s.n(3) == 0 {
			return ""
		}
		return fmt.Sprintf("c%d", s.n(nc))
	}
	addrs := []string{"10.0.0.1", "10.0.0.2", "10.0.1.1", "192.0.2.1", "8.8.8.8", "10.0.0.255"}
	for i := 0; i < nc; i++ {
		var rules []topology.Rule
		for j := 0; j < s.n(5); j++ {
			r := topology.Rule{ID: fmt.Sprintf("c%d-%d", i, j), Action: topology.Actions[s.n(len(topology.Actions))]}
			if s.n(2) == 0 {
				r.NwDst = netip.MustParsePrefix(addrs[s.n(len(addrs))] + "/24")
				r.InvNwDst = s.n(2) == 0
			}
			if s.n(3) == 0 {
				r.MatchReturnFlow = true
			}
			if s.n(3) == 0 {
				r.TpDst = &topology.PortRange{Start: uint16(s.n(100)), End: uint16(s.n(100) + 100)}
			}
			switch r.Action {
			case topology.ActionJump:
				r.JumpChain = fmt.Sprintf("c%d", s.n(nc))
			case topology.ActionSNAT, topology.ActionDNAT:
				a := netip.MustParseAddr(addrs[s.n(len(addrs))])
				t := topology.NATTarget{AddrFrom: a, AddrTo: a}
				if s.n(2) == 0 {
					t.PortFrom, t.PortTo = 1000, 1000+uint16(s.n(4))
				}
				r.NATTargets = []topology.NATTarget{t}
			}
			rules = append(rules, r)
		}
		l.chain(fmt.Sprintf("c%d", i), rules...)
	}
	for _, d := range devs {
		if d[0] == 'r' {
			x.Put(&topology.Router{Meta: topology.Meta{ID: d}, InFilter: chainID(), OutFilter: chainID()})
		} else {
			x.Put(&topology.Bridge{Meta: topology.Meta{ID: d}, InFilter: chainID(), OutFilter: chainID()})
		}
	}
	np := 2 + s.n(8)
	var ports []string
	for i := 0; i < np; i++ {
		id := fmt.Sprintf("p%d", i)
		dev := devs[s.n(len(devs))]
		l.port(id, dev, func(p *topology.Port) {
			p.MAC = topology.MAC{2, 0, 0, 0, 0, byte(s.n(6))}
			if dev[0] == 'r' {
				p.Address = netip.MustParsePrefix(fmt.Sprintf("10.0.%d.1/24", s.n(3)))
			} else if s.n(2) == 0 {
				p.IPs = []netip.Addr{netip.MustParseAddr(addrs[s.n(len(addrs))])}
			}
			p.MTU = 576 + s.n(1000)
			p.InFilter, p.OutFilter = chainID(), chainID()
			p.AdminDown = s.n(8) == 0
		})
		ports = append(ports, id)
	}
	// Link or bind every port.
	for i, id := range ports {
		p := x.Get(topology.KindPort, id).(*topology.Port)
		if p.PeerID != "" {
			continue
		}
		if j := s.n(len(ports)); s.n(2) == 0 && j != i && x.Get(topology.KindPort, ports[j]).(*topology.Port).PeerID == "" {
			q := x.Get(topology.KindPort, ports[j]).(*topology.Port)
			p.PeerID, q.PeerID = q.ID, p.ID
			x.Put(p)
			x.Put(q)
			continue
		}
		p.HostID, p.Interface, p.TunnelKey = fmt.Sprintf("h%d", s.n(2)), "if"+id, uint32(i+1)
		x.Put(p)
	}
	for i, d := range devs[:nr] {
		for j := 0; j < s.n(4); j++ {
			rt := &topology.Route{Meta: topology.Meta{ID: fmt.Sprintf("rt%d-%d", i, j)}, RouterID: d,
				Type:      []topology.RouteType{topology.RouteNormal, topology.RouteNormal, topology.RouteBlackhole, topology.RouteReject, topology.RouteLocal}[s.n(5)],
				DstPrefix: netip.MustParsePrefix([]string{"0.0.0.0/0", "10.0.0.0/8", "8.8.8.0/24", "10.0.1.0/24"}[s.n(4)]),
				Weight:    s.n(3) * 50}
			if rt.Type == topology.RouteNormal {
				rt.NextHopPort = ports[s.n(len(ports))]
				if s.n(2) == 0 {
					rt.NextHopGateway = netip.MustParseAddr(addrs[s.n(len(addrs))])
				}
			}
			x.Put(rt)
		}
	}
	return x, ports
}

// FuzzSimulate runs packets through random small topologies: no panic, no
// endless loop, and results that make sense.
func FuzzSimulate(f *testing.F) {
	f.Add([]byte{}, udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1, 2))
	f.Add([]byte{2, 2, 3, 1, 0, 5, 9, 1, 4, 7, 7, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 0, 1}, tcp(mVM1, topology.MAC{2, 0, 0, 0, 0, 1}, "10.0.0.11", "8.8.8.8", 1, 80))
	f.Add([]byte{1, 1, 3, 3, 2, 4, 0, 1, 2, 0, 3, 0, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9}, ping(mVM1, topology.MAC{2, 0, 0, 0, 0, 2}, "10.0.0.2", "10.0.0.1", 3))
	f.Add([]byte{0, 2, 1, 5, 5, 5, 5}, packet.BuildARP(packet.ARPRequest, mVM1, a4("10.0.0.2"), [6]byte{}, a4("10.0.0.1")))
	f.Fuzz(func(t *testing.T, topo []byte, frame []byte) {
		s := &byteSource{b: topo}
		x, ports := randomTopology(s)
		snap := NewSnapshot(x)
		st := flow.NewState()
		opts := Options{Now: 1, LocalHost: "h0", Tables: NewTables(), Trace: len(frame)%2 == 0}
		var res Result
		for round := 0; round < 3; round++ {
			in := ports[(int(s.next())+round)%len(ports)]
			var p packet.Packet
			p.Decode(frame)
			Simulate(snap, st, in, frame, &p, &opts, &res)
			opts.Tables.Learn(res.Learned, 1<<62)
			if (res.Verdict == VerdictForward) != (len(res.Outputs) > 0 || res.Uncacheable && len(res.Generated) > 0) {
				t.Fatalf("verdict %s with outputs %v", res.Verdict, outputs(&res))
			}
			for _, o := range res.Outputs {
				pt := x.Get(topology.KindPort, o.PortID).(*topology.Port)
				if !pt.Exterior() || pt.HostID != o.Host {
					t.Fatalf("output to %s which is not exterior on %s", o.PortID, o.Host)
				}
			}
			nout := 0
			for _, a := range res.Actions {
				if a.Kind == flow.Output || a.Kind == flow.Tunnel {
					nout++
				}
			}
			if nout != len(res.Outputs) {
				t.Fatalf("%d output actions for %d outputs", nout, len(res.Outputs))
			}
			opts.Now += 1e9
		}
	})
}
