package packet

import "encoding/binary"

// Checksum returns the Internet checksum (RFC 1071) of b, starting from the
// partial sum initial (e.g. a pseudo-header sum).
func Checksum(b []byte, initial uint32) uint16 {
	return ^fold(sum(b, initial))
}

func sum(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// updateChecksum16 returns the checksum hc after a 16-bit word of the covered
// data changed from old to new (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
func updateChecksum16(hc, old, new uint16) uint16 {
	acc := uint32(^hc) + uint32(^old) + uint32(new)
	return ^fold(acc)
}

// updateChecksum32 does the same for a 32-bit field (an IPv4 address).
func updateChecksum32(hc uint16, old, new uint32) uint16 {
	hc = updateChecksum16(hc, uint16(old>>16), uint16(new>>16))
	return updateChecksum16(hc, uint16(old), uint16(new))
}

// pseudoSum is the partial sum of the IPv4 pseudo-header.
func pseudoSum(src, dst uint32, proto uint8, length int) uint32 {
	return src>>16 + src&0xffff + dst>>16 + dst&0xffff + uint32(proto) + uint32(length)
}

// VerifyIPv4 reports whether the IPv4 header checksum and, for an
// unfragmented TCP/UDP/ICMP packet, the L4 checksum of a decoded frame are
// right. It is for tests and for the slow path; the hot path updates
// checksums incrementally instead.
func VerifyIPv4(frame []byte, p *Packet) bool {
	if !p.Has(FlagIPv4) {
		return false
	}
	if Checksum(frame[p.L3Off:p.L3Off+p.IHL], 0) != 0 {
		return false
	}
	if p.IsFragment() {
		return true
	}
	end := p.L3Off + int(p.TotalLen)
	if end > len(frame) || end < p.L4Off {
		return false
	}
	l4 := frame[p.L4Off:end]
	switch p.Proto {
	case ProtoTCP:
		return Checksum(l4, pseudoSum(p.Src, p.Dst, ProtoTCP, len(l4))) == 0
	case ProtoUDP:
		if len(l4) >= 8 && binary.BigEndian.Uint16(l4[6:8]) == 0 {
			return true // no checksum
		}
		return Checksum(l4, pseudoSum(p.Src, p.Dst, ProtoUDP, len(l4))) == 0
	case ProtoICMP:
		return Checksum(l4, 0) == 0
	}
	return true
}

// FixChecksums recomputes the IPv4 header checksum and the L4 checksum of an
// unfragmented packet from scratch. Builders and tests use it.
func FixChecksums(frame []byte, p *Packet) {
	if !p.Has(FlagIPv4) {
		return
	}
	h := frame[p.L3Off : p.L3Off+p.IHL]
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:12], Checksum(h, 0))
	if p.IsFragment() {
		return
	}
	end := p.L3Off + int(p.TotalLen)
	if end > len(frame) || end < p.L4Off {
		return
	}
	l4 := frame[p.L4Off:end]
	switch p.Proto {
	case ProtoTCP:
		if len(l4) >= 18 {
			l4[16], l4[17] = 0, 0
			binary.BigEndian.PutUint16(l4[16:18], Checksum(l4, pseudoSum(p.Src, p.Dst, ProtoTCP, len(l4))))
		}
	case ProtoUDP:
		if len(l4) >= 8 {
			l4[6], l4[7] = 0, 0
			c := Checksum(l4, pseudoSum(p.Src, p.Dst, ProtoUDP, len(l4)))
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(l4[6:8], c)
		}
	case ProtoICMP:
		if len(l4) >= 4 {
			l4[2], l4[3] = 0, 0
			binary.BigEndian.PutUint16(l4[2:4], Checksum(l4, 0))
		}
	}
}
