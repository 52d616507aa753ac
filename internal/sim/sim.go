package sim

import (
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// MaxDevices bounds the devices one simulation traverses (a forwarding loop
// in the topology ends here, as MidoNet's MaxDevicesTraversed).
const MaxDevices = 12

// maxVisits bounds the device visits of one simulation in all, floods
// included, so a topology with many paths cannot make a simulation explode.
const maxVisits = 256

// maxPending bounds the connections one simulation may open.
const maxPending = 8

// ctx is the state of one simulation; it lives on Simulate's stack.
type ctx struct {
	snap    *Snapshot
	st      *flow.State
	opts    *Options
	res     *Result
	frame   []byte
	orig    packet.Packet // as it arrived
	applied packet.Packet // as the actions emitted so far leave it
	fields  Fields
	tracing bool
	devices int // devices on the current path
	visits  int // device visits in all
	loop    bool
	depth   int // nesting of generated-packet walks

	outputs, answered int
	notYet            bool
	reason            string

	pending  [maxPending]packet.Key
	npending int
}

// Simulate walks the frame (decoded into pkt) that arrived on port ingress
// through the topology and fills res. st receives the connection and NAT
// state the walk creates; it may be nil when the topology has no stateful
// rules (a stateful rule then sees every packet as a new forward packet and
// NAT drops). Simulate never blocks, and on the known-MAC bridging path it
// does not allocate.
func Simulate(snap *Snapshot, st *flow.State, ingress string, frame []byte, pkt *packet.Packet, opts *Options, res *Result) {
	res.Reset()
	var c ctx
	c.init(snap, st, frame, pkt, opts, res)
	pi, ok := snap.portIdx[ingress]
	if !ok {
		c.drop("unknown ingress port")
		c.finish()
		return
	}
	p := *pkt
	c.fields |= FieldInPort
	c.ingress(pi, &p)
	c.finish()
}

func (c *ctx) init(snap *Snapshot, st *flow.State, frame []byte, pkt *packet.Packet, opts *Options, res *Result) {
	c.snap, c.st, c.opts, c.res, c.frame = snap, st, opts, res, frame
	c.orig, c.applied = *pkt, *pkt
	c.tracing = opts.Trace
}

func (c *ctx) finish() {
	r := c.res
	switch {
	case c.loop:
		r.Verdict = VerdictDrop
		r.Reason = "too many devices traversed"
	case c.notYet:
		r.Verdict = VerdictNotYet
		if r.Reason == "" {
			r.Reason = "next hop unresolved"
		}
	case c.outputs > 0:
		r.Verdict = VerdictForward
		r.Reason = ""
	case c.answered > 0:
		r.Verdict = VerdictConsumed
		r.Reason = ""
	default:
		r.Verdict = VerdictDrop
		if c.reason != "" {
			r.Reason = c.reason
		}
	}
	if r.Verdict == VerdictDrop || r.Verdict == VerdictNotYet {
		r.Actions = r.Actions[:0]
		r.Outputs = r.Outputs[:0]
	}
	r.Fields = c.fields
	// Connections open only when a packet actually went somewhere.
	if r.Verdict == VerdictForward && c.st != nil {
		for _, k := range c.pending[:c.npending] {
			if !c.st.Tracked(k, c.opts.Now) {
				r.Conns = append(r.Conns, k)
			}
			c.st.Track(k, c.opts.Now+ttlOr(c.opts.ConnTTL))
			c.ref(flow.Ref{Key: k})
		}
	}
	if c.tracing {
		c.step(StepVerdict, "", "", r.Verdict.String()+reasonSuffix(r.Reason))
	}
}

func reasonSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}

func ttlOr(t int64) int64 {
	if t <= 0 {
		return DefaultStateTTL
	}
	return t
}

func (c *ctx) drop(reason string) {
	if c.reason == "" {
		c.reason = reason
	}
	if c.tracing {
		c.step(StepDrop, "", "", reason)
	}
}

// ref records an entry the decision relied on, once.
func (c *ctx) ref(r flow.Ref) {
	for _, x := range c.res.Refs {
		if x == r {
			return
		}
	}
	c.res.Refs = append(c.res.Refs, r)
}

func (c *ctx) tag(t flow.Tag) {
	for _, x := range c.res.Tags {
		if x == t {
			return
		}
	}
	c.res.Tags = append(c.res.Tags, t)
}

