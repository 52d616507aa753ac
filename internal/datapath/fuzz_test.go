package datapath

import (
	"bytes"
	"testing"
)

// FuzzParseVXLAN: any datagram either parses into a VNI that fits 24 bits
// and a view of its own bytes, or is refused; re-encoding the header of an
// accepted one gives back the VNI.
func FuzzParseVXLAN(f *testing.F) {
	good := make([]byte, VXLANHdrLen+ethHdrLen)
	PutVXLAN(good, 4242)
	f.Add(good)
	f.Add([]byte{0x08, 0, 0, 0})
	f.Add(bytes.Repeat([]byte{0xff}, 30))
	f.Fuzz(func(t *testing.T, b []byte) {
		vni, inner, err := ParseVXLAN(b)
		if err != nil {
			return
		}
		if vni > MaxVNI || len(inner) != len(b)-VXLANHdrLen {
			t.Fatalf("vni %d, inner %d of %d", vni, len(inner), len(b))
		}
		var h [VXLANHdrLen]byte
		PutVXLAN(h[:], vni)
		if v, _, err := ParseVXLAN(append(h[:], inner...)); err != nil || v != vni {
			t.Fatalf("round trip: %d %v", v, err)
		}
	})
}

// FuzzVnetFrame feeds a virtio-net header and a frame, as a misbehaving
// VM could write them, to the parsers and the segmenter: nothing panics,
// and whatever Segment produces fits its buffers and says so in sizes.
func FuzzVnetFrame(f *testing.F) {
	for _, sf := range []superFrame{
		{payload: 5000, mss: 1448, flags: 0x18},
		{v6: true, payload: 3000, mss: 1000},
		{udp: true, payload: 2000, mss: 500},
	} {
		frame, h := sf.build()
		var hb [VnetHdrLen]byte
		h.Encode(hb[:])
		f.Add(append(hb[:], frame...))
	}
	f.Add(make([]byte, 3))
	out := make([][]byte, 64)
	for i := range out {
		out[i] = make([]byte, 1600)
	}
	sizes := make([]int, 64)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h VnetHdr
		if err := h.Decode(b); err != nil {
			if len(b) >= VnetHdrLen {
				t.Fatal("decode failed on a long enough buffer")
			}
			return
		}
		var back [VnetHdrLen]byte
		h.Encode(back[:])
		if !bytes.Equal(back[:], b[:VnetHdrLen]) {
			t.Fatal("vnet header does not round-trip")
		}
		frame := b[VnetHdrLen:]
		want, cerr := SegmentCount(frame, &h)
		n, err := Segment(frame, &h, out, 8, sizes)
		if err != nil {
			return
		}
		if cerr != nil || n != want {
			t.Fatalf("Segment made %d, SegmentCount said %d (%v)", n, want, cerr)
		}
		for i := 0; i < n; i++ {
			if sizes[i] <= 0 || 8+sizes[i] > len(out[i]) {
				t.Fatalf("segment %d size %d", i, sizes[i])
			}
		}
		hc := h
		FinishChecksum(append([]byte(nil), frame...), &hc)
	})
}
