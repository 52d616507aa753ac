package sim

import (
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func hasPorts(p *packet.Packet) bool {
	return p.Flags&packet.FlagL4 != 0 && (p.Proto == packet.ProtoTCP || p.Proto == packet.ProtoUDP || p.IsEcho())
}

// setSrc and setDst rewrite the working packet; for ICMP echo the id is both
// "ports".
func setSrc(p *packet.Packet, b flow.Binding) {
	p.Src = b.IP
	if hasPorts(p) {
		p.SrcPort = b.Port
		if p.IsEcho() {
			p.DstPort = b.Port
		}
	}
}

func setDst(p *packet.Packet, b flow.Binding) {
	p.Dst = b.IP
	if hasPorts(p) {
		p.DstPort = b.Port
		if p.IsEcho() {
			p.SrcPort = b.Port
		}
	}
}

func (c *ctx) natFields() {
	c.fields |= FieldEtherType | FieldIPSrc | FieldIPDst | FieldProto | FieldSrcPort | FieldDstPort | FieldICMPType | FieldFrag
}

// forwardNAT applies an SNAT or DNAT rule. It reports false when the packet
// must be dropped (no free port, or a fragment a stateful NAT cannot map).
func (c *ctx) forwardNAT(r *rule, p *packet.Packet, zone uint64) bool {
	if p.Flags&packet.FlagIPv4 == 0 || len(r.nat) == 0 {
		return true
	}
	c.natFields()
	kind := flow.SNAT
	if r.action == topology.ActionDNAT {
		kind = flow.DNAT
	}
	if r.stateless {
		// 1:1 NAT (elastic IP): the address only, no state. An ICMP error
		// leaving (SNAT) or entering (DNAT) also gets the quoted address
		// that is the same host.
		t := r.nat[0]
		a := t.IPFrom
		if n := t.IPTo - t.IPFrom; t.IPTo > t.IPFrom {
			a += uint32(packet.KeyOf(p, 0).Hash() % (uint64(n) + 1))
		}
		icmpErr := p.Flags&packet.FlagICMPError != 0
		if kind == flow.SNAT {
			if icmpErr && p.Inner.Dst == p.Src {
				p.Inner.Dst = a
			}
			p.Src = a
		} else {
			if icmpErr && p.Inner.Src == p.Dst {
				p.Inner.Src = a
			}
			p.Dst = a
		}
		c.traceNAT(kind, "1:1", p)
		return true
	}
	if p.Flags&packet.FlagICMPError != 0 {
		return true // errors follow their connection (rev rules), never allocate
	}
	if p.FragOff != 0 || c.st == nil {
		return false
	}
	targets := r.nat
	if !hasPorts(p) {
		// No ports to translate: map the address only.
		targets = make([]flow.Target, len(r.nat))
		for i, t := range r.nat {
			targets[i] = flow.Target{IPFrom: t.IPFrom, IPTo: t.IPTo}
		}
	}
	k := packet.KeyOf(p, zone)
	now := c.opts.Now
	_, existed := c.st.LookupNAT(kind, k, now)
	b, ok := c.st.AllocateNAT(kind, k, targets, now, now+ttlOr(c.opts.NATTTL))
	if !ok {
		c.drop("NAT targets exhausted")
		return false
	}
	if !existed {
		c.res.NATs = append(c.res.NATs, NATEntry{Kind: kind, Key: k, Binding: b})
	}
	c.ref(flow.Ref{Key: k, NAT: kind})
	if kind == flow.SNAT {
		setSrc(p, b)
	} else {
		setDst(p, b)
	}
	c.traceNAT(kind, "stateful", p)
	return true
}

// reverseNAT undoes a translation on return traffic, and for an ICMP error
// about a translated connection rewrites the quoted header too. It reports
// whether a translation applied.
func (c *ctx) reverseNAT(r *rule, p *packet.Packet, zone uint64) bool {
	if p.Flags&packet.FlagIPv4 == 0 || c.st == nil {
		return false
	}
	c.natFields()
	kind := flow.SNAT
	if r.action == topology.ActionRevDNAT {
		kind = flow.DNAT
	}
	now := c.opts.Now
	if p.Flags&packet.FlagICMPError != 0 {
		rk := packet.QuotedKey(p, zone).Reverse()
		c.tag(flow.KeyTag(rk))
		b, ok := c.st.ReverseNAT(kind, rk, now)
		if !ok {
			return false
		}
		c.ref(flow.Ref{Key: rk, NAT: kind, Reply: true})
		in := &p.Inner
		if kind == flow.SNAT {
			if p.Dst == in.Src {
				p.Dst = b.IP
			}
			in.Src, in.SrcPort = b.IP, b.Port
			if in.Proto == packet.ProtoICMP {
				in.DstPort = b.Port
			}
		} else {
			if p.Src == in.Dst {
				p.Src = b.IP
			}
			in.Dst, in.DstPort = b.IP, b.Port
			if in.Proto == packet.ProtoICMP {
				in.SrcPort = b.Port
			}
		}
		c.traceNAT(kind, "reverse, icmp error", p)
		return true
	}
	rk := packet.KeyOf(p, zone)
	c.tag(flow.KeyTag(rk))
	b, ok := c.st.ReverseNAT(kind, rk, now)
	if !ok {
		return false
	}
	c.ref(flow.Ref{Key: rk, NAT: kind, Reply: true})
	if kind == flow.SNAT {
		setDst(p, b)
	} else {
		setSrc(p, b)
	}
	c.traceNAT(kind, "reverse", p)
	return true
}

func (c *ctx) traceNAT(kind flow.NATKind, how string, p *packet.Packet) {
	if !c.tracing {
		return
	}
	k := map[flow.NATKind]string{flow.SNAT: "snat", flow.DNAT: "dnat"}[kind]
	c.step(StepNAT, "", "", k+" "+how+": now "+ip(p.Src)+" → "+ip(p.Dst))
}
