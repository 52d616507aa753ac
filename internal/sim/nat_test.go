package sim

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// natLab: the lab router does
//   - 1:1 NAT of elastic IP 192.0.2.20 ↔ vm2 (10.0.0.12),
//   - DNAT of 192.0.2.10:80 → vm3 10.0.1.13:8080 (port forward),
//   - SNAT (PAT) of everything else from 10.0.0.0/16 to 192.0.2.1:40000-40009.
func natLab() *lab {
	l := newLab()
	eip := topology.NATTarget{AddrFrom: netip.MustParseAddr("192.0.2.20"), AddrTo: netip.MustParseAddr("192.0.2.20")}
	vm2 := topology.NATTarget{AddrFrom: netip.MustParseAddr("10.0.0.12"), AddrTo: netip.MustParseAddr("10.0.0.12")}
	web := topology.NATTarget{AddrFrom: netip.MustParseAddr("10.0.1.13"), AddrTo: netip.MustParseAddr("10.0.1.13"), PortFrom: 8080, PortTo: 8080}
	gw := topology.NATTarget{AddrFrom: netip.MustParseAddr("192.0.2.1"), AddrTo: netip.MustParseAddr("192.0.2.1"), PortFrom: 40000, PortTo: 40009}
	l.chain("nat-in",
		topology.Rule{Condition: topology.Condition{InPorts: []string{"r3"}, NwDst: netip.MustParsePrefix("192.0.2.20/32")}, Action: topology.ActionDNAT, NATTargets: []topology.NATTarget{vm2}},
		topology.Rule{Condition: topology.Condition{InPorts: []string{"r3"}, NwDst: netip.MustParsePrefix("192.0.2.10/32"), NwProto: u8(6), TpDst: &topology.PortRange{Start: 80, End: 80}}, Action: topology.ActionDNAT, NATTargets: []topology.NATTarget{web}},
		topology.Rule{Condition: topology.Condition{InPorts: []string{"r3"}, NwDst: netip.MustParsePrefix("192.0.2.1/32")}, Action: topology.ActionRevSNAT},
	)
	l.chain("nat-out",
		topology.Rule{Condition: topology.Condition{OutPorts: []string{"r3"}}, Action: topology.ActionRevDNAT},
		topology.Rule{Condition: topology.Condition{OutPorts: []string{"r3"}, NwSrc: netip.MustParsePrefix("10.0.0.12/32")}, Action: topology.ActionSNAT, NATTargets: []topology.NATTarget{eip}},
		topology.Rule{Condition: topology.Condition{OutPorts: []string{"r3"}, NwSrc: netip.MustParsePrefix("10.0.0.0/16")}, Action: topology.ActionSNAT, NATTargets: []topology.NATTarget{gw}},
	)
	set(l, topology.KindRouter, "r", func(x *topology.Router) { x.InFilter, x.OutFilter = "nat-in", "nat-out" })
	return l
}

func TestSNAT(t *testing.T) {
	r := natLab().runner(t)
	out := tcp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 1000, 80)
	res := r.send("vm1", out)
	r.expect(res, VerdictForward, "r3")
	if len(res.NATs) != 1 || res.NATs[0].Kind != flow.SNAT {
		t.Fatalf("NATs %+v", res.NATs)
	}
	got := deliver(t, out, res)["r3"]
	if got.Src != a4("192.0.2.1") || got.SrcPort < 40000 || got.SrcPort > 40009 || got.Dst != a4("8.8.8.8") || got.DstPort != 80 {
		t.Fatalf("translated %s:%d → %s:%d", ip(got.Src), got.SrcPort, ip(got.Dst), got.DstPort)
	}
	nport := got.SrcPort
	// The same connection again: same translation, nothing new.
	res = r.send("vm1", out)
	if len(res.NATs) != 0 || deliver(t, out, res)["r3"].SrcPort != nport {
		t.Fatal("second packet re-translated")
	}
	// The reply is un-translated back to vm1.
	back := tcp(mGW, mR3, "8.8.8.8", "192.0.2.1", 80, nport)
	res = r.send("r3", back)
	r.expect(res, VerdictForward, "vm1")
	if d := deliver(t, back, res)["vm1"]; d.Dst != a4("10.0.0.11") || d.DstPort != 1000 || d.Src != a4("8.8.8.8") || d.EthDst != mVM1 {
		t.Fatalf("reply delivered as %s:%d → %s:%d", ip(d.Src), d.SrcPort, ip(d.Dst), d.DstPort)
	}
	// A reply to a port nobody holds is not un-translated: it is for the router.
	r.expect(r.send("r3", tcp(mGW, mR3, "8.8.8.8", "192.0.2.1", 80, 40000+(nport-40000+1)%10)), VerdictDrop)
	// Ten ports, ten connections: all distinct; the eleventh is dropped.
	used := map[uint16]bool{nport: true}
	for sp := uint16(2000); len(used) < 10; sp++ {
		f := tcp(mVM1, mR1, "10.0.0.11", "8.8.8.8", sp, 80)
		res = r.send("vm1", f)
		r.expect(res, VerdictForward, "r3")
		p := deliver(t, f, res)["r3"].SrcPort
		if used[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		used[p] = true
	}
	res = r.send("vm1", tcp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 3000, 80))
	r.expect(res, VerdictDrop)
	if res.Reason != "NAT targets exhausted" {
		t.Errorf("reason %q", res.Reason)
	}
}

