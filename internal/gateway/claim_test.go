package gateway

import (
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/packet"
)

// TestClaim: the speaker gets its BGP and BFD traffic and the ARP replies
// to its own requests; the simulation keeps everything else (the edge
// router answers ARP and ping for the uplink address), and sees ARP
// replies too.
func TestClaim(t *testing.T) {
	up := netip.MustParseAddr("192.0.2.2")
	peer := netip.MustParseAddr("192.0.2.1")
	pool := netip.MustParseAddr("203.0.113.5")
	macA := [6]byte{2, 0, 0, 0, 0, 1}
	macB := [6]byte{2, 0, 0, 0, 0, 2}
	ipv4 := func(dst netip.Addr, proto uint8, sport, dport uint16) []byte {
		return (&packet.Spec{Src: packet.U32(peer), Dst: packet.U32(dst), Proto: proto, SrcPort: sport, DstPort: dport}).Build()
	}
	for _, c := range []struct {
		name          string
		frame         []byte
		speaker, sim_ bool
	}{
		{"bgp to the speaker", ipv4(up, packet.ProtoTCP, 40000, 179), true, false},
		{"bgp from the speaker's connection", ipv4(up, packet.ProtoTCP, 179, 40000), true, false},
		{"bfd control", ipv4(up, packet.ProtoUDP, 49152, 3784), true, false},
		{"bfd multihop", ipv4(up, packet.ProtoUDP, 49152, 4784), true, false},
		{"other tcp to the uplink", ipv4(up, packet.ProtoTCP, 40000, 22), false, true},
		{"bgp to an elastic ip", ipv4(pool, packet.ProtoTCP, 40000, 179), false, true},
		{"ping to the uplink", ipv4(up, packet.ProtoICMP, 1, 0), false, true},
		{"arp reply to the uplink", packet.BuildARP(packet.ARPReply, macA, packet.U32(peer), macB, packet.U32(up)), true, true},
		{"arp request for the uplink", packet.BuildARP(packet.ARPRequest, macA, packet.U32(peer), [6]byte{}, packet.U32(up)), false, true},
	} {
		var p packet.Packet
		p.Decode(c.frame)
		speaker, sim := Claim(&p, packet.U32(up))
		if speaker != c.speaker || sim != c.sim_ {
			t.Errorf("%s: speaker %v simulate %v, want %v %v", c.name, speaker, sim, c.speaker, c.sim_)
		}
	}
}
