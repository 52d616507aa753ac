package sim

import (
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

type chain struct {
	id, name string
	tag      flow.Tag
	rules    []rule
	// src is the object compiled: a later snapshot (WithPrevious) reuses
	// the rules while the replica holds the same object.
	src *topology.Chain
}

// cond bits: which conditions a compiled rule carries.
const (
	cInPorts uint32 = 1 << iota
	cOutPorts
	cInGroup
	cOutGroup
	cEtherType
	cSrcMAC
	cDstMAC
	cNwSrc
	cNwDst
	cIPGroupSrc
	cIPGroupDst
	cProto
	cTOS
	cFrag
	cTpSrc
	cTpDst
	cICMPType
	cICMPCode
	cFwdFlow
	cRetFlow
	cVLAN
	cARPSHA
)

type rule struct {
	id     string
	tag    flow.Tag
	conds  uint32
	inv    uint32 // bits of conds that are inverted
	action topology.Action
	jump   int32
	nat    []flow.Target
	// stateless: every NAT target is 0..0 (a 1:1 rewrite, no state)
	stateless bool

	inPorts, outPorts       []int32
	inGroup, outGroup       int32
	etherType               uint16
	srcMAC, srcMask         [6]byte
	dstMAC, dstMask         [6]byte
	arpSHA                  [6]byte
	nwSrc, nwSrcMask        uint32
	nwDst, nwDstMask        uint32
	ipgSrc, ipgDst          map[uint32]struct{}
	proto, tos              uint8
	frag                    topology.FragmentPolicy
	tpSrc, tpDst            topology.PortRange
	icmpType, icmpCode      uint8
	ipgSrcTag, ipgDstTag    flow.Tag
	inGroupTag, outGroupTag flow.Tag
}

func (s *Snapshot) compileChains(r topology.Reader, groupIdx map[string]int32, prev *Snapshot) {
	s.chains = make([]chain, s.nChains)
	groups := r.List(topology.KindIPGroup)
	s.ipgObj = make(map[string]*topology.IPAddrGroup, len(groups))
	s.ipgSet = make(map[string]map[uint32]struct{}, len(groups))
	for _, o := range groups {
		g := o.(*topology.IPAddrGroup)
		s.ipgObj[g.ID] = g
		if prev != nil && prev.ipgObj[g.ID] == g {
			s.ipgSet[g.ID] = prev.ipgSet[g.ID]
			continue
		}
		m := make(map[uint32]struct{}, len(g.Addresses))
		for _, a := range g.Addresses {
			if a.Is4() {
				m[packet.U32(a)] = struct{}{}
			}
		}
		s.ipgSet[g.ID] = m
	}
	for _, o := range r.List(topology.KindChain) {
		c := o.(*topology.Chain)
		ci := s.chainIx[c.ID]
		if prev != nil {
			if pi, ok := prev.chainIx[c.ID]; ok && s.reusable(&prev.chains[pi], c, groupIdx, prev) {
				s.chains[ci] = prev.chains[pi]
				s.reused++
				continue
			}
		}
		sc := chain{id: c.ID, name: c.Name, tag: flow.TagOf(string(topology.KindChain), c.ID), src: c,
			rules: make([]rule, len(c.Rules))}
		for i := range c.Rules {
			s.compileRule(&sc.rules[i], &c.Rules[i], groupIdx)
		}
		s.chains[ci] = sc
	}
}

// reusable reports whether pc, compiled by prev, is what compiling c would
// give in s: the same object, and every snapshot-local number its rules
// hold (ports, port groups, the jump's chain) and every IP address set
// they share the same in s as in prev.
func (s *Snapshot) reusable(pc *chain, c *topology.Chain, groupIdx map[string]int32, prev *Snapshot) bool {
	if pc.src != c || len(pc.rules) != len(c.Rules) {
		return false
	}
	for i := range c.Rules {
		tr, r := &c.Rules[i], &pc.rules[i]
		cd := &tr.Condition
		switch {
		case len(cd.InPorts) > 0 && !s.samePorts(cd.InPorts, r.inPorts),
			len(cd.OutPorts) > 0 && !s.samePorts(cd.OutPorts, r.outPorts),
			cd.InPortGroup != "" && lookupOr(groupIdx, cd.InPortGroup) != r.inGroup,
			cd.OutPortGroup != "" && lookupOr(groupIdx, cd.OutPortGroup) != r.outGroup,
			cd.IPGroupSrc != "" && s.ipgObj[cd.IPGroupSrc] != prev.ipgObj[cd.IPGroupSrc],
			cd.IPGroupDst != "" && s.ipgObj[cd.IPGroupDst] != prev.ipgObj[cd.IPGroupDst],
			tr.Action == topology.ActionJump && lookupOr(s.chainIx, tr.JumpChain) != r.jump:
			return false
		}
	}
	return true
}

// samePorts reports whether ids compile to compiled in s (the ids s holds,
// by their snapshot index, in order).
func (s *Snapshot) samePorts(ids []string, compiled []int32) bool {
	k := 0
	for _, id := range ids {
		i, ok := s.portIdx[id]
		if !ok {
			continue
		}
		if k == len(compiled) || compiled[k] != i {
			return false
		}
		k++
	}
	return k == len(compiled)
}

func (s *Snapshot) compileRule(r *rule, tr *topology.Rule, groupIdx map[string]int32) {
	c := &tr.Condition
	ipg := s.ipgSet
	*r = rule{id: tr.ID, tag: flow.TagOf("rule", tr.ID), action: tr.Action, jump: none, inGroup: none, outGroup: none}
	set := func(bit uint32, inv bool) {
		r.conds |= bit
		if inv {
			r.inv |= bit
		}
	}
	ports := func(ids []string) []int32 {
		out := make([]int32, 0, len(ids))
		for _, id := range ids {
			if i, ok := s.portIdx[id]; ok {
				out = append(out, i)
			}
		}
		return out
	}
	if len(c.InPorts) > 0 {
		r.inPorts = ports(c.InPorts)
		set(cInPorts, c.InvInPorts)
	}
	if len(c.OutPorts) > 0 {
		r.outPorts = ports(c.OutPorts)
		set(cOutPorts, c.InvOutPorts)
	}
	if c.InPortGroup != "" {
		r.inGroup = lookupOr(groupIdx, c.InPortGroup)
		r.inGroupTag = flow.TagOf(string(topology.KindPortGroup), c.InPortGroup)
		set(cInGroup, c.InvInPortGroup)
	}
	if c.OutPortGroup != "" {
		r.outGroup = lookupOr(groupIdx, c.OutPortGroup)
		r.outGroupTag = flow.TagOf(string(topology.KindPortGroup), c.OutPortGroup)
		set(cOutGroup, c.InvOutPortGroup)
	}
	if c.EtherType != 0 {
		r.etherType = c.EtherType
		set(cEtherType, c.InvEtherType)
	}
	if !c.SrcMAC.IsZero() || !c.SrcMACMask.IsZero() {
		r.srcMAC, r.srcMask = c.SrcMAC, macMask(c.SrcMACMask)
		set(cSrcMAC, c.InvSrcMAC)
	}
	if !c.DstMAC.IsZero() || !c.DstMACMask.IsZero() {
		r.dstMAC, r.dstMask = c.DstMAC, macMask(c.DstMACMask)
		set(cDstMAC, c.InvDstMAC)
	}
	if c.VLANTagged {
		set(cVLAN, false)
	}
	if !c.ARPSenderMAC.IsZero() {
		r.arpSHA = c.ARPSenderMAC
		set(cARPSHA, c.InvARPSenderMAC)
	}
	if a, m, ok := prefixOf(c.NwSrc); ok {
		r.nwSrc, r.nwSrcMask = a, m
		set(cNwSrc, c.InvNwSrc)
	}
	if a, m, ok := prefixOf(c.NwDst); ok {
		r.nwDst, r.nwDstMask = a, m
		set(cNwDst, c.InvNwDst)
	}
	if c.IPGroupSrc != "" {
		r.ipgSrc, r.ipgSrcTag = ipg[c.IPGroupSrc], flow.TagOf(string(topology.KindIPGroup), c.IPGroupSrc)
		set(cIPGroupSrc, c.InvIPGroupSrc)
	}
	if c.IPGroupDst != "" {
		r.ipgDst, r.ipgDstTag = ipg[c.IPGroupDst], flow.TagOf(string(topology.KindIPGroup), c.IPGroupDst)
		set(cIPGroupDst, c.InvIPGroupDst)
	}
	if c.NwProto != nil {
		r.proto = *c.NwProto
		set(cProto, c.InvNwProto)
	}
	if c.NwTOS != nil {
		r.tos = *c.NwTOS
		set(cTOS, c.InvNwTOS)
	}
	if c.FragPolicy != topology.FragAny {
		r.frag = c.FragPolicy
		set(cFrag, false)
	}
	if c.TpSrc != nil {
		r.tpSrc = *c.TpSrc
		set(cTpSrc, c.InvTpSrc)
	}
	if c.TpDst != nil {
		r.tpDst = *c.TpDst
		set(cTpDst, c.InvTpDst)
	}
	if c.ICMPType != nil {
		r.icmpType = *c.ICMPType
		set(cICMPType, c.InvICMPType)
	}
	if c.ICMPCode != nil {
		r.icmpCode = *c.ICMPCode
		set(cICMPCode, c.InvICMPCode)
	}
	if c.MatchForwardFlow {
		set(cFwdFlow, false)
	}
	if c.MatchReturnFlow {
		set(cRetFlow, false)
	}
	if tr.Action == topology.ActionJump {
		r.jump = lookupOr(s.chainIx, tr.JumpChain)
	}
	r.stateless = true
	for _, t := range tr.NATTargets {
		r.nat = append(r.nat, flow.Target{IPFrom: packet.U32(t.AddrFrom), IPTo: packet.U32(t.AddrTo), PortFrom: t.PortFrom, PortTo: t.PortTo})
		if !t.Stateless() {
			r.stateless = false
		}
	}
}

func lookupOr(m map[string]int32, id string) int32 {
	if i, ok := m[id]; ok {
		return i
	}
	return none
}

// macMask turns "no mask" into an exact-match mask.
func macMask(m topology.MAC) [6]byte {
	if m.IsZero() {
		return [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	return m
}

func maskedEq(a, b, m [6]byte) bool {
	for i := range 6 {
		if a[i]&m[i] != b[i]&m[i] {
			return false
		}
	}
	return true
}

func hasPort(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// matches evaluates every condition of r; each may be inverted.
func (c *ctx) matches(r *rule, p *packet.Packet, inPort, outPort int32, zone uint64) bool {
	// Fast rejection on the commonest plain conditions (address prefixes,
	// protocol) before the general loop: most rules of a long chain fail here.
	if plain := r.conds &^ r.inv; plain&(cNwSrc|cNwDst|cProto) != 0 && p.Flags&packet.FlagIPv4 != 0 {
		if plain&cNwSrc != 0 && p.Src&r.nwSrcMask != r.nwSrc {
			c.fields |= FieldEtherType | FieldIPSrc
			return false
		}
		if plain&cNwDst != 0 && p.Dst&r.nwDstMask != r.nwDst {
			c.fields |= FieldEtherType | FieldIPDst
			return false
		}
		if plain&cProto != 0 && p.Proto != r.proto {
			c.fields |= FieldEtherType | FieldProto
			return false
		}
	}
	for bits := r.conds; bits != 0; bits &= bits - 1 {
		bit := bits & -bits
		m := c.cond(r, bit, p, inPort, outPort, zone)
		if r.inv&bit != 0 {
			m = !m
		}
		if !m {
			return false
		}
	}
	return true
}

func (c *ctx) inGroup(port, group int32) bool {
	if port == none || group == none {
		return false
	}
	return hasPort(c.snap.ports[port].groups, group)
}

func (c *ctx) cond(r *rule, bit uint32, p *packet.Packet, inPort, outPort int32, zone uint64) bool {
	ip := p.Flags&packet.FlagIPv4 != 0
	l4 := p.Flags&packet.FlagL4 != 0
	switch bit {
	case cInPorts:
		c.fields |= FieldInPort
		return hasPort(r.inPorts, inPort)
	case cOutPorts:
		return hasPort(r.outPorts, outPort)
	case cInGroup:
		c.fields |= FieldInPort
		c.tag(r.inGroupTag)
		return c.inGroup(inPort, r.inGroup)
	case cOutGroup:
		c.tag(r.outGroupTag)
		return c.inGroup(outPort, r.outGroup)
	case cEtherType:
		c.fields |= FieldEtherType
		return p.EtherType == r.etherType
	case cSrcMAC:
		c.fields |= FieldEthSrc
		return maskedEq(p.EthSrc, r.srcMAC, r.srcMask)
	case cDstMAC:
		c.fields |= FieldEthDst
		return maskedEq(p.EthDst, r.dstMAC, r.dstMask)
	case cVLAN:
		c.fields |= FieldVLAN
		return p.Flags&packet.FlagVLAN != 0
	case cARPSHA:
		c.fields |= FieldEtherType | FieldARP
		return p.Flags&packet.FlagARP != 0 && p.ARPSHA == r.arpSHA
	case cNwSrc:
		c.fields |= FieldEtherType | FieldIPSrc
		return ip && p.Src&r.nwSrcMask == r.nwSrc
	case cNwDst:
		c.fields |= FieldEtherType | FieldIPDst
		return ip && p.Dst&r.nwDstMask == r.nwDst
	case cIPGroupSrc:
		c.fields |= FieldEtherType | FieldIPSrc
		c.tag(r.ipgSrcTag)
		if p.Flags&packet.FlagARP != 0 { // an ARP's sender address, as MidoNet matches it (anti-spoofing)
			_, ok := r.ipgSrc[p.ARPSPA]
			return ok
		}
		_, ok := r.ipgSrc[p.Src]
		return ip && ok
	case cIPGroupDst:
		c.fields |= FieldEtherType | FieldIPDst
		c.tag(r.ipgDstTag)
		if p.Flags&packet.FlagARP != 0 { // an ARP's target address
			_, ok := r.ipgDst[p.ARPTPA]
			return ok
		}
		_, ok := r.ipgDst[p.Dst]
		return ip && ok
	case cProto:
		c.fields |= FieldEtherType | FieldProto
		return ip && p.Proto == r.proto
	case cTOS:
		c.fields |= FieldEtherType | FieldTOS
		return ip && p.TOS == r.tos
	case cFrag:
		c.fields |= FieldEtherType | FieldFrag
		switch r.frag {
		case topology.FragHeader:
			return ip && p.FragOff == 0
		case topology.FragNonHeader:
			return ip && p.FragOff != 0
		case topology.FragUnfragmented:
			return ip && !p.IsFragment()
		}
		return true
	case cTpSrc:
		c.fields |= FieldEtherType | FieldProto | FieldFrag | FieldSrcPort
		return l4 && (p.Proto == packet.ProtoTCP || p.Proto == packet.ProtoUDP) && r.tpSrc.Contains(p.SrcPort)
	case cTpDst:
		c.fields |= FieldEtherType | FieldProto | FieldFrag | FieldDstPort
		return l4 && (p.Proto == packet.ProtoTCP || p.Proto == packet.ProtoUDP) && r.tpDst.Contains(p.DstPort)
	case cICMPType:
		c.fields |= FieldEtherType | FieldProto | FieldFrag | FieldICMPType
		return l4 && p.Proto == packet.ProtoICMP && p.ICMPType == r.icmpType
	case cICMPCode:
		c.fields |= FieldEtherType | FieldProto | FieldFrag | FieldICMPCode
		return l4 && p.Proto == packet.ProtoICMP && p.ICMPCode == r.icmpCode
	case cFwdFlow:
		return c.direction(p, zone) == flow.Forward
	case cRetFlow:
		return c.direction(p, zone) == flow.Return
	}
	return false
}

// chainVerdict is the outcome of running a chain.
type chainVerdict uint8

const (
	chainAccept chainVerdict = iota // accepted, or fell off the end
	chainDrop
	chainReject
)

// maxJumpDepth bounds jumps (a jump cycle in the topology ends here).
const maxJumpDepth = 16

// runChain evaluates chain ci against p (which NAT rules may rewrite).
// where is "port"/"router"/"bridge" filter context for the trace.
func (c *ctx) runChain(ci int32, p *packet.Packet, inPort, outPort int32, zone uint64, depth int) (chainVerdict, bool) {
	if ci == none {
		return chainAccept, false
	}
	ch := &c.snap.chains[ci]
	c.tag(ch.tag)
	if c.tracing {
		c.step(StepChain, ch.id, ch.name, "")
	}
	if depth > maxJumpDepth {
		if c.tracing {
			c.step(StepDrop, ch.id, ch.name, "jump depth exceeded")
		}
		return chainDrop, true
	}
	for i := range ch.rules {
		r := &ch.rules[i]
		if !c.matches(r, p, inPort, outPort, zone) {
			continue
		}
		c.tag(r.tag)
		if c.tracing && r.action != topology.ActionRevSNAT && r.action != topology.ActionRevDNAT {
			c.ruleStep(ch, i, r, "")
		}
		switch r.action {
		case topology.ActionAccept:
			return chainAccept, true
		case topology.ActionDrop:
			return chainDrop, true
		case topology.ActionReject:
			return chainReject, true
		case topology.ActionContinue:
		case topology.ActionReturn:
			return chainAccept, false
		case topology.ActionJump:
			v, decided := c.runChain(r.jump, p, inPort, outPort, zone, depth+1)
			if decided {
				return v, true
			}
		case topology.ActionSNAT, topology.ActionDNAT:
			if !c.forwardNAT(r, p, zone) {
				return chainDrop, true
			}
			return chainAccept, true
		case topology.ActionRevSNAT, topology.ActionRevDNAT:
			applied := c.reverseNAT(r, p, zone)
			if c.tracing {
				c.ruleStep(ch, i, r, map[bool]string{true: "translated back", false: "no translation, continue"}[applied])
			}
			if applied {
				return chainAccept, true
			}
		}
	}
	return chainAccept, false
}
