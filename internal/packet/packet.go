package packet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// EtherTypes and IP protocol numbers the simulator understands.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100
	EtherTypeIPv6 = 0x86dd

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	ARPRequest = 1
	ARPReply   = 2

	ICMPEchoReply      = 0
	ICMPUnreachable    = 3
	ICMPEchoRequest    = 8
	ICMPTimeExceeded   = 11
	ICMPCodeNet        = 0
	ICMPCodeHost       = 1
	ICMPCodeFragNeeded = 4
	ICMPCodeAdminProh  = 13

	EthHeaderLen  = 14
	VLANTagLen    = 4
	IPv4MinHeader = 20
	ARPLen        = 28
)

// Flags records what a decode found and where it stopped.
type Flags uint16

const (
	FlagVLAN       Flags = 1 << iota // one 802.1Q tag was present
	FlagARP                          // a complete IPv4-over-Ethernet ARP packet
	FlagIPv4                         // a valid IPv4 header
	FlagL4                           // the L4 header (ports / ICMP type) was decoded
	FlagFragment                     // MF set or a non-zero fragment offset
	FlagICMPError                    // ICMP error with a decoded embedded header
	FlagTruncated                    // the frame ended inside a header
	FlagBadHeader                    // a header field made no sense (IHL < 5, ...)
	FlagIPOptions                    // the IPv4 header carries options
	FlagInnerPorts                   // the embedded packet of an ICMP error had ports/echo id
)

// Inner is the IP header (and first 8 bytes of payload) an ICMP error quotes.
type Inner struct {
	Src, Dst         uint32
	Proto            uint8
	SrcPort, DstPort uint16 // for ICMP echo, SrcPort = DstPort = echo id
	ICMPType         uint8
	Off              int // offset of the embedded IP header in the frame
	IHL              int // its header length in bytes
}

// Packet is a decoded frame. All fields are values: a Packet is copied
// freely by the simulator (a branch of a flood works on its own copy).
// IPv4 addresses are big-endian-read uint32s (10.0.0.1 = 0x0a000001).
type Packet struct {
	Flags Flags

	EthDst, EthSrc [6]byte
	VLAN           uint16 // VLAN id (12 bits) when FlagVLAN
	EtherType      uint16 // after the VLAN tag
	L3Off          int    // offset of the L3 header

	// ARP (FlagARP)
	ARPOp          uint16
	ARPSHA, ARPTHA [6]byte
	ARPSPA, ARPTPA uint32

	// IPv4 (FlagIPv4)
	IHL      int // header length in bytes
	TOS      uint8
	TotalLen uint16
	IPID     uint16
	DF, MF   bool
	FragOff  uint16 // in 8-byte units
	TTL      uint8
	Proto    uint8
	Src, Dst uint32
	L4Off    int

	// L4 (FlagL4). For ICMP echo request/reply SrcPort = DstPort = echo id,
	// so conntrack and NAT treat the id as the port.
	SrcPort, DstPort   uint16
	TCPFlags           uint8
	ICMPType, ICMPCode uint8

	Inner Inner // FlagICMPError
}

// Has reports whether all of f are set.
func (p *Packet) Has(f Flags) bool { return p.Flags&f == f }

// IsFragment reports whether the packet is any fragment.
func (p *Packet) IsFragment() bool { return p.Flags&FlagFragment != 0 }

// IsHeaderFragment reports whether the packet carries the L4 header: an
// unfragmented packet or the first fragment.
func (p *Packet) IsHeaderFragment() bool { return p.FragOff == 0 }

// IsEcho reports whether the packet is an ICMP echo request or reply.
func (p *Packet) IsEcho() bool {
	return p.Proto == ProtoICMP && p.Flags&FlagL4 != 0 && (p.ICMPType == ICMPEchoRequest || p.ICMPType == ICMPEchoReply)
}

// SrcAddr and DstAddr return the IPv4 addresses as netip values.
func (p *Packet) SrcAddr() netip.Addr { return AddrFrom(p.Src) }
func (p *Packet) DstAddr() netip.Addr { return AddrFrom(p.Dst) }

// AddrFrom converts a uint32 address to netip.Addr.
func AddrFrom(a uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}

