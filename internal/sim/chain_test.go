package sim

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestConditions checks every condition, matching and not, plain and
// inverted: a rule "condition → drop" on b1's out-filter, a packet vm1→vm2.
func TestConditions(t *testing.T) {
	base := func() []byte { return tcp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1000, 80) }
	pingF := func() []byte { return ping(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 5) }
	arpF := func() []byte {
		// a target no port holds: flooded, so the bridge's out-filter sees it
		return packet.BuildARP(packet.ARPRequest, mVM1, a4("10.0.0.11"), [6]byte{}, a4("10.0.0.99"))
	}
	frag := func() []byte {
		return (&packet.Spec{EthSrc: mVM1, EthDst: mVM2, Src: a4("10.0.0.11"), Dst: a4("10.0.0.12"), Proto: packet.ProtoTCP, FragOff: 100, Payload: make([]byte, 16)}).Build()
	}
	firstFrag := func() []byte {
		return (&packet.Spec{EthSrc: mVM1, EthDst: mVM2, Src: a4("10.0.0.11"), Dst: a4("10.0.0.12"), Proto: packet.ProtoTCP, SrcPort: 1, DstPort: 80, MF: true, Payload: make([]byte, 16)}).Build()
	}
	tos := func() []byte {
		return (&packet.Spec{EthSrc: mVM1, EthDst: mVM2, Src: a4("10.0.0.11"), Dst: a4("10.0.0.12"), Proto: packet.ProtoUDP, TOS: 0xb8}).Build()
	}
	type tc struct {
		name  string
		cond  func(c *topology.Condition, inv bool)
		frame func() []byte
		match bool
	}
	tests := []tc{
		{"in port", func(c *topology.Condition, inv bool) { c.InPorts, c.InvInPorts = []string{"vm1"}, inv }, base, true},
		{"in port other", func(c *topology.Condition, inv bool) { c.InPorts, c.InvInPorts = []string{"vm2"}, inv }, base, false},
		{"out port", func(c *topology.Condition, inv bool) { c.OutPorts, c.InvOutPorts = []string{"vm2"}, inv }, base, true},
		{"out port other", func(c *topology.Condition, inv bool) { c.OutPorts, c.InvOutPorts = []string{"vm1"}, inv }, base, false},
		{"in port group", func(c *topology.Condition, inv bool) { c.InPortGroup, c.InvInPortGroup = "g-vm1", inv }, base, true},
		{"in port group other", func(c *topology.Condition, inv bool) { c.InPortGroup, c.InvInPortGroup = "g-vm2", inv }, base, false},
		{"out port group", func(c *topology.Condition, inv bool) { c.OutPortGroup, c.InvOutPortGroup = "g-vm2", inv }, base, true},
		{"out port group other", func(c *topology.Condition, inv bool) { c.OutPortGroup, c.InvOutPortGroup = "g-vm1", inv }, base, false},
		{"ethertype", func(c *topology.Condition, inv bool) { c.EtherType, c.InvEtherType = 0x0800, inv }, base, true},
		{"ethertype arp", func(c *topology.Condition, inv bool) { c.EtherType, c.InvEtherType = 0x0806, inv }, base, false},
		{"src mac", func(c *topology.Condition, inv bool) { c.SrcMAC, c.InvSrcMAC = mVM1, inv }, base, true},
		{"src mac masked", func(c *topology.Condition, inv bool) {
			c.SrcMAC, c.SrcMACMask, c.InvSrcMAC = mustMAC("02:00:00:99:99:99"), mustMAC("ff:ff:ff:00:00:00"), inv
		}, base, true},
		{"src mac other", func(c *topology.Condition, inv bool) { c.SrcMAC, c.InvSrcMAC = mVM2, inv }, base, false},
		{"dst mac", func(c *topology.Condition, inv bool) { c.DstMAC, c.InvDstMAC = mVM2, inv }, base, true},
		{"dst mac other", func(c *topology.Condition, inv bool) { c.DstMAC, c.InvDstMAC = mVM1, inv }, base, false},
		{"nw src", func(c *topology.Condition, inv bool) { c.NwSrc, c.InvNwSrc = netip.MustParsePrefix("10.0.0.0/24"), inv }, base, true},
		{"nw src other", func(c *topology.Condition, inv bool) { c.NwSrc, c.InvNwSrc = netip.MustParsePrefix("10.9.0.0/16"), inv }, base, false},
		{"nw dst", func(c *topology.Condition, inv bool) {
			c.NwDst, c.InvNwDst = netip.MustParsePrefix("10.0.0.12/32"), inv
		}, base, true},
		{"nw dst other", func(c *topology.Condition, inv bool) {
			c.NwDst, c.InvNwDst = netip.MustParsePrefix("10.0.0.13/32"), inv
		}, base, false},
		{"ip group src", func(c *topology.Condition, inv bool) { c.IPGroupSrc, c.InvIPGroupSrc = "ipg-vm1", inv }, base, true},
		{"ip group src other", func(c *topology.Condition, inv bool) { c.IPGroupSrc, c.InvIPGroupSrc = "ipg-vm2", inv }, base, false},
		// An ARP's sender and target addresses match address groups (the
		// translator's anti-spoofing rules rely on it).
		{"ip group src arp", func(c *topology.Condition, inv bool) { c.IPGroupSrc, c.InvIPGroupSrc = "ipg-vm1", inv }, arpF, true},
		{"ip group src arp other", func(c *topology.Condition, inv bool) { c.IPGroupSrc, c.InvIPGroupSrc = "ipg-vm2", inv }, arpF, false},
		{"ip group dst arp", func(c *topology.Condition, inv bool) { c.IPGroupDst, c.InvIPGroupDst = "ipg-vm2", inv }, arpF, true},
		{"ip group dst arp other", func(c *topology.Condition, inv bool) { c.IPGroupDst, c.InvIPGroupDst = "ipg-vm1", inv }, arpF, false},
		{"ip group dst", func(c *topology.Condition, inv bool) { c.IPGroupDst, c.InvIPGroupDst = "ipg-vm2", inv }, base, true},
		{"ip group dst other", func(c *topology.Condition, inv bool) { c.IPGroupDst, c.InvIPGroupDst = "ipg-vm1", inv }, base, false},
		{"proto", func(c *topology.Condition, inv bool) { c.NwProto, c.InvNwProto = u8(6), inv }, base, true},
		{"proto other", func(c *topology.Condition, inv bool) { c.NwProto, c.InvNwProto = u8(17), inv }, base, false},
		{"tos", func(c *topology.Condition, inv bool) { c.NwTOS, c.InvNwTOS = u8(0xb8), inv }, tos, true},
		{"tos other", func(c *topology.Condition, inv bool) { c.NwTOS, c.InvNwTOS = u8(0x10), inv }, tos, false},
		{"tp src", func(c *topology.Condition, inv bool) {
			c.TpSrc, c.InvTpSrc = &topology.PortRange{Start: 1000, End: 2000}, inv
		}, base, true},
		{"tp src other", func(c *topology.Condition, inv bool) {
			c.TpSrc, c.InvTpSrc = &topology.PortRange{Start: 1001, End: 2000}, inv
		}, base, false},
		{"tp dst", func(c *topology.Condition, inv bool) {
			c.TpDst, c.InvTpDst = &topology.PortRange{Start: 80, End: 80}, inv
		}, base, true},
		{"tp dst other", func(c *topology.Condition, inv bool) {
			c.TpDst, c.InvTpDst = &topology.PortRange{Start: 443, End: 443}, inv
		}, base, false},
		{"tp dst on later fragment", func(c *topology.Condition, inv bool) {
			c.TpDst, c.InvTpDst = &topology.PortRange{Start: 0, End: 65535}, inv
		}, frag, false},
		// ARP's sender hardware address (the anti-spoofing of ARP's own
		// MAC field); nothing else has one.
		{"arp sender mac", func(c *topology.Condition, inv bool) { c.ARPSenderMAC, c.InvARPSenderMAC = mVM1, inv }, arpF, true},
		{"arp sender mac other", func(c *topology.Condition, inv bool) { c.ARPSenderMAC, c.InvARPSenderMAC = mVM2, inv }, arpF, false},
		{"arp sender mac not arp", func(c *topology.Condition, inv bool) { c.ARPSenderMAC, c.InvARPSenderMAC = mVM1, inv }, base, false},
		{"icmp type", func(c *topology.Condition, inv bool) { c.ICMPType, c.InvICMPType = u8(8), inv }, pingF, true},
		{"icmp type other", func(c *topology.Condition, inv bool) { c.ICMPType, c.InvICMPType = u8(0), inv }, pingF, false},
		{"icmp code", func(c *topology.Condition, inv bool) { c.ICMPCode, c.InvICMPCode = u8(0), inv }, pingF, true},
		{"icmp code other", func(c *topology.Condition, inv bool) { c.ICMPCode, c.InvICMPCode = u8(3), inv }, pingF, false},
	}
	// Fragment policies (not invertible in the model).
	for _, f := range []struct {
		pol   topology.FragmentPolicy
		frame func() []byte
		match bool
	}{
		{topology.FragHeader, base, true}, {topology.FragHeader, firstFrag, true}, {topology.FragHeader, frag, false},
		{topology.FragNonHeader, frag, true}, {topology.FragNonHeader, base, false}, {topology.FragNonHeader, firstFrag, false},
		{topology.FragUnfragmented, base, true}, {topology.FragUnfragmented, firstFrag, false}, {topology.FragUnfragmented, frag, false},
	} {
		pol := f.pol
		tests = append(tests, tc{"fragment " + string(pol), func(c *topology.Condition, inv bool) { c.FragPolicy = pol }, f.frame, f.match})
	}
	// 802.1Q tag (not invertible either).
	tagged := func() []byte {
		return (&packet.Spec{EthSrc: mVM1, EthDst: mVM2, VLAN: 7, Src: a4("10.0.0.11"), Dst: a4("10.0.0.12"), Proto: packet.ProtoTCP, SrcPort: 1000, DstPort: 80}).Build()
	}
	vlan := func(c *topology.Condition, inv bool) { c.VLANTagged = true }
	tests = append(tests, tc{"vlan tagged", vlan, tagged, true}, tc{"vlan untagged", vlan, base, false})
	noInv := map[string]bool{"vlan tagged": true, "vlan untagged": true}
	for _, tt := range tests {
		for _, inv := range []bool{false, true} {
			if inv && (strings.HasPrefix(tt.name, "fragment ") || noInv[tt.name]) {
				continue
			}
			l := newLab()
			l.x.Put(&topology.PortGroup{Meta: topology.Meta{ID: "g-vm1"}, Ports: []string{"vm1"}})
			l.x.Put(&topology.PortGroup{Meta: topology.Meta{ID: "g-vm2"}, Ports: []string{"vm2", "l2up"}})
			l.x.Put(&topology.IPAddrGroup{Meta: topology.Meta{ID: "ipg-vm1"}, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.11")}})
			l.x.Put(&topology.IPAddrGroup{Meta: topology.Meta{ID: "ipg-vm2"}, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.12"), netip.MustParseAddr("10.0.0.99")}})
			var rule topology.Rule
			tt.cond(&rule.Condition, inv)
			rule.Action = topology.ActionDrop
			l.chain("c", rule)
			set(l, topology.KindBridge, "b1", func(b *topology.Bridge) { b.OutFilter = "c" })
			r := l.runner(t)
			res := r.send("vm1", tt.frame())
			dropped := res.Verdict == VerdictDrop
			if dropped != (tt.match != inv) {
				t.Errorf("%s (inverted %v): verdict %s, want match=%v\n%s", tt.name, inv, res.Verdict, tt.match != inv, FormatTrace(res.Trace))
			}
		}
	}
}

func TestChainActions(t *testing.T) {
	any := topology.Condition{}
	udp53 := topology.Condition{NwProto: u8(17), TpDst: &topology.PortRange{Start: 53, End: 53}}
	tests := []struct {
		name   string
		chains map[string][]topology.Rule
		want   Verdict
	}{
		{"accept stops", map[string][]topology.Rule{"main": {{Action: topology.ActionAccept}, {Action: topology.ActionDrop}}}, VerdictForward},
		{"drop", map[string][]topology.Rule{"main": {{Condition: udp53, Action: topology.ActionDrop}}}, VerdictDrop},
		{"continue goes on", map[string][]topology.Rule{"main": {{Action: topology.ActionContinue}, {Action: topology.ActionDrop}}}, VerdictDrop},
		{"fall off the end accepts", map[string][]topology.Rule{"main": {{Condition: topology.Condition{NwProto: u8(6)}, Action: topology.ActionDrop}}}, VerdictForward},
		{"jump then drop there", map[string][]topology.Rule{"main": {{Action: topology.ActionJump, JumpChain: "sub"}, {Action: topology.ActionAccept}}, "sub": {{Action: topology.ActionDrop}}}, VerdictDrop},
		{"return resumes caller", map[string][]topology.Rule{"main": {{Action: topology.ActionJump, JumpChain: "sub"}, {Action: topology.ActionDrop}}, "sub": {{Action: topology.ActionReturn}, {Action: topology.ActionAccept}}}, VerdictDrop},
		{"end of jumped chain resumes caller", map[string][]topology.Rule{"main": {{Action: topology.ActionJump, JumpChain: "sub"}, {Action: topology.ActionDrop}}, "sub": {{Condition: topology.Condition{NwProto: u8(6)}, Action: topology.ActionAccept}}}, VerdictDrop},
		{"accept in jumped chain is final", map[string][]topology.Rule{"main": {{Action: topology.ActionJump, JumpChain: "sub"}, {Action: topology.ActionDrop}}, "sub": {{Condition: any, Action: topology.ActionAccept}}}, VerdictForward},
		{"jump cycle is cut", map[string][]topology.Rule{"main": {{Action: topology.ActionJump, JumpChain: "main"}}}, VerdictDrop},
		{"reject on a bridge drops silently", map[string][]topology.Rule{"main": {{Action: topology.ActionReject}}}, VerdictDrop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab()
			for id, rs := range tt.chains {
				l.chain(id, rs...)
			}
			set(l, topology.KindPort, "vm1", func(p *topology.Port) { p.InFilter = "main" })
			r := l.runner(t)
			res := r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1000, 53))
			if res.Verdict != tt.want {
				t.Errorf("verdict %s, want %s\n%s", res.Verdict, tt.want, FormatTrace(res.Trace))
			}
			if tt.name == "reject on a bridge drops silently" && len(res.Generated) != 0 {
				t.Error("generated a packet")
			}
		})
	}
}

