package sim

import (
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// router routes p, which arrived on port in of router di.
func (c *ctx) router(di, in int32, p *packet.Packet) {
	d := &c.snap.devs[di]
	pt := &c.snap.ports[in]
	c.tag(d.tag)
	c.traceDevice(d)
	if d.down {
		c.drop("router down")
		return
	}
	c.fields |= FieldEtherType | FieldVLAN
	if p.Flags&packet.FlagVLAN != 0 {
		c.drop("VLAN-tagged frame at a router")
		return
	}
	if p.Flags&packet.FlagARP != 0 {
		c.routerARP(d, in, p)
		return
	}
	if p.Flags&packet.FlagIPv4 == 0 {
		c.drop("not IPv4")
		return
	}
	c.fields |= FieldEthDst
	if p.EthDst != pt.mac {
		c.drop("not addressed to the router port's MAC")
		return
	}
	// ICMP errors quote the packet as it reached this router, before the
	// router's own NAT rewrote it, and go back to its real sender.
	pin := *p
	zone := uint64(d.tag)
	if v, _ := c.runChain(d.in, p, in, none, zone, 0); v != chainAccept {
		c.chainDrop(v, in, &pin, "router in-filter")
		return
	}
	c.fields |= FieldIPDst
	if _, own := d.own[p.Dst]; own {
		c.local(in, p)
		return
	}
	c.fields |= FieldIPSrc
	rt, ecmp := d.routes.lookup(in, p.Src, p.Dst, packet.KeyOf(p, 0).Hash())
	if ecmp {
		c.fields |= FieldProto | FieldSrcPort | FieldDstPort
	}
	if rt == nil {
		if c.tracing {
			c.traceLookup("no route to %s", ip(p.Dst))
		}
		c.icmpError(in, &pin, packet.ICMPUnreachable, packet.ICMPCodeNet, 0)
		c.drop("no route")
		return
	}
	c.tag(rt.tag)
	if c.tracing {
		c.traceLookup("route %s (%s) for %s", rt.id, rt.typ, ip(p.Dst))
	}
	if rt.need != "" {
		// Its far side is not in the snapshot: the caller loads it and
		// simulates the packet again (no flow is cached meanwhile).
		if c.tracing {
			c.traceLookup("route %s leads into %s, not held here", rt.id, rt.need)
		}
		c.res.Need = rt.need
		c.notYet = true
		c.res.Reason = "route into a part of the topology not held"
		return
	}
	switch rt.typ {
	case topology.RouteBlackhole:
		c.drop("blackhole route")
		return
	case topology.RouteReject:
		c.icmpError(in, &pin, packet.ICMPUnreachable, packet.ICMPCodeAdminProh, 0)
		c.drop("reject route")
		return
	case topology.RouteLocal:
		c.local(in, p)
		return
	}
	c.fields |= FieldTTL
	if p.TTL <= 1 {
		c.icmpError(in, &pin, packet.ICMPTimeExceeded, 0, 0)
		c.drop("TTL expired")
		return
	}
	out := rt.port
	op := &c.snap.ports[out]
	if p.DF && int(p.TotalLen) > op.mtu {
		// Packet size is not part of a flow match: the error is answered
		// per packet and no drop flow is cached for smaller packets.
		c.res.Uncacheable = true
		c.icmpError(in, &pin, packet.ICMPUnreachable, packet.ICMPCodeFragNeeded, uint16(op.mtu))
		c.drop("fragmentation needed")
		return
	}
	if v, _ := c.runChain(d.out, p, in, out, zone, 0); v != chainAccept {
		c.chainDrop(v, in, &pin, "router out-filter")
		return
	}
	nh := p.Dst
	if rt.gw != 0 {
		nh = rt.gw
	}
	m, ok := c.resolve(d, out, nh, in, &pin)
	if !ok {
		return
	}
	p.TTL--
	p.EthSrc = op.mac
	p.EthDst = m
	c.egress(out, in, p)
}

// local handles a packet addressed to the router itself.
func (c *ctx) local(in int32, p *packet.Packet) {
	c.fields |= FieldProto | FieldICMPType
	if p.IsEcho() && p.ICMPType == packet.ICMPEchoRequest && p.IsHeaderFragment() && !p.IsFragment() {
		f := c.currentFrame(p)
		var q packet.Packet
		q.Decode(f)
		c.send(in, packet.BuildEchoReply(f, &q, c.snap.ports[in].mac), "icmp echo reply", true)
		return
	}
	c.drop("addressed to the router")
}

// routerARP answers ARP requests for the ingress port's address and learns
// from ARP packets, both only for senders inside the port's subnet.
func (c *ctx) routerARP(d *device, in int32, p *packet.Packet) {
	c.fields |= FieldARP | FieldEthDst
	pt := &c.snap.ports[in]
	if !pt.hasAddr || p.ARPSPA&pt.mask != pt.addr&pt.mask {
		c.drop("ARP from outside the port's subnet")
		return
	}
	switch p.ARPOp {
	case packet.ARPRequest:
		if p.ARPTPA != pt.addr && !c.proxiesARP(d, in, p) {
			c.drop("ARP request not for this port")
			return
		}
		c.learnARP(d, p.ARPSPA, p.ARPSHA)
		c.send(in, packet.BuildARP(packet.ARPReply, pt.mac, p.ARPTPA, p.ARPSHA, p.ARPSPA), "arp reply (router)", true)
	case packet.ARPReply:
		if p.EthDst != pt.mac && p.EthDst[0]&1 == 0 {
			c.drop("ARP reply for another MAC")
			return
		}
		c.learnARP(d, p.ARPSPA, p.ARPSHA)
		c.answered++ // consumed by the router
	default:
		c.drop("unknown ARP operation")
	}
}

// proxiesARP reports whether router port in answers an ARP request for
// another address than its own: it is a proxy-ARP port and the router
// routes the address somewhere else than back out of in (an assigned
// public address, not the pool's blackhole).
func (c *ctx) proxiesARP(d *device, in int32, p *packet.Packet) bool {
	pt := &c.snap.ports[in]
	if !pt.proxyARP {
		return false
	}
	c.tag(d.tag) // its routes decide
	rt, _ := d.routes.lookup(in, p.ARPSPA, p.ARPTPA, 0)
	if rt == nil || rt.port == in || (rt.typ != topology.RouteNormal && rt.typ != topology.RouteLocal) {
		return false
	}
	if c.tracing {
		c.traceLookup("proxy ARP for %s (route %s)", ip(p.ARPTPA), rt.id)
	}
	return true
}

func (c *ctx) learnARP(d *device, ip4 uint32, m [6]byte) {
	if t := c.opts.Tables; t != nil {
		if cur, ok := t.ARP[ARPKey{d.tag, ip4}]; ok && cur.MAC == m && c.opts.Now < cur.Refresh {
			return
		}
	}
	c.res.Learned = append(c.res.Learned, Learned{ARP: true, Device: d.tag, DeviceID: d.id, MAC: m, IP: ip4})
}

// resolve finds the MAC of next hop nh behind router port out: the peer
// router port on a router↔router link, the router's static ARP entries, the
// peer bridge's IP→MAC table, then learned entries. Unknown ⇒ an ARP request
// and not-yet; a failed resolution ⇒ host unreachable.
func (c *ctx) resolve(d *device, out int32, nh uint32, in int32, p *packet.Packet) ([6]byte, bool) {
	op := &c.snap.ports[out]
	c.tag(ARPTag(d.tag, nh))
	if op.peer != none {
		peer := &c.snap.ports[op.peer]
		pd := &c.snap.devs[peer.dev]
		if pd.router {
			return peer.mac, true
		}
		if m, ok := pd.ip2mac[nh]; ok {
			c.tag(pd.tag.Sub(subIP, uint64(nh)))
			return m, true
		}
	}
	if m, ok := d.arp[nh]; ok {
		return m, true
	}
	if t := c.opts.Tables; t != nil {
		if e, ok := t.ARP[ARPKey{d.tag, nh}]; ok {
			if e.MAC == ([6]byte{}) {
				c.icmpError(in, p, packet.ICMPUnreachable, packet.ICMPCodeHost, 0)
				c.drop("next hop unreachable")
				return e.MAC, false
			}
			if c.opts.Now >= e.Refresh && op.hasAddr {
				// Stale: keep forwarding with it, and ask again so the
				// entry is confirmed (and kept) while it is in use.
				if c.tracing {
					c.traceLookup("mac for next hop %s is stale: ARP request", ip(nh))
				}
				c.send(out, packet.BuildARP(packet.ARPRequest, op.mac, op.addr, [6]byte{}, nh), "arp refresh", false)
			}
			return e.MAC, true
		}
	}
	if c.tracing {
		c.traceLookup("no MAC for next hop %s: ARP request", ip(nh))
	}
	if op.hasAddr {
		c.send(out, packet.BuildARP(packet.ARPRequest, op.mac, op.addr, [6]byte{}, nh), "arp request", false)
	}
	c.notYet = true
	c.res.Reason = "next hop " + ip(nh) + " unresolved"
	return [6]byte{}, false
}
