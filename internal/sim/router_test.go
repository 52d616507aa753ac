package sim

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func TestRouterForwardsBetweenSubnets(t *testing.T) {
	r := newLab().runner(t)
	frame := udp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 5000, 6000)
	res := r.send("vm1", frame)
	r.expect(res, VerdictForward, "vm3")
	want := []flow.Action{
		{Kind: flow.SetEthSrc, MAC: mR2},
		{Kind: flow.SetEthDst, MAC: mVM3},
		{Kind: flow.DecTTL, Port: 1},
		{Kind: flow.Tunnel, Key: 13, Host: "h2"},
	}
	if !eq(res.Actions, want) {
		t.Fatalf("actions %v\nwant %v", res.Actions, want)
	}
	got := deliver(t, frame, res)["vm3"]
	if got.TTL != packet.DefaultTTL-1 || got.Src != a4("10.0.0.11") {
		t.Errorf("delivered %+v", got)
	}
	if res.Fields&(FieldIPDst|FieldEthDst|FieldTTL) != FieldIPDst|FieldEthDst|FieldTTL {
		t.Errorf("fields %v", res.Fields.Names())
	}
	// Out of the uplink: next hop from the static ARP entry.
	res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 5000, 53))
	r.expect(res, VerdictForward, "r3")
	if res.Actions[1] != (flow.Action{Kind: flow.SetEthDst, MAC: mGW}) || res.Actions[3].Kind != flow.Output {
		t.Errorf("actions %v", res.Actions)
	}
}

func TestRouterARP(t *testing.T) {
	r := newLab().runner(t)
	// An ARP request for the uplink address from inside its subnet.
	req := packet.BuildARP(packet.ARPRequest, mExt, a4("192.0.2.77"), [6]byte{}, a4("192.0.2.1"))
	res := r.send("r3", req)
	r.expect(res, VerdictConsumed)
	if !eq(genPorts(res), []string{"r3"}) {
		t.Fatalf("generated %v", genPorts(res))
	}
	if g := decodeGen(res.Generated[0]); g.ARPOp != packet.ARPReply || g.ARPSHA != mR3 || g.EthDst != mExt {
		t.Errorf("reply %+v", g)
	}
	if len(res.Learned) != 1 || !res.Learned[0].ARP || res.Learned[0].IP != a4("192.0.2.77") {
		t.Errorf("learned %+v", res.Learned)
	}
	// From outside the subnet: ignored, nothing learned.
	res = r.send("r3", packet.BuildARP(packet.ARPRequest, mExt, a4("198.51.100.7"), [6]byte{}, a4("192.0.2.1")))
	r.expect(res, VerdictDrop)
	if len(res.Learned) != 0 || len(res.Generated) != 0 {
		t.Errorf("answered or learned from outside: %+v", res)
	}
	// For another address: ignored.
	r.expect(r.send("r3", packet.BuildARP(packet.ARPRequest, mExt, a4("192.0.2.77"), [6]byte{}, a4("192.0.2.9"))), VerdictDrop)
	// Replies in-subnet are learned; out-of-subnet spoofs are not.
	res = r.send("r3", packet.BuildARP(packet.ARPReply, mExt, a4("192.0.2.8"), mR3, a4("192.0.2.1")))
	if res.Verdict != VerdictConsumed || len(res.Learned) != 1 || res.Learned[0].MAC != mExt {
		t.Errorf("reply not learned: %s %+v", res.Verdict, res.Learned)
	}
	res = r.send("r3", packet.BuildARP(packet.ARPReply, mExt, a4("10.0.0.11"), mR3, a4("192.0.2.1")))
	if len(res.Learned) != 0 {
		t.Errorf("spoofed reply learned: %+v", res.Learned)
	}
}

