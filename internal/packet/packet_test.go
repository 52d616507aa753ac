package packet

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0xb}
)

const (
	ip1 = 0x0a000001 // 10.0.0.1
	ip2 = 0x0a000102 // 10.0.1.2
	ip3 = 0xc0000201 // 192.0.2.1
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		check func(t *testing.T, p *Packet)
	}{
		{"tcp", (&Spec{EthSrc: macA, EthDst: macB, Src: ip1, Dst: ip2, Proto: ProtoTCP, SrcPort: 1234, DstPort: 80, TCPFlags: 0x02, TTL: 9, TOS: 0x10, DF: true}).Build(), func(t *testing.T, p *Packet) {
			want := Packet{Flags: FlagIPv4 | FlagL4, EthDst: macB, EthSrc: macA, EtherType: EtherTypeIPv4, L3Off: 14, IHL: 20, TOS: 0x10, TotalLen: 40, DF: true, TTL: 9, Proto: ProtoTCP, Src: ip1, Dst: ip2, L4Off: 34, SrcPort: 1234, DstPort: 80, TCPFlags: 2}
			if *p != want {
				t.Errorf("got %+v\nwant %+v", *p, want)
			}
		}},
		{"udp vlan", (&Spec{EthSrc: macA, EthDst: macB, VLAN: 42, Src: ip1, Dst: ip2, Proto: ProtoUDP, SrcPort: 53, DstPort: 5353}).Build(), func(t *testing.T, p *Packet) {
			if !p.Has(FlagVLAN|FlagIPv4|FlagL4) || p.VLAN != 42 || p.L3Off != 18 || p.SrcPort != 53 || p.DstPort != 5353 {
				t.Errorf("got %+v", *p)
			}
		}},
		{"echo", (&Spec{Src: ip1, Dst: ip2, Proto: ProtoICMP, ICMPType: ICMPEchoRequest, SrcPort: 777}).Build(), func(t *testing.T, p *Packet) {
			if !p.IsEcho() || p.SrcPort != 777 || p.DstPort != 777 {
				t.Errorf("got %+v", *p)
			}
		}},
		{"later fragment", (&Spec{Src: ip1, Dst: ip2, Proto: ProtoUDP, FragOff: 10, Payload: make([]byte, 16)}).Build(), func(t *testing.T, p *Packet) {
			if !p.IsFragment() || p.IsHeaderFragment() || p.Has(FlagL4) || p.FragOff != 10 {
				t.Errorf("got %+v", *p)
			}
		}},
		{"first fragment", (&Spec{Src: ip1, Dst: ip2, Proto: ProtoUDP, MF: true, SrcPort: 1, DstPort: 2, Payload: make([]byte, 16)}).Build(), func(t *testing.T, p *Packet) {
			if !p.IsFragment() || !p.IsHeaderFragment() || !p.Has(FlagL4) || p.DstPort != 2 {
				t.Errorf("got %+v", *p)
			}
		}},
		{"arp", BuildARP(ARPRequest, macA, ip1, [6]byte{}, ip2), func(t *testing.T, p *Packet) {
			if !p.Has(FlagARP) || p.ARPOp != ARPRequest || p.ARPSHA != macA || p.ARPSPA != ip1 || p.ARPTPA != ip2 || p.EthDst != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
				t.Errorf("got %+v", *p)
			}
		}},
		{"truncated ip", (&Spec{Src: ip1, Dst: ip2, Proto: ProtoTCP}).Build()[:30], func(t *testing.T, p *Packet) {
			if p.Has(FlagIPv4) || !p.Has(FlagTruncated) {
				t.Errorf("got %+v", *p)
			}
		}},
		{"short", []byte{1, 2, 3}, func(t *testing.T, p *Packet) {
			if p.Flags != FlagTruncated {
				t.Errorf("got %+v", *p)
			}
		}},
		{"ip options", withOptions((&Spec{Src: ip1, Dst: ip2, Proto: ProtoUDP, SrcPort: 7, DstPort: 9}).Build()), func(t *testing.T, p *Packet) {
			if !p.Has(FlagIPOptions|FlagL4) || p.IHL != 24 || p.SrcPort != 7 || p.DstPort != 9 {
				t.Errorf("got %+v", *p)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			p.Decode(tt.frame)
			tt.check(t, &p)
		})
	}
}

// withOptions inserts a 4-byte NOP option list into an untagged IPv4 frame.
func withOptions(f []byte) []byte {
	out := append([]byte{}, f[:34]...)
	out = append(out, 1, 1, 1, 0)
	out = append(out, f[34:]...)
	out[14] = 0x46
	binary.BigEndian.PutUint16(out[16:], binary.BigEndian.Uint16(out[16:])+4)
	var p Packet
	p.Decode(out)
	FixChecksums(out, &p)
	return out
}

