package sim

import (
	"github.com/canopy-sdn/canopy/internal/packet"
)

// Sub-tag kinds for table entries.
const (
	subMAC = 'm'
	subARP = 'a'
	subIP  = 'i'
)

func macU64(m [6]byte) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

// bridge switches p, which arrived on port in of bridge di.
func (c *ctx) bridge(di, in int32, p *packet.Packet) {
	d := &c.snap.devs[di]
	c.tag(d.tag)
	c.traceDevice(d)
	if d.down {
		c.drop("bridge down")
		return
	}
	c.fields |= FieldEthSrc | FieldEthDst
	if p.EthSrc[0]&1 == 1 {
		c.drop("multicast source MAC")
		return
	}
	if v, _ := c.runChain(d.in, p, in, none, uint64(d.tag), 0); v != chainAccept {
		c.chainDrop(v, none, p, "bridge in-filter")
		return
	}
	c.learnMAC(d, in, p.EthSrc)

	// ARP requests for addresses the bridge knows are answered here, never
	// flooded (ARP suppression).
	if p.EthDst[0]&1 == 1 && p.Flags&packet.FlagARP != 0 && p.ARPOp == packet.ARPRequest {
		c.fields |= FieldEtherType | FieldARP
		c.tag(d.tag.Sub(subIP, uint64(p.ARPTPA)))
		if m, ok := d.ip2mac[p.ARPTPA]; ok && m != p.ARPSHA {
			if c.tracing {
				c.traceLookup("ip→mac %s is %s: answering", ip(p.ARPTPA), mac(m))
			}
			c.send(in, packet.BuildARP(packet.ARPReply, m, p.ARPTPA, p.ARPSHA, p.ARPSPA), "arp reply (bridge)", true)
			return
		}
	}

	if p.EthDst[0]&1 == 0 {
		out := c.lookupMAC(di, p.EthDst)
		if out != none {
			if out == in {
				c.drop("destination behind the ingress port")
				return
			}
			c.bridgeOut(d, in, out, p)
			return
		}
		if c.tracing {
			c.traceLookup("mac %s unknown: flooding", mac(p.EthDst))
		}
	}
	c.flood(d, in, p)
}

// lookupMAC finds the port behind a MAC: seeded entries first, then learned.
func (c *ctx) lookupMAC(di int32, m [6]byte) int32 {
	d := &c.snap.devs[di]
	c.tag(MACTag(d.tag, m))
	if pi, ok := d.macs[m]; ok {
		if c.tracing {
			c.traceLookup("mac %s → port %s (seeded)", mac(m), c.snap.ports[pi].id)
		}
		return pi
	}
	if t := c.opts.Tables; t != nil {
		if e, ok := t.MACs[MACKey{d.tag, m}]; ok {
			if pi, ok := c.snap.byTag[e.Port]; ok && c.snap.ports[pi].dev == di {
				if c.tracing {
					c.traceLookup("mac %s → port %s (learned)", mac(m), c.snap.ports[pi].id)
				}
				return pi
			}
		}
	}
	return none
}

// learnMAC records that src lives behind port in, unless the MAC is seeded
// (VPC hosts are known; learning is only for unknown hosts such as uplinks)
// or already known there and not due for a refresh. A MAC that moved
// reports the new port.
func (c *ctx) learnMAC(d *device, in int32, src [6]byte) {
	if _, seeded := d.macs[src]; seeded {
		return
	}
	pt := &c.snap.ports[in]
	if t := c.opts.Tables; t != nil {
		if cur, ok := t.MACs[MACKey{d.tag, src}]; ok && cur.Port == pt.tag && c.opts.Now < cur.Refresh {
			return
		}
	}
	c.res.Learned = append(c.res.Learned, Learned{Device: d.tag, DeviceID: d.id, MAC: src, Port: pt.tag, PortID: pt.id})
}

func (c *ctx) bridgeOut(d *device, in, out int32, p *packet.Packet) {
	if v, _ := c.runChain(d.out, p, in, out, uint64(d.tag), 0); v != chainAccept {
		c.chainDrop(v, none, p, "bridge out-filter")
		return
	}
	c.egress(out, in, p)
}

// flood sends p to every port of the bridge but the ingress one; each branch
// works on its own copy, so one branch's rewrites never leak into another.
func (c *ctx) flood(d *device, in int32, p *packet.Packet) {
	for _, pi := range d.ports {
		if pi == in {
			continue
		}
		q := *p
		c.bridgeOut(d, in, pi, &q)
	}
}