func TestRouterEchoReply(t *testing.T) {
	r := newLab().runner(t)
	for _, dst := range []string{"10.0.0.1", "10.0.1.1"} { // own addresses, on either port
		res := r.send("vm1", ping(mVM1, mR1, "10.0.0.11", dst, 42))
		r.expect(res, VerdictConsumed)
		if !eq(genPorts(res), []string{"vm1"}) {
			t.Fatalf("generated %v\n%s", genPorts(res), FormatTrace(res.Trace))
		}
		g := decodeGen(res.Generated[0])
		if g.ICMPType != packet.ICMPEchoReply || g.Src != a4(dst) || g.Dst != a4("10.0.0.11") || g.SrcPort != 42 || g.EthSrc != mR1 || g.EthDst != mVM1 || !packet.VerifyIPv4(res.Generated[0].Frame, &g) {
			t.Errorf("echo reply %+v", g)
		}
	}
	// Other traffic to the router is dropped.
	r.expect(r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "10.0.0.1", 1, 2)), VerdictDrop)
}

// icmpFrom checks res carries exactly one ICMP error to vm1 of type/code.
func icmpFrom(t *testing.T, res *Result, typ, code uint8) packet.Packet {
	t.Helper()
	if len(res.Generated) != 1 || res.Generated[0].PortID != "vm1" {
		t.Fatalf("generated %v (%s)\n%s", genPorts(res), res.Reason, FormatTrace(res.Trace))
	}
	g := decodeGen(res.Generated[0])
	if g.ICMPType != typ || g.ICMPCode != code || !g.Has(packet.FlagICMPError) || g.Src != a4("10.0.0.1") || g.Dst != a4("10.0.0.11") || !packet.VerifyIPv4(res.Generated[0].Frame, &g) {
		t.Fatalf("icmp %+v", g)
	}
	return g
}

func TestRouterRoutes(t *testing.T) {
	l := newLab()
	l.x.Put(&topology.Route{Meta: topology.Meta{ID: "bh"}, RouterID: "r", Type: topology.RouteBlackhole, DstPrefix: netip.MustParsePrefix("203.0.113.0/24")})
	l.x.Put(&topology.Route{Meta: topology.Meta{ID: "rej"}, RouterID: "r", Type: topology.RouteReject, DstPrefix: netip.MustParsePrefix("198.51.100.0/24")})
	r := l.runner(t)
	res := r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "203.0.113.5", 1, 2))
	r.expect(res, VerdictDrop)
	if len(res.Generated) != 0 {
		t.Error("blackhole answered")
	}
	res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "198.51.100.5", 1, 2))
	r.expect(res, VerdictDrop)
	g := icmpFrom(t, res, packet.ICMPUnreachable, packet.ICMPCodeAdminProh)
	if g.Inner.Dst != a4("198.51.100.5") || g.Inner.DstPort != 2 {
		t.Errorf("quoted %+v", g.Inner)
	}
	// TTL 1: time exceeded.
	f := (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("10.0.1.13"), Proto: packet.ProtoUDP, TTL: 1}).Build()
	res = r.send("vm1", f)
	r.expect(res, VerdictDrop)
	icmpFrom(t, res, packet.ICMPTimeExceeded, 0)
	// No route (remove the default).
	l.x.Delete(topology.KindRoute, "default")
	r = l.runner(t)
	res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 1, 2))
	r.expect(res, VerdictDrop)
	icmpFrom(t, res, packet.ICMPUnreachable, packet.ICMPCodeNet)
	// No ICMP error about an ICMP error.
	orig := udp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 1, 2)
	var op packet.Packet
	op.Decode(orig)
	errFrame := packet.BuildICMPError(orig, &op, mVM1, mR1, a4("10.0.0.11"), packet.ICMPUnreachable, 3, 0)
	res = r.send("vm1", errFrame)
	if len(res.Generated) != 0 {
		t.Error("error about an error")
	}
}

