package agent

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// missLab is an agent with two local ports on one bridge, its snapshot
// published, and the VM end of the egress port drained by a goroutine.
func missLab(tb testing.TB) (*Agent, *vport) {
	a, err := New(Config{Endpoints: []string{"http://unused"}, TunnelIP: netip.MustParseAddr("192.0.2.1")})
	if err != nil {
		tb.Fatal(err)
	}
	a.hostID = "h1"
	x := topology.NewIndex()
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "br"}})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "p1"}, DeviceKind: topology.KindBridge, DeviceID: "br", HostID: "h1", Interface: "in",
		MAC: topology.MAC{2, 0, 0, 0, 0, 1}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, TunnelKey: 1})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "p2"}, DeviceKind: topology.KindBridge, DeviceID: "br", HostID: "h1", Interface: "out",
		MAC: topology.MAC{2, 0, 0, 0, 0, 2}, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, TunnelKey: 2})
	a.view.Store(&view{snap: sim.NewSnapshot(x), gen: 1, peers: map[string]netip.AddrPort{}})
	a.flows.Invalidate(nil, true, 1)
	inA, _ := datapathfake.Pair("in", "in-vm")
	outA, outVM := datapathfake.Pair("out", "out-vm")
	in := a.newVport("p1", "in", 1, inA)
	out := a.newVport("p2", "out", 2, outA)
	a.bound = map[string]*vport{"p1": in, "p2": out}
	a.publishPorts()
	go func() {
		pk := make([]datapath.Packet, 64)
		for i := range pk {
			pk[i].Buf = make([]byte, 2048)
		}
		for {
			if _, err := outVM.ReadBatch(pk); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() { outA.Close() })
	return a, in
}

// BenchmarkMissPath: a new flow each packet (a new source port), through
// the whole miss path: decode, simulate, install, execute to a local port.
func BenchmarkMissPath(b *testing.B) {
	a, in := missLab(b)
	it := &missItem{buf: tcpFrame(0)}
	it.n = len(it.buf)
	var pkt packet.Packet
	var res sim.Result
	sport := uint16(0)
	b.ReportAllocs()
	for b.Loop() {
		sport++
		// Rewrite the source port; the checksum does not matter here.
		binary.BigEndian.PutUint16(it.buf[34:], sport)
		a.simulate(in, it, &pkt, &res, nil)
		if sport == 0 {
			a.flows.Invalidate(nil, true, 1)
		}
	}
	if a.flows.Len() == 0 {
		b.Fatal("no flow installed")
	}
}
