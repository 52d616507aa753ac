package sim

import (
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// Test topology (the "lab"):
//
//	vm1 (h1, 10.0.0.11) ─┐
//	vm2 (h2, 10.0.0.12) ─┤ bridge b1 ── r1 10.0.0.1/24 ┐
//	uplinkL2 (h1)       ─┘                              │ router r
//	vm3 (h2, 10.0.1.13) ── bridge b2 ── r2 10.0.1.1/24 ┤
//	                       uplink (h1) ─ r3 192.0.2.1/24 ┘ default via 192.0.2.254
func mustMAC(s string) topology.MAC {
	m, err := topology.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

var (
	mVM1 = mustMAC("02:00:00:00:00:11")
	mVM2 = mustMAC("02:00:00:00:00:12")
	mVM3 = mustMAC("02:00:00:00:01:13")
	mR1  = mustMAC("02:00:00:00:ff:01")
	mR2  = mustMAC("02:00:00:00:ff:02")
	mR3  = mustMAC("02:00:00:00:ff:03")
	mGW  = mustMAC("02:00:00:00:ee:fe")
	mExt = mustMAC("02:00:00:00:ee:01")
)

func a4(s string) uint32 { return packet.U32(netip.MustParseAddr(s)) }

type lab struct {
	x *topology.Index
}

func newLab() *lab {
	x := topology.NewIndex()
	l := &lab{x}
	x.Put(&topology.Host{Meta: topology.Meta{ID: "h1"}})
	x.Put(&topology.Host{Meta: topology.Meta{ID: "h2"}})
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "b1", Name: "subnet-a"}})
	x.Put(&topology.Bridge{Meta: topology.Meta{ID: "b2", Name: "subnet-b"}})
	x.Put(&topology.Router{Meta: topology.Meta{ID: "r", Name: "vpc-router"}})
	l.port("vm1", "b1", func(p *topology.Port) {
		p.HostID, p.Interface, p.MAC, p.IPs, p.TunnelKey = "h1", "tap1", mVM1, []netip.Addr{netip.MustParseAddr("10.0.0.11")}, 11
	})
	l.port("vm2", "b1", func(p *topology.Port) {
		p.HostID, p.Interface, p.MAC, p.IPs, p.TunnelKey = "h2", "tap2", mVM2, []netip.Addr{netip.MustParseAddr("10.0.0.12")}, 12
	})
	l.port("l2up", "b1", func(p *topology.Port) { p.HostID, p.Interface, p.TunnelKey = "h1", "eth9", 19 })
	l.port("b1r", "b1", func(p *topology.Port) { p.PeerID = "r1" })
	l.port("vm3", "b2", func(p *topology.Port) {
		p.HostID, p.Interface, p.MAC, p.IPs, p.TunnelKey = "h2", "tap3", mVM3, []netip.Addr{netip.MustParseAddr("10.0.1.13")}, 13
	})
	l.port("b2r", "b2", func(p *topology.Port) { p.PeerID = "r2" })
	l.port("r1", "r", func(p *topology.Port) {
		p.MAC, p.Address, p.PeerID = mR1, netip.MustParsePrefix("10.0.0.1/24"), "b1r"
	})
	l.port("r2", "r", func(p *topology.Port) {
		p.MAC, p.Address, p.PeerID = mR2, netip.MustParsePrefix("10.0.1.1/24"), "b2r"
	})
	l.port("r3", "r", func(p *topology.Port) {
		p.MAC, p.Address, p.HostID, p.Interface, p.TunnelKey = mR3, netip.MustParsePrefix("192.0.2.1/24"), "h1", "uplink", 3
	})
	l.route("default", "r", "0.0.0.0/0", "r3", "192.0.2.254")
	x.Put(&topology.Router{Meta: topology.Meta{ID: "r", Name: "vpc-router"}, ARPEntries: []topology.ARPEntry{{IP: netip.MustParseAddr("192.0.2.254"), MAC: mGW}}})
	return l
}

func (l *lab) port(id, dev string, f func(*topology.Port)) {
	k := topology.KindBridge
	if dev[0] == 'r' {
		k = topology.KindRouter
	}
	p := &topology.Port{Meta: topology.Meta{ID: id, Name: id}, DeviceKind: k, DeviceID: dev}
	if f != nil {
		f(p)
	}
	l.x.Put(p)
}

