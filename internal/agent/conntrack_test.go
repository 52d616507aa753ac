package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// kernelStandIn is a flow.Mirror standing for the kernel's flow map: it
// holds each flow's last-used time, which the test moves as the kernel
// would while it forwards the flow's packets without the agent.
type kernelStandIn struct {
	now  int64
	used map[flow.Key]int64
}

func (m *kernelStandIn) Put(e *flow.Entry)  { m.used[e.Key] = m.now }
func (m *kernelStandIn) Delete(k *flow.Key) { delete(m.used, *k) }
func (m *kernelStandIn) DeleteDrops()       {}
func (m *kernelStandIn) Clear()             { clear(m.used) }
func (m *kernelStandIn) Idle(k *flow.Key) (int64, bool) {
	u, ok := m.used[*k]
	return m.now - u, ok
}

// TestKernelConnectionExpiry: a connection whose flows only the kernel
// forwards (no packet of it simulated again) lives on past the
// connection-tracking TTL while the kernel uses its flows, and expires
// once they idle: its reply, simulated again after a full invalidation (a
// rule change), passes the stateful chain while the connection is busy and
// is dropped once it idled out.
func TestKernelConnectionExpiry(t *testing.T) {
	const flowTTL, connTTL = time.Second, 3 * time.Second
	a, err := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1"),
		FlowTTL: flowTTL, ConnTTL: connTTL})
	if err != nil {
		t.Fatal(err)
	}
	a.hostID = "h1"
	x := topology.NewIndex()
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "br"}})
	// p1's VM opens connections; only their replies reach it.
	x.Put(&topology.Chain{Meta: topology.Meta{ID: "out"}, Rules: []topology.Rule{
		{ID: "r1", Condition: topology.Condition{MatchForwardFlow: true}, Action: topology.ActionAccept}}})
	x.Put(&topology.Chain{Meta: topology.Meta{ID: "in"}, Rules: []topology.Rule{
		{ID: "r2", Condition: topology.Condition{MatchReturnFlow: true}, Action: topology.ActionAccept},
		{ID: "r3", Action: topology.ActionDrop}}})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "p1"}, DeviceKind: topology.KindBridge, DeviceID: "br", HostID: "h1", Interface: "a",
		MAC: topology.MAC{2, 0, 0, 0, 0, 1}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, TunnelKey: 1,
		InFilter: "out", OutFilter: "in"})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "p2"}, DeviceKind: topology.KindBridge, DeviceID: "br", HostID: "h1", Interface: "b",
		MAC: topology.MAC{2, 0, 0, 0, 0, 2}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, TunnelKey: 2})
	a.view.Store(&view{snap: sim.NewSnapshot(x), gen: 1})
	a.flows.Invalidate(nil, true, 1)
	k := &kernelStandIn{now: time.Now().UnixNano(), used: map[flow.Key]int64{}}
	a.flows.SetMirror(k, int64(flowTTL))
	pa, _ := datapathfake.Pair("a", "a-vm")
	pb, _ := datapathfake.Pair("b", "b-vm")
	p1, p2 := a.newVport("p1", "a", 1, pa), a.newVport("p2", "b", 2, pb)
	a.bound = map[string]*vport{"p1": p1, "p2": p2}
	a.publishPorts()

	frame := func(src, dst uint8, sport, dport uint16) []byte {
		sp := packet.Spec{EthSrc: [6]byte{2, 0, 0, 0, 0, src}, EthDst: [6]byte{2, 0, 0, 0, 0, dst},
			Src: 0x0a000000 | uint32(src), Dst: 0x0a000000 | uint32(dst), Proto: packet.ProtoTCP,
			SrcPort: sport, DstPort: dport, TCPFlags: 0x10}
		return sp.Build()
	}
	var pkt packet.Packet
	var res sim.Result
	simulate := func(vp *vport, f []byte) sim.Verdict {
		it := &missItem{buf: f, n: len(f)}
		a.simulate(vp, it, &pkt, &res, nil)
		return res.Verdict
	}
	// Two connections from p1's VM: one busy, one idle.
	busyOut, busyBack := frame(1, 2, 40000, 80), frame(2, 1, 80, 40000)
	idleOut, idleBack := frame(1, 2, 40001, 80), frame(2, 1, 80, 40001)
	for _, f := range [][]byte{busyOut, idleOut} {
		if v := simulate(p1, f); v != sim.VerdictForward {
			t.Fatalf("forward packet: %s", v)
		}
	}
	for _, f := range [][]byte{busyBack, idleBack} {
		if v := simulate(p2, f); v != sim.VerdictForward {
			t.Fatalf("reply of an open connection: %s", v)
		}
	}
	if a.state.Conns() != 2 || len(k.used) != 4 {
		t.Fatalf("%d connections, %d kernel flows; want 2, 4", a.state.Conns(), len(k.used))
	}
	keyOf := func(in uint32, f []byte) flow.Key {
		var p packet.Packet
		p.Decode(f)
		return flow.KeyOf(in, &p, int(p.TotalLen))
	}
	busy := []flow.Key{keyOf(1, busyOut), keyOf(2, busyBack)}

	// Four connection TTLs of kernel-only traffic on the busy connection,
	// the agent's housekeeping every second.
	var uses []flow.Use
	for range 4 * int(connTTL/time.Second) {
		k.now += int64(time.Second)
		for _, fk := range busy {
			if _, ok := k.used[fk]; ok {
				k.used[fk] = k.now
			}
		}
		uses = a.expireFlowsAndState(k.now, uses)
	}
	if a.state.Conns() != 1 {
		t.Fatalf("%d connections tracked after 4 TTLs; want the busy one only", a.state.Conns())
	}
	for _, fk := range busy {
		if _, ok := k.used[fk]; !ok {
			t.Fatalf("busy flow %+v left the kernel", fk)
		}
	}
	// A rule change removes every flow: the replies are simulated again.
	a.flows.Invalidate(nil, true, 1)
	if v := simulate(p2, busyBack); v != sim.VerdictForward {
		t.Errorf("reply of the busy connection after 4 TTLs: %s (%s), want forward", v, res.Reason)
	}
	if v := simulate(p2, idleBack); v != sim.VerdictDrop {
		t.Errorf("reply of the idle connection: %s, want drop (its connection expired)", v)
	}

	// The busy connection goes idle too: gone within a flow life and a
	// connection TTL.
	for range int((flowTTL+connTTL)/time.Second) + 2 {
		k.now += int64(time.Second)
		uses = a.expireFlowsAndState(k.now, uses)
	}
	if a.state.Conns() != 0 {
		t.Errorf("%d connections tracked after they idled past the TTL", a.state.Conns())
	}
}
