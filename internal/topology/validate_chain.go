package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// --- chains and rules ---

func (c *Chain) Validate() error {
	if err := validateMeta(&c.Meta); err != nil {
		return err
	}
	ids := map[string]int{}
	for i := range c.Rules {
		r := &c.Rules[i]
		f := index("rules", i)
		if err := validateRefID(at(f, "id"), r.ID, true); err != nil {
			return err
		}
		if j, dup := ids[r.ID]; dup {
			return fieldErr(at(f, "id"), "%s is already the id of rules[%d]", r.ID, j)
		}
		ids[r.ID] = i
		if err := r.validate(f); err != nil {
			return err
		}
	}
	return nil
}

func (r *Rule) validate(f string) error {
	if !slices.Contains(Actions, r.Action) {
		if r.Action == "" {
			return fieldErr(at(f, "action"), "is required (%s)", actionList())
		}
		return fieldErr(at(f, "action"), "%q is not an action (%s)", r.Action, actionList())
	}
	if r.Action == ActionJump {
		if err := validateRefID(at(f, "jump_chain"), r.JumpChain, true); err != nil {
			return err
		}
	} else if r.JumpChain != "" {
		return fieldErr(at(f, "jump_chain"), "only a jump rule has a jump_chain (this rule's action is %s)", r.Action)
	}
	if r.Action == ActionDNAT || r.Action == ActionSNAT {
		if len(r.NATTargets) == 0 {
			return fieldErr(at(f, "nat_targets"), "a %s rule needs at least one NAT target", r.Action)
		}
		for i, t := range r.NATTargets {
			if err := t.validate(index(at(f, "nat_targets"), i)); err != nil {
				return err
			}
		}
	} else if len(r.NATTargets) > 0 {
		return fieldErr(at(f, "nat_targets"), "only dnat and snat rules have NAT targets (this rule's action is %s)", r.Action)
	}
	return r.Condition.validate(f)
}

