package datapath

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/canopy-sdn/canopy/internal/netnstest"
)

func TestUplinkBatch(t *testing.T) {
	netnstest.RequireRoot(t)
	sfx := netnstest.Suffix(t)
	nsA, nsB := netnstest.New(t, "cdpua-"+sfx), netnstest.New(t, "cdpub-"+sfx)
	netnstest.Veth(t, "cdua"+sfx, "cdub"+sfx, nsA, nsB)
	open := func(ns netns.NsHandle, name string) *Uplink {
		if err := SetLink(ns, name, LinkConfig{Up: true}); err != nil {
			t.Fatal(err)
		}
		var u *Uplink
		var err error
		netnstest.Do(t, ns, func() { u, err = OpenUplink(name) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		return u
	}
	a, b := open(nsA, "cdua"+sfx), open(nsB, "cdub"+sfx)

	const etherType = 0x88b5 // IEEE local experimental: nothing else sends it
	var out []Packet
	for i := 0; i < 100; i++ {
		f := make([]byte, 60+i*10)
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(f[12:], etherType)
		binary.BigEndian.PutUint32(f[14:], uint32(i))
		out = append(out, Packet{Buf: f, N: len(f)})
	}
	if n, err := a.WriteBatch(out); err != nil || n != len(out) {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}

	pkts := make([]Packet, 32)
	for i := range pkts {
		pkts[i].Buf = make([]byte, MaxFrame)
	}
	got := 0
	deadline := time.AfterFunc(10*time.Second, func() { b.Close() })
	defer deadline.Stop()
	for got < len(out) {
		n, err := b.ReadBatch(pkts)
		if err != nil {
			t.Fatalf("after %d frames: %v", got, err)
		}
		for _, p := range pkts[:n] {
			f := p.Frame()
			if binary.BigEndian.Uint16(f[12:]) != etherType {
				continue // IPv6 neighbour discovery and the like
			}
			if !bytes.Equal(f, out[got].Frame()) {
				t.Fatalf("frame %d differs", got)
			}
			got++
		}
	}
	// Our own transmissions are not read back.
	if rx := a.Stats.RxFrames.Load(); rx != 0 {
		done := make(chan struct{})
		go func() {
			n, _ := a.ReadBatch(pkts)
			for _, p := range pkts[:n] {
				if binary.BigEndian.Uint16(p.Frame()[12:]) == etherType {
					t.Error("the sender read its own frame back")
				}
			}
			close(done)
		}()
		a.Close()
		<-done
	}
}
