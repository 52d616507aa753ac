package topology

import (
	"net/netip"
	"testing"
)

// chainWith returns a valid chain of three rules (an accept, a jump and a
// PAT snat) with rule mod applied to the rule at index i.
func chainWith(i int, mod func(*Rule)) *Chain {
	c := &Chain{Meta: Meta{ID: "c1", Name: "sg-1 ingress"}, Rules: []Rule{
		{ID: "r0", Action: ActionAccept, Condition: Condition{
			NwProto: u8(6), TpDst: &PortRange{22, 22}, NwSrc: pfx("10.0.0.0/8"), MatchReturnFlow: false,
		}},
		{ID: "r1", Action: ActionJump, JumpChain: "c2", Condition: Condition{InPorts: []string{"p1", "p2"}}},
		{ID: "r2", Action: ActionSNAT, Condition: Condition{OutPortGroup: "pg1"}, NATTargets: []NATTarget{
			{AddrFrom: ip("198.51.100.1"), AddrTo: ip("198.51.100.1"), PortFrom: 1024, PortTo: 65535},
		}},
	}}
	if mod != nil {
		mod(&c.Rules[i])
	}
	return c
}

func TestValidateChain(t *testing.T) {
	tcp, udp, sctp, icmp, gre := u8(6), u8(17), u8(132), u8(1), u8(47)
	runValidate(t, []vcase{
		{"chain", chainWith(0, nil), "", ""},
		{"empty chain", &Chain{}, "", ""},
		{"udp ports", chainWith(0, func(r *Rule) { r.NwProto, r.TpSrc = udp, &PortRange{1024, 65535} }), "", ""},
		{"sctp ports", chainWith(0, func(r *Rule) { r.NwProto = sctp }), "", ""},
		{"icmp echo", chainWith(0, func(r *Rule) { r.NwProto, r.TpDst, r.ICMPType, r.ICMPCode = icmp, nil, u8(8), u8(0) }), "", ""},
		{"inverted everything", chainWith(1, func(r *Rule) {
			r.Condition = Condition{
				InPorts: []string{"p1"}, InvInPorts: true, OutPorts: []string{"p2"}, InvOutPorts: true,
				InPortGroup: "pg1", InvInPortGroup: true, OutPortGroup: "pg2", InvOutPortGroup: true,
				EtherType: 0x0800, InvEtherType: true,
				SrcMAC: mac("02:00:00:00:00:01"), InvSrcMAC: true, DstMAC: mac("01:00:00:00:00:00"), DstMACMask: mac("01:00:00:00:00:00"), InvDstMAC: true,
				NwSrc: pfx("10.0.0.0/8"), InvNwSrc: true, NwDst: pfx("10.1.0.0/16"), InvNwDst: true,
				IPGroupSrc: "ipg1", InvIPGroupSrc: true, IPGroupDst: "ipg2", InvIPGroupDst: true,
				NwProto: tcp, NwTOS: u8(0x10), InvNwTOS: true,
				TpSrc: &PortRange{1, 1023}, InvTpSrc: true, TpDst: &PortRange{80, 80}, InvTpDst: true,
				FragPolicy: FragHeader, MatchForwardFlow: true,
			}
		}), "", ""},
		{"dnat 1:1", chainWith(2, func(r *Rule) {
			r.Action, r.NATTargets = ActionDNAT, []NATTarget{{AddrFrom: ip("10.0.0.5"), AddrTo: ip("10.0.0.5")}}
		}), "", ""},
		{"rev_snat", chainWith(2, func(r *Rule) { r.Action, r.NATTargets = ActionRevSNAT, nil }), "", ""},

		{"empty rule id", chainWith(1, func(r *Rule) { r.ID = "" }), "rules[1].id", "is required"},
		{"dup rule id", chainWith(2, func(r *Rule) { r.ID = "r0" }), "rules[2].id", "r0 is already the id of rules[0]"},
		{"no action", chainWith(0, func(r *Rule) { r.Action = "" }), "rules[0].action", "is required (accept, drop"},
		{"bad action", chainWith(0, func(r *Rule) { r.Action = "allow" }), "rules[0].action", `"allow" is not an action`},
		{"jump without chain", chainWith(1, func(r *Rule) { r.JumpChain = "" }), "rules[1].jump_chain", "is required"},
		{"accept with jump chain", chainWith(0, func(r *Rule) { r.JumpChain = "c2" }), "rules[0].jump_chain", "only a jump rule has a jump_chain (this rule's action is accept)"},
		{"snat without targets", chainWith(2, func(r *Rule) { r.NATTargets = nil }), "rules[2].nat_targets", "a snat rule needs at least one NAT target"},
		{"rev_dnat with targets", chainWith(2, func(r *Rule) { r.Action = ActionRevDNAT }), "rules[2].nat_targets", "only dnat and snat rules have NAT targets (this rule's action is rev_dnat)"},
		{"accept with targets", chainWith(0, func(r *Rule) { r.NATTargets = chainWith(2, nil).Rules[2].NATTargets }), "rules[0].nat_targets", "action is accept"},
		{"nat addr missing", chainWith(2, func(r *Rule) { r.NATTargets[0].AddrFrom = netip.Addr{} }), "rules[2].nat_targets[0].addr_from", "is required"},
		{"nat addr v6", chainWith(2, func(r *Rule) { r.NATTargets[0].AddrTo = ip("2001:db8::1") }), "rules[2].nat_targets[0].addr_to", "not an IPv4 address"},
		{"nat addr reversed", chainWith(2, func(r *Rule) { r.NATTargets[0].AddrFrom = ip("198.51.100.9") }), "rules[2].nat_targets[0].addr_to", "address range 198.51.100.9-198.51.100.1 is reversed"},
		{"nat port reversed", chainWith(2, func(r *Rule) { r.NATTargets[0].PortFrom, r.NATTargets[0].PortTo = 2000, 1000 }), "rules[2].nat_targets[0].port_to", "port range 2000-1000 is reversed"},
		{"nat one port zero", chainWith(2, func(r *Rule) { r.NATTargets[0].PortTo = 0 }), "rules[2].nat_targets[0].port_to", "set both ports (stateful PAT) or neither"},
		{"nat second target", chainWith(2, func(r *Rule) {
			r.NATTargets = append(r.NATTargets, NATTarget{AddrFrom: ip("198.51.100.2"), AddrTo: ip("198.51.100.3"), PortFrom: 0, PortTo: 80})
		}), "rules[2].nat_targets[1].port_to", "set both ports"},

		{"reversed tp_dst", chainWith(0, func(r *Rule) { r.TpDst = &PortRange{80, 20} }), "rules[0].tp_dst", "port range 80-20 is reversed (start > end)"},
		{"reversed tp_src", chainWith(0, func(r *Rule) { r.TpSrc = &PortRange{65535, 1} }), "rules[0].tp_src", "port range 65535-1 is reversed"},
		{"ports without proto", chainWith(0, func(r *Rule) { r.NwProto = nil }), "rules[0].tp_dst", "ports need nw_proto tcp (6), udp (17) or sctp (132), but nw_proto is not set"},
		{"ports with gre", chainWith(0, func(r *Rule) { r.NwProto = gre }), "rules[0].tp_dst", "not 47"},
		{"ports with inverted proto", chainWith(0, func(r *Rule) { r.InvNwProto = true }), "rules[0].tp_dst", "nw_proto is inverted"},
		{"ports with icmp", chainWith(0, func(r *Rule) { r.NwProto = icmp }), "rules[0].tp_dst", "not 1"},
		{"ports on later fragments", chainWith(0, func(r *Rule) { r.FragPolicy = FragNonHeader }), "rules[0].tp_dst", "fragment_policy nonheader"},
		{"icmp type with tcp", chainWith(0, func(r *Rule) { r.TpDst, r.ICMPType = nil, u8(8) }), "rules[0].icmp_type", "needs nw_proto icmp (1), not 6"},
		{"icmp code without proto", chainWith(1, func(r *Rule) { r.ICMPCode = u8(3) }), "rules[1].icmp_code", "needs nw_proto icmp (1), but nw_proto is not set"},
		{"bad fragment policy", chainWith(1, func(r *Rule) { r.FragPolicy = "first" }), "rules[1].fragment_policy", `"first" is not a fragment policy`},
		{"forward and return", chainWith(1, func(r *Rule) { r.MatchForwardFlow, r.MatchReturnFlow = true, true }), "rules[1].match_return_flow", "cannot be set with match_forward_flow"},
		{"nw_src host bits", chainWith(0, func(r *Rule) { r.NwSrc = pfx("10.0.0.1/8") }), "rules[0].nw_src", `"10.0.0.1/8" has host bits set (the network is 10.0.0.0/8)`},
		{"nw_dst v6", chainWith(1, func(r *Rule) { r.NwDst = pfx("fd00::/8") }), "rules[1].nw_dst", "not an IPv4 prefix"},
		{"nw_dst invalid", chainWith(1, func(r *Rule) { r.NwDst = netip.PrefixFrom(ip("10.0.0.0"), 33) }), "rules[1].nw_dst", "is not a valid prefix"},
		{"ether type is a length", chainWith(1, func(r *Rule) { r.EtherType = 0x05dc }), "rules[1].ether_type", "0x05dc is an 802.3 length"},
		{"src mask without mac", chainWith(1, func(r *Rule) { r.SrcMACMask = mac("ff:ff:ff:00:00:00") }), "rules[1].src_mac_mask", "is set but src_mac is not"},
		{"dst mask without mac", chainWith(1, func(r *Rule) { r.DstMACMask = mac("01:00:00:00:00:00") }), "rules[1].dst_mac_mask", "is set but dst_mac is not"},
		{"mac outside mask", chainWith(1, func(r *Rule) {
			r.SrcMAC, r.SrcMACMask = mac("02:00:00:00:00:01"), mac("ff:ff:ff:00:00:00")
		}), "rules[1].src_mac", "has bits outside src_mac_mask"},
		{"in_ports empty id", chainWith(1, func(r *Rule) { r.InPorts = []string{"p1", ""} }), "rules[1].in_ports[1]", "is required"},
		{"in_ports dup", chainWith(1, func(r *Rule) { r.InPorts = []string{"p1", "p1"} }), "rules[1].in_ports[1]", "p1 is already rules[1].in_ports[0]"},
		{"out_ports bad id", chainWith(1, func(r *Rule) { r.OutPorts = []string{"p 1"} }), "rules[1].out_ports[0]", "not a valid id"},
		{"ip group bad id", chainWith(1, func(r *Rule) { r.IPGroupDst = "a/b" }), "rules[1].ip_group_dst", "not a valid id"},
	})
}