func actionList() string {
	s := make([]string, len(Actions))
	for i, a := range Actions {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func (t NATTarget) validate(f string) error {
	if err := validateAddr4(at(f, "addr_from"), t.AddrFrom, true); err != nil {
		return err
	}
	if err := validateAddr4(at(f, "addr_to"), t.AddrTo, true); err != nil {
		return err
	}
	if t.AddrFrom.Compare(t.AddrTo) > 0 {
		return fieldErr(at(f, "addr_to"), "address range %s-%s is reversed (addr_from > addr_to)", t.AddrFrom, t.AddrTo)
	}
	if (t.PortFrom == 0) != (t.PortTo == 0) {
		return fieldErr(at(f, "port_to"), "port range %d-%d: set both ports (stateful PAT) or neither (1:1 NAT)", t.PortFrom, t.PortTo)
	}
	if t.PortFrom > t.PortTo {
		return fieldErr(at(f, "port_to"), "port range %d-%d is reversed (port_from > port_to)", t.PortFrom, t.PortTo)
	}
	return nil
}

// IP protocol numbers rules care about.
const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

func (c *Condition) validate(f string) error {
	if err := validateIDList(at(f, "in_ports"), c.InPorts); err != nil {
		return err
	}
	if err := validateIDList(at(f, "out_ports"), c.OutPorts); err != nil {
		return err
	}
	for _, ref := range []struct{ name, id string }{
		{"in_port_group", c.InPortGroup}, {"out_port_group", c.OutPortGroup},
		{"ip_group_src", c.IPGroupSrc}, {"ip_group_dst", c.IPGroupDst},
	} {
		if err := validateRefID(at(f, ref.name), ref.id, false); err != nil {
			return err
		}
	}
	if err := c.validateInversions(f); err != nil {
		return err
	}
	if c.EtherType != 0 && c.EtherType < 0x0600 {
		return fieldErr(at(f, "ether_type"), "0x%04x is an 802.3 length, not an EtherType (at least 0x0600)", c.EtherType)
	}
	if err := validateMACMatch(f, "src_mac", c.SrcMAC, c.SrcMACMask); err != nil {
		return err
	}
	if err := validateMACMatch(f, "dst_mac", c.DstMAC, c.DstMACMask); err != nil {
		return err
	}
	if err := validatePrefix4(at(f, "nw_src"), c.NwSrc, false); err != nil {
		return err
	}
	if err := validatePrefix4(at(f, "nw_dst"), c.NwDst, false); err != nil {
		return err
	}
	switch c.FragPolicy {
	case FragAny, FragHeader, FragNonHeader, FragUnfragmented:
	default:
		return fieldErr(at(f, "fragment_policy"), "%q is not a fragment policy (header, nonheader, unfragmented, or empty for any)", c.FragPolicy)
	}
	if err := c.validateL4(f); err != nil {
		return err
	}
	if c.MatchForwardFlow && c.MatchReturnFlow {
		return fieldErr(at(f, "match_return_flow"), "cannot be set with match_forward_flow: a packet is in one direction of its connection")
	}
	return nil
}

// validateInversions refuses an inv_X flag without X: it would invert a
// match-everything condition into match-nothing, which is never meant.
func (c *Condition) validateInversions(f string) error {
	for _, x := range []struct {
		field    string
		inv, set bool
	}{
		{"in_ports", c.InvInPorts, len(c.InPorts) > 0},
		{"out_ports", c.InvOutPorts, len(c.OutPorts) > 0},
		{"in_port_group", c.InvInPortGroup, c.InPortGroup != ""},
		{"out_port_group", c.InvOutPortGroup, c.OutPortGroup != ""},
		{"ether_type", c.InvEtherType, c.EtherType != 0},
		{"src_mac", c.InvSrcMAC, !c.SrcMAC.IsZero()},
		{"dst_mac", c.InvDstMAC, !c.DstMAC.IsZero()},
		{"arp_sender_mac", c.InvARPSenderMAC, !c.ARPSenderMAC.IsZero()},
		{"nw_src", c.InvNwSrc, c.NwSrc != (netip.Prefix{})},
		{"nw_dst", c.InvNwDst, c.NwDst != (netip.Prefix{})},
		{"ip_group_src", c.InvIPGroupSrc, c.IPGroupSrc != ""},
		{"ip_group_dst", c.InvIPGroupDst, c.IPGroupDst != ""},
		{"nw_proto", c.InvNwProto, c.NwProto != nil},
		{"nw_tos", c.InvNwTOS, c.NwTOS != nil},
		{"tp_src", c.InvTpSrc, c.TpSrc != nil},
		{"tp_dst", c.InvTpDst, c.TpDst != nil},
		{"icmp_type", c.InvICMPType, c.ICMPType != nil},
		{"icmp_code", c.InvICMPCode, c.ICMPCode != nil},
	} {
		if x.inv && !x.set {
			return fieldErr(at(f, "inv_"+x.field), "is set but %s is not: there is nothing to invert", x.field)
		}
	}
	return nil
}

func validateMACMatch(f, name string, mac, mask MAC) error {
	if mask.IsZero() {
		return nil
	}
	if mac.IsZero() {
		return fieldErr(at(f, name+"_mask"), "is set but %s is not", name)
	}
	for i := range mac {
		if mac[i]&^mask[i] != 0 {
			return fieldErr(at(f, name), "%s has bits outside %s_mask %s, so it can never match", mac, name, mask)
		}
	}
	return nil
}

// validateL4 checks the transport fields against the protocol they need.
func (c *Condition) validateL4(f string) error {
	proto := -1
	if c.NwProto != nil && !c.InvNwProto {
		proto = int(*c.NwProto)
	}
	for _, pr := range []struct {
		name string
		r    *PortRange
	}{{"tp_src", c.TpSrc}, {"tp_dst", c.TpDst}} {
		if pr.r == nil {
			continue
		}
		ff := at(f, pr.name)
		if pr.r.Start > pr.r.End {
			return fieldErr(ff, "port range %d-%d is reversed (start > end)", pr.r.Start, pr.r.End)
		}
		if proto != protoTCP && proto != protoUDP && proto != protoSCTP {
			return fieldErr(ff, "ports need nw_proto tcp (6), udp (17) or sctp (132), %s", protoDesc(c))
		}
		if c.FragPolicy == FragNonHeader {
			return fieldErr(ff, "cannot match ports with fragment_policy nonheader: later fragments carry no L4 header")
		}
	}
	for _, x := range []struct {
		name string
		v    *uint8
	}{{"icmp_type", c.ICMPType}, {"icmp_code", c.ICMPCode}} {
		if x.v == nil {
			continue
		}
		if proto != protoICMP {
			return fieldErr(at(f, x.name), "needs nw_proto icmp (1), %s", protoDesc(c))
		}
		if c.FragPolicy == FragNonHeader {
			return fieldErr(at(f, x.name), "cannot match ICMP fields with fragment_policy nonheader: later fragments carry no ICMP header")
		}
	}
	return nil
}

func protoDesc(c *Condition) string {
	switch {
	case c.NwProto == nil:
		return "but nw_proto is not set"
	case c.InvNwProto:
		return "but nw_proto is inverted"
	default:
		return fmt.Sprintf("not %d", *c.NwProto)
	}
}
