package agent

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// parkedCount reads canopy_agent_parked_total{outcome}.
func parkedCount(t *testing.T, a *Agent, outcome string) float64 {
	t.Helper()
	mfs, err := a.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "canopy_agent_parked_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "outcome" && lp.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestParkUntilARP: a VM behind a router sends to the Internet through an
// uplink port whose gateways' MACs nobody seeded:
//
//	vm1 10.0.1.5 ─ b ─ (10.0.1.1) r (192.0.2.1) ─ uplink
//	                   0.0.0.0/0       via 192.0.2.254 (answers ARP)
//	                   203.0.113.0/24  via 192.0.2.253 (never answers)
//
// The first packet's simulation only sends an ARP request out of the
// uplink; the packet waits, and the ARP reply alone (the VM sends nothing
// more) gets it delivered, routed. Towards the silent gateway eight packets
// wait, the ninth and tenth are refused at once, and the eight are dropped
// when their time is up.
func TestParkUntilARP(t *testing.T) {
	s, ecfg := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	w := newWire()
	a, id, _, _ := runAgent(t, []string{ecfg.ClientURL}, "a", netip.MustParseAddr("127.0.0.1"), w,
		func(c *Config) { c.ParkTTL = 300 * time.Millisecond })
	waitFor(t, "the host registered", func() bool {
		_, err := s.Get(ctx, topology.KindHost, id)
		return err == nil
	})
	create := func(o topology.Object) topology.Object {
		t.Helper()
		o, err := s.Create(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	rMAC, upMAC := topology.MAC{2, 0xaa, 0, 0, 0, 1}, topology.MAC{2, 0xaa, 0, 0, 0, 2}
	gwMAC, vmMAC := topology.MAC{2, 0xee, 0, 0, 0, 0xfe}, topology.MAC{2, 0, 0, 0, 1, 5}
	upIP, gwIP, silentIP := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.254"), netip.MustParseAddr("192.0.2.253")
	vmIP := netip.MustParseAddr("10.0.1.5")

	// The VM's port last: once it is plugged, the agent's view holds the
	// routes and the uplink (the replica applies changes in order).
	// 198.18.0.0/15 goes to a next hop the router knows statically: the
	// markers that prove nothing else came out before them.
	knownIP, knownMAC := netip.MustParseAddr("192.0.2.99"), topology.MAC{2, 0xee, 0, 0, 0, 0x99}
	r := create(&topology.Router{Meta: topology.Meta{Name: "r"}, ARPEntries: []topology.ARPEntry{{IP: knownIP, MAC: knownMAC}}})
	rp := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: rMAC,
		Address: netip.MustParsePrefix("10.0.1.1/24")})
	up := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: upMAC,
		Address: netip.PrefixFrom(upIP, 24), HostID: id, Interface: "uplink"})
	create(&topology.Route{RouterID: r.GetMeta().ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("0.0.0.0/0"),
		NextHopPort: up.GetMeta().ID, NextHopGateway: gwIP})
	create(&topology.Route{RouterID: r.GetMeta().ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("203.0.113.0/24"),
		NextHopPort: up.GetMeta().ID, NextHopGateway: silentIP})
	create(&topology.Route{RouterID: r.GetMeta().ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("198.18.0.0/15"),
		NextHopPort: up.GetMeta().ID, NextHopGateway: knownIP})
	br := create(&topology.Bridge{Meta: topology.Meta{Name: "b"}})
	bp := create(&topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID})
	if err := s.Link(ctx, bp.GetMeta().ID, rp.GetMeta().ID); err != nil {
		t.Fatal(err)
	}
	create(&topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID, MAC: vmMAC,
		IPs: []netip.Addr{vmIP}, HostID: id, Interface: "vm1"})
	vm1, _ := w.vm(t, "vm1")
	upVM, upRx := w.vm(t, "uplink")
	// Plugged is not yet published: frames to a port go out once it is.
	waitFor(t, "both ports published", func() bool { return len(a.ports.Load().list) == 2 })

	udp := func(dst string, sport uint16) []byte {
		sp := packet.Spec{EthSrc: vmMAC, EthDst: rMAC, Src: packet.U32(vmIP), Dst: packet.U32(netip.MustParseAddr(dst)),
			Proto: packet.ProtoUDP, SrcPort: sport, DstPort: 53, TTL: 64, Payload: []byte("parked")}
		return sp.Build()
	}
	isARPFor := func(target netip.Addr) func(*packet.Packet) bool {
		return func(p *packet.Packet) bool {
			return p.Has(packet.FlagARP) && p.ARPOp == packet.ARPRequest && p.ARPTPA == packet.U32(target) &&
				p.ARPSHA == [6]byte(upMAC) && p.ARPSPA == packet.U32(upIP)
		}
	}

	marker := 0
	quietUpTo := func(what string) { // vm1's next frame, routed out at once, comes out before anything else
		t.Helper()
		marker++
		sport := uint16(9000 + marker)
		quietUntil(t, upRx, what, vm1, udp("198.18.0.1", sport), func(p *packet.Packet) bool { return p.Proto == packet.ProtoUDP && p.SrcPort == sport })
	}

	// One packet: an ARP request for the gateway comes out, nothing else.
	send(t, vm1, udp("198.51.100.7", 4000))
	expect(t, upRx, "ARP request for the gateway", isARPFor(gwIP))
	quietUpTo("the uplink before the ARP reply")

	// The reply: the original packet comes out, routed to the gateway.
	send(t, upVM, packet.BuildARP(packet.ARPReply, gwMAC, packet.U32(gwIP), upMAC, packet.U32(upIP)))
	expect(t, upRx, "the parked packet, resumed", func(p *packet.Packet) bool {
		if p.Proto != packet.ProtoUDP || p.SrcPort != 4000 {
			return false
		}
		if p.EthSrc != [6]byte(upMAC) || p.EthDst != [6]byte(gwMAC) || p.TTL != 63 ||
			p.Src != packet.U32(vmIP) || p.Dst != packet.U32(netip.MustParseAddr("198.51.100.7")) {
			t.Fatalf("resumed packet not routed: %s", p.String())
		}
		return true
	})
	quietUpTo("the uplink after the resumed packet (sent once)")
	if n := parkedCount(t, a, "resumed"); n != 1 {
		t.Fatalf("parked resumed = %v, want 1", n)
	}

	// Towards the silent gateway: 8 wait, 2 overflow, the 8 expire.
	for i := range 10 {
		send(t, vm1, udp("203.0.113.9", 5000+uint16(i)))
	}
	expect(t, upRx, "ARP request for the silent gateway", isARPFor(silentIP))
	waitFor(t, "the parked packets to expire", func() bool { return parkedCount(t, a, "expired") == 8 })
	if n := parkedCount(t, a, "overflow"); n != 2 {
		t.Fatalf("parked overflow = %v, want 2", n)
	}
	// Dropped means dropped: a late reply resumes nothing. The marker comes
	// from the uplink too (an ARP request for the router, answered there),
	// so whatever the late reply resumed would come out before its answer.
	send(t, upVM, packet.BuildARP(packet.ARPReply, gwMAC, packet.U32(silentIP), upMAC, packet.U32(upIP)))
	quietOfUntil(t, upRx, "the uplink after a late reply", func(p *packet.Packet) bool { return p.Proto == packet.ProtoUDP }, upVM,
		packet.BuildARP(packet.ARPRequest, gwMAC, packet.U32(gwIP), [6]byte{}, packet.U32(upIP)),
		func(p *packet.Packet) bool { return p.Has(packet.FlagARP) && p.ARPOp == packet.ARPReply })
	if n := parkedCount(t, a, "resumed"); n != 1 {
		t.Fatalf("parked resumed = %v after the expiry, want still 1", n)
	}
}