func TestRouterFragNeeded(t *testing.T) {
	l := newLab()
	set(l, topology.KindPort, "r3", func(p *topology.Port) { p.MTU = 1400 })
	r := l.runner(t)
	big := (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("8.8.8.8"), Proto: packet.ProtoUDP, DF: true, Payload: make([]byte, 1450)}).Build()
	res := r.send("vm1", big)
	r.expect(res, VerdictDrop)
	g := icmpFrom(t, res, packet.ICMPUnreachable, packet.ICMPCodeFragNeeded)
	if mtu := binary.BigEndian.Uint16(res.Generated[0].Frame[g.L4Off+6:]); mtu != 1400 || !res.Uncacheable {
		t.Errorf("mtu %d uncacheable %v", mtu, res.Uncacheable)
	}
	// Without DF it goes on (the datapath fragments), and small DF packets pass.
	big = (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("8.8.8.8"), Proto: packet.ProtoUDP, Payload: make([]byte, 1450)}).Build()
	r.expect(r.send("vm1", big), VerdictForward, "r3")
	small := (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("8.8.8.8"), Proto: packet.ProtoUDP, DF: true, Payload: make([]byte, 100)}).Build()
	r.expect(r.send("vm1", small), VerdictForward, "r3")
}

func TestRouterNextHopResolution(t *testing.T) {
	l := newLab()
	l.route("via-ext", "r", "100.64.0.0/16", "r3", "192.0.2.50")
	r := l.runner(t)
	frame := udp(mVM1, mR1, "10.0.0.11", "100.64.1.1", 1, 2)
	res := r.send("vm1", frame)
	r.expect(res, VerdictNotYet)
	if !eq(genPorts(res), []string{"r3"}) {
		t.Fatalf("generated %v", genPorts(res))
	}
	g := decodeGen(res.Generated[0])
	if g.ARPOp != packet.ARPRequest || g.ARPTPA != a4("192.0.2.50") || g.ARPSPA != a4("192.0.2.1") || g.ARPSHA != mR3 {
		t.Errorf("ARP request %+v", g)
	}
	// The reply arrives: learned, and the packet now goes.
	res = r.send("r3", packet.BuildARP(packet.ARPReply, mExt, a4("192.0.2.50"), mR3, a4("192.0.2.1")))
	r.tab.Learn(res.Learned, 1<<62)
	res = r.send("vm1", frame)
	r.expect(res, VerdictForward, "r3")
	if !containsTag(res.Tags, flow.TagOf("router", "r").Sub(subARP, uint64(a4("192.0.2.50")))) {
		t.Error("no tag for the ARP entry")
	}
	// Resolution failed: host unreachable.
	r.tab.ARP[ARPKey{flow.TagOf("router", "r"), a4("192.0.2.50")}] = ARPEntry{Refresh: 1 << 62}
	res = r.send("vm1", frame)
	r.expect(res, VerdictDrop)
	icmpFrom(t, res, packet.ICMPUnreachable, packet.ICMPCodeHost)
}

func TestRouterDropsWrongMACAndVLAN(t *testing.T) {
	r := newLab().runner(t)
	// A frame to vm2's MAC reaching the router port (via flood) is not routed.
	res := r.send("l2up", udp(mExt, mR2, "10.0.0.50", "10.0.1.13", 1, 2))
	if eq(outputs(res), []string{"vm3"}) {
		t.Error("routed a frame not addressed to the ingress port")
	}
	v := (&packet.Spec{EthSrc: mVM1, EthDst: mR1, VLAN: 7, Src: a4("10.0.0.11"), Dst: a4("10.0.1.13"), Proto: packet.ProtoUDP}).Build()
	r.expect(r.send("vm1", v), VerdictDrop)
}