// U32 converts an IPv4 netip.Addr to uint32 (0 for anything else).
func U32(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// Decode parses frame into p, overwriting every field. It never allocates
// and never panics, whatever the input.
func (p *Packet) Decode(frame []byte) {
	*p = Packet{}
	if len(frame) < EthHeaderLen {
		p.Flags |= FlagTruncated
		return
	}
	copy(p.EthDst[:], frame[0:6])
	copy(p.EthSrc[:], frame[6:12])
	et := binary.BigEndian.Uint16(frame[12:14])
	off := EthHeaderLen
	if et == EtherTypeVLAN {
		if len(frame) < off+VLANTagLen {
			p.Flags |= FlagTruncated
			p.EtherType = et
			return
		}
		p.Flags |= FlagVLAN
		p.VLAN = binary.BigEndian.Uint16(frame[14:16]) & 0x0fff
		et = binary.BigEndian.Uint16(frame[16:18])
		off += VLANTagLen
	}
	p.EtherType = et
	p.L3Off = off
	switch et {
	case EtherTypeARP:
		p.decodeARP(frame[off:])
	case EtherTypeIPv4:
		p.decodeIPv4(frame, off)
	}
}

func (p *Packet) decodeARP(b []byte) {
	if len(b) < ARPLen {
		p.Flags |= FlagTruncated
		return
	}
	// Only Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4.
	if binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != EtherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		p.Flags |= FlagBadHeader
		return
	}
	p.Flags |= FlagARP
	p.ARPOp = binary.BigEndian.Uint16(b[6:8])
	copy(p.ARPSHA[:], b[8:14])
	p.ARPSPA = binary.BigEndian.Uint32(b[14:18])
	copy(p.ARPTHA[:], b[18:24])
	p.ARPTPA = binary.BigEndian.Uint32(b[24:28])
}

