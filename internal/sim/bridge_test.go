package sim

import (
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func TestBridgeKnownUnicast(t *testing.T) {
	r := newLab().runner(t)
	res := r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1000, 53))
	r.expect(res, VerdictForward, "vm2")
	if len(res.Actions) != 1 || res.Actions[0] != (flow.Action{Kind: flow.Tunnel, Key: 12, Host: "h2"}) {
		t.Errorf("actions %v", res.Actions)
	}
	if res.Outputs[0].Host != "h2" {
		t.Errorf("host %q", res.Outputs[0].Host)
	}
	if res.Fields&(FieldIPSrc|FieldSrcPort) != 0 || res.Fields&(FieldEthDst|FieldInPort) != FieldEthDst|FieldInPort {
		t.Errorf("fields %v", res.Fields.Names())
	}
	for _, tag := range []flow.Tag{flow.TagOf("port", "vm1"), flow.TagOf("bridge", "b1"), flow.TagOf("port", "vm2")} {
		if !containsTag(res.Tags, tag) {
			t.Errorf("missing tag %x", tag)
		}
	}
	if len(res.Learned) != 0 {
		t.Errorf("learned a seeded MAC: %+v", res.Learned)
	}
}

func containsTag(ts []flow.Tag, t flow.Tag) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

func TestBridgeFloodAndLearn(t *testing.T) {
	r := newLab().runner(t)
	unknown := mustMAC("02:aa:00:00:00:01")
	ext := mustMAC("02:bb:00:00:00:01")
	// Unknown unicast from the L2 uplink floods everywhere but back, and the
	// uplink host's MAC is learned.
	res := r.send("l2up", udp(ext, unknown, "10.0.0.50", "10.0.0.60", 1, 2))
	r.expect(res, VerdictForward, "vm1", "vm2")
	// b1r leads to the router, which drops a frame not for its MAC.
	if len(res.Learned) != 1 || res.Learned[0].MAC != ext || res.Learned[0].PortID != "l2up" {
		t.Fatalf("learned %+v", res.Learned)
	}
	r.tab.Learn(res.Learned, 1<<62)
	// Now traffic to ext goes to the uplink only.
	res = r.send("vm1", udp(mVM1, ext, "10.0.0.11", "10.0.0.50", 1, 2))
	r.expect(res, VerdictForward, "l2up")
	// The MAC moves to vm2's port: learned again, with the new port.
	res = r.send("vm2", udp(ext, mVM1, "10.0.0.50", "10.0.0.11", 1, 2))
	if len(res.Learned) != 1 || res.Learned[0].PortID != "vm2" {
		t.Fatalf("move not learned: %+v", res.Learned)
	}
	r.tab.Learn(res.Learned, 1<<62)
	res = r.send("vm1", udp(mVM1, ext, "10.0.0.11", "10.0.0.50", 1, 2))
	r.expect(res, VerdictForward, "vm2")
	// Broadcast floods too, never out of the ingress port.
	res = r.send("vm2", udp(mVM2, topology.Broadcast, "10.0.0.12", "10.0.0.255", 1, 2))
	r.expect(res, VerdictForward, "l2up", "vm1")
	// Destination behind the ingress port: dropped.
	res = r.send("vm1", udp(mVM2, mVM1, "10.0.0.12", "10.0.0.11", 1, 2))
	r.expect(res, VerdictDrop)
}

func TestBridgeMulticastSourceDropped(t *testing.T) {
	r := newLab().runner(t)
	res := r.send("vm1", udp(mustMAC("01:00:5e:00:00:01"), mVM2, "10.0.0.11", "10.0.0.12", 1, 2))
	r.expect(res, VerdictDrop)
	if res.Reason != "multicast source MAC" {
		t.Errorf("reason %q", res.Reason)
	}
}