func TestRouterChainsAndReject(t *testing.T) {
	l := newLab()
	l.chain("fw", topology.Rule{Condition: topology.Condition{NwDst: netip.MustParsePrefix("10.0.1.13/32"), TpDst: &topology.PortRange{Start: 22, End: 22}}, Action: topology.ActionReject})
	set(l, topology.KindRouter, "r", func(x *topology.Router) { x.InFilter = "fw" })
	r := l.runner(t)
	res := r.send("vm1", tcp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 1000, 22))
	r.expect(res, VerdictDrop)
	icmpFrom(t, res, packet.ICMPUnreachable, packet.ICMPCodeAdminProh)
	r.expect(r.send("vm1", tcp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 1000, 80)), VerdictForward, "vm3")
	// The out-filter sees the egress port.
	l.chain("out", topology.Rule{Condition: topology.Condition{OutPorts: []string{"r2"}}, Action: topology.ActionDrop})
	set(l, topology.KindRouter, "r", func(x *topology.Router) { x.InFilter, x.OutFilter = "", "out" })
	r = l.runner(t)
	r.expect(r.send("vm1", tcp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 1000, 80)), VerdictDrop)
	r.expect(r.send("vm1", tcp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 1000, 80)), VerdictForward, "r3")
}

func TestRouteSrcFilterWeightsECMP(t *testing.T) {
	l := newLab()
	set(l, topology.KindPort, "r3", func(p *topology.Port) { p.Address = netip.MustParsePrefix("192.0.2.1/24") })
	l.x.Put(&topology.Router{Meta: topology.Meta{ID: "r"}, ARPEntries: []topology.ARPEntry{
		{IP: netip.MustParseAddr("192.0.2.254"), MAC: mGW}, {IP: netip.MustParseAddr("192.0.2.253"), MAC: mExt},
		{IP: netip.MustParseAddr("192.0.2.252"), MAC: mVM2},
	}})
	// Source-specific route for b2's subnet, a worse-weight alternative, and
	// two equal-cost routes for 8.8.0.0/16.
	rt := l.route("src-b2", "r", "0.0.0.0/0", "r3", "192.0.2.253")
	rt.SrcPrefix = netip.MustParsePrefix("10.0.1.0/24")
	rt.Weight = 10
	l.x.Put(rt)
	heavy := l.route("heavy", "r", "0.0.0.0/0", "r3", "192.0.2.252")
	heavy.Weight = 500
	l.x.Put(heavy)
	l.route("ecmp-a", "r", "8.8.0.0/16", "r3", "192.0.2.254")
	l.route("ecmp-b", "r", "8.8.0.0/16", "r3", "192.0.2.253")
	r := l.runner(t)
	res := r.send("vm3", udp(mVM3, mR2, "10.0.1.13", "1.1.1.1", 1, 2))
	if !containsTag(res.Tags, flow.TagOf("route", "src-b2")) {
		t.Errorf("source route not used\n%s", FormatTrace(res.Trace))
	}
	res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "1.1.1.1", 1, 2))
	if !containsTag(res.Tags, flow.TagOf("route", "default")) {
		t.Errorf("default route not used\n%s", FormatTrace(res.Trace))
	}
	seen := map[[6]byte]int{}
	for sp := uint16(1); sp <= 64; sp++ {
		res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "8.8.4.4", sp, 53))
		d := deliver(t, udp(mVM1, mR1, "10.0.0.11", "8.8.4.4", sp, 53), res)["r3"]
		seen[d.EthDst]++
		if res.Fields&FieldSrcPort == 0 {
			t.Fatal("ECMP decision does not record the ports it hashed")
		}
	}
	if len(seen) != 2 || seen[mGW] < 10 || seen[mExt] < 10 {
		t.Errorf("ECMP spread %v", seen)
	}
}

