package agent

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
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
func flowFor(a *Agent, in uint32, frame []byte) *flow.Entry {
	var p packet.Packet
	p.Decode(frame)
	k := flow.KeyOf(in, &p, int(p.TotalLen))
	return a.flows.Lookup(&k, time.Now().UnixNano())
}

// cachedFlow sends f on vm until ag has cached its flow (entering on port
// key in) and cond, if not nil, accepts it. A flow simulated while the view
// changed is not cached, and the next packet is simulated again: waiting
// for a single packet's flow could wait for ever.
func cachedFlow(t *testing.T, ag *Agent, vm *datapathfake.Port, in uint32, f []byte, cond func(*flow.Entry) bool) *flow.Entry {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if e := flowFor(ag, in, f); e != nil && (cond == nil || cond(e)) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cached flow (as wanted) for %x after 15 s", f[:min(len(f), 42)])
		}
		send(t, vm, f)
	}
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
	flood := cachedFlow(t, b, extB1, pB1.TunnelKey, toX, nil)
	if len(flood.Actions) < 2 {
		t.Fatalf("flood flow %v", flood.Actions)
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
	cachedFlow(t, b, extB1, pB1.TunnelKey, toX, func(f *flow.Entry) bool {
		return len(f.Actions) == 1 && f.Actions[0].Kind == flow.Tunnel && f.Actions[0].Host == idA && f.Actions[0].Key == pA.TunnelKey
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
	cachedFlow(t, b, extB1, pB1.TunnelKey, toX, func(f *flow.Entry) bool {
		return len(f.Actions) == 1 && f.Actions[0].Kind == flow.Output && f.Actions[0].Key == pB2.TunnelKey
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
		cachedFlow(t, b, src, in, frame(x, y, uint16(4000+i)), nil)
	}
	// x settles on b2.
	cachedFlow(t, b, extB2, pB2.TunnelKey, frame(x, y, 5000), nil)
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

// TestGatewayDownRoutesAround: an edge with two uplinks on two gateway
// hosts shares the default route between them (ECMP). When one gateway's
// agent stops (its liveness gone), the VM's host stops using that uplink:
// the flows through it are invalidated and every new flow leaves through
// the other gateway.
func TestGatewayDownRoutesAround(t *testing.T) {
	s, ecfg := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	eps := []string{ecfg.ClientURL}
	wa, w1, w2 := newWire(), newWire(), newWire()
	a, idA, _, _ := runAgent(t, eps, "a", netip.MustParseAddr("127.0.0.1"), wa, nil)
	_, idG1, stopG1, doneG1 := runAgent(t, eps, "g1", netip.MustParseAddr("127.0.0.1"), w1, nil)
	_, idG2, _, _ := runAgent(t, eps, "g2", netip.MustParseAddr("127.0.0.1"), w2, nil)
	waitFor(t, "the hosts registered", func() bool {
		for _, id := range []string{idA, idG1, idG2} {
			if _, err := s.Get(ctx, topology.KindHost, id); err != nil {
				return false
			}
		}
		return true
	})
	create := func(o topology.Object) topology.Object {
		t.Helper()
		o, err := s.Create(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	rMAC, vmMAC := topology.MAC{2, 0xaa, 0, 0, 0, 1}, topology.MAC{2, 0, 0, 0, 1, 5}
	vmIP := netip.MustParseAddr("10.0.1.5")
	r := create(&topology.Router{Meta: topology.Meta{Name: "edge"}, ARPEntries: []topology.ARPEntry{
		{IP: netip.MustParseAddr("192.0.2.1"), MAC: topology.MAC{2, 0xee, 0, 0, 0, 1}},
		{IP: netip.MustParseAddr("198.51.100.1"), MAC: topology.MAC{2, 0xee, 0, 0, 0, 2}}}})
	rp := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: rMAC, Address: netip.MustParsePrefix("10.0.1.1/24")})
	up1 := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: topology.MAC{2, 0xaa, 0, 0, 0, 2},
		Address: netip.MustParsePrefix("192.0.2.2/24"), HostID: idG1, Interface: "up1"})
	up2 := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: topology.MAC{2, 0xaa, 0, 0, 0, 3},
		Address: netip.MustParsePrefix("198.51.100.2/24"), HostID: idG2, Interface: "up2"})
	for _, rt := range []struct {
		port topology.Object
		gw   string
	}{{up1, "192.0.2.1"}, {up2, "198.51.100.1"}} {
		create(&topology.Route{RouterID: r.GetMeta().ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("0.0.0.0/0"),
			NextHopPort: rt.port.GetMeta().ID, NextHopGateway: netip.MustParseAddr(rt.gw)})
	}
	br := create(&topology.Bridge{Meta: topology.Meta{Name: "b"}})
	bp := create(&topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID})
	if err := s.Link(ctx, bp.GetMeta().ID, rp.GetMeta().ID); err != nil {
		t.Fatal(err)
	}
	vp := create(&topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID, MAC: vmMAC,
		IPs: []netip.Addr{vmIP}, HostID: idA, Interface: "vm1"}).(*topology.Port)
	vm1, _ := wa.vm(t, "vm1")
	waitFor(t, "the VM's port published", func() bool { return len(a.ports.Load().list) == 1 })

	frame := func(sport uint16) []byte {
		return (&packet.Spec{EthSrc: vmMAC, EthDst: rMAC, Src: packet.U32(vmIP), Dst: packet.U32(netip.MustParseAddr("8.8.8.8")),
			Proto: packet.ProtoUDP, SrcPort: sport, DstPort: 53, TTL: 64, Payload: []byte("out")}).Build()
	}
	// via sends flows from sports and returns which gateway host each left for.
	via := func(from uint16) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for sp := from; sp < from+32; sp++ {
			e := cachedFlow(t, a, vm1, vp.TunnelKey, frame(sp), nil)
			for _, act := range e.Actions {
				if act.Kind == flow.Tunnel {
					seen[act.Host]++
				}
			}
		}
		return seen
	}
	if seen := via(1000); seen[idG1] == 0 || seen[idG2] == 0 {
		t.Fatalf("both gateways up: flows went to %v, want both", seen)
	}
	stopG1()
	<-doneG1
	doneG1 <- nil // for the cleanup
	waitFor(t, "the flows through g1 invalidated", func() bool {
		for sp := uint16(1000); sp < 1032; sp++ {
			if e := flowFor(a, vp.TunnelKey, frame(sp)); e != nil && len(e.Actions) > 0 && e.Actions[len(e.Actions)-1].Host == idG1 {
				return false
			}
		}
		return true
	})
	if seen := via(2000); seen[idG1] != 0 || seen[idG2] != 32 {
		t.Fatalf("g1 down: flows went to %v, want all to g2", seen)
	}
}