func TestICMPErrorRoundTrip(t *testing.T) {
	orig := (&Spec{EthSrc: macA, EthDst: macB, Src: ip1, Dst: ip2, Proto: ProtoUDP, SrcPort: 4000, DstPort: 53, Payload: []byte("hello world")}).Build()
	var p Packet
	p.Decode(orig)
	errf := BuildICMPError(orig, &p, macB, macA, ip3, ICMPUnreachable, ICMPCodeFragNeeded, 1400)
	var e Packet
	e.Decode(errf)
	if !e.Has(FlagICMPError|FlagInnerPorts) || e.ICMPType != ICMPUnreachable || e.ICMPCode != ICMPCodeFragNeeded {
		t.Fatalf("decoded %+v", e)
	}
	if e.Src != ip3 || e.Dst != ip1 || e.EthDst != macA {
		t.Errorf("addresses %+v", e)
	}
	if got := binary.BigEndian.Uint16(errf[e.L4Off+6:]); got != 1400 {
		t.Errorf("next-hop MTU %d", got)
	}
	want := Inner{Src: ip1, Dst: ip2, Proto: ProtoUDP, SrcPort: 4000, DstPort: 53, Off: e.L4Off + 8, IHL: 20}
	if e.Inner != want {
		t.Errorf("inner %+v, want %+v", e.Inner, want)
	}
	if !VerifyIPv4(errf, &e) {
		t.Error("bad checksums")
	}
	if k := QuotedKey(&e, 7); k != KeyOf(&p, 7) {
		t.Errorf("quoted key %+v != %+v", k, KeyOf(&p, 7))
	}
	// NAT of the quoted packet keeps every checksum right.
	SetInner(errf, &e, ip3, ip2, 5000, 53)
	var e2 Packet
	e2.Decode(errf)
	if e2.Inner.Src != ip3 || e2.Inner.SrcPort != 5000 || !VerifyIPv4(errf, &e2) {
		t.Errorf("after SetInner %+v", e2.Inner)
	}
	q := errf[e2.Inner.Off : e2.Inner.Off+20]
	if Checksum(q, 0) != 0 {
		t.Error("quoted IP header checksum wrong")
	}
}

func TestEchoReply(t *testing.T) {
	req := (&Spec{EthSrc: macA, EthDst: macB, Src: ip1, Dst: ip3, Proto: ProtoICMP, ICMPType: ICMPEchoRequest, SrcPort: 99, Payload: []byte("ping")}).Build()
	var p Packet
	p.Decode(req)
	rep := BuildEchoReply(req, &p, macB)
	var r Packet
	r.Decode(rep)
	if r.ICMPType != ICMPEchoReply || r.Src != ip3 || r.Dst != ip1 || r.SrcPort != 99 || r.EthDst != macA || r.EthSrc != macB || !VerifyIPv4(rep, &r) {
		t.Errorf("reply %+v", r)
	}
	if !bytes.Equal(rep[len(rep)-4:], []byte("ping")) {
		t.Error("payload not echoed")
	}
}

// TestRewriteIncremental checks every rewrite helper against a full
// recomputation of the checksums.
func TestRewriteIncremental(t *testing.T) {
	specs := []Spec{
		{Src: ip1, Dst: ip2, Proto: ProtoTCP, SrcPort: 1000, DstPort: 80, Payload: []byte("abcdefg")},
		{Src: ip1, Dst: ip2, Proto: ProtoUDP, SrcPort: 1000, DstPort: 53, Payload: []byte("xyz")},
		{Src: ip1, Dst: ip2, Proto: ProtoICMP, ICMPType: ICMPEchoRequest, SrcPort: 4242, Payload: []byte("123456")},
		{Src: ip1, Dst: ip2, Proto: ProtoUDP, FragOff: 3, Payload: make([]byte, 24)},
	}
	for i, s := range specs {
		f := s.Build()
		var p Packet
		p.Decode(f)
		SetIPSrc(f, &p, ip3)
		SetIPDst(f, &p, 0x08080808)
		SetSrcPort(f, &p, 61000)
		SetDstPort(f, &p, 8080)
		DecTTL(f, &p, 1)
		SetEthSrc(f, &p, macB)
		SetEthDst(f, &p, macA)
		var q Packet
		q.Decode(f)
		if q != p {
			t.Errorf("%d: packet out of step with frame:\n%+v\n%+v", i, p, q)
		}
		if !VerifyIPv4(f, &q) {
			t.Errorf("%d: checksums wrong after incremental rewrite", i)
		}
		g := append([]byte{}, f...)
		FixChecksums(g, &q)
		if !bytes.Equal(f, g) {
			t.Errorf("%d: incremental differs from full recomputation", i)
		}
		if q.Src != ip3 || q.Dst != 0x08080808 || q.TTL != DefaultTTL-1 {
			t.Errorf("%d: fields %+v", i, q)
		}
	}
}

func TestKey(t *testing.T) {
	f := (&Spec{Src: ip1, Dst: ip2, Proto: ProtoTCP, SrcPort: 1, DstPort: 2}).Build()
	var p Packet
	p.Decode(f)
	k := KeyOf(&p, 9)
	if k.Reverse().Reverse() != k || k.Reverse() == k {
		t.Error("reverse")
	}
	if (Key{Zone: 9, Src: ip2, Dst: ip1, SrcPort: 2, DstPort: 1, Proto: ProtoTCP}) != k.Reverse() {
		t.Error("reverse fields")
	}
	m := map[Key]int{k: 1}
	if m[KeyOf(&p, 9)] != 1 || m[KeyOf(&p, 8)] != 0 {
		t.Error("map use")
	}
}

func TestDecodeAllocs(t *testing.T) {
	frames := [][]byte{
		(&Spec{Src: ip1, Dst: ip2, Proto: ProtoTCP, SrcPort: 1, DstPort: 2}).Build(),
		BuildARP(ARPRequest, macA, ip1, [6]byte{}, ip2),
	}
	var p Packet
	for _, f := range frames {
		n := testing.AllocsPerRun(100, func() {
			p.Decode(f)
			SetIPSrc(f, &p, ip3)
			SetSrcPort(f, &p, 9)
			DecTTL(f, &p, 1)
			_ = KeyOf(&p, 1).Hash()
		})
		if n != 0 {
			t.Errorf("decode+rewrite allocates %v", n)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	f := (&Spec{Src: ip1, Dst: ip2, Proto: ProtoTCP, SrcPort: 1, DstPort: 2}).Build()
	var p Packet
	b.ReportAllocs()
	for b.Loop() {
		p.Decode(f)
	}
}
