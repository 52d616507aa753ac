package agent

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
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

func freeUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestRefreshExports: state sent to a peer with the first packet is sent
// again while this host still tracks the connection, and forgotten once it
// does not (real tunnel sockets on loopback).
func TestRefreshExports(t *testing.T) {
	a, err := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	if a.tunnel, err = datapath.OpenTunnel(datapath.TunnelConfig{Local: freeUDP(t)}); err != nil {
		t.Fatal(err)
	}
	defer a.tunnel.Close()
	peer := freeUDP(t)
	rx, err := datapath.OpenTunnel(datapath.TunnelConfig{Local: peer})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan []byte, 16)
	go func() {
		pk := make([]datapath.TunnelPacket, 4)
		for {
			n, err := rx.ReadBatch(pk)
			if err != nil {
				return
			}
			for _, p := range pk[:n] {
				if p.VNI == StateVNI {
					msgs <- append([]byte(nil), p.Frame...)
				}
			}
		}
	}()
	defer rx.Close()
	v := &view{peers: map[string]netip.AddrPort{"h2": peer}}
	a.view.Store(v)

	now := time.Now().UnixNano()
	conn := packet.Key{Zone: 5, Src: 1, Dst: 2, SrcPort: 1000, DstPort: 80, Proto: packet.ProtoTCP}
	a.state.Track(conn, now+int64(time.Hour))
	b, _ := a.state.AllocateNAT(flow.SNAT, conn, []flow.Target{{IPFrom: 9, IPTo: 9, PortFrom: 2000, PortTo: 2000}}, now, now+int64(time.Hour))
	res := &sim.Result{Conns: []packet.Key{conn}, NATs: []sim.NATEntry{{Kind: flow.SNAT, Key: conn, Binding: b}},
		Actions: []flow.Action{{Kind: flow.Tunnel, Host: "h2", Key: 7}}}
	a.sendState(v, "", res)
	a.refreshExports(now+int64(time.Minute), "")

	peerAgent, _ := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("127.0.0.2")})
	for i := range 2 {
		select {
		case m := <-msgs:
			peerAgent.importState(m)
		case <-time.After(5 * time.Second):
			t.Fatalf("state message %d never arrived", i+1)
		}
	}
	if peerAgent.state.Conns() != 1 || peerAgent.state.NATs() != 1 {
		t.Errorf("peer holds %d conns, %d NATs; want 1, 1", peerAgent.state.Conns(), peerAgent.state.NATs())
	}

	// Once the connection is gone here, nothing is refreshed any more.
	later := now + 2*int64(time.Hour)
	a.state.Expire(later)
	a.refreshExports(later, "")
	if len(a.exportConns) != 0 || len(a.exportNATs) != 0 {
		t.Errorf("exports kept after the connection ended: %d conns, %d NATs", len(a.exportConns), len(a.exportNATs))
	}
	// A marker message sent now is the next to arrive: nothing went out
	// before it (the socket keeps order on loopback).
	marker := encodeState(&sim.Result{}, 7*time.Second)
	a.sendStateTo(v, "h2", marker)
	select {
	case m := <-msgs:
		if string(m) != string(marker) {
			t.Error("state of an ended connection was sent again")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the marker never arrived")
	}
}