// A router chain that drops fragments answers the head fragment with
// fragmentation-needed (as MidoNet's routers do), per packet; later
// fragments are dropped silently, and a bridge dropping one says nothing.
func TestRouterFragmentDropAnswersFragNeeded(t *testing.T) {
	l := newLab()
	l.chain("nofrag", topology.Rule{Condition: topology.Condition{FragPolicy: topology.FragUnfragmented}, Action: topology.ActionAccept}, topology.Rule{Action: topology.ActionDrop})
	set(l, topology.KindRouter, "r", func(x *topology.Router) { x.InFilter = "nofrag" })
	r := l.runner(t)
	head := (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("10.0.1.13"), Proto: packet.ProtoICMP,
		ICMPType: packet.ICMPEchoRequest, SrcPort: 9, MF: true, Payload: make([]byte, 1400)}).Build()
	res := r.send("vm1", head)
	r.expect(res, VerdictDrop)
	g := icmpFrom(t, res, packet.ICMPUnreachable, packet.ICMPCodeFragNeeded)
	if !res.Uncacheable {
		t.Error("the answer would be cached away: every head fragment must get one")
	}
	if g.Has(packet.FlagICMPError) && g.ICMPCode == packet.ICMPCodeFragNeeded && binary.BigEndian.Uint16(res.Generated[0].Frame[packet.EthHeaderLen+20+6:]) != 1500 {
		t.Errorf("next-hop MTU %d", binary.BigEndian.Uint16(res.Generated[0].Frame[packet.EthHeaderLen+20+6:]))
	}
	tail := (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("10.0.1.13"), Proto: packet.ProtoICMP, FragOff: 175, Payload: make([]byte, 100)}).Build()
	res = r.send("vm1", tail)
	r.expect(res, VerdictDrop)
	if len(res.Generated) != 0 {
		t.Errorf("answered a later fragment: %v", genPorts(res))
	}
	// Unfragmented packets pass.
	r.expect(r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 1, 2)), VerdictForward, "vm3")
	// The same chain on the bridge: silent.
	l = newLab()
	l.chain("nofrag", topology.Rule{Condition: topology.Condition{FragPolicy: topology.FragUnfragmented}, Action: topology.ActionAccept}, topology.Rule{Action: topology.ActionDrop})
	set(l, topology.KindBridge, "b1", func(x *topology.Bridge) { x.InFilter = "nofrag" })
	r = l.runner(t)
	res = r.send("vm1", head)
	r.expect(res, VerdictDrop)
	if len(res.Generated) != 0 {
		t.Errorf("a bridge answered a fragment: %v", genPorts(res))
	}
}

// A learned ARP entry past its refresh time is still used, and the router
// asks for it again so that an entry in use is confirmed before it expires.
func TestRouterStaleARPRefreshes(t *testing.T) {
	l := newLab()
	l.x.Put(&topology.Router{Meta: topology.Meta{ID: "r", Name: "vpc-router"}}) // no static entry for the gateway
	r := l.runner(t)
	r.tab.ARP[ARPKey{flow.TagOf("router", "r"), a4("192.0.2.254")}] = ARPEntry{MAC: mGW, Refresh: 2e9}
	res := r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 5000, 53))
	r.expect(res, VerdictForward, "r3")
	if len(res.Generated) != 0 {
		t.Fatalf("asked for a fresh entry: %v", genPorts(res))
	}
	r.opts.Now = 3e9
	res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 5001, 53))
	r.expect(res, VerdictForward, "r3")
	if len(res.Generated) != 1 || res.Generated[0].PortID != "r3" {
		t.Fatalf("stale entry not refreshed: %v", genPorts(res))
	}
	if g := decodeGen(res.Generated[0]); g.ARPOp != packet.ARPRequest || g.ARPTPA != a4("192.0.2.254") {
		t.Errorf("refresh %+v", g)
	}
	if !containsTag(res.Tags, ARPTag(flow.TagOf("router", "r"), a4("192.0.2.254"))) {
		t.Error("flow does not carry the ARP entry's tag")
	}
}

