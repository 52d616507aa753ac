package datapath

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/canopy-sdn/canopy/internal/netnstest"
)

// forward copies frames from src to dst, keeping the virtio-net header,
// until src is closed. It counts GSO frames so the test can prove the
// offloads are in effect.
func forward(src, dst Port, gso *atomic.Int64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pkts := make([]Packet, 8)
	for i := range pkts {
		pkts[i].Buf = make([]byte, MaxFrame)
	}
	for {
		n, err := src.ReadBatch(pkts)
		if err != nil {
			return
		}
		for i := range n {
			if pkts[i].Hdr.IsGSO() {
				gso.Add(1)
			}
		}
		if _, err := dst.WriteBatch(pkts[:n]); err != nil {
			return
		}
	}
}

// tapPair puts TAP a into nsA as 10.99.<net>.1/24 and TAP b into nsB as
// .2, and forwards between them until the test ends.
func tapPair(t *testing.T, net int) (nsAName, nsBName string, gso *atomic.Int64) {
	t.Helper()
	sfx := netnstest.Suffix(t)
	nsAName, nsBName = "cdpa-"+sfx, "cdpb-"+sfx
	nsA, nsB := netnstest.New(t, nsAName), netnstest.New(t, nsBName)
	gso = new(atomic.Int64)
	var taps [2]*Tap
	for i, ns := range []netns.NsHandle{nsA, nsB} {
		name := []string{"cdtapa", "cdtapb"}[i] + sfx
		tap, err := OpenTap(TapConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tap.Close() })
		if err := SetLink(netns.None(), name, LinkConfig{Netns: ns, MTU: 1500, Up: true}); err != nil {
			t.Fatal(err)
		}
		netnstest.AddAddr(t, ns, name, fmt.Sprintf([]string{"10.99.%d.1/24", "10.99.%d.2/24"}[i], net))
		taps[i] = tap
	}

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); forward(taps[0], taps[1], gso) }()
	go func() { defer wg.Done(); forward(taps[1], taps[0], gso) }()
	t.Cleanup(func() {
		taps[0].Close()
		taps[1].Close()
		wg.Wait() // the forwarders must notice Close and exit
	})
	return nsAName, nsBName, gso
}

func TestTapForwarderPingAndTCP(t *testing.T) {
	netnstest.RequireRoot(t)
	nsA, nsB, gso := tapPair(t, 1)
	pingAndTransfer(t, nsA, nsB, "10.99.1.2", gso)
}

// pingAndTransfer pings dst from namespace nsA, then sends 8 MB over TCP
// from nsA to a listener on dst in nsB, checked byte for byte, and fails
// unless GSO frames crossed the forwarder (the offloads were in effect).
func pingAndTransfer(t *testing.T, nsA, nsB, dst string, gso *atomic.Int64) {
	t.Helper()
	netnstest.Run(t, nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", dst)

	hA, err := netns.GetFromName(nsA)
	if err != nil {
		t.Fatal(err)
	}
	defer hA.Close()
	hB, err := netns.GetFromName(nsB)
	if err != nil {
		t.Fatal(err)
	}
	defer hB.Close()
	var ln net.Listener
	netnstest.Do(t, hB, func() { ln, err = net.Listen("tcp4", dst+":0") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := make([]byte, 8<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	want := sha256.Sum256(data)
	got := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- [32]byte{}
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		got <- s
	}()
	var c net.Conn
	netnstest.Do(t, hA, func() { c, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(c, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case s := <-got:
		if s != want {
			t.Fatal("the receiver got different bytes than were sent")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("transfer did not finish in 30 s")
	}
	if gso.Load() == 0 {
		t.Fatal("no GSO frame crossed the forwarder: offloads are not in effect")
	}
	t.Logf("GSO frames forwarded: %d", gso.Load())
}
