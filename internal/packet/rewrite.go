package packet

import "encoding/binary"

// The rewrite helpers change one header field of a decoded frame in place,
// update the checksums that cover it incrementally, and keep p in step with
// the frame. They do nothing when the layer is absent, and never allocate.

// SetEthSrc rewrites the Ethernet source address.
func SetEthSrc(frame []byte, p *Packet, mac [6]byte) {
	if len(frame) >= EthHeaderLen {
		copy(frame[6:12], mac[:])
		p.EthSrc = mac
	}
}

// SetEthDst rewrites the Ethernet destination address.
func SetEthDst(frame []byte, p *Packet, mac [6]byte) {
	if len(frame) >= EthHeaderLen {
		copy(frame[0:6], mac[:])
		p.EthDst = mac
	}
}

// l4CsumOff returns the offset of the TCP/UDP checksum, or -1 when the packet
// has none we must maintain (fragments, ICMP, UDP without a checksum).
func l4CsumOff(frame []byte, p *Packet) int {
	if p.Flags&FlagL4 == 0 {
		return -1
	}
	switch p.Proto {
	case ProtoTCP:
		if p.L4Off+18 <= len(frame) {
			return p.L4Off + 16
		}
	case ProtoUDP:
		if p.L4Off+8 <= len(frame) && binary.BigEndian.Uint16(frame[p.L4Off+6:]) != 0 {
			return p.L4Off + 6
		}
	}
	return -1
}

func setIP(frame []byte, p *Packet, fieldOff int, old, new uint32) {
	h := p.L3Off
	binary.BigEndian.PutUint32(frame[h+fieldOff:], new)
	c := binary.BigEndian.Uint16(frame[h+10:])
	binary.BigEndian.PutUint16(frame[h+10:], updateChecksum32(c, old, new))
	if o := l4CsumOff(frame, p); o >= 0 { // the pseudo-header covers the address
		c := binary.BigEndian.Uint16(frame[o:])
		n := updateChecksum32(c, old, new)
		if p.Proto == ProtoUDP && n == 0 {
			n = 0xffff
		}
		binary.BigEndian.PutUint16(frame[o:], n)
	}
}

// SetIPSrc rewrites the IPv4 source address.
func SetIPSrc(frame []byte, p *Packet, ip uint32) {
	if p.Flags&FlagIPv4 == 0 || p.Src == ip {
		return
	}
	setIP(frame, p, 12, p.Src, ip)
	p.Src = ip
}

// SetIPDst rewrites the IPv4 destination address.
func SetIPDst(frame []byte, p *Packet, ip uint32) {
	if p.Flags&FlagIPv4 == 0 || p.Dst == ip {
		return
	}
	setIP(frame, p, 16, p.Dst, ip)
	p.Dst = ip
}

// setPort rewrites the 16-bit word at L4Off+off: a TCP/UDP port or the ICMP
// echo id (whose checksum covers it directly, with no pseudo-header).
func setPort(frame []byte, p *Packet, off int, old, new uint16) {
	binary.BigEndian.PutUint16(frame[p.L4Off+off:], new)
	if p.Proto == ProtoICMP {
		c := binary.BigEndian.Uint16(frame[p.L4Off+2:])
		binary.BigEndian.PutUint16(frame[p.L4Off+2:], updateChecksum16(c, old, new))
		return
	}
	if o := l4CsumOff(frame, p); o >= 0 {
		c := binary.BigEndian.Uint16(frame[o:])
		n := updateChecksum16(c, old, new)
		if p.Proto == ProtoUDP && n == 0 {
			n = 0xffff
		}
		binary.BigEndian.PutUint16(frame[o:], n)
	}
}

// SetSrcPort rewrites the TCP/UDP source port, or the ICMP echo id.
func SetSrcPort(frame []byte, p *Packet, port uint16) {
	if p.Flags&FlagL4 == 0 || p.SrcPort == port {
		return
	}
	switch {
	case p.Proto == ProtoTCP || p.Proto == ProtoUDP:
		setPort(frame, p, 0, p.SrcPort, port)
		p.SrcPort = port
	case p.IsEcho():
		setPort(frame, p, 4, p.SrcPort, port)
		p.SrcPort, p.DstPort = port, port
	}
}

// SetDstPort rewrites the TCP/UDP destination port, or the ICMP echo id.
func SetDstPort(frame []byte, p *Packet, port uint16) {
	if p.Flags&FlagL4 == 0 || p.DstPort == port {
		return
	}
	switch {
	case p.Proto == ProtoTCP || p.Proto == ProtoUDP:
		setPort(frame, p, 2, p.DstPort, port)
		p.DstPort = port
	case p.IsEcho():
		setPort(frame, p, 4, p.DstPort, port)
		p.SrcPort, p.DstPort = port, port
	}
}

// DecTTL decrements the TTL by n (not below 0).
func DecTTL(frame []byte, p *Packet, n uint8) {
	if p.Flags&FlagIPv4 == 0 || n == 0 {
		return
	}
	if n > p.TTL {
		n = p.TTL
	}
	h := p.L3Off
	old := binary.BigEndian.Uint16(frame[h+8:])
	frame[h+8] = p.TTL - n
	p.TTL -= n
	c := binary.BigEndian.Uint16(frame[h+10:])
	binary.BigEndian.PutUint16(frame[h+10:], updateChecksum16(c, old, binary.BigEndian.Uint16(frame[h+8:])))
}

// SetInner rewrites the addresses and ports of the packet an ICMP error
// quotes (NAT of ICMP errors, RFC 5508 §4.2). ICMP errors are rare, so the
// embedded IP checksum and the ICMP checksum are recomputed in full.
func SetInner(frame []byte, p *Packet, src, dst uint32, sport, dport uint16) {
	if p.Flags&FlagICMPError == 0 {
		return
	}
	in := &p.Inner
	h := frame[in.Off : in.Off+in.IHL]
	binary.BigEndian.PutUint32(h[12:], src)
	binary.BigEndian.PutUint32(h[16:], dst)
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:], Checksum(h, 0))
	in.Src, in.Dst = src, dst
	if p.Flags&FlagInnerPorts != 0 {
		l4 := frame[in.Off+in.IHL:]
		if in.Proto == ProtoICMP {
			binary.BigEndian.PutUint16(l4[4:], sport)
			// The quoted echo's own checksum is beyond repair without its
			// payload; receivers do not check it.
		} else {
			binary.BigEndian.PutUint16(l4[0:], sport)
			binary.BigEndian.PutUint16(l4[2:], dport)
		}
		in.SrcPort, in.DstPort = sport, dport
	}
	end := p.L3Off + int(p.TotalLen)
	if end > len(frame) || end < p.L4Off+4 {
		end = len(frame)
	}
	icmp := frame[p.L4Off:end]
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], Checksum(icmp, 0))
}
