package datapath

import "encoding/binary"

// Ethernet and IP constants the segmenter needs.
const (
	ethHdrLen     = 14
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	protoTCP      = 6
	protoUDP      = 17
	tcpFlagFIN    = 0x01
	tcpFlagPSH    = 0x08
	tcpFlagCWR    = 0x80
)

// l3Offset returns the offset of the IP header and whether it is IPv6,
// skipping one 802.1Q tag.
func l3Offset(frame []byte) (int, bool, error) {
	if len(frame) < ethHdrLen {
		return 0, false, ErrTruncated
	}
	off := 12
	et := binary.BigEndian.Uint16(frame[off:])
	if et == etherTypeVLAN {
		off += 4
		if len(frame) < off+2 {
			return 0, false, ErrTruncated
		}
		et = binary.BigEndian.Uint16(frame[off:])
	}
	off += 2
	switch et {
	case etherTypeIPv4:
		if len(frame) < off+20 {
			return 0, false, ErrTruncated
		}
		return off, false, nil
	case etherTypeIPv6:
		if len(frame) < off+40 {
			return 0, false, ErrTruncated
		}
		return off, true, nil
	}
	return 0, false, ErrNotIP
}

// gsoLayout is where a super-frame's headers are.
type gsoLayout struct {
	l3, l4, hdrLen int
	v6, tcp        bool
	mss            int
}

func parseGSO(frame []byte, h *VnetHdr) (gsoLayout, error) {
	var g gsoLayout
	l3, v6, err := l3Offset(frame)
	if err != nil {
		return g, err
	}
	g.l3, g.v6 = l3, v6
	switch h.GSOType &^ GSOECN {
	case GSOTCPv4:
		g.tcp = true
		if v6 {
			return g, ErrBadGSO
		}
	case GSOTCPv6:
		g.tcp = true
		if !v6 {
			return g, ErrBadGSO
		}
	case GSOUDPL4:
	default:
		return g, ErrBadGSO
	}
	// The L4 offset: CsumStart when the sender set it (it accounts for IPv6
	// extension headers), else right after a plain IP header.
	switch {
	case h.NeedsCsum() && h.CsumStart != 0:
		g.l4 = int(h.CsumStart)
	case v6:
		g.l4 = l3 + 40
	default:
		g.l4 = l3 + int(frame[l3]&0x0f)*4
	}
	minL3 := 20
	if v6 {
		minL3 = 40
	}
	if g.l4 < l3+minL3 {
		return g, ErrBadGSO
	}
	if g.tcp {
		if len(frame) < g.l4+20 {
			return g, ErrTruncated
		}
		g.hdrLen = g.l4 + int(frame[g.l4+12]>>4)*4
		if g.hdrLen < g.l4+20 {
			return g, ErrBadGSO
		}
	} else {
		g.hdrLen = g.l4 + 8
	}
	if len(frame) < g.hdrLen {
		return g, ErrTruncated
	}
	g.mss = int(h.GSOSize)
	if g.mss == 0 {
		return g, ErrBadGSO
	}
	return g, nil
}

// SegmentCount is how many frames Segment would produce.
func SegmentCount(frame []byte, h *VnetHdr) (int, error) {
	if !h.IsGSO() {
		return 1, nil
	}
	g, err := parseGSO(frame, h)
	if err != nil {
		return 0, err
	}
	pl := len(frame) - g.hdrLen
	if pl <= 0 {
		return 1, nil
	}
	return (pl + g.mss - 1) / g.mss, nil
}

// Segment splits a GSO super-frame (TCP over IPv4/IPv6, or USO) into frames
// of at most GSOSize payload bytes with complete IP and L4 checksums, the
// way the kernel's software GSO would: IPv4 ids increase, lengths are
// fixed, TCP sequence numbers advance, FIN and PSH stay on the last segment
// and CWR on the first. Segment i is written to out[i][headroom:] and its
// length (without headroom) to sizes[i]. A frame that is not GSO is copied
// as one segment with its checksum finished. Nothing is allocated.
//
// For a UDP GSO send, pass out[i] as consecutive slices of one buffer, each
// headroom+HdrLen+GSOSize long: the segments then lie back to back and all
// but the last have the same length, which is what UDP_SEGMENT requires.
func Segment(frame []byte, h *VnetHdr, out [][]byte, headroom int, sizes []int) (int, error) {
	if !h.IsGSO() {
		if len(out) < 1 || len(sizes) < 1 {
			return 0, ErrTooManySeg
		}
		if len(frame) < ethHdrLen {
			return 0, ErrTruncated
		}
		if len(out[0]) < headroom+len(frame) {
			return 0, ErrShortBuf
		}
		dst := out[0][headroom : headroom+len(frame)]
		copy(dst, frame)
		hc := *h
		if err := FinishChecksum(dst, &hc); err != nil {
			return 0, err
		}
		sizes[0] = len(frame)
		return 1, nil
	}
	g, err := parseGSO(frame, h)
	if err != nil {
		return 0, err
	}
	payload := frame[g.hdrLen:]
	n := (len(payload) + g.mss - 1) / g.mss
	if n == 0 {
		n = 1
	}
	if n > len(out) || n > len(sizes) {
		return 0, ErrTooManySeg
	}
	var src, dst []byte // pseudo-header addresses, from the original
	if g.v6 {
		src, dst = frame[g.l3+8:g.l3+24], frame[g.l3+24:g.l3+40]
	} else {
		src, dst = frame[g.l3+12:g.l3+16], frame[g.l3+16:g.l3+20]
	}
	var ipID uint16
	if !g.v6 {
		ipID = binary.BigEndian.Uint16(frame[g.l3+4:])
	}
	var seq uint32
	if g.tcp {
		seq = binary.BigEndian.Uint32(frame[g.l4+4:])
	}
	for i := 0; i < n; i++ {
		lo := i * g.mss
		hi := min(lo+g.mss, len(payload))
		pl := hi - lo
		segLen := g.hdrLen + pl
		if len(out[i]) < headroom+segLen {
			return 0, ErrShortBuf
		}
		seg := out[i][headroom : headroom+segLen]
		copy(seg, frame[:g.hdrLen])
		copy(seg[g.hdrLen:], payload[lo:hi])
		ip := seg[g.l3:]
		if g.v6 {
			binary.BigEndian.PutUint16(ip[4:], uint16(segLen-g.l3-40))
		} else {
			ihl := int(ip[0]&0x0f) * 4
			binary.BigEndian.PutUint16(ip[2:], uint16(segLen-g.l3))
			binary.BigEndian.PutUint16(ip[4:], ipID+uint16(i))
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:ihl], 0))
		}
		l4 := seg[g.l4:]
		l4len := segLen - g.l4
		var proto uint8
		var csumOff int
		if g.tcp {
			proto, csumOff = protoTCP, 16
			binary.BigEndian.PutUint32(l4[4:], seq+uint32(lo))
			if i != n-1 {
				l4[13] &^= tcpFlagFIN | tcpFlagPSH
			}
			if i != 0 {
				l4[13] &^= tcpFlagCWR
			}
		} else {
			proto, csumOff = protoUDP, 6
			binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
		}
		l4[csumOff], l4[csumOff+1] = 0, 0
		c := ^csumFold(csumAdd(pseudoSum(src, dst, proto, l4len), l4[:l4len]))
		if c == 0 && !g.tcp {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(l4[csumOff:], c)
		sizes[i] = segLen
	}
	return n, nil
}
