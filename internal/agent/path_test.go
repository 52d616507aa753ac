package agent

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func tcpFrame(payload int) []byte {
	sp := packet.Spec{EthSrc: [6]byte{2, 0, 0, 0, 0, 1}, EthDst: [6]byte{2, 0, 0, 0, 0, 2},
		Src: packet.U32(netip.MustParseAddr("10.0.0.1")), Dst: packet.U32(netip.MustParseAddr("10.0.0.2")),
		Proto: packet.ProtoTCP, SrcPort: 40000, DstPort: 5201, TCPFlags: 0x10, Payload: make([]byte, payload)}
	for i := range sp.Payload {
		sp.Payload[i] = byte(i * 7)
	}
	return sp.Build()
}

// partial turns a frame's complete TCP checksum into the partial one a TAP
// hands over with NEEDS_CSUM (the pseudo-header sum, not complemented).
func partial(frame []byte) datapath.VnetHdr {
	l4 := packet.EthHeaderLen + 20
	tcpLen := len(frame) - l4
	var ps uint32
	for i := 0; i < 8; i += 2 { // src and dst addresses
		ps += uint32(binary.BigEndian.Uint16(frame[packet.EthHeaderLen+12+i:]))
	}
	ps += packet.ProtoTCP + uint32(tcpLen)
	for ps > 0xffff {
		ps = ps>>16 + ps&0xffff
	}
	binary.BigEndian.PutUint16(frame[l4+16:], uint16(ps))
	return datapath.VnetHdr{Flags: datapath.VnetFlagNeedsCsum, CsumStart: uint16(l4), CsumOffset: 16}
}

// TestExecutePartialChecksum: NAT rewrites of a frame with a partial
// checksum give, once the checksum is finished, the same frame as the
// rewrites of a frame with a complete one.
func TestExecutePartialChecksum(t *testing.T) {
	acts := []flow.Action{
		{Kind: flow.SetIPSrc, IP: packet.U32(netip.MustParseAddr("192.0.2.7"))},
		{Kind: flow.SetDstPort, Port: 8080},
		{Kind: flow.SetIPDst, IP: packet.U32(netip.MustParseAddr("10.9.8.7"))},
		{Kind: flow.SetSrcPort, Port: 1234},
		{Kind: flow.DecTTL, Port: 1},
	}
	a := &Agent{}
	a.ports.Store(&portMap{})
	v := &view{}

	want := tcpFrame(300)
	var p packet.Packet
	p.Decode(want)
	var none datapath.VnetHdr
	a.execute(v, nil, want, &none, &p, acts, nil)
	p.Decode(want)
	if !packet.VerifyIPv4(want, &p) {
		t.Fatal("rewritten complete frame has bad checksums")
	}

	got := tcpFrame(300)
	hdr := partial(got)
	p.Decode(got)
	a.execute(v, nil, got, &hdr, &p, acts, nil)
	if err := datapath.FinishChecksum(got, &hdr); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("partial-checksum rewrite differs:\n got %x\nwant %x", got[14:54], want[14:54])
	}
}

func TestClampGSO(t *testing.T) {
	f := tcpFrame(64000)
	hdr := datapath.VnetHdr{GSOType: datapath.GSOTCPv4, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	for _, c := range []struct {
		mtu  int
		want uint16
	}{
		{9000, 1448},           // fits: unchanged
		{1600, 1448},           // 1448+40+50 = 1538 ≤ 1600
		{1500, 1500 - 36 - 54}, // outer IP+UDP+VXLAN 36, inner headers 54
		{100, 1448},            // nonsense MTU: leave it to the kernel
	} {
		if got := clampGSO(f, hdr, c.mtu); got != c.want {
			t.Errorf("mtu %d: segment size %d, want %d", c.mtu, got, c.want)
		}
	}
}

// TestFlowHitAllocs: a frame that hits a cached flow is forwarded to a
// local port without allocating.
func TestFlowHitAllocs(t *testing.T) {
	a, err := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	inA, _ := datapathfake.Pair("in", "in-vm")
	outA, outVM := datapathfake.Pair("out", "out-vm")
	in := a.newVport("p-in", "in", 1, inA)
	out := a.newVport("p-out", "out", 2, outA)
	a.bound = map[string]*vport{"p-in": in, "p-out": out}
	a.publishPorts()
	v := &view{snap: sim.NewSnapshot(topology.NewIndex()), gen: 1, peers: map[string]netip.AddrPort{}}
	a.view.Store(v)
	a.flows.Invalidate(nil, true, 1)

	frame := tcpFrame(1000)
	var p packet.Packet
	p.Decode(frame)
	k := flow.KeyOf(1, &p, int(p.TotalLen))
	now := time.Now().UnixNano()
	if !a.flows.Install(&flow.Entry{Key: k, Actions: []flow.Action{{Kind: flow.Output, Key: 2}}, Expires: now + int64(time.Hour)}, 1) {
		t.Fatal("install refused")
	}
	dp := datapath.Packet{Buf: frame, N: len(frame)}
	drain := make([]datapath.Packet, 1)
	drain[0].Buf = make([]byte, datapath.MaxFrame)
	ins := &inlineSim{}
	run := func() {
		a.fromPort(v, in, &dp, &p, now, ins)
		if n, _ := outVM.ReadBatch(drain); n != 1 {
			t.Fatal("frame not forwarded")
		}
	}
	run()
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("flow hit allocates %v times per frame", n)
	}
}

func BenchmarkFlowHit(b *testing.B) {
	a, _ := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1")})
	frame := tcpFrame(1400)
	var p packet.Packet
	p.Decode(frame)
	k := flow.KeyOf(1, &p, int(p.TotalLen))
	a.flows.Install(&flow.Entry{Key: k, Actions: []flow.Action{{Kind: flow.Drop}}, Expires: time.Now().Add(time.Hour).UnixNano()}, 0)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		p.Decode(frame)
		k := flow.KeyOf(1, &p, int(p.TotalLen))
		if a.flows.Lookup(&k, now) == nil {
			b.Fatal("miss")
		}
	}
}