func TestBridgeARPSuppression(t *testing.T) {
	r := newLab().runner(t)
	// vm1 asks for vm2: answered from the IP→MAC table, not flooded.
	res := r.send("vm1", packet.BuildARP(packet.ARPRequest, mVM1, a4("10.0.0.11"), [6]byte{}, a4("10.0.0.12")))
	r.expect(res, VerdictConsumed)
	if !eq(genPorts(res), []string{"vm1"}) {
		t.Fatalf("generated to %v", genPorts(res))
	}
	g := decodeGen(res.Generated[0])
	if g.ARPOp != packet.ARPReply || g.ARPSHA != mVM2 || g.ARPSPA != a4("10.0.0.12") || g.EthDst != mVM1 || g.ARPTPA != a4("10.0.0.11") {
		t.Errorf("reply %+v", g)
	}
	// The gateway's address is known too (the router port behind b1r).
	res = r.send("vm1", packet.BuildARP(packet.ARPRequest, mVM1, a4("10.0.0.11"), [6]byte{}, a4("10.0.0.1")))
	if g := decodeGen(res.Generated[0]); res.Verdict != VerdictConsumed || g.ARPSHA != mR1 {
		t.Errorf("gateway ARP: %s %+v", res.Verdict, g)
	}
	// Unknown address: flooded (the router port ignores it: not its address).
	res = r.send("vm1", packet.BuildARP(packet.ARPRequest, mVM1, a4("10.0.0.11"), [6]byte{}, a4("10.0.0.99")))
	r.expect(res, VerdictForward, "l2up", "vm2")
}

func TestBridgeChainsAndAdmin(t *testing.T) {
	l := newLab()
	l.chain("deny-53", topology.Rule{Condition: topology.Condition{NwProto: u8(packet.ProtoUDP), TpDst: &topology.PortRange{Start: 53, End: 53}}, Action: topology.ActionDrop})
	set(l, topology.KindBridge, "b1", func(b *topology.Bridge) { b.InFilter = "deny-53" })
	r := l.runner(t)
	r.expect(r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1, 53)), VerdictDrop)
	r.expect(r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1, 54)), VerdictForward, "vm2")

	set(l, topology.KindBridge, "b1", func(b *topology.Bridge) { b.InFilter = ""; b.OutFilter = "deny-53" })
	r = l.runner(t)
	r.expect(r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1, 53)), VerdictDrop)

	set(l, topology.KindBridge, "b1", func(b *topology.Bridge) { b.OutFilter = "" })
	set(l, topology.KindPort, "vm2", func(p *topology.Port) { p.AdminDown = true })
	r = l.runner(t)
	res := r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1, 53))
	r.expect(res, VerdictDrop)
	if res.Reason != "egress port down" {
		t.Errorf("reason %q", res.Reason)
	}
	r.expect(r.send("vm2", udp(mVM2, mVM1, "10.0.0.12", "10.0.0.11", 1, 53)), VerdictDrop)
	set(l, topology.KindPort, "vm2", func(p *topology.Port) { p.AdminDown = false })
	set(l, topology.KindBridge, "b1", func(b *topology.Bridge) { b.AdminDown = true })
	r = l.runner(t)
	r.expect(r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1, 53)), VerdictDrop)
}

func TestLoopGuard(t *testing.T) {
	// Two bridges linked to each other twice form a loop for floods.
	x := topology.NewIndex()
	l := &lab{x}
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "ba"}})
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "bb"}})
	l.port("in", "ba", func(p *topology.Port) { p.HostID = "h1" })
	l.port("a1", "ba", func(p *topology.Port) { p.PeerID = "b1" })
	l.port("a2", "ba", func(p *topology.Port) { p.PeerID = "b2" })
	l.port("b1", "bb", func(p *topology.Port) { p.PeerID = "a1" })
	l.port("b2", "bb", func(p *topology.Port) { p.PeerID = "a2" })
	r := l.runner(t)
	r.opts.Trace = false
	res := r.send("in", udp(mVM1, topology.Broadcast, "1.1.1.1", "2.2.2.2", 1, 2))
	if res.Verdict != VerdictDrop || res.Reason != "too many devices traversed" {
		t.Fatalf("verdict %s %q", res.Verdict, res.Reason)
	}
}

func TestBridgingAllocatesNothing(t *testing.T) {
	r := newLab().runner(t)
	r.opts.Trace = false
	frame := udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1000, 53)
	var p packet.Packet
	r.opts.Tables = r.tab
	Simulate(r.snap, r.st, "vm1", frame, &p, &r.opts, &r.res) // warm the result's slices
	n := testing.AllocsPerRun(1000, func() {
		p.Decode(frame)
		Simulate(r.snap, r.st, "vm1", frame, &p, &r.opts, &r.res)
	})
	if n != 0 {
		t.Fatalf("known-MAC bridging allocates %v times per packet", n)
	}
	if r.res.Verdict != VerdictForward || len(r.res.Trace) != 0 {
		t.Fatalf("verdict %s, %d trace steps without tracing", r.res.Verdict, len(r.res.Trace))
	}
}