// TestConntrackSecurityGroup models a stateful security group on vm3's port:
// it accepts return flows, and new inbound connections only to port 22.
func TestConntrackSecurityGroup(t *testing.T) {
	l := newLab()
	l.chain("sg-in",
		topology.Rule{Condition: topology.Condition{MatchReturnFlow: true}, Action: topology.ActionAccept},
		topology.Rule{Condition: topology.Condition{NwProto: u8(6), TpDst: &topology.PortRange{Start: 22, End: 22}}, Action: topology.ActionAccept},
		topology.Rule{Condition: topology.Condition{EtherType: packet.EtherTypeARP}, Action: topology.ActionAccept},
		topology.Rule{Action: topology.ActionDrop},
	)
	// Outbound from vm3: everything goes, and opens connections.
	l.chain("sg-out", topology.Rule{Condition: topology.Condition{MatchForwardFlow: true}, Action: topology.ActionAccept})
	set(l, topology.KindPort, "vm3", func(p *topology.Port) { p.OutFilter, p.InFilter = "sg-in", "sg-out" })
	r := l.runner(t)
	// New inbound to port 80: dropped. To 22: accepted.
	res := r.send("vm1", tcp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 5000, 80))
	r.expect(res, VerdictDrop)
	// The drop depended on the absence of vm3's connection from port 80:
	// its key's tag lets the agent invalidate the drop when it appears.
	rev := packet.Key{Zone: uint64(flow.TagOf("port", "vm3")), Src: a4("10.0.1.13"), Dst: a4("10.0.0.11"), SrcPort: 80, DstPort: 5000, Proto: packet.ProtoTCP}
	if !containsTag(res.Tags, flow.KeyTag(rev)) {
		t.Error("drop does not carry the conntrack key's tag")
	}
	r.expect(r.send("vm1", tcp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 5000, 22)), VerdictForward, "vm3")
	// vm3 opens a UDP "connection" to vm1:53; the reply is a return flow.
	res = r.send("vm3", udp(mVM3, mR2, "10.0.1.13", "10.0.0.11", 4444, 53))
	r.expect(res, VerdictForward, "vm1")
	if len(res.Conns) != 1 {
		t.Fatalf("conns %+v", res.Conns)
	}
	res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 53, 4444))
	r.expect(res, VerdictForward, "vm3")
	if len(res.Conns) != 0 {
		t.Errorf("return flow opened a connection: %+v", res.Conns)
	}
	// A different source port is not a return flow.
	r.expect(r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 54, 4444)), VerdictDrop)
	// An ICMP error about vm3's connection is related: accepted.
	orig := udp(mVM3, mR2, "10.0.1.13", "10.0.0.11", 4444, 53)
	var op packet.Packet
	op.Decode(orig)
	// (vm1's own stack answers port unreachable.)
	errFrame := packet.BuildICMPError(orig, &op, mVM1, mR1, a4("10.0.0.11"), packet.ICMPUnreachable, 3, 0)
	r.expect(r.send("vm1", errFrame), VerdictForward, "vm3")
	// ICMP echo: vm3 pings vm1, the reply comes back in.
	r.expect(r.send("vm3", ping(mVM3, mR2, "10.0.1.13", "10.0.0.11", 900)), VerdictForward, "vm1")
	rep := (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("10.0.1.13"), Proto: packet.ProtoICMP, ICMPType: packet.ICMPEchoReply, SrcPort: 900}).Build()
	r.expect(r.send("vm1", rep), VerdictForward, "vm3")
	rep = (&packet.Spec{EthSrc: mVM1, EthDst: mR1, Src: a4("10.0.0.11"), Dst: a4("10.0.1.13"), Proto: packet.ProtoICMP, ICMPType: packet.ICMPEchoReply, SrcPort: 901}).Build()
	r.expect(r.send("vm1", rep), VerdictDrop)
	// Connections expire.
	r.opts.Now += DefaultStateTTL
	r.expect(r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 53, 4444)), VerdictDrop)
}

// A dropped packet does not open a connection.
func TestConntrackOnlyOnForward(t *testing.T) {
	l := newLab()
	l.chain("c", topology.Rule{Condition: topology.Condition{MatchForwardFlow: true}, Action: topology.ActionContinue}, topology.Rule{Action: topology.ActionDrop})
	set(l, topology.KindPort, "vm1", func(p *topology.Port) { p.InFilter = "c" })
	r := l.runner(t)
	res := r.send("vm1", udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1, 2))
	r.expect(res, VerdictDrop)
	if r.st.Conns() != 0 || len(res.Conns) != 0 {
		t.Error("a dropped packet opened a connection")
	}
	_ = flow.Forward
}