func TestSNATEchoAndICMPError(t *testing.T) {
	r := natLab().runner(t)
	p := ping(mVM1, mR1, "10.0.0.11", "8.8.8.8", 77)
	res := r.send("vm1", p)
	r.expect(res, VerdictForward, "r3")
	d := deliver(t, p, res)["r3"]
	if d.Src != a4("192.0.2.1") || d.SrcPort < 40000 || !d.IsEcho() {
		t.Fatalf("echo translated to %+v", d)
	}
	id := d.SrcPort
	rep := (&packet.Spec{EthSrc: mGW, EthDst: mR3, Src: a4("8.8.8.8"), Dst: a4("192.0.2.1"), Proto: packet.ProtoICMP, ICMPType: packet.ICMPEchoReply, SrcPort: id, Payload: []byte("pingdata")}).Build()
	res = r.send("r3", rep)
	r.expect(res, VerdictForward, "vm1")
	if d := deliver(t, rep, res)["vm1"]; d.Dst != a4("10.0.0.11") || d.SrcPort != 77 || d.ICMPType != packet.ICMPEchoReply {
		t.Fatalf("echo reply delivered as %+v", d)
	}

	// A UDP flow, then a router on the way reports "port unreachable"
	// about the translated packet: the error reaches vm1 with the quoted
	// header translated back.
	u := udp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 5353, 53)
	res = r.send("vm1", u)
	tr := deliver(t, u, res)["r3"]
	trFrame := (&packet.Spec{EthSrc: mR3, EthDst: mGW, Src: tr.Src, Dst: tr.Dst, Proto: packet.ProtoUDP, SrcPort: tr.SrcPort, DstPort: tr.DstPort, Payload: []byte("data")}).Build()
	var tp packet.Packet
	tp.Decode(trFrame)
	errF := packet.BuildICMPError(trFrame, &tp, mGW, mR3, a4("203.0.113.9"), packet.ICMPUnreachable, 3, 0)
	res = r.send("r3", errF)
	if res.Verdict != VerdictForward || !res.Uncacheable || len(res.Generated) != 1 || res.Generated[0].PortID != "vm1" {
		t.Fatalf("error: %s uncacheable=%v generated %v\n%s", res.Verdict, res.Uncacheable, genPorts(res), FormatTrace(res.Trace))
	}
	g := decodeGen(res.Generated[0])
	if g.Dst != a4("10.0.0.11") || g.Src != a4("203.0.113.9") || g.Inner.Src != a4("10.0.0.11") || g.Inner.SrcPort != 5353 || g.Inner.Dst != a4("8.8.8.8") || g.EthDst != mVM1 || g.TTL != packet.DefaultTTL-1 {
		t.Fatalf("error delivered as %+v", g)
	}
	if !packet.VerifyIPv4(res.Generated[0].Frame, &g) {
		t.Error("bad checksums on the translated error")
	}
}

func TestDNATPortForward(t *testing.T) {
	r := natLab().runner(t)
	in := tcp(mGW, mR3, "198.51.100.7", "192.0.2.10", 5555, 80)
	res := r.send("r3", in)
	r.expect(res, VerdictForward, "vm3")
	if d := deliver(t, in, res)["vm3"]; d.Dst != a4("10.0.1.13") || d.DstPort != 8080 || d.Src != a4("198.51.100.7") {
		t.Fatalf("DNAT delivered %s:%d", ip(d.Dst), d.DstPort)
	}
	if len(res.NATs) != 1 || res.NATs[0].Kind != flow.DNAT {
		t.Errorf("NATs %+v", res.NATs)
	}
	back := tcp(mVM3, mR2, "10.0.1.13", "198.51.100.7", 8080, 5555)
	res = r.send("vm3", back)
	r.expect(res, VerdictForward, "r3")
	if d := deliver(t, back, res)["r3"]; d.Src != a4("192.0.2.10") || d.SrcPort != 80 {
		t.Fatalf("reply leaves as %s:%d (not un-DNATed, or SNATed)", ip(d.Src), d.SrcPort)
	}
	// Another port on the forwarded address is not forwarded.
	r.expect(r.send("r3", tcp(mGW, mR3, "198.51.100.7", "192.0.2.10", 5555, 81)), VerdictNotYet)
}

func TestStatelessElasticIP(t *testing.T) {
	r := natLab().runner(t)
	in := udp(mGW, mR3, "198.51.100.7", "192.0.2.20", 4000, 9000)
	res := r.send("r3", in)
	r.expect(res, VerdictForward, "vm2")
	if d := deliver(t, in, res)["vm2"]; d.Dst != a4("10.0.0.12") || d.DstPort != 9000 {
		t.Fatalf("elastic IP in: %s:%d", ip(d.Dst), d.DstPort)
	}
	out := udp(mVM2, mR1, "10.0.0.12", "198.51.100.7", 9000, 4000)
	res = r.send("vm2", out)
	r.expect(res, VerdictForward, "r3")
	if d := deliver(t, out, res)["r3"]; d.Src != a4("192.0.2.20") || d.SrcPort != 9000 {
		t.Fatalf("elastic IP out: %s:%d", ip(d.Src), d.SrcPort)
	}
	if r.st.NATs() != 0 || len(res.NATs) != 0 {
		t.Errorf("1:1 NAT kept state: %d", r.st.NATs())
	}
}