// A proxy-ARP router port answers ARP for addresses the router routes
// elsewhere, with its own MAC and the asked address; not for addresses
// routed back out of the port, nor blackholed ones; a port without the flag
// answers only for itself.
func TestRouterProxyARP(t *testing.T) {
	l := newLab()
	l.x.Put(&topology.Route{Meta: topology.Meta{ID: "pool"}, RouterID: "r", Type: topology.RouteBlackhole, DstPrefix: netip.MustParsePrefix("203.0.113.0/24")})
	l.route("eip", "r", "203.0.113.5/32", "r1", "10.0.0.11")
	ask := func(target string) *Result {
		r := l.runner(t)
		return r.send("r3", packet.BuildARP(packet.ARPRequest, mExt, a4("192.0.2.77"), [6]byte{}, a4(target)))
	}
	if res := ask("203.0.113.5"); res.Verdict != VerdictDrop {
		t.Fatalf("answered without proxy_arp: %s", res.Verdict)
	}
	set(l, topology.KindPort, "r3", func(p *topology.Port) { p.ProxyARP = true })
	res := ask("203.0.113.5")
	if res.Verdict != VerdictConsumed || len(res.Generated) != 1 {
		t.Fatalf("routed address: %s %v\n%s", res.Verdict, genPorts(res), FormatTrace(res.Trace))
	}
	if g := decodeGen(res.Generated[0]); g.ARPOp != packet.ARPReply || g.ARPSHA != mR3 || g.ARPSPA != a4("203.0.113.5") || g.ARPTHA != mExt {
		t.Errorf("reply %+v", g)
	}
	for _, target := range []string{"203.0.113.6", "192.0.2.9"} { // blackholed; routed back out of r3
		if res := ask(target); res.Verdict != VerdictDrop {
			t.Errorf("answered for %s: %s", target, res.Verdict)
		}
	}
	if res := ask("192.0.2.1"); res.Verdict != VerdictConsumed { // its own address, as ever
		t.Errorf("own address: %s", res.Verdict)
	}
}

// Two uplinks on two hosts share the default route (ECMP). When one host's
// agent is not alive, its uplink's routes are left out: every flow leaves
// by the other.
func TestRoutesThroughADeadHostAreLeftOut(t *testing.T) {
	l := newLab()
	l.port("r4", "r", func(p *topology.Port) {
		p.MAC, p.Address, p.HostID, p.Interface, p.TunnelKey = mustMAC("02:00:00:00:aa:04"), netip.MustParsePrefix("198.18.0.1/24"), "h2", "uplink2", 4
	})
	l.route("default2", "r", "0.0.0.0/0", "r4", "198.18.0.254")
	l.x.Put(&topology.Router{Meta: topology.Meta{ID: "r", Name: "vpc-router"}, ARPEntries: []topology.ARPEntry{
		{IP: netip.MustParseAddr("192.0.2.254"), MAC: mGW}, {IP: netip.MustParseAddr("198.18.0.254"), MAC: mExt}}})
	outs := func(snap *Snapshot) map[string]int {
		seen := map[string]int{}
		var res Result
		for sp := uint16(1); sp <= 64; sp++ {
			f := udp(mVM1, mR1, "10.0.0.11", "8.8.8.8", sp, 53)
			var p packet.Packet
			p.Decode(f)
			Simulate(snap, flow.NewState(), "vm1", f, &p, &Options{Now: 1, LocalHost: "h1", Tables: NewTables()}, &res)
			for _, o := range res.Outputs {
				seen[o.PortID]++
			}
		}
		return seen
	}
	if seen := outs(NewSnapshot(l.x)); seen["r3"] == 0 || seen["r4"] == 0 {
		t.Fatalf("both hosts up: %v, want both uplinks used", seen)
	}
	down := NewSnapshot(l.x, WithHostsDown(func(h string) bool { return h == "h1" }))
	if seen := outs(down); seen["r3"] != 0 || seen["r4"] != 64 {
		t.Fatalf("h1 down: %v, want every flow on r4", seen)
	}
	// Both down: no live way out, so the routes through them are used as
	// if alive (a lone gateway restarting still forwards in its kernel).
	both := NewSnapshot(l.x, WithHostsDown(func(h string) bool { return h == "h1" || h == "h2" }))
	if seen := outs(both); seen["r3"] == 0 || seen["r4"] == 0 || seen["r3"]+seen["r4"] != 64 {
		t.Fatalf("both down: %v, want the flows on both uplinks still", seen)
	}
}
