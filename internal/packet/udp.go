package packet

import (
	"encoding/binary"
	"net/netip"
)

// UDPPayload returns the UDP payload of pkt, bounded by the IP total
// length and the UDP length field.
func UDPPayload(frame []byte, p *Packet) ([]byte, bool) {
	end := p.L3Off + int(p.TotalLen)
	if end > len(frame) || p.L4Off+8 > end {
		return nil, false
	}
	ulen := int(binary.BigEndian.Uint16(frame[p.L4Off+4:]))
	if ulen < 8 || p.L4Off+ulen > end {
		return nil, false
	}
	return frame[p.L4Off+8 : p.L4Off+ulen], true
}

// BuildUDP builds an Ethernet/IPv4/UDP frame with both checksums set.
func BuildUDP(srcMAC, dstMAC [6]byte, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	const hdr = EthHeaderLen + IPv4MinHeader + 8
	b := make([]byte, hdr+len(payload))
	copy(b[0:6], dstMAC[:])
	copy(b[6:12], srcMAC[:])
	binary.BigEndian.PutUint16(b[12:], EtherTypeIPv4)
	ip := b[EthHeaderLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(IPv4MinHeader+8+len(payload)))
	ip[8], ip[9] = DefaultTTL, ProtoUDP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:IPv4MinHeader], 0))
	u := ip[IPv4MinHeader:]
	ulen := 8 + len(payload)
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(ulen))
	copy(u[8:], payload)
	pseudo := uint32(binary.BigEndian.Uint16(s4[0:])) + uint32(binary.BigEndian.Uint16(s4[2:])) +
		uint32(binary.BigEndian.Uint16(d4[0:])) + uint32(binary.BigEndian.Uint16(d4[2:])) +
		ProtoUDP + uint32(ulen)
	cs := Checksum(u, pseudo)
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], cs)
	return b
}
