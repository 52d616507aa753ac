package agent

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// segments splits a TSO super-frame of payload bytes into mss-sized frames
// with complete checksums, as the sending agent's tunnel does.
func segments(t *testing.T, payload, mss int) [][]byte {
	t.Helper()
	f := tcpFrame(payload)
	hdr := partial(f)
	hdr.GSOType, hdr.GSOSize, hdr.HdrLen = datapath.GSOTCPv4, uint16(mss), 54
	n := (payload + mss - 1) / mss
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, 54+mss)
	}
	sizes := make([]int, n)
	if _, err := datapath.Segment(f, &hdr, out, 0, sizes); err != nil {
		t.Fatal(err)
	}
	for i := range out {
		out[i] = out[i][:sizes[i]]
	}
	return out
}

// TestMergerRoundTrip: segments merged into a super-frame and segmented
// again are the segments that went in, byte for byte.
func TestMergerRoundTrip(t *testing.T) {
	a, _ := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1")})
	agentEnd, vmEnd := datapathfake.Pair("p", "vm")
	vp := a.newVport("p", "p", 1, agentEnd)
	read := func() (datapath.Packet, bool) {
		pk := []datapath.Packet{{Buf: make([]byte, datapath.MaxFrame)}}
		n, _ := vmEnd.ReadBatch(pk)
		return pk[0], n == 1
	}
	for _, c := range []struct{ payload, mss int }{{60000, 1398}, {1398 * 3, 1398}, {5000, 1398}, {100, 1398}} {
		segs := segments(t, c.payload, c.mss)
		m := newMerger()
		for _, s := range segs {
			if !m.add(vp, append([]byte(nil), s...)) {
				t.Fatalf("segment refused: %d bytes", len(s))
			}
		}
		m.flush()
		pk, ok := read()
		if !ok {
			t.Fatal("nothing written")
		}
		if len(segs) == 1 {
			if !bytes.Equal(pk.Frame(), segs[0]) || pk.Hdr.IsGSO() {
				t.Fatal("a lone segment should pass unchanged")
			}
			continue
		}
		if !pk.Hdr.IsGSO() || int(pk.Hdr.GSOSize) != c.mss {
			t.Fatalf("payload %d: merged header %+v", c.payload, pk.Hdr)
		}
		again := make([][]byte, len(segs))
		for i := range again {
			again[i] = make([]byte, 54+c.mss)
		}
		sizes := make([]int, len(segs))
		n, err := datapath.Segment(pk.Frame(), &pk.Hdr, again, 0, sizes)
		if err != nil || n != len(segs) {
			t.Fatalf("payload %d: re-segmenting: %d segments, %v", c.payload, n, err)
		}
		for i := range segs {
			if !bytes.Equal(again[i][:sizes[i]], segs[i]) {
				t.Fatalf("payload %d: segment %d differs after merge and split", c.payload, i)
			}
		}
	}

	// Out of order, or another connection: written as they came.
	segs := segments(t, 5000, 1398)
	m := newMerger()
	m.add(vp, segs[0])
	if m.add(vp, segs[2]); m.segs != 1 {
		t.Error("a gap in the sequence merged")
	}
	m.flush()
	other := tcpFrame(10)
	var p packet.Packet
	p.Decode(other)
	packet.SetSrcPort(other, &p, 1)
	m.add(vp, segs[3])
	if m.add(vp, other); m.segs != 1 {
		t.Error("another connection merged")
	}
	m.flush()
	for range 4 {
		if _, ok := read(); !ok {
			t.Fatal("a frame was lost")
		}
	}
}
