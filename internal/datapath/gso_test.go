package datapath

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// naiveSum is the textbook RFC 1071 sum, 16 bits at a time: the reference
// the fast checksum and the segmenter are checked against.
func naiveSum(bs ...[]byte) uint16 {
	var s uint32
	for _, b := range bs {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

type superFrame struct {
	v6, udp bool
	payload int
	mss     int
	flags   uint8 // TCP flags
}

// build makes a GSO super-frame as a TAP would hand it over: NEEDS_CSUM
// with the pseudo-header sum in the L4 checksum field.
func (sf superFrame) build() ([]byte, VnetHdr) {
	var b []byte
	eth := make([]byte, 14)
	copy(eth, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
	l4len := 32 + sf.payload
	proto := uint8(protoTCP)
	if sf.udp {
		l4len, proto = 8+sf.payload, protoUDP
	}
	var ip, src, dst []byte
	if sf.v6 {
		binary.BigEndian.PutUint16(eth[12:], etherTypeIPv6)
		ip = make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(l4len))
		ip[6], ip[7] = proto, 64
		ip[8], ip[9], ip[23] = 0x20, 0x01, 1 // 2001::1
		ip[24], ip[25], ip[39] = 0x20, 0x01, 2
		src, dst = ip[8:24], ip[24:40]
	} else {
		binary.BigEndian.PutUint16(eth[12:], etherTypeIPv4)
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len))
		binary.BigEndian.PutUint16(ip[4:], 0xfff0) // ids wrap during the split
		ip[6] = 0x40                               // DF
		ip[8], ip[9] = 64, proto
		copy(ip[12:], []byte{10, 99, 0, 1, 10, 99, 0, 2})
		binary.BigEndian.PutUint16(ip[10:], ^naiveSum(ip))
		src, dst = ip[12:16], ip[16:20]
	}
	var l4 []byte
	if sf.udp {
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], 5000)
		binary.BigEndian.PutUint16(l4[2:], 5001)
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	} else {
		l4 = make([]byte, 32)
		binary.BigEndian.PutUint16(l4[0:], 40000)
		binary.BigEndian.PutUint16(l4[2:], 5201)
		binary.BigEndian.PutUint32(l4[4:], 0xfffff000) // seq wraps too
		binary.BigEndian.PutUint32(l4[8:], 77)
		l4[12] = 8 << 4
		l4[13] = sf.flags
		binary.BigEndian.PutUint16(l4[14:], 512)
		copy(l4[20:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}) // timestamps
	}
	pseudo := make([]byte, 0, 40)
	pseudo = append(append(pseudo, src...), dst...)
	pseudo = append(pseudo, 0, proto, byte(l4len>>8), byte(l4len))
	b = append(append(append(b, eth...), ip...), l4...)
	for i := 0; i < sf.payload; i++ {
		b = append(b, byte(i*7+i>>8))
	}
	h := VnetHdr{Flags: VnetFlagNeedsCsum, GSOSize: uint16(sf.mss), CsumStart: uint16(14 + len(ip))}
	h.HdrLen = h.CsumStart + uint16(len(l4))
	switch {
	case sf.udp:
		h.GSOType, h.CsumOffset = GSOUDPL4, 6
	case sf.v6:
		h.GSOType, h.CsumOffset = GSOTCPv6, 16
	default:
		h.GSOType, h.CsumOffset = GSOTCPv4, 16
	}
	binary.BigEndian.PutUint16(b[int(h.CsumStart)+int(h.CsumOffset):], naiveSum(pseudo))
	return b, h
}

// checkSegment verifies one output frame's lengths and checksums with the
// naive sum and returns its L4 payload and TCP seq/flags.
func checkSegment(t *testing.T, seg []byte, sf superFrame) (payload []byte, seq uint32, flags uint8, ipID uint16) {
	t.Helper()
	l3 := 14
	var l4 []byte
	var pseudo []byte
	proto := byte(protoTCP)
	if sf.udp {
		proto = protoUDP
	}
	if sf.v6 {
		ip := seg[l3:]
		if got := int(binary.BigEndian.Uint16(ip[4:])); got != len(seg)-l3-40 {
			t.Fatalf("IPv6 payload length %d, frame has %d", got, len(seg)-l3-40)
		}
		l4 = ip[40:]
		pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, proto)
	} else {
		ip := seg[l3 : l3+20]
		if naiveSum(ip) != 0xffff {
			t.Fatalf("bad IPv4 header checksum")
		}
		if got := int(binary.BigEndian.Uint16(ip[2:])); got != len(seg)-l3 {
			t.Fatalf("IPv4 total length %d, frame has %d", got, len(seg)-l3)
		}
		ipID = binary.BigEndian.Uint16(ip[4:])
		l4 = seg[l3+20:]
		pseudo = append(append([]byte{}, ip[12:20]...), 0, proto, byte(len(l4)>>8), byte(len(l4)))
	}
	if naiveSum(pseudo, l4) != 0xffff {
		t.Fatalf("bad L4 checksum")
	}
	if sf.udp {
		if int(binary.BigEndian.Uint16(l4[4:])) != len(l4) {
			t.Fatalf("bad UDP length")
		}
		return l4[8:], 0, 0, ipID
	}
	return l4[32:], binary.BigEndian.Uint32(l4[4:]), l4[13], ipID
}

