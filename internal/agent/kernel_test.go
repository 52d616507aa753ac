package agent

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/fastpath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// ipFrame is an Ethernet + IPv4 frame (total length tot) carrying l4.
func ipFrame(proto uint8, fragOff uint16, tot int, l4 []byte) []byte {
	f := make([]byte, 14+20+len(l4))
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], packet.EtherTypeIPv4)
	h := f[14:]
	h[0], h[1] = 0x45, 0x10
	binary.BigEndian.PutUint16(h[2:], uint16(tot))
	binary.BigEndian.PutUint16(h[6:], fragOff)
	h[8], h[9] = 61, proto
	copy(h[12:], []byte{10, 0, 1, 2, 10, 0, 2, 2})
	copy(h[20:], l4)
	return f
}

// TestKernelKeyIsTheProgramsKey: the agent's flow key, packed for the
// kernel, equals the key fastpath.KeyFrom computes for the same frame —
// which the fastpath tests check against the program's on real packets. A
// flow mirrored under another key would never be hit.
func TestKernelKeyIsTheProgramsKey(t *testing.T) {
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 443)
	tcp[12] = 5 << 4
	udp := []byte{0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0}
	echo := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1}
	unreach := append([]byte{3, 4, 0, 0, 0, 0, 5, 0xdc}, ipFrame(packet.ProtoUDP, 0, 28, udp)[14:]...)
	vlan := ipFrame(packet.ProtoTCP, 0, 40, tcp)
	vlan = append(vlan[:12], append([]byte{0x81, 0, 0, 7}, vlan[12:]...)...)
	for _, tc := range []struct {
		name  string
		frame []byte
		gso   uint16
	}{
		{"tcp", ipFrame(packet.ProtoTCP, 0, 40, tcp), 0},
		{"tcp large send", ipFrame(packet.ProtoTCP, 0, 40, tcp), 1448},
		{"udp", ipFrame(packet.ProtoUDP, 0, 28, udp), 0},
		{"icmp echo", ipFrame(packet.ProtoICMP, 0, 28, echo), 0},
		{"icmp error", ipFrame(packet.ProtoICMP, 0, 20+len(unreach), unreach), 0},
		{"first fragment", ipFrame(packet.ProtoUDP, 0x2000, 1500, udp), 0},
		{"later fragment", ipFrame(packet.ProtoUDP, 185, 1500, udp), 0},
		{"arp", packet.BuildARP(1, [6]byte{2, 0, 0, 0, 0, 1}, 0x0a000102, [6]byte{}, 0x0a000101), 0},
		{"vlan", vlan, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p packet.Packet
			p.Decode(tc.frame)
			h := datapath.VnetHdr{GSOSize: tc.gso}
			if tc.gso != 0 {
				h.GSOType = datapath.GSOTCPv4
			}
			il := ipLen(&p, &h)
			fk := flow.KeyOf(7, &p, il)
			got, ok := kernelKey(&fk)
			want, wok := fastpath.KeyFrom(7, &p, il)
			if ok != wok || got != want {
				t.Errorf("kernelKey %+v (%v), fastpath.KeyFrom %+v (%v)", got, ok, want, wok)
			}
		})
	}
}

// TestPeerTags: a flow carries the tag of every host it tunnels to, and a
// host's tunnel endpoint that moved, went or came is a change of that tag
// (the kernel's copy of a flow holds the address).
func TestPeerTags(t *testing.T) {
	acts := []flow.Action{{Kind: flow.SetEthDst}, {Kind: flow.Tunnel, Host: "h2", Key: 7}, {Kind: flow.Tunnel, Host: "h3", Key: 8}}
	tags := []flow.Tag{1, 2}
	got := withPeerTags(tags, acts)
	if want := []flow.Tag{1, 2, peerTag("h2"), peerTag("h3")}; !slices.Equal(got, want) {
		t.Errorf("withPeerTags = %v, want %v", got, want)
	}
	if len(tags) != 2 || cap(tags) != 2 {
		t.Errorf("withPeerTags changed its input: %v", tags)
	}
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	old := map[string]netip.AddrPort{"h2": ap("10.99.0.12:6677"), "h3": ap("10.99.0.13:6677"), "h4": ap("10.99.0.14:6677")}
	cur := map[string]netip.AddrPort{"h2": ap("10.99.0.112:6677"), "h3": ap("10.99.0.13:6677"), "h5": ap("10.99.0.15:6677")}
	changed := map[flow.Tag]struct{}{}
	peersChanged(old, cur, changed)
	want := map[flow.Tag]struct{}{peerTag("h2"): {}, peerTag("h4"): {}, peerTag("h5"): {}}
	if !maps.Equal(changed, want) {
		t.Errorf("peersChanged: %d tags, want h2 (moved), h4 (gone), h5 (new)", len(changed))
	}
}
