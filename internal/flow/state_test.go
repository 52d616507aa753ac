package flow

import (
	"testing"

	"github.com/canopy-sdn/canopy/internal/packet"
)

func key(src, dst uint32, sp, dp uint16, proto uint8) packet.Key {
	return packet.Key{Zone: 1, Src: src, Dst: dst, SrcPort: sp, DstPort: dp, Proto: proto}
}

func TestConntrack(t *testing.T) {
	s := NewState()
	k := key(1, 2, 1000, 80, packet.ProtoTCP)
	if s.Classify(k, 0) != Forward || s.Classify(k.Reverse(), 0) != Forward {
		t.Fatal("empty table classifies as return")
	}
	s.Track(k, 100)
	if s.Classify(k.Reverse(), 50) != Return {
		t.Error("reply not return")
	}
	if s.Classify(k, 50) != Forward {
		t.Error("forward packet classified as return")
	}
	other := k.Reverse()
	other.Zone = 2
	if s.Classify(other, 50) != Forward {
		t.Error("zones leak")
	}
	if s.Classify(k.Reverse(), 100) != Forward {
		t.Error("expired entry still matches")
	}
	if n := s.Expire(100); n != 1 || s.Conns() != 0 {
		t.Errorf("expire removed %d, %d left", n, s.Conns())
	}
}

func TestSNATNoCollisions(t *testing.T) {
	s := NewState()
	targets := []Target{{IPFrom: 100, IPTo: 101, PortFrom: 5000, PortTo: 5009}}
	seen := map[Binding]bool{}
	for i := 0; i < 20; i++ {
		k := key(uint32(10+i%3), 2, uint16(1000+i), 80, packet.ProtoTCP)
		b, ok := s.AllocateNAT(SNAT, k, targets, 0, 1000)
		if !ok {
			t.Fatalf("allocation %d failed", i)
		}
		if seen[b] {
			t.Fatalf("binding %+v handed out twice", b)
		}
		if b.IP < 100 || b.IP > 101 || b.Port < 5000 || b.Port > 5009 {
			t.Fatalf("binding %+v outside targets", b)
		}
		seen[b] = true
		// Same connection again: same binding.
		if b2, _ := s.AllocateNAT(SNAT, k, targets, 0, 1000); b2 != b {
			t.Fatalf("re-allocation changed %+v → %+v", b, b2)
		}
		// The reply finds its way back.
		reply := packet.Key{Zone: 1, Src: 2, SrcPort: 80, Dst: b.IP, DstPort: b.Port, Proto: packet.ProtoTCP}
		r, ok := s.ReverseNAT(SNAT, reply, 0)
		if !ok || r != (Binding{k.Src, k.SrcPort}) {
			t.Fatalf("reverse %+v %v", r, ok)
		}
	}
	if _, ok := s.AllocateNAT(SNAT, key(9, 2, 1, 80, packet.ProtoTCP), targets, 0, 1000); ok {
		t.Fatal("allocated beyond the range")
	}
	// Other protocols have their own ports.
	if _, ok := s.AllocateNAT(SNAT, key(9, 2, 1, 80, packet.ProtoUDP), targets, 0, 1000); !ok {
		t.Fatal("UDP shares TCP's ports")
	}
	s.Expire(1000)
	if s.NATs() != 0 || len(s.used) != 0 || len(s.rev) != 0 {
		t.Fatalf("expiry left %d/%d/%d", s.NATs(), len(s.used), len(s.rev))
	}
	if _, ok := s.AllocateNAT(SNAT, key(9, 2, 1, 80, packet.ProtoTCP), targets, 1000, 2000); !ok {
		t.Fatal("expired ports not reusable")
	}
}

func TestNATEcho(t *testing.T) {
	s := NewState()
	k := key(1, 2, 77, 77, packet.ProtoICMP)
	b, ok := s.AllocateNAT(SNAT, k, []Target{{IPFrom: 100, IPTo: 100, PortFrom: 1, PortTo: 9}}, 0, 10)
	if !ok {
		t.Fatal("no binding")
	}
	reply := packet.Key{Zone: 1, Src: 2, Dst: 100, SrcPort: b.Port, DstPort: b.Port, Proto: packet.ProtoICMP}
	if r, ok := s.ReverseNAT(SNAT, reply, 0); !ok || r != (Binding{1, 77}) {
		t.Fatalf("reverse %+v %v", r, ok)
	}
	d := key(5, 6, 33, 33, packet.ProtoICMP)
	b, _ = s.AllocateNAT(DNAT, d, []Target{{IPFrom: 200, IPTo: 200}}, 0, 10)
	if b != (Binding{200, 33}) {
		t.Fatalf("dnat %+v", b)
	}
	reply = packet.Key{Zone: 1, Src: 200, Dst: 5, SrcPort: 33, DstPort: 33, Proto: packet.ProtoICMP}
	if r, ok := s.ReverseNAT(DNAT, reply, 0); !ok || r != (Binding{6, 33}) {
		t.Fatalf("reverse dnat %+v %v", r, ok)
	}
	if _, ok := s.ReverseNAT(DNAT, reply, 10); ok {
		t.Fatal("expired reverse entry used")
	}
}

