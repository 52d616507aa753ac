package agent

import (
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestLivenessJudge walks one peer through its states: unknown until first
// heard, up while heartbeats come, down once silent for longer than the
// detection time its heartbeats announce (its interval × multiplier, not
// ours), up at the next heartbeat, leaving as soon as it says it stops.
// Heartbeats from an address that is no peer are counted as bad and change
// nothing.
func TestLivenessJudge(t *testing.T) {
	a := &Agent{log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: newMetrics()}
	l := newLiveness(100*time.Millisecond, 3, a.m)
	gw := netip.MustParseAddrPort("192.0.2.10:6677")
	l.setPeers(map[string]netip.AddrPort{"gw1": gw})

	// The peer's own timers: 50 ms × 4 = 200 ms detection.
	peer := newLiveness(50*time.Millisecond, 4, newMetrics())
	hb := peer.heartbeat(nil)
	if !isHeartbeat(hb) {
		t.Fatal("a heartbeat is not recognised as one")
	}
	if isHeartbeat(encodeState(&sim.Result{}, time.Second)) {
		t.Fatal("a state message is taken for a heartbeat")
	}

	t0 := time.Unix(1000, 0)
	var back []string // the peers that came up at the last judgement
	judge := func(at time.Duration) map[string]bool {
		var d map[string]bool
		d, back = l.judge(t0.Add(at), a)
		return d
	}
	state := func() string { return l.status()[0].State }
	if d := judge(0); len(d) != 0 || state() != peerUnknown {
		t.Fatalf("never heard: down %v, state %s; want unknown, not down", d, state())
	}
	l.heard(gw, hb, t0.UnixNano())
	if d := judge(10 * time.Millisecond); len(d) != 0 || state() != peerUp {
		t.Fatalf("heard: down %v, state %s", d, state())
	}
	if got := l.status()[0].DetectMS; got != 200 {
		t.Errorf("detection time %d ms, want the peer's 50 ms × 4", got)
	}
	if d := judge(190 * time.Millisecond); len(d) != 0 {
		t.Fatalf("silent for 190 ms of 200: down %v", d)
	}
	if d := judge(210 * time.Millisecond); !d["gw1"] || state() != peerDown {
		t.Fatalf("silent for 210 ms: down %v, state %s", d, state())
	}
	l.heard(gw, hb, t0.Add(300*time.Millisecond).UnixNano())
	if d := judge(310 * time.Millisecond); len(d) != 0 || state() != peerUp {
		t.Fatalf("heard again: down %v, state %s", d, state())
	}
	if len(back) != 1 || back[0] != "gw1" {
		t.Errorf("heard again: came up %v, want gw1 (it gets this host's exported state)", back)
	}
	if judge(320 * time.Millisecond); len(back) != 0 {
		t.Errorf("still up: came up again %v", back)
	}
	peer.leaving.Store(true)
	l.heard(gw, peer.heartbeat(nil), t0.Add(320*time.Millisecond).UnixNano())
	if d := judge(330 * time.Millisecond); !d["gw1"] || state() != peerLeaving {
		t.Fatalf("leaving: down %v, state %s", d, state())
	}
	if got := counter(l.transitions.WithLabelValues("gw1", peerDown)); got != 1 {
		t.Errorf("down transitions %v, want 1", got)
	}
	if got := l.status()[0].Downs; got != 2 {
		t.Errorf("downs %d, want 2 (one silence, one leaving)", got)
	}

	l.heard(netip.MustParseAddrPort("192.0.2.99:6677"), hb, t0.UnixNano())
	l.heard(gw, hb[:heartbeatLen-1], t0.UnixNano())
	if got := counter(l.bad); got != 2 {
		t.Errorf("bad heartbeats %v, want 2 (a stranger, a short one)", got)
	}

	// A peer that leaves the set is forgotten; one that stays keeps its
	// state.
	l.setPeers(map[string]netip.AddrPort{"gw1": gw, "c2": netip.MustParseAddrPort("192.0.2.11:6677")})
	if st := l.status(); len(st) != 2 || st[1].State != peerLeaving {
		t.Errorf("after adding a peer: %+v", st)
	}
	l.setPeers(nil)
	if d := judge(time.Second); len(d) != 0 {
		t.Errorf("no peers, down %v", d)
	}
}

// TestLivenessAllSilent: when every peer that was up falls silent at once,
// this host is the likelier culprit (stalled): none is taken down until
// one is heard again, and then the silent ones go down.
func TestLivenessAllSilent(t *testing.T) {
	a := &Agent{log: slog.New(slog.NewTextHandler(io.Discard, nil)), m: newMetrics()}
	l := newLiveness(100*time.Millisecond, 3, a.m)
	gw1, gw2 := netip.MustParseAddrPort("192.0.2.10:6677"), netip.MustParseAddrPort("192.0.2.11:6677")
	l.setPeers(map[string]netip.AddrPort{"gw1": gw1, "gw2": gw2})
	hb := l.heartbeat(nil)
	t0 := time.Unix(1000, 0)
	l.heard(gw1, hb, t0.UnixNano())
	l.heard(gw2, hb, t0.UnixNano())
	if d, up := l.judge(t0, a); len(d) != 0 || len(up) != 2 {
		t.Fatalf("both heard: down %v, up %v", d, up)
	}
	if d, _ := l.judge(t0.Add(time.Second), a); len(d) != 0 {
		t.Fatalf("both silent at once: down %v, want none", d)
	}
	l.heard(gw2, hb, t0.Add(time.Second).UnixNano())
	if d, _ := l.judge(t0.Add(time.Second+time.Millisecond), a); !d["gw1"] || d["gw2"] || len(d) != 1 {
		t.Fatalf("gw2 heard again, gw1 still silent: down %v, want gw1", d)
	}
}

// TestLivenessPeers: a host with an uplink exchanges heartbeats with every
// host; others only with the hosts that have uplinks.
func TestLivenessPeers(t *testing.T) {
	x := topology.NewIndex()
	x.Put(&topology.Port{Meta: topology.Meta{ID: "up1"}, DeviceKind: topology.KindRouter, DeviceID: "edge", HostID: "gw1", Interface: "eth1"})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "up2"}, DeviceKind: topology.KindRouter, DeviceID: "edge", HostID: "gw2", Interface: "eth1"})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "vm"}, DeviceKind: topology.KindBridge, DeviceID: "b", HostID: "c1", Interface: "tap1"})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "rp"}, DeviceKind: topology.KindRouter, DeviceID: "r"}) // interior
	ap := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
	all := map[string]netip.AddrPort{"gw1": ap("10.0.0.1:1"), "gw2": ap("10.0.0.2:1"), "c1": ap("10.0.0.3:1"), "c2": ap("10.0.0.4:1")}
	keys := func(m map[string]netip.AddrPort) map[string]bool {
		out := map[string]bool{}
		for k := range m {
			out[k] = true
		}
		return out
	}
	if got := keys(livenessPeers(x, "gw1", all)); !maps.Equal(got, map[string]bool{"gw2": true, "c1": true, "c2": true}) {
		t.Errorf("gw1's peers %v", got)
	}
	if got := keys(livenessPeers(x, "c1", all)); !maps.Equal(got, map[string]bool{"gw1": true, "gw2": true}) {
		t.Errorf("c1's peers %v", got)
	}
}