// direction classifies p in zone, remembering forward keys to track if the
// packet ends up forwarded. ICMP errors belong to the connection they quote.
func (c *ctx) direction(p *packet.Packet, zone uint64) flow.Direction {
	c.fields |= FieldEtherType | FieldIPSrc | FieldIPDst | FieldProto | FieldSrcPort | FieldDstPort | FieldICMPType
	if p.Flags&packet.FlagIPv4 == 0 || c.st == nil {
		return flow.Forward
	}
	now := c.opts.Now
	if p.Flags&packet.FlagICMPError != 0 {
		qk := packet.QuotedKey(p, zone)
		c.tag(flow.KeyTag(qk))
		if c.st.Tracked(qk, now) {
			c.traceConn("icmp error related to a connection, return")
			c.ref(flow.Ref{Key: qk})
			return flow.Return
		}
		return flow.Forward // an error never opens a connection
	}
	k := packet.KeyOf(p, zone)
	c.tag(flow.KeyTag(k.Reverse())) // the entry whose existence decides
	if c.st.Classify(k, now) == flow.Return {
		c.traceConn("return flow")
		c.ref(flow.Ref{Key: k.Reverse()})
		return flow.Return
	}
	c.traceConn("forward flow")
	for _, x := range c.pending[:c.npending] {
		if x == k {
			return flow.Forward
		}
	}
	if c.npending < maxPending {
		c.pending[c.npending] = k
		c.npending++
	}
	return flow.Forward
}

// ingress runs a port's in-filter and hands the packet to its device.
func (c *ctx) ingress(pi int32, p *packet.Packet) {
	pt := &c.snap.ports[pi]
	c.tag(pt.tag)
	if c.tracing {
		c.step(StepPortIn, pt.id, pt.name, "")
	}
	if pt.down {
		c.drop("ingress port down")
		return
	}
	c.devices++
	c.visits++
	defer func() { c.devices-- }()
	if c.devices > MaxDevices || c.visits > maxVisits {
		c.loop = true
		c.drop("too many devices traversed")
		return
	}
	if v, _ := c.runChain(pt.in, p, pi, none, pt.zone, 0); v != chainAccept {
		c.chainDrop(v, pi, p, "port in-filter")
		return
	}
	d := &c.snap.devs[pt.dev]
	if d.router {
		c.router(pt.dev, pi, p)
	} else {
		c.bridge(pt.dev, pi, p)
	}
}

// egress runs a port's out-filter, then emits (exterior) or hands over to
// the peer (interior).
func (c *ctx) egress(pi, inPort int32, p *packet.Packet) {
	pt := &c.snap.ports[pi]
	c.tag(pt.tag)
	if c.tracing {
		c.step(StepPortOut, pt.id, pt.name, "")
	}
	if pt.down {
		c.drop("egress port down")
		return
	}
	if v, _ := c.runChain(pt.out, p, inPort, pi, pt.zone, 0); v != chainAccept {
		c.chainDrop(v, inPort, p, "port out-filter")
		return
	}
	switch {
	case pt.exterior:
		c.emit(pi, p)
	case pt.peer != none:
		c.ingress(pt.peer, p)
	default:
		c.drop("port not bound or linked")
	}
}

// chainDrop handles a drop or reject by a chain. When a router port received
// the packet, a reject answers with ICMP administratively prohibited and a
// dropped head fragment with fragmentation-needed.
func (c *ctx) chainDrop(v chainVerdict, inPort int32, p *packet.Packet, where string) {
	atRouter := inPort != none && c.snap.ports[inPort].hasAddr
	if v == chainReject {
		if atRouter {
			c.icmpError(inPort, p, packet.ICMPUnreachable, packet.ICMPCodeAdminProh, 0)
		}
		c.drop(where + " rejected")
		return
	}
	if atRouter && p.IsFragment() && p.IsHeaderFragment() {
		// As MidoNet's routers do: a dropped head fragment is answered
		// with fragmentation-needed, so the sender stops fragmenting
		// (bridges drop fragments silently). Answered per packet: no
		// drop flow is cached for it.
		c.res.Uncacheable = true
		c.icmpError(inPort, p, packet.ICMPUnreachable, packet.ICMPCodeFragNeeded, uint16(c.snap.ports[inPort].mtu))
	}
	c.drop(where + " dropped")
}

// emit records the packet leaving through exterior port pi: the header
// rewrites since the last output, then the output itself.
func (c *ctx) emit(pi int32, p *packet.Packet) {
	pt := &c.snap.ports[pi]
	r := c.res
	a := &c.applied
	if p.Flags&packet.FlagICMPError != 0 && p.Inner != c.orig.Inner || p.TTL > a.TTL {
		// The flow vocabulary cannot rewrite a quoted header or raise a
		// TTL: send this branch as a finished frame instead.
		c.emitFrame(pi, p)
		return
	}
	if p.EthSrc != a.EthSrc {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.SetEthSrc, MAC: p.EthSrc})
	}
	if p.EthDst != a.EthDst {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.SetEthDst, MAC: p.EthDst})
	}
	if p.Src != a.Src {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.SetIPSrc, IP: p.Src})
	}
	if p.Dst != a.Dst {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.SetIPDst, IP: p.Dst})
	}
	if p.SrcPort != a.SrcPort { // for ICMP echo this sets the id, both "ports"
		r.Actions = append(r.Actions, flow.Action{Kind: flow.SetSrcPort, Port: p.SrcPort})
	}
	if p.DstPort != a.DstPort && !p.IsEcho() {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.SetDstPort, Port: p.DstPort})
	}
	if p.TTL < a.TTL {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.DecTTL, Port: uint16(a.TTL - p.TTL)})
	}
	*a = *p
	if c.opts.LocalHost == "" || pt.host == c.opts.LocalHost {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.Output, Key: pt.tunnelKey})
	} else {
		r.Actions = append(r.Actions, flow.Action{Kind: flow.Tunnel, Key: pt.tunnelKey, Host: pt.host})
	}
	r.Outputs = append(r.Outputs, Output{PortID: pt.id, Host: pt.host, TunnelKey: pt.tunnelKey})
	c.outputs++
	if c.tracing {
		c.step(StepOutput, pt.id, pt.name, "host "+pt.host)
	}
}

