package packet

import "encoding/binary"

// Spec describes an IPv4 packet to build: what `canopy trace` parses from its
// command line, and what tests and benchmarks send.
type Spec struct {
	EthSrc, EthDst   [6]byte
	VLAN             uint16 // non-zero adds an 802.1Q tag
	Src, Dst         uint32
	Proto            uint8
	SrcPort, DstPort uint16 // TCP/UDP ports; for ICMP echo SrcPort is the id
	ICMPType         uint8
	ICMPCode         uint8
	TCPFlags         uint8
	TTL              uint8 // 0 = DefaultTTL
	TOS              uint8
	DF, MF           bool
	FragOff          uint16 // in 8-byte units
	IPID             uint16
	Payload          []byte
}

// Build returns the frame Spec describes, with correct checksums.
func (s *Spec) Build() []byte {
	l4len := 0
	switch s.Proto {
	case ProtoTCP:
		l4len = 20
	case ProtoUDP, ProtoICMP:
		l4len = 8
	}
	if s.FragOff != 0 {
		l4len = 0 // a later fragment is all payload
	}
	eth := EthHeaderLen
	if s.VLAN != 0 {
		eth += VLANTagLen
	}
	b := make([]byte, eth+IPv4MinHeader+l4len+len(s.Payload))
	copy(b[0:6], s.EthDst[:])
	copy(b[6:12], s.EthSrc[:])
	if s.VLAN != 0 {
		binary.BigEndian.PutUint16(b[12:], EtherTypeVLAN)
		binary.BigEndian.PutUint16(b[14:], s.VLAN&0x0fff)
		binary.BigEndian.PutUint16(b[16:], EtherTypeIPv4)
	} else {
		binary.BigEndian.PutUint16(b[12:], EtherTypeIPv4)
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	h := b[eth:]
	putIPv4(h, IPv4MinHeader+l4len+len(s.Payload), s.IPID, ttl, s.Proto, s.Src, s.Dst)
	h[1] = s.TOS
	ff := s.FragOff & 0x1fff
	if s.DF {
		ff |= 0x4000
	}
	if s.MF {
		ff |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], ff)
	l4 := h[IPv4MinHeader:]
	if l4len > 0 {
		switch s.Proto {
		case ProtoTCP:
			binary.BigEndian.PutUint16(l4[0:], s.SrcPort)
			binary.BigEndian.PutUint16(l4[2:], s.DstPort)
			l4[12] = 5 << 4
			l4[13] = s.TCPFlags
			binary.BigEndian.PutUint16(l4[14:], 65535)
		case ProtoUDP:
			binary.BigEndian.PutUint16(l4[0:], s.SrcPort)
			binary.BigEndian.PutUint16(l4[2:], s.DstPort)
			binary.BigEndian.PutUint16(l4[4:], uint16(8+len(s.Payload)))
		case ProtoICMP:
			l4[0], l4[1] = s.ICMPType, s.ICMPCode
			binary.BigEndian.PutUint16(l4[4:], s.SrcPort)
		}
	}
	copy(l4[l4len:], s.Payload)
	var p Packet
	p.Decode(b)
	FixChecksums(b, &p)
	return b
}