func TestApplyAndTags(t *testing.T) {
	f := (&packet.Spec{Src: 1, Dst: 2, Proto: packet.ProtoUDP, SrcPort: 5, DstPort: 6}).Build()
	var p packet.Packet
	p.Decode(f)
	var outs []uint32
	Apply(f, &p, []Action{{Kind: SetIPSrc, IP: 9}, {Kind: Output, Key: 3}, {Kind: SetDstPort, Port: 99}, {Kind: DecTTL, Port: 1}, {Kind: Tunnel, Key: 4, Host: "h"}}, func(a Action, fr []byte) {
		var q packet.Packet
		q.Decode(fr)
		if !packet.VerifyIPv4(fr, &q) {
			t.Error("bad checksum at output")
		}
		outs = append(outs, a.Key, q.Src, uint32(q.DstPort))
	})
	want := []uint32{3, 9, 6, 4, 9, 99}
	if len(outs) != len(want) {
		t.Fatalf("outputs %v", outs)
	}
	for i := range want {
		if outs[i] != want[i] {
			t.Fatalf("outputs %v, want %v", outs, want)
		}
	}
	if a1, a2 := TagOf("router", "a"), TagOf("router", "a"); a1 == TagOf("bridge", "a") || a1 != a2 {
		t.Error("tags")
	}
	if TagOf("x", "y").Sub('m', 1) == TagOf("x", "y").Sub('m', 2) {
		t.Error("sub tags")
	}
}

// TestTouch: touching a connection, a translation by its forward key or by
// its reply key extends it; it never shortens an entry nor makes one.
func TestTouch(t *testing.T) {
	s := NewState()
	conn := key(1, 2, 1000, 80, packet.ProtoTCP)
	s.Track(conn, 100)
	snat := key(3, 2, 2000, 80, packet.ProtoTCP)
	b, _ := s.AllocateNAT(SNAT, snat, []Target{{IPFrom: 9, IPTo: 9, PortFrom: 5000, PortTo: 5000}}, 0, 100)
	dnat := key(4, 8, 3000, 80, packet.ProtoUDP)
	db, _ := s.AllocateNAT(DNAT, dnat, []Target{{IPFrom: 7, IPTo: 7}}, 0, 100)

	s.Touch([]Ref{{Key: conn}, {Key: snat, NAT: SNAT}, {Key: ReplyKey(DNAT, dnat, db), NAT: DNAT, Reply: true}}, 500)
	s.Touch([]Ref{{Key: conn}}, 50) // older: no effect
	if !s.Tracked(conn, 400) {
		t.Error("touched connection expired at its old time")
	}
	if _, ok := s.LookupNAT(SNAT, snat, 400); !ok {
		t.Error("SNAT touched by its forward key expired at its old time")
	}
	if _, ok := s.ReverseNAT(SNAT, ReplyKey(SNAT, snat, b), 400); !ok {
		t.Error("the touched SNAT no longer reverses")
	}
	if _, ok := s.LookupNAT(DNAT, dnat, 400); !ok {
		t.Error("DNAT touched by its reply key expired at its old time")
	}
	unknown := key(5, 6, 1, 2, packet.ProtoTCP)
	s.Touch([]Ref{{Key: unknown}, {Key: unknown, NAT: SNAT}, {Key: unknown, NAT: DNAT, Reply: true}}, 500)
	if s.Conns() != 1 || s.NATs() != 2 {
		t.Errorf("touch made entries: %d conns, %d NATs", s.Conns(), s.NATs())
	}
	if n := s.Expire(500); n != 3 || s.Conns() != 0 || s.NATs() != 0 {
		t.Errorf("at the touched time: %d removed, %d conns and %d NATs left", n, s.Conns(), s.NATs())
	}
}