func (l *lab) route(id, router, dst, port, gw string) *topology.Route {
	r := &topology.Route{Meta: topology.Meta{ID: id}, RouterID: router, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix(dst), NextHopPort: port}
	if gw != "" {
		r.NextHopGateway = netip.MustParseAddr(gw)
	}
	l.x.Put(r)
	return r
}

func (l *lab) chain(id string, rules ...topology.Rule) {
	for i := range rules {
		if rules[i].ID == "" {
			rules[i].ID = id + "-" + string(rune('a'+i))
		}
	}
	l.x.Put(&topology.Chain{Meta: topology.Meta{ID: id, Name: id}, Rules: rules})
}

// set updates an object in place and re-indexes it.
func set[T topology.Object](l *lab, k topology.Kind, id string, f func(T)) {
	o := l.x.Get(k, id).(T)
	f(o)
	l.x.Put(o)
}

func u8(v uint8) *uint8 { return &v }

// run simulates a spec'd packet arriving on port in.
type runner struct {
	t    *testing.T
	snap *Snapshot
	st   *flow.State
	tab  *Tables
	opts Options
	res  Result
}

func (l *lab) runner(t *testing.T) *runner {
	return &runner{t: t, snap: NewSnapshot(l.x), st: flow.NewState(), tab: NewTables(), opts: Options{Now: 1e9, LocalHost: "h1", Trace: true}}
}

func (r *runner) send(in string, frame []byte) *Result {
	r.t.Helper()
	var p packet.Packet
	p.Decode(frame)
	r.opts.Tables = r.tab
	Simulate(r.snap, r.st, in, frame, &p, &r.opts, &r.res)
	return &r.res
}

// deliver executes the result's flow on the frame and returns, per output
// port, the decoded packet that leaves; it checks checksums on the way.
func deliver(t *testing.T, frame []byte, res *Result) map[string]packet.Packet {
	t.Helper()
	out := map[string]packet.Packet{}
	var p packet.Packet
	f := append([]byte(nil), frame...)
	p.Decode(f)
	i := 0
	flow.Apply(f, &p, res.Actions, func(a flow.Action, fr []byte) {
		var q packet.Packet
		q.Decode(fr)
		if q.Has(packet.FlagIPv4) && !packet.VerifyIPv4(fr, &q) {
			t.Errorf("bad checksum at output %d", i)
		}
		out[res.Outputs[i].PortID] = q
		i++
	})
	return out
}

func udp(src, dst topology.MAC, sip, dip string, sport, dport uint16) []byte {
	return (&packet.Spec{EthSrc: src, EthDst: dst, Src: a4(sip), Dst: a4(dip), Proto: packet.ProtoUDP, SrcPort: sport, DstPort: dport, Payload: []byte("data")}).Build()
}

func tcp(src, dst topology.MAC, sip, dip string, sport, dport uint16) []byte {
	return (&packet.Spec{EthSrc: src, EthDst: dst, Src: a4(sip), Dst: a4(dip), Proto: packet.ProtoTCP, SrcPort: sport, DstPort: dport, TCPFlags: 2, Payload: []byte("data")}).Build()
}

func ping(src, dst topology.MAC, sip, dip string, id uint16) []byte {
	return (&packet.Spec{EthSrc: src, EthDst: dst, Src: a4(sip), Dst: a4(dip), Proto: packet.ProtoICMP, ICMPType: packet.ICMPEchoRequest, SrcPort: id, Payload: []byte("pingdata")}).Build()
}

func outputs(res *Result) []string {
	var s []string
	for _, o := range res.Outputs {
		s = append(s, o.PortID)
	}
	return s
}

func genPorts(res *Result) []string {
	var s []string
	for _, g := range res.Generated {
		s = append(s, g.PortID)
	}
	return s
}

func decodeGen(g Generated) packet.Packet {
	var p packet.Packet
	p.Decode(g.Frame)
	return p
}

func eq[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (r *runner) expect(res *Result, v Verdict, outs ...string) {
	r.t.Helper()
	if res.Verdict != v || !eq(outputs(res), outs) {
		r.t.Fatalf("verdict %s (%s), outputs %v; want %s %v\ntrace:\n%s", res.Verdict, res.Reason, outputs(res), v, outs, FormatTrace(res.Trace))
	}
}
