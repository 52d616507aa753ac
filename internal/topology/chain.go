package topology

import (
	"fmt"
	"net/netip"
)

// Chain is an ordered list of rules, evaluated first to last. A packet that
// falls off the end of a chain continues (as if accepted by this chain).
type Chain struct {
	Meta
	Rules []Rule `json:"rules,omitempty"`
}

func (*Chain) Kind() Kind { return KindChain }

func (c *Chain) Refs() []Ref {
	var refs []Ref
	for i := range c.Rules {
		refs = append(refs, c.Rules[i].refs(fmt.Sprintf("rules[%d]", i))...)
	}
	return refs
}

func (*Chain) Unref(string, string) {}

// RuleIndex returns the position of the rule with the given id, or -1.
func (c *Chain) RuleIndex(id string) int {
	for i := range c.Rules {
		if c.Rules[i].ID == id {
			return i
		}
	}
	return -1
}

// Action is what a matching rule does.
type Action string

const (
	ActionAccept   Action = "accept"   // stop evaluating; the packet goes on
	ActionDrop     Action = "drop"     // drop silently
	ActionReject   Action = "reject"   // drop with an ICMP administratively-prohibited error
	ActionContinue Action = "continue" // go on with the next rule
	ActionJump     Action = "jump"     // evaluate JumpChain; on its end or a return, go on here
	ActionReturn   Action = "return"   // leave this chain; the caller goes on with its next rule
	ActionDNAT     Action = "dnat"     // rewrite destination to a NAT target, then accept
	ActionSNAT     Action = "snat"     // rewrite source to a NAT target, then accept
	ActionRevDNAT  Action = "rev_dnat" // undo a DNAT on return traffic
	ActionRevSNAT  Action = "rev_snat" // undo an SNAT on return traffic
)

// Actions lists every action.
var Actions = []Action{ActionAccept, ActionDrop, ActionReject, ActionContinue, ActionJump, ActionReturn, ActionDNAT, ActionSNAT, ActionRevDNAT, ActionRevSNAT}

// Rule is a condition and an action.
type Rule struct {
	ID string `json:"id"`
	Condition
	Action    Action `json:"action"`
	JumpChain string `json:"jump_chain,omitempty"` // for ActionJump
	// NATTargets are for ActionDNAT and ActionSNAT. A target whose port range
	// is 0..0 is a stateless 1:1 rewrite (elastic IP); with a port range the
	// rewrite is stateful (PAT), tracked per connection.
	NATTargets []NATTarget `json:"nat_targets,omitempty"`
}

// NATTarget is an address range and a port range to translate to.
type NATTarget struct {
	AddrFrom netip.Addr `json:"addr_from"`
	AddrTo   netip.Addr `json:"addr_to"`
	PortFrom uint16     `json:"port_from,omitempty"`
	PortTo   uint16     `json:"port_to,omitempty"`
}

// Stateless reports whether the target is a 1:1 rewrite without ports.
func (t NATTarget) Stateless() bool { return t.PortFrom == 0 && t.PortTo == 0 }

func (r *Rule) refs(field string) []Ref {
	var refs []Ref
	add := func(f string, k Kind, id string) {
		if id != "" {
			refs = append(refs, Ref{Field: field + "." + f, Kind: k, ID: id})
		}
	}
	add("jump_chain", KindChain, r.JumpChain)
	for i, p := range r.InPorts {
		add(fmt.Sprintf("in_ports[%d]", i), KindPort, p)
	}
	for i, p := range r.OutPorts {
		add(fmt.Sprintf("out_ports[%d]", i), KindPort, p)
	}
	add("in_port_group", KindPortGroup, r.InPortGroup)
	add("out_port_group", KindPortGroup, r.OutPortGroup)
	add("ip_group_src", KindIPGroup, r.IPGroupSrc)
	add("ip_group_dst", KindIPGroup, r.IPGroupDst)
	return refs
}

// FragmentPolicy restricts a rule to fragments of a kind.
type FragmentPolicy string

const (
	FragAny          FragmentPolicy = ""             // any packet
	FragHeader       FragmentPolicy = "header"       // unfragmented packets and first fragments (they carry L4 headers)
	FragNonHeader    FragmentPolicy = "nonheader"    // later fragments only (no L4 header)
	FragUnfragmented FragmentPolicy = "unfragmented" // unfragmented packets only
)

// PortRange is an inclusive L4 port range.
type PortRange struct {
	Start uint16 `json:"start"`
	End   uint16 `json:"end"`
}

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.Start && p <= r.End }

