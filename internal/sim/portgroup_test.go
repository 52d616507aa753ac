package sim

import (
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// Two L2 uplinks in one port group: a connection leaving through one may
// come back through the other. Their chains accept return flows only; with a
// stateful group the ports share connection state, without it they do not.
func TestStatefulPortGroupSharesConntrack(t *testing.T) {
	for _, stateful := range []bool{true, false} {
		l := newLab()
		l.port("l2up2", "b1", func(p *topology.Port) { p.HostID, p.Interface, p.TunnelKey = "h2", "eth9", 29 })
		l.x.Put(&topology.PortGroup{Meta: topology.Meta{ID: "uplinks"}, Stateful: stateful, Ports: []string{"l2up", "l2up2"}})
		l.chain("up-out", topology.Rule{Condition: topology.Condition{MatchForwardFlow: true}, Action: topology.ActionAccept})
		l.chain("up-in", topology.Rule{Condition: topology.Condition{MatchReturnFlow: true}, Action: topology.ActionAccept}, topology.Rule{Action: topology.ActionDrop})
		for _, id := range []string{"l2up", "l2up2"} {
			set(l, topology.KindPort, id, func(p *topology.Port) { p.OutFilter, p.InFilter = "up-out", "up-in" })
		}
		r := l.runner(t)
		ext := mustMAC("02:bb:00:00:00:01")
		r.tab.MACs[MACKey{r.snap.devs[r.snap.ports[r.snap.portIdx["l2up"]].dev].tag, ext}] = MACEntry{Port: r.snap.PortTag("l2up"), Refresh: 1 << 62}
		r.expect(r.send("vm1", udp(mVM1, ext, "10.0.0.11", "198.51.100.1", 7000, 53)), VerdictForward, "l2up")
		res := r.send("l2up2", udp(ext, mVM1, "198.51.100.1", "10.0.0.11", 53, 7000))
		if got := res.Verdict == VerdictForward; got != stateful {
			t.Errorf("stateful=%v: reply on the other uplink %s\n%s", stateful, res.Verdict, FormatTrace(res.Trace))
		}
		// The hosts that must hold the state: every member's.
		want := []string(nil)
		if stateful {
			want = []string{"h1", "h2"}
		}
		if got := r.snap.StateHosts("l2up"); !eq(got, want) {
			t.Errorf("stateful=%v: state hosts %v, want %v", stateful, got, want)
		}
	}
}
