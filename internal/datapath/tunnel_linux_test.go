package datapath

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/canopy-sdn/canopy/internal/netnstest"
)

// tunnelPair opens a tunnel socket in each of two namespaces joined by a
// veth pair (10.99.2.1 ↔ 10.99.2.2).
func tunnelPair(t testing.TB, cfg TunnelConfig) (a, b *Tunnel) {
	t.Helper()
	sfx := netnstest.Suffix(t)
	nsA, nsB := netnstest.New(t, "cdpta-"+sfx), netnstest.New(t, "cdptb-"+sfx)
	netnstest.Veth(t, "cdva"+sfx, "cdvb"+sfx, nsA, nsB)
	netnstest.AddAddr(t, nsA, "cdva"+sfx, "10.99.2.1/24")
	netnstest.AddAddr(t, nsB, "cdvb"+sfx, "10.99.2.2/24")
	open := func(ns netns.NsHandle, addr string) *Tunnel {
		c := cfg
		c.Local = netip.MustParseAddrPort(addr)
		var tun *Tunnel
		var err error
		netnstest.Do(t, ns, func() { tun, err = OpenTunnel(c) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tun.Close() })
		return tun
	}
	return open(nsA, "10.99.2.1:0"), open(nsB, "10.99.2.2:0")
}

