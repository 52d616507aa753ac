package datapath

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/canopy-sdn/canopy/internal/netnstest"
)

// openNetdev brings name up in ns and binds a Netdev to it there.
func openNetdev(t *testing.T, ns netns.NsHandle, name string) *Netdev {
	t.Helper()
	if err := SetLink(ns, name, LinkConfig{Up: true}); err != nil {
		t.Fatal(err)
	}
	var d *Netdev
	var err error
	netnstest.Do(t, ns, func() { d, err = OpenNetdev(name) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

const testEtherType = 0x88b5 // IEEE local experimental: nothing else sends it

// testFrames are n broadcast frames of growing size, numbered.
func testFrames(n int) []Packet {
	var out []Packet
	for i := 0; i < n; i++ {
		f := make([]byte, 60+i*10)
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1})
		binary.BigEndian.PutUint16(f[12:], testEtherType)
		binary.BigEndian.PutUint32(f[14:], uint32(i))
		out = append(out, Packet{Buf: f, N: len(f)})
	}
	return out
}

// readFrames reads from p until it has the test frames want, in order,
// skipping anything else (IPv6 neighbour discovery and the like).
func readFrames(t *testing.T, p Port, want []Packet) {
	t.Helper()
	pkts := make([]Packet, 32)
	for i := range pkts {
		pkts[i].Buf = make([]byte, MaxFrame)
	}
	got := 0
	deadline := time.AfterFunc(10*time.Second, func() { p.Close() })
	defer deadline.Stop()
	for got < len(want) {
		n, err := p.ReadBatch(pkts)
		if err != nil {
			t.Fatalf("after %d frames: %v", got, err)
		}
		for _, pk := range pkts[:n] {
			f := pk.Frame()
			if len(f) < 14 || binary.BigEndian.Uint16(f[12:]) != testEtherType {
				continue
			}
			if !bytes.Equal(f, want[got].Frame()) {
				t.Fatalf("frame %d differs", got)
			}
			got++
		}
	}
}

func TestNetdevBatch(t *testing.T) {
	netnstest.RequireRoot(t)
	sfx := netnstest.Suffix(t)
	nsA, nsB := netnstest.New(t, "cdpua-"+sfx), netnstest.New(t, "cdpub-"+sfx)
	netnstest.Veth(t, "cdua"+sfx, "cdub"+sfx, nsA, nsB)
	a, b := openNetdev(t, nsA, "cdua"+sfx), openNetdev(t, nsB, "cdub"+sfx)
	if a.Ifindex() <= 0 || a.Name() != "cdua"+sfx {
		t.Fatalf("Name %q Ifindex %d", a.Name(), a.Ifindex())
	}

	out := testFrames(100)
	if n, err := a.WriteBatch(out); err != nil || n != len(out) {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	readFrames(t, b, out)

	// Our own transmissions are not read back.
	if rx := a.Stats.RxFrames.Load(); rx != 0 {
		pkts := make([]Packet, 32)
		for i := range pkts {
			pkts[i].Buf = make([]byte, MaxFrame)
		}
		done := make(chan struct{})
		go func() {
			n, _ := a.ReadBatch(pkts)
			for _, p := range pkts[:n] {
				if binary.BigEndian.Uint16(p.Frame()[12:]) == testEtherType {
					t.Error("the sender read its own frame back")
				}
			}
			close(done)
		}()
		a.Close()
		<-done
	}
}

// TestNetdevVethForwarder: two instance namespaces, each with a veth whose
// host end is in a host namespace; a forwarder there moves frames between
// the two host ends through Netdevs. Ping and an 8 MB TCP transfer cross,
// byte for byte, as GSO super-frames (PACKET_VNET_HDR keeps the offloads).
func TestNetdevVethForwarder(t *testing.T) {
	netnstest.RequireRoot(t)
	sfx := netnstest.Suffix(t)
	nsAName, nsBName, nsHName := "cdva-"+sfx, "cdvb-"+sfx, "cdvh-"+sfx
	nsA, nsB, nsH := netnstest.New(t, nsAName), netnstest.New(t, nsBName), netnstest.New(t, nsHName)
	netnstest.Veth(t, "eth0", "cdha"+sfx, nsA, nsH)
	netnstest.Veth(t, "eth0", "cdhb"+sfx, nsB, nsH)
	netnstest.AddAddr(t, nsA, "eth0", "10.99.3.1/24")
	netnstest.AddAddr(t, nsB, "eth0", "10.99.3.2/24")
	ha, hb := openNetdev(t, nsH, "cdha"+sfx), openNetdev(t, nsH, "cdhb"+sfx)

	gso := new(atomic.Int64)
	var wg sync.WaitGroup
	wg.Go(func() { forward(ha, hb, gso) })
	wg.Go(func() { forward(hb, ha, gso) })
	t.Cleanup(func() {
		ha.Close()
		hb.Close()
		wg.Wait()
	})
	pingAndTransfer(t, nsAName, nsBName, "10.99.3.2", gso)
}

// TestNetdevOnHeldTap: a TAP whose descriptor someone else holds (as QEMU
// holds a VM's) is a port through its netdev: what the holder writes is
// read from the Netdev, what the Netdev writes reaches the holder, and a
// second TUNSETIFF on it fails (why the agent must not open it). When the
// holder closes its descriptor the device goes, and the reader learns it
// (ErrGone) instead of waiting forever.
func TestNetdevOnHeldTap(t *testing.T) {
	netnstest.RequireRoot(t)
	sfx := netnstest.Suffix(t)
	nsH := netnstest.New(t, "cdth-"+sfx)
	name := "cdtq" + sfx
	var vm *Tap // the hypervisor's descriptor
	var err error
	netnstest.Do(t, nsH, func() { vm, err = OpenTap(TapConfig{Name: name}) })
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	d := openNetdev(t, nsH, name)
	netnstest.Do(t, nsH, func() { _, err = OpenTap(TapConfig{Name: name}) })
	if err == nil {
		t.Error("a second TUNSETIFF on a held TAP succeeded")
	}

	fromVM := testFrames(50)
	if n, err := vm.WriteBatch(fromVM); err != nil || n != len(fromVM) {
		t.Fatalf("VM write: %d, %v", n, err)
	}
	readFrames(t, d, fromVM)
	toVM := testFrames(50)
	if n, err := d.WriteBatch(toVM); err != nil || n != len(toVM) {
		t.Fatalf("Netdev write: %d, %v", n, err)
	}
	readFrames(t, vm, toVM)

	// Down and up again: the socket stays attached.
	var h *netlink.Handle
	if h, err = netlink.NewHandleAt(nsH); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	if n, err := vm.WriteBatch(fromVM); err != nil || n != len(fromVM) {
		t.Fatalf("VM write after down/up: %d, %v", n, err)
	}
	readFrames(t, d, fromVM)

	// The hypervisor exits: its non-persistent TAP is deleted.
	errc := make(chan error, 1)
	go func() {
		pkts := []Packet{{Buf: make([]byte, MaxFrame)}}
		for {
			if _, err := d.ReadBatch(pkts); err != nil {
				errc <- err
				return
			}
		}
	}()
	vm.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrGone) {
			t.Fatalf("ReadBatch after the TAP went: %v, want ErrGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch still blocked 10 s after the TAP went")
	}
}