// Condition selects packets. Every set field must match (logical and); an
// unset field matches everything. Each field has an Inv twin that inverts it.
type Condition struct {
	InPorts         []string `json:"in_ports,omitempty"`
	InvInPorts      bool     `json:"inv_in_ports,omitempty"`
	OutPorts        []string `json:"out_ports,omitempty"`
	InvOutPorts     bool     `json:"inv_out_ports,omitempty"`
	InPortGroup     string   `json:"in_port_group,omitempty"`
	InvInPortGroup  bool     `json:"inv_in_port_group,omitempty"`
	OutPortGroup    string   `json:"out_port_group,omitempty"`
	InvOutPortGroup bool     `json:"inv_out_port_group,omitempty"`

	EtherType    uint16 `json:"ether_type,omitempty"`
	InvEtherType bool   `json:"inv_ether_type,omitempty"`
	SrcMAC       MAC    `json:"src_mac,omitzero"`
	SrcMACMask   MAC    `json:"src_mac_mask,omitzero"` // zero with SrcMAC set = exact match
	InvSrcMAC    bool   `json:"inv_src_mac,omitempty"`
	DstMAC       MAC    `json:"dst_mac,omitzero"`
	DstMACMask   MAC    `json:"dst_mac_mask,omitzero"`
	InvDstMAC    bool   `json:"inv_dst_mac,omitempty"`
	// VLANTagged matches frames that carry an 802.1Q tag.
	VLANTagged bool `json:"vlan_tagged,omitempty"`
	// ARPSenderMAC matches an ARP packet's sender hardware address (a
	// non-ARP packet never matches it): with InvARPSenderMAC, the
	// anti-spoofing of ARP's own MAC field, which the Ethernet source
	// check does not cover.
	ARPSenderMAC    MAC  `json:"arp_sender_mac,omitzero"`
	InvARPSenderMAC bool `json:"inv_arp_sender_mac,omitempty"`

	NwSrc         netip.Prefix   `json:"nw_src,omitzero"`
	InvNwSrc      bool           `json:"inv_nw_src,omitempty"`
	NwDst         netip.Prefix   `json:"nw_dst,omitzero"`
	InvNwDst      bool           `json:"inv_nw_dst,omitempty"`
	IPGroupSrc    string         `json:"ip_group_src,omitempty"`
	InvIPGroupSrc bool           `json:"inv_ip_group_src,omitempty"`
	IPGroupDst    string         `json:"ip_group_dst,omitempty"`
	InvIPGroupDst bool           `json:"inv_ip_group_dst,omitempty"`
	NwProto       *uint8         `json:"nw_proto,omitempty"`
	InvNwProto    bool           `json:"inv_nw_proto,omitempty"`
	NwTOS         *uint8         `json:"nw_tos,omitempty"`
	InvNwTOS      bool           `json:"inv_nw_tos,omitempty"`
	FragPolicy    FragmentPolicy `json:"fragment_policy,omitempty"`

	TpSrc       *PortRange `json:"tp_src,omitempty"`
	InvTpSrc    bool       `json:"inv_tp_src,omitempty"`
	TpDst       *PortRange `json:"tp_dst,omitempty"`
	InvTpDst    bool       `json:"inv_tp_dst,omitempty"`
	ICMPType    *uint8     `json:"icmp_type,omitempty"`
	InvICMPType bool       `json:"inv_icmp_type,omitempty"`
	ICMPCode    *uint8     `json:"icmp_code,omitempty"`
	InvICMPCode bool       `json:"inv_icmp_code,omitempty"`

	// Connection tracking: MatchForwardFlow matches packets of the direction
	// that opened the connection, MatchReturnFlow the other direction. They
	// invert each other, so no Inv twin is needed.
	MatchForwardFlow bool `json:"match_forward_flow,omitempty"`
	MatchReturnFlow  bool `json:"match_return_flow,omitempty"`
}

// IPAddrGroup is a named set of addresses, used in rule conditions (a VPC
// security group referenced by another group's rule becomes one).
type IPAddrGroup struct {
	Meta
	Addresses []netip.Addr `json:"addresses,omitempty"`
}

func (*IPAddrGroup) Kind() Kind           { return KindIPGroup }
func (*IPAddrGroup) Refs() []Ref          { return nil }
func (*IPAddrGroup) Unref(string, string) {}

// PortGroup is a named set of ports, used in rule conditions. A stateful port
// group shares connection-tracking and NAT state among its members (several
// uplinks of one edge router).
type PortGroup struct {
	Meta
	Stateful bool     `json:"stateful,omitempty"`
	Ports    []string `json:"ports,omitempty"`
}

func (*PortGroup) Kind() Kind { return KindPortGroup }

func (g *PortGroup) Refs() []Ref {
	refs := make([]Ref, 0, len(g.Ports))
	for i, p := range g.Ports {
		refs = append(refs, Ref{Field: fmt.Sprintf("ports[%d]", i), Kind: KindPort, ID: p, OnDelete: Clear})
	}
	return refs
}

func (g *PortGroup) Unref(_ string, id string) {
	out := g.Ports[:0]
	for _, p := range g.Ports {
		if p != id {
			out = append(out, p)
		}
	}
	g.Ports = out
}
