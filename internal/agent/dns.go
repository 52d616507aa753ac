package agent

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/dns"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// The VPC's resolver (AmazonProvidedDNS) is answered at the port like DHCP
// and metadata: UDP to port 53 of the VPC's base + 2 or of 169.254.169.253
// from an instance of a VPC with DNS support. Names of the VPC are answered
// at once (package dns); the others are asked of the cloud's resolvers from
// this host, off the port's reader.

var linkLocalDNS32 = packet.U32(dns.LinkLocal)

// maxDNSForwards bounds the queries being asked upstream at once; more are
// dropped (the instance's resolver retries).
const maxDNSForwards = 64

// dnsUpstreamTimeout is how long one upstream gets to answer.
const dnsUpstreamTimeout = 2 * time.Second

// toDNS reports UDP to port 53 of the port's VPC resolver.
func toDNS(svc *portSvc, pkt *packet.Packet) bool {
	return svc != nil && svc.dns != nil && pkt.Proto == packet.ProtoUDP && pkt.DstPort == 53 &&
		pkt.Flags&packet.FlagL4 != 0 && (pkt.Dst == svc.dns32 || pkt.Dst == linkLocalDNS32)
}

func (a *Agent) serveDNS(vp *vport, svc *portSvc, frame []byte, pkt *packet.Packet) {
	if pkt.IsFragment() {
		a.m.dns.WithLabelValues("fragment").Inc()
		return
	}
	q, ok := packet.UDPPayload(frame, pkt)
	if !ok {
		a.m.dns.WithLabelValues("malformed").Inc()
		return
	}
	reply, forward := dns.Answer(svc.dns, q)
	src, dst := netip.AddrFrom4(u32Bytes(pkt.Dst)), netip.AddrFrom4(u32Bytes(pkt.Src))
	back := func(payload []byte) {
		vp.write(packet.BuildUDP(svc.gwMAC, pkt.EthSrc, src, dst, 53, pkt.SrcPort, payload), datapath.VnetHdr{})
	}
	switch {
	case reply != nil:
		a.m.dns.WithLabelValues("answered").Inc()
		back(reply)
	case !forward:
		a.m.dns.WithLabelValues("malformed").Inc()
	default:
		select {
		case a.dnsSlots <- struct{}{}:
		default:
			a.m.dns.WithLabelValues("forward_busy").Inc()
			return
		}
		query := append([]byte(nil), q...)
		ups := svc.dns.Upstreams
		a.wg.Go(func() {
			defer func() { <-a.dnsSlots }()
			if r := askUpstreams(ups, query); r != nil {
				a.m.dns.WithLabelValues("forwarded").Inc()
				back(r)
				return
			}
			a.m.dns.WithLabelValues("upstream_failed").Inc()
			if r := dns.ServFail(query); r != nil {
				back(r)
			}
		})
	}
}

// askUpstreams asks each resolver in turn over UDP and returns the first
// answer to this query (its id), or nil.
func askUpstreams(ups []netip.Addr, query []byte) []byte {
	buf := make([]byte, 65535)
	for _, u := range ups {
		c, err := net.Dial("udp", net.JoinHostPort(u.String(), strconv.Itoa(53)))
		if err != nil {
			continue
		}
		_ = c.SetDeadline(time.Now().Add(dnsUpstreamTimeout))
		if _, err := c.Write(query); err == nil {
			for {
				n, err := c.Read(buf)
				if err != nil {
					break
				}
				if n >= 2 && binary.BigEndian.Uint16(buf) == binary.BigEndian.Uint16(query) {
					_ = c.Close()
					return append([]byte(nil), buf[:n]...)
				}
			}
		}
		_ = c.Close()
	}
	return nil
}

func u32Bytes(v uint32) [4]byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return b
}
