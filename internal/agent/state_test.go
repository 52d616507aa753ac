package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
)

// TestStateRoundTrip: what one agent's simulation created is, after the
// state message, known to the other agent: the connection is tracked (its
// replies classify as return traffic) and the NAT reverses.
func TestStateRoundTrip(t *testing.T) {
	a, err := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	conn := packet.Key{Zone: 77, Src: 0x0a000001, Dst: 0x0a000102, SrcPort: 40000, DstPort: 22, Proto: packet.ProtoTCP}
	nat := sim.NATEntry{Kind: flow.SNAT, Key: conn, Binding: flow.Binding{IP: 0xc0000264, Port: 40000}}
	res := &sim.Result{Conns: []packet.Key{conn}, NATs: []sim.NATEntry{nat}}
	msg := encodeState(res, time.Hour)

	a.importState(msg)
	now := time.Now().UnixNano()
	if a.state.Classify(conn.Reverse(), now) != flow.Return {
		t.Error("the reply of an imported connection is not return traffic")
	}
	reply := packet.Key{Zone: 77, Src: conn.Dst, Dst: 0xc0000264, SrcPort: 22, DstPort: 40000, Proto: packet.ProtoTCP}
	if b, ok := a.state.ReverseNAT(flow.SNAT, reply, now); !ok || b.IP != conn.Src || b.Port != conn.SrcPort {
		t.Errorf("imported SNAT does not reverse: %+v %v", b, ok)
	}

	for _, bad := range [][]byte{nil, msg[:10], msg[:len(msg)-1], append([]byte{}, msg[:stateHdrLen]...)} {
		before := a.state.Conns()
		if len(bad) == stateHdrLen {
			bad[packet.EthHeaderLen] = 99 // unknown version
		}
		a.importState(bad)
		if a.state.Conns() != before {
			t.Errorf("a malformed message (%d bytes) changed the state", len(bad))
		}
	}
}

func FuzzImportState(f *testing.F) {
	conn := packet.Key{Zone: 1, Src: 1, Dst: 2, SrcPort: 3, DstPort: 4, Proto: 6}
	f.Add(encodeState(&sim.Result{Conns: []packet.Key{conn}}, time.Minute))
	a, _ := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1")})
	f.Fuzz(func(t *testing.T, b []byte) {
		a.importState(b) // must not panic
	})
}
