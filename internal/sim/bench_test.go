package sim

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func BenchmarkBridgeKnownMAC(b *testing.B) {
	l := newLab()
	snap := NewSnapshot(l.x)
	st := flow.NewState()
	opts := Options{Now: 1, LocalHost: "h1", Tables: NewTables()}
	frame := udp(mVM1, mVM2, "10.0.0.11", "10.0.0.12", 1000, 53)
	var p packet.Packet
	var res Result
	b.ReportAllocs()
	for b.Loop() {
		p.Decode(frame)
		Simulate(snap, st, "vm1", frame, &p, &opts, &res)
	}
	if res.Verdict != VerdictForward {
		b.Fatal(res.Verdict)
	}
}

// routedLab links two routers (ra, rb) back to back; each has a 50-rule
// in-filter whose rules do not match until the last (accept). A packet from
// vmA's bridge crosses ra and rb to vmB's bridge: 100 rules evaluated.
func routedLab(rules int) *lab {
	x := topology.NewIndex()
	l := &lab{x}
	for _, id := range []string{"ra", "rb"} {
		x.Put(&topology.Router{Meta: topology.Meta{ID: id}, InFilter: "chain-" + id})
		var rs []topology.Rule
		for i := 0; i < rules-1; i++ {
			rs = append(rs, topology.Rule{
				ID: fmt.Sprintf("%s-%d", id, i),
				Condition: topology.Condition{
					NwSrc: netip.MustParsePrefix(fmt.Sprintf("172.16.%d.0/24", i)), NwProto: u8(packet.ProtoTCP),
					TpDst: &topology.PortRange{Start: uint16(1000 + i), End: uint16(1000 + i)},
				},
				Action: topology.ActionDrop,
			})
		}
		rs = append(rs, topology.Rule{ID: id + "-last", Action: topology.ActionAccept})
		l.chain("chain-"+id, rs...)
	}
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "ba"}})
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "bb"}})
	l.port("vmA", "ba", func(p *topology.Port) {
		p.HostID, p.MAC, p.IPs, p.TunnelKey = "h1", mVM1, []netip.Addr{netip.MustParseAddr("10.1.0.10")}, 1
	})
	l.port("baR", "ba", func(p *topology.Port) { p.PeerID = "ra1" })
	l.port("vmB", "bb", func(p *topology.Port) {
		p.HostID, p.MAC, p.IPs, p.TunnelKey = "h2", mVM3, []netip.Addr{netip.MustParseAddr("10.2.0.10")}, 2
	})
	l.port("bbR", "bb", func(p *topology.Port) { p.PeerID = "rb1" })
	l.port("ra1", "ra", func(p *topology.Port) { p.MAC, p.Address, p.PeerID = mR1, netip.MustParsePrefix("10.1.0.1/24"), "baR" })
	l.port("ra2", "ra", func(p *topology.Port) {
		p.MAC, p.Address, p.PeerID = mR2, netip.MustParsePrefix("169.254.0.1/30"), "rb2"
	})
	l.port("rb2", "rb", func(p *topology.Port) {
		p.MAC, p.Address, p.PeerID = mR3, netip.MustParsePrefix("169.254.0.2/30"), "ra2"
	})
	l.port("rb1", "rb", func(p *topology.Port) { p.MAC, p.Address, p.PeerID = mGW, netip.MustParsePrefix("10.2.0.1/24"), "bbR" })
	l.route("ra-to-b", "ra", "10.2.0.0/16", "ra2", "169.254.0.2")
	l.route("rb-to-a", "rb", "10.1.0.0/16", "rb2", "169.254.0.1")
	return l
}

func TestRoutedAcrossTwoRouters(t *testing.T) {
	r := routedLab(50).runner(t)
	res := r.send("vmA", tcp(mVM1, mR1, "10.1.0.10", "10.2.0.10", 40000, 443))
	r.expect(res, VerdictForward, "vmB")
	got := deliver(t, tcp(mVM1, mR1, "10.1.0.10", "10.2.0.10", 40000, 443), res)["vmB"]
	if got.TTL != packet.DefaultTTL-2 || got.EthSrc != mGW || got.EthDst != mVM3 {
		t.Errorf("delivered %+v", got)
	}
	if !containsTag(res.Tags, flow.TagOf("route", "ra-to-b")) || !containsTag(res.Tags, flow.TagOf("chain", "chain-rb")) {
		t.Error("tags missing route or chain")
	}
}

func BenchmarkRouted100Rules(b *testing.B) {
	l := routedLab(50)
	snap := NewSnapshot(l.x)
	st := flow.NewState()
	opts := Options{Now: 1, LocalHost: "h1", Tables: NewTables()}
	frame := tcp(mVM1, mR1, "10.1.0.10", "10.2.0.10", 40000, 443)
	var p packet.Packet
	var res Result
	b.ReportAllocs()
	for b.Loop() {
		p.Decode(frame)
		Simulate(snap, st, "vmA", frame, &p, &opts, &res)
	}
	if res.Verdict != VerdictForward {
		b.Fatal(res.Verdict, res.Reason)
	}
}