func (p *Packet) decodeIPv4(frame []byte, off int) {
	b := frame[off:]
	if len(b) < IPv4MinHeader {
		p.Flags |= FlagTruncated
		return
	}
	if b[0]>>4 != 4 {
		p.Flags |= FlagBadHeader
		return
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4MinHeader {
		p.Flags |= FlagBadHeader
		return
	}
	if len(b) < ihl {
		p.Flags |= FlagTruncated
		return
	}
	p.Flags |= FlagIPv4
	if ihl > IPv4MinHeader {
		p.Flags |= FlagIPOptions
	}
	p.IHL = ihl
	p.TOS = b[1]
	p.TotalLen = binary.BigEndian.Uint16(b[2:4])
	p.IPID = binary.BigEndian.Uint16(b[4:6])
	ff := binary.BigEndian.Uint16(b[6:8])
	p.DF = ff&0x4000 != 0
	p.MF = ff&0x2000 != 0
	p.FragOff = ff & 0x1fff
	if p.MF || p.FragOff != 0 {
		p.Flags |= FlagFragment
	}
	p.TTL = b[8]
	p.Proto = b[9]
	p.Src = binary.BigEndian.Uint32(b[12:16])
	p.Dst = binary.BigEndian.Uint32(b[16:20])
	p.L4Off = off + ihl
	if p.FragOff != 0 {
		return // later fragments carry no L4 header
	}
	// The L4 header ends where the IP packet ends, or the frame, whichever is first.
	end := len(frame)
	if tl := off + int(p.TotalLen); tl >= p.L4Off && tl < end {
		end = tl
	}
	l4 := frame[p.L4Off:end]
	switch p.Proto {
	case ProtoTCP:
		if len(l4) < 14 {
			p.Flags |= FlagTruncated
			return
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
		p.TCPFlags = l4[13]
		p.Flags |= FlagL4
	case ProtoUDP:
		if len(l4) < 8 {
			p.Flags |= FlagTruncated
			return
		}
		p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		p.DstPort = binary.BigEndian.Uint16(l4[2:4])
		p.Flags |= FlagL4
	case ProtoICMP:
		if len(l4) < 8 {
			p.Flags |= FlagTruncated
			return
		}
		p.ICMPType = l4[0]
		p.ICMPCode = l4[1]
		p.Flags |= FlagL4
		switch p.ICMPType {
		case ICMPEchoRequest, ICMPEchoReply:
			id := binary.BigEndian.Uint16(l4[4:6])
			p.SrcPort, p.DstPort = id, id
		case ICMPUnreachable, ICMPTimeExceeded, 4 /* source quench */, 5 /* redirect */, 12 /* parameter problem */ :
			p.decodeInner(frame, p.L4Off+8, end)
		}
	}
}

// decodeInner reads the IP header and first 8 payload bytes an ICMP error quotes.
func (p *Packet) decodeInner(frame []byte, off, end int) {
	if end-off < IPv4MinHeader {
		return
	}
	b := frame[off:end]
	if b[0]>>4 != 4 {
		return
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4MinHeader || len(b) < ihl {
		return
	}
	in := &p.Inner
	in.Off = off
	in.IHL = ihl
	in.Proto = b[9]
	in.Src = binary.BigEndian.Uint32(b[12:16])
	in.Dst = binary.BigEndian.Uint32(b[16:20])
	p.Flags |= FlagICMPError
	fragOff := binary.BigEndian.Uint16(b[6:8]) & 0x1fff
	if fragOff != 0 || len(b) < ihl+8 {
		return
	}
	l4 := b[ihl:]
	switch in.Proto {
	case ProtoTCP, ProtoUDP:
		in.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		in.DstPort = binary.BigEndian.Uint16(l4[2:4])
		p.Flags |= FlagInnerPorts
	case ProtoICMP:
		in.ICMPType = l4[0]
		if l4[0] == ICMPEchoRequest || l4[0] == ICMPEchoReply {
			id := binary.BigEndian.Uint16(l4[4:6])
			in.SrcPort, in.DstPort = id, id
			p.Flags |= FlagInnerPorts
		}
	}
}

// String summarises the packet in one line (for traces and tests; it
// allocates).
func (p *Packet) String() string {
	var b []byte
	b = fmt.Appendf(b, "%s > %s", macStr(p.EthSrc), macStr(p.EthDst))
	if p.Flags&FlagVLAN != 0 {
		b = fmt.Appendf(b, " vlan %d", p.VLAN)
	}
	switch {
	case p.Flags&FlagARP != 0:
		op := "request"
		if p.ARPOp == ARPReply {
			op = "reply"
		}
		b = fmt.Appendf(b, " arp %s %s (%s) → %s (%s)", op, AddrFrom(p.ARPSPA), macStr(p.ARPSHA), AddrFrom(p.ARPTPA), macStr(p.ARPTHA))
	case p.Flags&FlagIPv4 != 0:
		b = fmt.Appendf(b, " ip %s > %s ttl %d", AddrFrom(p.Src), AddrFrom(p.Dst), p.TTL)
		if p.DF {
			b = append(b, " df"...)
		}
		if p.IsFragment() {
			b = fmt.Appendf(b, " frag off %d mf %v", p.FragOff, p.MF)
		}
		switch {
		case p.Flags&FlagL4 == 0:
			b = fmt.Appendf(b, " proto %d", p.Proto)
		case p.Proto == ProtoTCP:
			b = fmt.Appendf(b, " tcp %d > %d flags %#02x", p.SrcPort, p.DstPort, p.TCPFlags)
		case p.Proto == ProtoUDP:
			b = fmt.Appendf(b, " udp %d > %d", p.SrcPort, p.DstPort)
		case p.IsEcho():
			b = fmt.Appendf(b, " icmp type %d id %d", p.ICMPType, p.SrcPort)
		case p.Proto == ProtoICMP:
			b = fmt.Appendf(b, " icmp type %d code %d", p.ICMPType, p.ICMPCode)
			if p.Flags&FlagICMPError != 0 {
				in := &p.Inner
				b = fmt.Appendf(b, " [quoting proto %d %s:%d > %s:%d]", in.Proto, AddrFrom(in.Src), in.SrcPort, AddrFrom(in.Dst), in.DstPort)
			}
		}
	default:
		b = fmt.Appendf(b, " ethertype %#04x", p.EtherType)
	}
	return string(b)
}

func macStr(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