func TestValidateChainInversions(t *testing.T) {
	// Every inv_X without X names inv_X.
	invs := map[string]func(*Condition){
		"inv_in_ports":       func(c *Condition) { c.InvInPorts = true },
		"inv_out_ports":      func(c *Condition) { c.InvOutPorts = true },
		"inv_in_port_group":  func(c *Condition) { c.InvInPortGroup = true },
		"inv_out_port_group": func(c *Condition) { c.InvOutPortGroup = true },
		"inv_ether_type":     func(c *Condition) { c.InvEtherType = true },
		"inv_src_mac":        func(c *Condition) { c.InvSrcMAC = true },
		"inv_dst_mac":        func(c *Condition) { c.InvDstMAC = true },
		"inv_arp_sender_mac": func(c *Condition) { c.InvARPSenderMAC = true },
		"inv_nw_src":         func(c *Condition) { c.InvNwSrc = true },
		"inv_nw_dst":         func(c *Condition) { c.InvNwDst = true },
		"inv_ip_group_src":   func(c *Condition) { c.InvIPGroupSrc = true },
		"inv_ip_group_dst":   func(c *Condition) { c.InvIPGroupDst = true },
		"inv_nw_proto":       func(c *Condition) { c.InvNwProto = true },
		"inv_nw_tos":         func(c *Condition) { c.InvNwTOS = true },
		"inv_tp_src":         func(c *Condition) { c.InvTpSrc = true },
		"inv_tp_dst":         func(c *Condition) { c.InvTpDst = true },
		"inv_icmp_type":      func(c *Condition) { c.InvICMPType = true },
		"inv_icmp_code":      func(c *Condition) { c.InvICMPCode = true },
	}
	var cases []vcase
	for field, set := range invs {
		c := &Chain{Rules: []Rule{{ID: "a", Action: ActionDrop}, {ID: "b", Action: ActionDrop}}}
		set(&c.Rules[1].Condition)
		cases = append(cases, vcase{field, c, "rules[1]." + field, "is set but " + field[len("inv_"):] + " is not"})
	}
	runValidate(t, cases)
}