// readN reads until n frames arrived (copying them, since frames are views
// valid until the next read) or the deadline passes.
func readN(t *testing.T, tun *Tunnel, n int) []TunnelPacket {
	t.Helper()
	var got []TunnelPacket
	done := make(chan error, 1)
	go func() {
		pkts := make([]TunnelPacket, 128)
		for len(got) < n {
			k, err := tun.ReadBatch(pkts)
			if err != nil {
				done <- err
				return
			}
			for _, p := range pkts[:k] {
				p.Frame = append([]byte(nil), p.Frame...)
				got = append(got, p)
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		tun.Close() // unblocks the reader
		<-done
		t.Fatalf("received %d of %d frames", len(got), n)
	}
	return got
}

func TestTunnelVNIAndFrames(t *testing.T) {
	netnstest.RequireRoot(t)
	a, b := tunnelPair(t, TunnelConfig{})
	if a.Local().Port() != DefaultTunnelPort {
		t.Fatalf("default port %d", a.Local().Port())
	}
	var pkts []TunnelPacket
	for i, vni := range []uint32{1, 4242, MaxVNI} {
		f, _ := superFrame{payload: 100 + i, mss: 1448, flags: 0x18}.build()
		pkts = append(pkts, TunnelPacket{Addr: b.Local(), VNI: vni, Frame: f})
	}
	// A plain frame with a partial checksum, as a TAP hands small segments.
	f, h := superFrame{payload: 500, mss: 1448}.build()
	h.GSOType, h.GSOSize = GSONone, 0
	pkts = append(pkts, TunnelPacket{Addr: b.Local(), VNI: 7, Frame: f, Hdr: h})
	// Invalid ones are dropped and counted, not sent.
	pkts = append(pkts, TunnelPacket{Addr: b.Local(), VNI: MaxVNI + 1, Frame: f})
	if n, err := a.WriteBatch(pkts); err != nil || n != len(pkts) {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	if a.Stats.TxDropped.Load() != 1 {
		t.Fatalf("TxDropped %d, want 1", a.Stats.TxDropped.Load())
	}
	got := readN(t, b, 4)
	for i, p := range got {
		if p.VNI != pkts[i].VNI || p.Addr != a.Local() {
			t.Fatalf("frame %d: VNI %d from %v, want %d from %v", i, p.VNI, p.Addr, pkts[i].VNI, a.Local())
		}
		if !bytes.Equal(p.Frame, pkts[i].Frame) {
			t.Fatalf("frame %d differs", i)
		}
	}
	checkSegment(t, got[3].Frame, superFrame{})
}

func TestTunnelLargeSegment(t *testing.T) {
	netnstest.RequireRoot(t)
	for _, tc := range []struct {
		cfg TunnelConfig
		mss int
	}{
		// VM MTU 1450 = underlay 1500 - TunnelOverhead: MSS 1398 with
		// timestamps; every encapsulated segment fits the underlay.
		{TunnelConfig{}, 1398},
		{TunnelConfig{NoGSO: true, NoGRO: true}, 1398},
		// VM MTU 1500 over an underlay of 1500: the kernel refuses the GSO
		// sends; the datagrams go one by one, fragmented, never lost.
		{TunnelConfig{}, 1448},
	} {
		cfg := tc.cfg
		t.Run(fmt.Sprintf("gso=%v,gro=%v,mss=%d", !cfg.NoGSO, !cfg.NoGRO, tc.mss), func(t *testing.T) {
			a, b := tunnelPair(t, cfg)
			if !cfg.NoGSO && (!a.GSO() || !b.GRO()) {
				t.Fatalf("kernel 6.x should offer UDP GSO and GRO: gso=%v gro=%v", a.GSO(), b.GRO())
			}
			// Two 64 KB segments: each needs two GSO sends (pitfall 2).
			sf := superFrame{payload: 65000, mss: tc.mss, flags: 0x18}
			f1, h := sf.build()
			f2, _ := sf.build()
			pkts := []TunnelPacket{{Addr: b.Local(), VNI: 99, Frame: f1, Hdr: h}, {Addr: b.Local(), VNI: 100, Frame: f2, Hdr: h}}
			if _, err := a.WriteBatch(pkts); err != nil {
				t.Fatal(err)
			}
			nseg := (sf.payload + sf.mss - 1) / sf.mss
			got := readN(t, b, 2*nseg)
			for j, f := range [][]byte{f1, f2} {
				var joined []byte
				for i, p := range got[j*nseg : (j+1)*nseg] {
					if p.VNI != uint32(99+j) {
						t.Fatalf("segment %d: VNI %d", i, p.VNI)
					}
					pl, _, _, _ := checkSegment(t, p.Frame, sf)
					joined = append(joined, pl...)
				}
				if !bytes.Equal(joined, f[h.HdrLen:]) {
					t.Fatal("the payload did not survive the tunnel")
				}
			}
			sends := a.Stats.TxFrames.Load()
			t.Logf("%d inner frames in %d UDP sends; %d coalesced receives", 2*nseg, sends, b.RxCoalesced.Load())
			if d := a.Stats.TxDropped.Load(); d != 0 {
				t.Fatalf("%d datagrams dropped", d)
			}
			if !cfg.NoGSO && tc.mss+66+TunnelOverhead <= 1500+14 {
				if sends != 4 {
					t.Fatalf("%d UDP sends for two 64 KB segments, want 4", sends)
				}
				if b.RxCoalesced.Load() == 0 {
					t.Fatal("no GRO-coalesced receive")
				}
			} else if sends != uint64(2*nseg) {
				t.Fatalf("%d sends without GSO, want %d", sends, 2*nseg)
			}
		})
	}
}

func TestTunnelCloseWakesReader(t *testing.T) {
	netnstest.RequireRoot(t)
	a, _ := tunnelPair(t, TunnelConfig{})
	done := make(chan error)
	go func() {
		_, err := a.ReadBatch(make([]TunnelPacket, 4))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if err != ErrClosed {
			t.Fatalf("ReadBatch after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the reader")
	}
}

// The per-packet path of the tunnel allocates nothing: a 64 KB segment
// split, encapsulated, sent with GSO, received with GRO and split again.
func TestTunnelAllocs(t *testing.T) {
	netnstest.RequireRoot(t)
	a, b := tunnelPair(t, TunnelConfig{})
	sf := superFrame{payload: 65000, mss: 1398, flags: 0x18}
	f, h := sf.build()
	nseg := (sf.payload + sf.mss - 1) / sf.mss
	w := []TunnelPacket{{Addr: b.Local(), VNI: 5, Frame: f, Hdr: h}}
	r := make([]TunnelPacket, 128)
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := a.WriteBatch(w); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < nseg; {
			n, err := b.ReadBatch(r)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per 64 KB segment through the tunnel", allocs)
	}
}

func BenchmarkTunnel64K(b *testing.B) {
	netnstest.RequireRoot(b)
	ta, tb := tunnelPair(b, TunnelConfig{})
	sf := superFrame{payload: 65000, mss: 1398, flags: 0x18}
	f, h := sf.build()
	nseg := (sf.payload + sf.mss - 1) / sf.mss
	w := []TunnelPacket{{Addr: tb.Local(), VNI: 5, Frame: f, Hdr: h}}
	r := make([]TunnelPacket, 128)
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		ta.WriteBatch(w)
		for got := 0; got < nseg; {
			n, err := tb.ReadBatch(r)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