// TestReplicaDownUnion: a host is down for the simulation when its lease
// says so or its heartbeats stopped; either change taints the exterior
// ports there and their router, and only a change does.
func TestReplicaDownUnion(t *testing.T) {
	r := newReplica()
	r.idx.Put(&topology.Port{Meta: topology.Meta{ID: "up1"}, DeviceKind: topology.KindRouter, DeviceID: "edge", HostID: "gw1", Interface: "eth1"})
	r.idx.Put(&topology.Port{Meta: topology.Meta{ID: "up2"}, DeviceKind: topology.KindRouter, DeviceID: "edge", HostID: "gw2", Interface: "eth1"})
	taint := func() map[flow.Tag]struct{} {
		c := r.changed
		r.changed = map[flow.Tag]struct{}{}
		return c
	}
	if r.downFunc("c1") != nil {
		t.Fatal("nothing known yet, yet a down function")
	}
	r.setAlive(map[string]bool{"gw1": true, "gw2": true, "c1": true})
	if len(taint()) != 0 {
		t.Error("every host alive at first: tainted something")
	}
	r.setUnreachable(map[string]bool{"gw1": true})
	down := r.downFunc("c1")
	if !down("gw1") || down("gw2") || down("c1") {
		t.Errorf("gw1 unreachable: down gw1=%v gw2=%v c1=%v", down("gw1"), down("gw2"), down("c1"))
	}
	c := taint()
	if _, ok := c[flow.TagOf(string(topology.KindPort), "up1")]; !ok {
		t.Error("gw1's uplink not tainted")
	}
	if _, ok := c[flow.TagOf(string(topology.KindRouter), "edge")]; !ok {
		t.Error("the edge router not tainted")
	}
	if _, ok := c[flow.TagOf(string(topology.KindPort), "up2")]; ok {
		t.Error("gw2's uplink tainted")
	}
	// The lease going too changes nothing more; heartbeats back with the
	// lease still gone leave it down.
	r.setAlive(map[string]bool{"gw2": true, "c1": true})
	if len(taint()) != 0 {
		t.Error("already down: tainted again")
	}
	r.setUnreachable(nil)
	if !r.downFunc("c1")("gw1") || len(taint()) != 0 {
		t.Error("heartbeats back but the lease gone: gw1 should stay down, untainted")
	}
	r.setAlive(map[string]bool{"gw1": true, "gw2": true, "c1": true})
	if r.downFunc("c1")("gw1") || len(taint()) == 0 {
		t.Error("gw1 back: still down, or nothing tainted")
	}
	if r.downFunc("gw1")("gw1") {
		t.Error("a host is down in its own eyes")
	}
}