func TestSegment(t *testing.T) {
	for _, sf := range []superFrame{
		{payload: 64000, mss: 1448, flags: 0x18 | tcpFlagCWR}, // PSH|ACK
		{payload: 1448 * 3, mss: 1448, flags: 0x19},           // exact multiple, FIN
		{v6: true, payload: 50000, mss: 1428, flags: 0x10},
		{payload: 100, mss: 1448, flags: 0x18}, // one segment
		{udp: true, payload: 30000, mss: 1472},
		{udp: true, v6: true, payload: 8000, mss: 1000},
	} {
		frame, h := sf.build()
		orig := append([]byte{}, frame...)
		want, err := SegmentCount(frame, &h)
		if err != nil {
			t.Fatal(err)
		}
		out := make([][]byte, 64)
		for i := range out {
			out[i] = make([]byte, 2000)
		}
		sizes := make([]int, 64)
		n, err := Segment(frame, &h, out, 8, sizes)
		if err != nil {
			t.Fatalf("%+v: %v", sf, err)
		}
		if n != want || n != (sf.payload+sf.mss-1)/sf.mss {
			t.Fatalf("%+v: %d segments, SegmentCount %d", sf, n, want)
		}
		if !bytes.Equal(frame, orig) {
			t.Fatalf("%+v: the input frame was modified", sf)
		}
		var joined []byte
		var firstSeq uint32
		var firstID uint16
		for i := 0; i < n; i++ {
			seg := out[i][8 : 8+sizes[i]]
			pl, seq, flags, id := checkSegment(t, seg, sf)
			if i < n-1 && len(pl) != sf.mss {
				t.Fatalf("%+v: segment %d has %d bytes", sf, i, len(pl))
			}
			if i == 0 {
				firstSeq, firstID = seq, id
			}
			if !sf.udp {
				if seq != firstSeq+uint32(len(joined)) {
					t.Fatalf("%+v: segment %d seq %d", sf, i, seq)
				}
				last, first := i == n-1, i == 0
				if (flags&tcpFlagPSH != 0) != (last && sf.flags&tcpFlagPSH != 0) ||
					(flags&tcpFlagFIN != 0) != (last && sf.flags&tcpFlagFIN != 0) ||
					(flags&tcpFlagCWR != 0) != (first && sf.flags&tcpFlagCWR != 0) {
					t.Fatalf("%+v: segment %d flags %#x", sf, i, flags)
				}
			}
			if !sf.v6 && id != firstID+uint16(i) {
				t.Fatalf("%+v: segment %d IP id %d", sf, i, id)
			}
			joined = append(joined, pl...)
		}
		hl := int(h.HdrLen)
		if !bytes.Equal(joined, frame[hl:]) {
			t.Fatalf("%+v: payload differs after the split", sf)
		}
	}
}

func TestSegmentErrors(t *testing.T) {
	frame, h := superFrame{payload: 64000, mss: 1448}.build()
	out := make([][]byte, 10)
	for i := range out {
		out[i] = make([]byte, 2000)
	}
	sizes := make([]int, 10)
	if _, err := Segment(frame, &h, out, 0, sizes); err != ErrTooManySeg {
		t.Fatalf("too few outputs: got %v", err)
	}
	bad := h
	bad.GSOSize = 0
	if _, err := Segment(frame, &bad, out, 0, sizes); err != ErrBadGSO {
		t.Fatalf("GSO size 0: got %v", err)
	}
	bad = h
	bad.GSOType = GSOTCPv6
	if _, err := Segment(frame, &bad, out, 0, sizes); err != ErrBadGSO {
		t.Fatalf("TCPv6 on an IPv4 frame: got %v", err)
	}
	if _, err := Segment(frame[:40], &h, out, 0, sizes); err != ErrTruncated {
		t.Fatalf("truncated: got %v", err)
	}
	small, sh := superFrame{payload: 3000, mss: 1448}.build()
	short := [][]byte{make([]byte, 100), make([]byte, 100), make([]byte, 100)}
	if _, err := Segment(small, &sh, short, 0, sizes); err != ErrShortBuf {
		t.Fatalf("short buffers: got %v", err)
	}
}

func TestFinishChecksum(t *testing.T) {
	for _, sf := range []superFrame{{payload: 999, mss: 1448, flags: 0x18}, {udp: true, v6: true, payload: 77, mss: 1000}} {
		frame, h := sf.build()
		h.GSOType, h.GSOSize = GSONone, 0
		if err := FinishChecksum(frame, &h); err != nil {
			t.Fatal(err)
		}
		if h.NeedsCsum() {
			t.Fatal("NEEDS_CSUM still set")
		}
		checkSegment(t, frame, sf)
	}
}

func TestChecksumMatchesNaive(t *testing.T) {
	b := make([]byte, 2000)
	for i := range b {
		b[i] = byte(i*131 + i>>3)
	}
	for n := 0; n < len(b); n += 1 + n/7 {
		for _, init := range []uint16{0, 1, 0xffff, 0x1234} {
			want := ^naiveSum(b[:n], []byte{byte(init >> 8), byte(init)})
			if got := Checksum(b[:n], init); got != want {
				t.Fatalf("len %d init %#x: %#x, want %#x", n, init, got, want)
			}
		}
	}
}

func TestSegmentAllocs(t *testing.T) {
	frame, h := superFrame{payload: 64000, mss: 1448, flags: 0x18}.build()
	out := make([][]byte, 64)
	for i := range out {
		out[i] = make([]byte, 2000)
	}
	sizes := make([]int, 64)
	if a := testing.AllocsPerRun(100, func() { Segment(frame, &h, out, 8, sizes) }); a != 0 {
		t.Fatalf("Segment allocates %.1f times", a)
	}
}

func BenchmarkSegment64K(b *testing.B) {
	frame, h := superFrame{payload: 64000, mss: 1448, flags: 0x18}.build()
	out := make([][]byte, 64)
	for i := range out {
		out[i] = make([]byte, 2000)
	}
	sizes := make([]int, 64)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		Segment(frame, &h, out, 8, sizes)
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	b.ReportAllocs()
	for b.Loop() {
		Checksum(buf, 0)
	}
}
