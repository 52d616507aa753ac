package packet

import "encoding/binary"

// Builders allocate: they run on the slow path, for packets a virtual device
// answers with. Every builder returns an untagged Ethernet frame with correct
// checksums.

func putEth(b []byte, dst, src [6]byte, et uint16) {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], et)
}

// BuildARP builds an ARP packet. For a request tha is zero and the frame goes
// to broadcast; for a reply the frame goes to tha.
func BuildARP(op uint16, sha [6]byte, spa uint32, tha [6]byte, tpa uint32) []byte {
	b := make([]byte, EthHeaderLen+ARPLen)
	dst := tha
	if op == ARPRequest {
		dst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	putEth(b, dst, sha, EtherTypeARP)
	a := b[EthHeaderLen:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], EtherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], sha[:])
	binary.BigEndian.PutUint32(a[14:], spa)
	copy(a[18:24], tha[:])
	binary.BigEndian.PutUint32(a[24:], tpa)
	return b
}

// putIPv4 writes a 20-byte IPv4 header and its checksum.
func putIPv4(h []byte, totalLen int, id uint16, ttl, proto uint8, src, dst uint32) {
	h[0] = 0x45
	h[1] = 0
	binary.BigEndian.PutUint16(h[2:], uint16(totalLen))
	binary.BigEndian.PutUint16(h[4:], id)
	binary.BigEndian.PutUint16(h[6:], 0)
	h[8], h[9] = ttl, proto
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint32(h[12:], src)
	binary.BigEndian.PutUint32(h[16:], dst)
	binary.BigEndian.PutUint16(h[10:], Checksum(h[:20], 0))
}

// DefaultTTL is the TTL of packets a virtual router originates.
const DefaultTTL = 64

// BuildEchoReply answers the ICMP echo request p (decoded from frame) from
// srcMAC, swapping the addresses and keeping id, sequence and payload.
func BuildEchoReply(frame []byte, p *Packet, srcMAC [6]byte) []byte {
	end := p.L3Off + int(p.TotalLen)
	if end > len(frame) || end < p.L4Off+8 {
		end = len(frame)
	}
	icmpIn := frame[p.L4Off:end]
	b := make([]byte, EthHeaderLen+IPv4MinHeader+len(icmpIn))
	putEth(b, p.EthSrc, srcMAC, EtherTypeIPv4)
	putIPv4(b[EthHeaderLen:], IPv4MinHeader+len(icmpIn), p.IPID, DefaultTTL, ProtoICMP, p.Dst, p.Src)
	icmp := b[EthHeaderLen+IPv4MinHeader:]
	copy(icmp, icmpIn)
	icmp[0], icmp[1] = ICMPEchoReply, 0
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], Checksum(icmp, 0))
	return b
}

// BuildICMPError builds an ICMP error about p (decoded from frame) from
// srcIP/srcMAC to the packet's source, quoting its IP header and the first
// 8 bytes of its payload (RFC 792). For frag-needed, mtu is the next-hop MTU
// (RFC 1191); otherwise it is ignored.
func BuildICMPError(frame []byte, p *Packet, srcMAC, dstMAC [6]byte, srcIP uint32, typ, code uint8, mtu uint16) []byte {
	qEnd := p.L3Off + p.IHL + 8
	if pe := p.L3Off + int(p.TotalLen); pe < qEnd {
		qEnd = pe
	}
	if qEnd > len(frame) {
		qEnd = len(frame)
	}
	if qEnd < p.L3Off {
		qEnd = p.L3Off
	}
	quote := frame[p.L3Off:qEnd]
	icmpLen := 8 + len(quote)
	b := make([]byte, EthHeaderLen+IPv4MinHeader+icmpLen)
	putEth(b, dstMAC, srcMAC, EtherTypeIPv4)
	putIPv4(b[EthHeaderLen:], IPv4MinHeader+icmpLen, 0, DefaultTTL, ProtoICMP, srcIP, p.Src)
	icmp := b[EthHeaderLen+IPv4MinHeader:]
	icmp[0], icmp[1] = typ, code
	if typ == ICMPUnreachable && code == ICMPCodeFragNeeded {
		binary.BigEndian.PutUint16(icmp[6:], mtu)
	}
	copy(icmp[8:], quote)
	binary.BigEndian.PutUint16(icmp[2:], Checksum(icmp, 0))
	return b
}

// ShouldAnswerWithError reports whether RFC 1812 §4.3.2.7 allows an ICMP
// error about p: not about an ICMP error, a non-first fragment, or a packet
// from a broadcast, multicast or unspecified source.
func ShouldAnswerWithError(p *Packet) bool {
	if p.Flags&FlagIPv4 == 0 || p.FragOff != 0 {
		return false
	}
	if p.Proto == ProtoICMP && p.Flags&FlagL4 != 0 && p.ICMPType != ICMPEchoRequest && p.ICMPType != ICMPEchoReply {
		return false
	}
	if p.EthDst[0]&1 == 1 {
		return false
	}
	s := p.Src
	if s == 0 || s == 0xffffffff || s>>28 == 0xe || s>>24 == 127 {
		return false
	}
	return true
}
