package packet

import "testing"

// FuzzDecode feeds arbitrary bytes to Decode and to the rewrite helpers: they
// must never panic, and what Decode reports must lie within the frame.
func FuzzDecode(f *testing.F) {
	f.Add((&Spec{Src: ip1, Dst: ip2, Proto: ProtoTCP, SrcPort: 1, DstPort: 2}).Build())
	f.Add((&Spec{VLAN: 5, Src: ip1, Dst: ip2, Proto: ProtoUDP, SrcPort: 1, DstPort: 2}).Build())
	f.Add(BuildARP(ARPReply, macA, ip1, macB, ip2))
	orig := (&Spec{Src: ip1, Dst: ip2, Proto: ProtoUDP, SrcPort: 1, DstPort: 2}).Build()
	var p Packet
	p.Decode(orig)
	f.Add(BuildICMPError(orig, &p, macA, macB, ip3, ICMPTimeExceeded, 0, 0))
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p Packet
		p.Decode(frame)
		if p.Has(FlagIPv4) && p.L4Off > len(frame) {
			t.Fatalf("L4Off %d beyond frame %d", p.L4Off, len(frame))
		}
		if p.Has(FlagICMPError) && p.Inner.Off+p.Inner.IHL > len(frame) {
			t.Fatalf("inner header beyond frame")
		}
		g := append([]byte{}, frame...)
		SetIPSrc(g, &p, ip3)
		SetIPDst(g, &p, ip1)
		SetSrcPort(g, &p, 1)
		SetDstPort(g, &p, 2)
		DecTTL(g, &p, 1)
		SetInner(g, &p, 1, 2, 3, 4)
		if p.Has(FlagIPv4) {
			BuildICMPError(g, &p, macA, macB, ip3, ICMPUnreachable, 0, 0)
			if p.IsEcho() {
				BuildEchoReply(g, &p, macA)
			}
		}
		_ = VerifyIPv4(g, &p)
		FixChecksums(g, &p)
	})
}