// emitFrame sends this branch as a finished frame (slow path).
func (c *ctx) emitFrame(pi int32, p *packet.Packet) {
	pt := &c.snap.ports[pi]
	f := c.currentFrame(p)
	c.res.Generated = append(c.res.Generated, Generated{PortID: pt.id, Host: pt.host, TunnelKey: pt.tunnelKey, Frame: f, Reason: "rewritten"})
	c.res.Uncacheable = true
	c.outputs++
	if c.tracing {
		c.step(StepOutput, pt.id, pt.name, "rewritten frame, host "+pt.host)
	}
}

// currentFrame returns a copy of the ingress frame with every rewrite made so
// far on p applied, checksums right.
func (c *ctx) currentFrame(p *packet.Packet) []byte {
	f := append([]byte(nil), c.frame...)
	var q packet.Packet
	q.Decode(f)
	packet.SetEthSrc(f, &q, p.EthSrc)
	packet.SetEthDst(f, &q, p.EthDst)
	packet.SetIPSrc(f, &q, p.Src)
	packet.SetIPDst(f, &q, p.Dst)
	packet.SetSrcPort(f, &q, p.SrcPort)
	packet.SetDstPort(f, &q, p.DstPort)
	if p.TTL < q.TTL {
		packet.DecTTL(f, &q, q.TTL-p.TTL)
	}
	if q.Flags&packet.FlagICMPError != 0 && q.Inner != p.Inner {
		in := p.Inner
		packet.SetInner(f, &q, in.Src, in.Dst, in.SrcPort, in.DstPort)
	}
	return f
}

// send walks a packet a device generated out of port pi (toward its peer or
// host) and records where it ends up. It allocates: generated packets are
// the slow path.
func (c *ctx) send(pi int32, frame []byte, reason string, answer bool) {
	if answer {
		c.answered++
	}
	if c.depth >= 2 {
		return // an answer to an answer: stop here
	}
	var gp packet.Packet
	gp.Decode(frame)
	sub := &Result{}
	var s ctx
	s.init(c.snap, c.st, frame, &gp, c.opts, sub)
	s.depth = c.depth + 1
	s.devices = c.devices
	s.visits = c.visits
	s.tracing = false
	p := gp
	s.egress(pi, none, &p)
	s.finish()
	r := c.res
	r.Learned = append(r.Learned, sub.Learned...)
	if c.tracing {
		pt := &c.snap.ports[pi]
		c.step(StepGenerated, pt.id, pt.name, reason)
	}
	// Execute the sub-result's flow on the frame, one copy per output.
	outs := sub.Outputs
	i := 0
	flow.Apply(append([]byte(nil), frame...), &gp, sub.Actions, func(a flow.Action, f []byte) {
		if i < len(outs) {
			o := outs[i]
			r.Generated = append(r.Generated, Generated{PortID: o.PortID, Host: o.Host, TunnelKey: o.TunnelKey, Frame: append([]byte(nil), f...), Reason: reason})
		}
		i++
	})
	r.Generated = append(r.Generated, sub.Generated...)
	if sub.Verdict == VerdictNotYet {
		c.notYet = true
		if sub.Need != "" {
			r.Need = sub.Need
		}
	}
}

// icmpError answers p with an ICMP error from router port pi, sent back out
// of that port to the packet's sender (RFC 1812 limits apply).
func (c *ctx) icmpError(pi int32, p *packet.Packet, typ, code uint8, mtu uint16) {
	if !packet.ShouldAnswerWithError(p) {
		return
	}
	pt := &c.snap.ports[pi]
	if !pt.hasAddr {
		return
	}
	f := c.currentFrame(p)
	var q packet.Packet
	q.Decode(f)
	e := packet.BuildICMPError(f, &q, pt.mac, p.EthSrc, pt.addr, typ, code, mtu)
	c.send(pi, e, icmpReason(typ, code), false)
}

func icmpReason(typ, code uint8) string {
	switch {
	case typ == packet.ICMPTimeExceeded:
		return "icmp time exceeded"
	case typ == packet.ICMPUnreachable && code == packet.ICMPCodeNet:
		return "icmp net unreachable"
	case typ == packet.ICMPUnreachable && code == packet.ICMPCodeHost:
		return "icmp host unreachable"
	case typ == packet.ICMPUnreachable && code == packet.ICMPCodeFragNeeded:
		return "icmp fragmentation needed"
	case typ == packet.ICMPUnreachable && code == packet.ICMPCodeAdminProh:
		return "icmp administratively prohibited"
	}
	return "icmp error"
}
