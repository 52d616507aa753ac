package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/canopy-sdn/canopy/internal/gateway"
)

// A gateway host's planned stop (SIGTERM), so that a restart loses no
// packet and no route:
//
//  1. The agent tells its peers it is leaving (liveness.go): the other
//     hosts route outbound traffic through the other gateways at once.
//  2. If another gateway of the edge is up, the speaker withdraws what it
//     advertises and the agent keeps forwarding for Config.GatewayStopDrain,
//     while the upstream routers move the inbound traffic to the others.
//     Alone, it keeps advertising: graceful restart keeps its routes.
//  3. The speaker stops without a NOTIFICATION (graceful restart, RFC
//     4724): the peers keep its routes, stale, for the restart time, and it
//     notes the time and the routes it learned in
//     <state-dir>/bgp-graceful-stop. Back within the restart time, its OPEN
//     says it restarted with its forwarding state kept, and its routes
//     replace the stale ones after the End-of-RIB.
//  4. A lone gateway on the kernel datapath, which nobody can take over
//     from, stops as a killed agent would (keepForwarding): the program,
//     its pinned maps and attachments stay and go on forwarding the
//     established flows while no agent runs, and its lease is left to run
//     out rather than revoked, so what it holds in the store (its tunnel
//     membership, its uplink's binding, the learned default route: every
//     host's way out through it) stays for the lease's time. The next
//     agent adopts the kernel's flows and publishes the noted learned
//     routes at once, under its own lease, until its peers send them again.
//     Any other gateway stops and removes its datapath like any agent.
//
// Coming back, a gateway starts its speaker only once its peers have had
// time to send it the connection and NAT state it must hold
// (liveness.synced; they send it when they hear it again), so no reply it
// receives finds its connection missing, and no End-of-RIB of nothing ends
// the upstream routers' stale routes; until then it keeps the flows the
// previous agent left in the kernel.

const gracefulStopFile = "bgp-graceful-stop"

// stopGateway runs the planned stop of the gateway role, if any, and
// returns when the speaker is down.
func (a *Agent) stopGateway() {
	close(a.gw.stop)
	select {
	case <-a.gw.stopped:
	case <-time.After(a.cfg.GatewayStopDrain + 10*time.Second):
		a.log.Warn("agent: the gateway role did not stop in time")
	}
}

// stopGatewayRole is runGateway's part of the planned stop: w is what the
// speaker sp was last given.
func (a *Agent) stopGatewayRole(sp *gateway.Speaker, w *gatewayWant) {
	defer close(a.gw.stopped)
	if sp == nil {
		return
	}
	if w != nil && len(w.settings.Networks) > 0 && a.live.anyUp(w.others) {
		d := w.settings
		d.Networks = nil
		if err := sp.Apply(d); err != nil {
			a.log.Warn("agent: gateway stopping: withdrawing", "err", err)
		}
		a.log.Info("agent: gateway stopping: advertisements withdrawn, forwarding a while longer", "for", a.cfg.GatewayStopDrain)
		time.Sleep(a.cfg.GatewayStopDrain)
	}
	lone := w != nil && !a.live.anyUp(w.others)
	sp.StopGraceful()
	if a.cfg.BGPRestartTime <= 0 {
		return
	}
	a.gw.mu.Lock()
	st := gracefulStop{Stopped: time.Now().UTC(), Learned: slices.Clone(a.gw.routes)}
	a.gw.mu.Unlock()
	b, _ := json.Marshal(st)
	path := filepath.Join(a.cfg.StateDir, gracefulStopFile)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		a.log.Warn("agent: noting the graceful stop", "err", err)
		return
	}
	if lone && a.kernel != nil {
		a.keepForwarding.Store(true)
		a.log.Info("agent: lone gateway stopping: the kernel datapath forwards on until the next agent", "learned_routes", len(st.Learned))
	}
}

// gracefulStop is what a gateway stopping for a graceful restart notes in
// its state dir: when, and the routes it had learned (its forwarding
// state, published again by the next agent until its peers resend them).
type gracefulStop struct {
	Stopped time.Time       `json:"stopped"`
	Learned []gateway.Route `json:"learned"`
}

// bgpRestart is the speaker's graceful restart — restarting when the last
// stop was graceful and within the restart time — and the routes learned
// before it.
func (a *Agent) bgpRestart() (gateway.Restart, []gateway.Route) {
	r := gateway.Restart{Time: a.cfg.BGPRestartTime}
	path := filepath.Join(a.cfg.StateDir, gracefulStopFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return r, nil
	}
	_ = os.Remove(path)
	var st gracefulStop
	if err := json.Unmarshal(b, &st); err == nil && r.Time > 0 && time.Since(st.Stopped) < r.Time {
		r.Restarting = true
		a.log.Info("agent: bgp graceful restart", "stopped", st.Stopped, "restart_time", r.Time, "learned_routes", len(st.Learned))
		return r, st.Learned
	}
	return r, nil
}