func BenchmarkNewSNATConnection(b *testing.B) {
	l := natLab()
	// A large pool so the benchmark never runs out of ports.
	set(l, topology.KindChain, "nat-out", func(c *topology.Chain) {
		c.Rules[2].NATTargets = []topology.NATTarget{{AddrFrom: netip.MustParseAddr("192.0.2.100"), AddrTo: netip.MustParseAddr("192.0.2.199"), PortFrom: 1024, PortTo: 65535}}
	})
	snap := NewSnapshot(l.x)
	st := flow.NewState()
	opts := Options{Now: 1, LocalHost: "h1", Tables: NewTables()}
	frame := tcp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 1000, 80)
	var p packet.Packet
	var res Result
	b.ReportAllocs()
	i := uint32(0)
	for b.Loop() {
		i++
		p.Decode(frame)
		packet.SetSrcPort(frame, &p, uint16(i))
		packet.SetIPDst(frame, &p, 0x08000000|i>>16)
		Simulate(snap, st, "vm1", frame, &p, &opts, &res)
		if len(res.NATs) != 1 {
			b.Fatalf("no new NAT entry: %s %s", res.Verdict, res.Reason)
		}
	}
}

// The port-forwarded backend answers a client's packet with an ICMP error:
// it leaves with the public address outside and in the quoted header.
func TestDNATICMPError(t *testing.T) {
	r := natLab().runner(t)
	in := tcp(mGW, mR3, "198.51.100.7", "192.0.2.10", 5555, 80)
	r.expect(r.send("r3", in), VerdictForward, "vm3")
	seen := (&packet.Spec{EthSrc: mR2, EthDst: mVM3, Src: a4("198.51.100.7"), Dst: a4("10.0.1.13"), Proto: packet.ProtoTCP, SrcPort: 5555, DstPort: 8080, TTL: 63}).Build()
	var sp packet.Packet
	sp.Decode(seen)
	errF := packet.BuildICMPError(seen, &sp, mVM3, mR2, a4("10.0.1.13"), packet.ICMPUnreachable, 3, 0)
	res := r.send("vm3", errF)
	if res.Verdict != VerdictForward || len(res.Generated) != 1 || res.Generated[0].PortID != "r3" {
		t.Fatalf("%s generated %v\n%s", res.Verdict, genPorts(res), FormatTrace(res.Trace))
	}
	g := decodeGen(res.Generated[0])
	if g.Src != a4("192.0.2.10") || g.Dst != a4("198.51.100.7") || g.Inner.Dst != a4("192.0.2.10") || g.Inner.DstPort != 80 || g.Inner.Src != a4("198.51.100.7") || !packet.VerifyIPv4(res.Generated[0].Frame, &g) {
		t.Fatalf("error leaves as %s", g.String())
	}
}

// TestNATRefs: a translated connection's flows name its NAT entry in Refs
// (the forward packets by its forward key, the replies by its reply key),
// and touching them keeps the translation past its TTL, as the agent does
// while the kernel forwards the flows without simulating them again.
func TestNATRefs(t *testing.T) {
	r := natLab().runner(t)
	r.opts.NATTTL = 10e9
	out := tcp(mVM1, mR1, "10.0.0.11", "8.8.8.8", 1000, 80)
	res := r.send("vm1", out)
	r.expect(res, VerdictForward, "r3")
	fwdRefs := append([]flow.Ref(nil), res.Refs...)
	nat := res.NATs[0]
	if !slices.Contains(fwdRefs, flow.Ref{Key: nat.Key, NAT: flow.SNAT}) {
		t.Fatalf("forward refs %+v lack the SNAT %+v", fwdRefs, nat.Key)
	}
	back := tcp(mGW, mR3, "8.8.8.8", "192.0.2.1", 80, nat.Binding.Port)
	res = r.send("r3", back)
	r.expect(res, VerdictForward, "vm1")
	if !slices.Contains(res.Refs, flow.Ref{Key: flow.ReplyKey(flow.SNAT, nat.Key, nat.Binding), NAT: flow.SNAT, Reply: true}) {
		t.Fatalf("reply refs %+v lack the SNAT's reply key", res.Refs)
	}
	// Only the reply's flow stays busy: it alone keeps the translation.
	r.st.Touch(res.Refs, r.opts.Now+20e9)
	r.opts.Now += 15e9
	r.st.Expire(r.opts.Now)
	r.expect(r.send("r3", back), VerdictForward, "vm1")
	r.opts.Now += 10e9
	r.st.Expire(r.opts.Now)
	r.expect(r.send("r3", back), VerdictDrop)
}