// TestAdoptOwnLearned: a new agent takes over the entries a previous agent
// of its host left in the store (written again under its own lease), but
// not one another host has published since (the MAC moved), nor another
// host's, nor one it already owns.
func TestAdoptOwnLearned(t *testing.T) {
	a := &Agent{hostID: "me", log: slog.New(slog.DiscardHandler), learn: newLearning(100, time.Second)}
	l := a.learn
	mine := lkey{arp: true, dev: "edge", ip: 1}
	moved := lkey{dev: "br", mac: [6]byte{2, 0, 0, 0, 0, 1}}
	theirs := lkey{dev: "br", mac: [6]byte{2, 0, 0, 0, 0, 2}}
	owned := lkey{arp: true, dev: "edge", ip: 2}
	l.store = map[lkey]map[string]published{
		mine:   {"me": {value: "02:00:00:00:00:09", rev: 5}},
		moved:  {"me": {value: "p1", rev: 3}, "other": {value: "p2", rev: 7}},
		theirs: {"other": {value: "p3", rev: 4}},
		owned:  {"me": {value: "02:00:00:00:00:08", rev: 6}},
	}
	l.owned[owned] = &ownedEntry{value: "02:00:00:00:00:08", seen: 1}
	a.adoptOwn(42)
	if o := l.owned[mine]; o == nil || o.value != "02:00:00:00:00:09" || o.seen != 42 {
		t.Errorf("its own entry not adopted: %+v", o)
	}
	if l.owned[moved] != nil || l.owned[theirs] != nil {
		t.Errorf("adopted an entry another host holds since, or another host's: %v", l.owned)
	}
	if o := l.owned[owned]; o.seen != 1 {
		t.Errorf("an entry already owned was adopted again: %+v", o)
	}
	if len(l.pending) != 1 || l.pending[mine] != (writeOp{value: "02:00:00:00:00:09"}) {
		t.Errorf("writes queued %v, want the adopted entry's alone", l.pending)
	}
}
