package datapathfake

import (
	"bytes"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
)

func pkt(b []byte, h datapath.VnetHdr) datapath.Packet {
	return datapath.Packet{Buf: b, N: len(b), Hdr: h}
}

func TestPairCarriesFramesBothWays(t *testing.T) {
	a, b := Pair("a", "b")
	defer a.Close()
	h := datapath.VnetHdr{GSOType: datapath.GSOTCPv4, GSOSize: 1448}
	if _, err := a.WriteBatch([]datapath.Packet{pkt([]byte("one"), h), pkt([]byte("two"), datapath.VnetHdr{})}); err != nil {
		t.Fatal(err)
	}
	buf := []datapath.Packet{{Buf: make([]byte, 64)}, {Buf: make([]byte, 64)}, {Buf: make([]byte, 64)}}
	n, err := b.ReadBatch(buf)
	if err != nil || n != 2 {
		t.Fatalf("ReadBatch: %d, %v", n, err)
	}
	if !bytes.Equal(buf[0].Frame(), []byte("one")) || buf[0].Hdr != h || !bytes.Equal(buf[1].Frame(), []byte("two")) {
		t.Fatalf("got %q %+v, %q", buf[0].Frame(), buf[0].Hdr, buf[1].Frame())
	}
	if _, err := b.WriteBatch([]datapath.Packet{pkt([]byte("back"), datapath.VnetHdr{})}); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.ReadBatch(buf); n != 1 || string(buf[0].Frame()) != "back" {
		t.Fatalf("reverse direction: %d %q", n, buf[0].Frame())
	}
}

func TestPairDropsWhenFullAndTooLong(t *testing.T) {
	a, b := Pair("a", "b")
	defer a.Close()
	frames := make([]datapath.Packet, QueueLen+5)
	for i := range frames {
		frames[i] = pkt([]byte{byte(i)}, datapath.VnetHdr{})
	}
	a.WriteBatch(frames)
	if d := a.Stats.TxDropped.Load(); d != 5 {
		t.Fatalf("TxDropped %d, want 5", d)
	}
	a2, b2 := Pair("a2", "b2")
	defer a2.Close()
	a2.WriteBatch([]datapath.Packet{pkt(make([]byte, 100), datapath.VnetHdr{}), pkt([]byte{1}, datapath.VnetHdr{})})
	buf := []datapath.Packet{{Buf: make([]byte, 10)}, {Buf: make([]byte, 10)}}
	if n, _ := b2.ReadBatch(buf); n != 1 || b2.Stats.RxDropped.Load() != 1 {
		t.Fatalf("read %d, RxDropped %d", n, b2.Stats.RxDropped.Load())
	}
	_ = b
}

func TestCloseWakesReader(t *testing.T) {
	a, b := Pair("a", "b")
	done := make(chan error)
	go func() {
		_, err := b.ReadBatch([]datapath.Packet{{Buf: make([]byte, 10)}})
		done <- err
	}()
	// Close must wake a reader that is already blocked, not merely make
	// a later ReadBatch fail: wait until the reader is parked.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.in.mu.Lock()
		parked := b.in.readers == 1
		b.in.mu.Unlock()
		if parked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reader never blocked in ReadBatch")
		}
	}
	a.Close()
	select {
	case err := <-done:
		if err != datapath.ErrClosed {
			t.Fatalf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the reader")
	}
	if _, err := b.WriteBatch([]datapath.Packet{pkt([]byte{1}, datapath.VnetHdr{})}); err != datapath.ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
}
