package agent

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// tableMAC reads an agent's learned MAC entry (under the simulation lock).
func tableMAC(a *Agent, bridge string, m topology.MAC) (flow.Tag, bool) {
	a.simMu.Lock()
	defer a.simMu.Unlock()
	e, ok := a.tables.MACs[sim.MACKey{Bridge: flow.TagOf(string(topology.KindBridge), bridge), MAC: m}]
	return e.Port, ok
}

// flowFor returns the cached flow for frame entering on port key, if any.
func flowFor(a *Agent, in uint32, frame []byte) *flowEntry {
	var p packet.Packet
	p.Decode(frame)
	k := keyOf(in, &p, int(p.TotalLen))
	return a.flows.lookup(&k, time.Now().UnixNano())
}

// learnedOf lists the entries host published (for MAC m only, if given).
func learnedOf(t *testing.T, s *nsdb.Store, host string, m ...topology.MAC) []nsdb.LearnedEntry {
	t.Helper()
	es, _, err := s.ListLearned(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []nsdb.LearnedEntry
	for _, e := range es {
		if e.Host == host && (len(m) == 0 || e.Key == net.HardwareAddr(m[0][:]).String()) {
			out = append(out, e)
		}
	}
	return out
}

// TestLearnedMACsAreShared: three exterior ports of one bridge, one on host
// a and two on host b, none with a known MAC (ports an operator bound with
// `canopy agent bind`). A frame from b to an unknown MAC floods, and b
// caches the flood. When the MAC's owner sends from a's port, a learns it
// and publishes it: b's cached flood is invalidated and b's next flow goes
// to a's port alone. When the MAC moves to a port on b, b takes the entry
// over and a withdraws its own. A MAC flapping between two ports is written
// at most once per write interval. An entry nobody uses expires.
func TestLearnedMACsAreShared(t *testing.T) {
	s, ecfg := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	eps := []string{ecfg.ClientURL}
	wa, wb := newWire(), newWire()
	a, idA, _, _ := runAgent(t, eps, "a", netip.MustParseAddr("127.0.0.1"), wa, func(c *Config) { c.MACTTL = 3 * time.Second })
	b, idB, _, _ := runAgent(t, eps, "b", netip.MustParseAddr("127.0.0.1"), wb, func(c *Config) { c.MACTTL = 3 * time.Second })
	waitFor(t, "both hosts registered", func() bool {
		_, ea := s.Get(ctx, topology.KindHost, idA)
		_, eb := s.Get(ctx, topology.KindHost, idB)
		return ea == nil && eb == nil
	})
	br, err := s.Create(ctx, &topology.Bridge{Meta: topology.Meta{Name: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	brID := br.GetMeta().ID
	port := func(host, iface string) *topology.Port {
		o, err := s.Create(ctx, &topology.Port{DeviceKind: topology.KindBridge, DeviceID: brID, HostID: host, Interface: iface})
		if err != nil {
			t.Fatal(err)
		}
		return o.(*topology.Port)
	}
	pA, pB1, pB2 := port(idA, "ext-a"), port(idB, "ext-b1"), port(idB, "ext-b2")
	extA, _ := wa.vm(t, "ext-a")
	extB1, _ := wb.vm(t, "ext-b1")
	extB2, rxB2 := wb.vm(t, "ext-b2")
	waitFor(t, "the ports plugged", func() bool { return len(a.ports.Load().list) == 1 && len(b.ports.Load().list) == 2 })

	x, y := topology.MAC{2, 0x10, 0, 0, 0, 1}, topology.MAC{2, 0x10, 0, 0, 0, 2}
	frame := func(src, dst topology.MAC, sport uint16) []byte {
		return (&packet.Spec{EthSrc: src, EthDst: dst, Src: packet.U32(netip.MustParseAddr("10.9.0.2")), Dst: packet.U32(netip.MustParseAddr("10.9.0.1")),
			Proto: packet.ProtoUDP, SrcPort: sport, DstPort: 7, Payload: []byte("l2")}).Build()
	}
	toX := frame(y, x, 1000)

	// Unknown destination: flooded (b2 gets it), and the flood is cached.
	send(t, extB1, toX)
	expect(t, rxB2, "the flood at b2", func(p *packet.Packet) bool { return p.SrcPort == 1000 })
	var flood *flowEntry
	waitFor(t, "the flood flow cached on b", func() bool { flood = flowFor(b, pB1.TunnelKey, toX); return flood != nil })
	if len(flood.acts) < 2 {
		t.Fatalf("flood flow %v", flood.acts)
	}

	// x speaks on host a: learned there, published, and b's cached flood
	// goes; b's next flow for it goes to a's port only.
	send(t, extA, frame(x, y, 2000))
	waitFor(t, "b to learn x behind a's port", func() bool {
		p, ok := tableMAC(b, brID, x)
		return ok && p == flow.TagOf(string(topology.KindPort), pA.ID)
	})
	if flowFor(b, pB1.TunnelKey, toX) != nil {
		t.Fatal("b's cached flood outlived the learning of its destination")
	}
	send(t, extB1, toX)
	waitFor(t, "b's unicast flow to a's port", func() bool {
		f := flowFor(b, pB1.TunnelKey, toX)
		return f != nil && len(f.acts) == 1 && f.acts[0].Kind == flow.Tunnel && f.acts[0].Host == idA && f.acts[0].Key == pA.TunnelKey
	})
	if es := learnedOf(t, s, idA); len(es) != 1 || es[0].Value != pA.ID || es[0].Device != brID {
		t.Fatalf("a's published entries %+v", es)
	}

	// x moves to b2 (host b): b takes the entry over, a withdraws its own,
	// and a's view follows.
	send(t, extB2, frame(x, y, 3000))
	waitFor(t, "a to see x behind b2", func() bool {
		p, ok := tableMAC(a, brID, x)
		return ok && p == flow.TagOf(string(topology.KindPort), pB2.ID)
	})
	waitFor(t, "a to withdraw its stale entry", func() bool { return len(learnedOf(t, s, idA)) == 0 })
	send(t, extB1, toX)
	waitFor(t, "b's flow for x to follow the move", func() bool {
		f := flowFor(b, pB1.TunnelKey, toX)
		return f != nil && len(f.acts) == 1 && f.acts[0].Kind == flow.Output && f.acts[0].Key == pB2.TunnelKey
	})

	// A flap storm on b: x alternates between b1 and b2. The local table
	// follows every frame; the store sees at most one write per interval.
	before := counter(b.m.learnWrites.WithLabelValues("put"))
	start := time.Now()
	// One frame at a time (each waits for its simulation), so every frame
	// is a real move.
	const moves = 60
	for i := range moves {
		src, in := extB1, pB1.TunnelKey
		if i%2 == 1 {
			src, in = extB2, pB2.TunnelKey
		}
		f := frame(x, y, uint16(4000+i))
		send(t, src, f)
		for deadline := time.Now().Add(10 * time.Second); flowFor(b, in, f) == nil; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("storm frame %d never simulated", i)
			}
		}
	}
	flowed := func(in uint32, f []byte) func() bool { return func() bool { return flowFor(b, in, f) != nil } }
	// x settles on b2.
	send(t, extB2, frame(x, y, 5000))
	waitFor(t, "the settling frame simulated", flowed(pB2.TunnelKey, frame(x, y, 5000)))
	if p, _ := tableMAC(b, brID, x); p != flow.TagOf(string(topology.KindPort), pB2.ID) {
		t.Fatal("b's table did not follow x to b2")
	}
	waitFor(t, "the store to settle on b2", func() bool {
		es := learnedOf(t, s, idB, x)
		return len(es) == 1 && es[0].Value == pB2.ID
	})
	writes := counter(b.m.learnWrites.WithLabelValues("put")) - before
	if bound := time.Since(start)/DefaultLearnWriteInterval + 2; writes > float64(bound) {
		t.Fatalf("%v writes for %d moves in %v: not bounded by the write interval", writes, moves, time.Since(start))
	}
	if counter(b.m.learnCoalesced) == 0 {
		t.Error("no write was coalesced during the flap storm")
	}
	t.Logf("flap storm: %d moves, %v store writes in %v", moves, writes, time.Since(start))

	// Nobody speaks as x any more: after its TTL the entry expires, on
	// every host.
	waitFor(t, "x to expire everywhere", func() bool {
		_, inA := tableMAC(a, brID, x)
		_, inB := tableMAC(b, brID, x)
		return !inA && !inB && len(learnedOf(t, s, idB)) == 0
	})
}

// TestParkedUntilAnotherHostLearns: a VM on host b sends to the Internet
// through an uplink on host a; the gateway's MAC is known nowhere. b parks
// the packet and its ARP request leaves through a's uplink; the reply is
// learned on a, and b's parked packet is resumed when the entry reaches it
// through the store.
func TestParkedUntilAnotherHostLearns(t *testing.T) {
	s, ecfg := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	eps := []string{ecfg.ClientURL}
	wa, wb := newWire(), newWire()
	a, idA, _, _ := runAgent(t, eps, "a", netip.MustParseAddr("127.0.0.1"), wa, nil)
	b, idB, _, _ := runAgent(t, eps, "b", netip.MustParseAddr("127.0.0.1"), wb, nil)
	waitFor(t, "both hosts registered", func() bool {
		_, ea := s.Get(ctx, topology.KindHost, idA)
		_, eb := s.Get(ctx, topology.KindHost, idB)
		return ea == nil && eb == nil
	})
	create := func(o topology.Object) topology.Object {
		t.Helper()
		o, err := s.Create(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	rMAC, upMAC := topology.MAC{2, 0xaa, 0, 0, 0, 1}, topology.MAC{2, 0xaa, 0, 0, 0, 2}
	gwMAC, vmMAC := topology.MAC{2, 0xee, 0, 0, 0, 0xfe}, topology.MAC{2, 0, 0, 0, 1, 5}
	upIP, gwIP, vmIP := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.254"), netip.MustParseAddr("10.0.1.5")
	r := create(&topology.Router{Meta: topology.Meta{Name: "r"}})
	rp := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: rMAC, Address: netip.MustParsePrefix("10.0.1.1/24")})
	up := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: upMAC,
		Address: netip.PrefixFrom(upIP, 24), HostID: idA, Interface: "uplink"})
	create(&topology.Route{RouterID: r.GetMeta().ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("0.0.0.0/0"),
		NextHopPort: up.GetMeta().ID, NextHopGateway: gwIP})
	br := create(&topology.Bridge{Meta: topology.Meta{Name: "b"}})
	bp := create(&topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID})
	if err := s.Link(ctx, bp.GetMeta().ID, rp.GetMeta().ID); err != nil {
		t.Fatal(err)
	}
	create(&topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID, MAC: vmMAC,
		IPs: []netip.Addr{vmIP}, HostID: idB, Interface: "vm1"})
	vm1, _ := wb.vm(t, "vm1")
	upVM, _ := wa.vm(t, "uplink")
	waitFor(t, "the ports plugged", func() bool { return len(a.ports.Load().list) == 1 && len(b.ports.Load().list) == 1 })

	send(t, vm1, (&packet.Spec{EthSrc: vmMAC, EthDst: rMAC, Src: packet.U32(vmIP), Dst: packet.U32(netip.MustParseAddr("198.51.100.7")),
		Proto: packet.ProtoUDP, SrcPort: 4000, DstPort: 53, TTL: 64, Payload: []byte("parked")}).Build())
	waitFor(t, "the packet parked on b", func() bool {
		b.miss.run.Lock()
		defer b.miss.run.Unlock()
		return b.parked.n == 1
	})
	// The gateway answers on a's uplink.
	send(t, upVM, packet.BuildARP(packet.ARPReply, gwMAC, packet.U32(gwIP), upMAC, packet.U32(upIP)))
	waitFor(t, "b to resume it", func() bool { return parkedCount(t, b, "resumed") == 1 })
	if es := learnedOf(t, s, idA); len(es) != 1 || es[0].Kind != topology.KindRouter || es[0].Key != gwIP.String() {
		t.Fatalf("a's published entries %+v", es)
	}
	if parkedCount(t, b, "expired") != 0 {
		t.Error("a parked packet expired")
	}
}
