package agent

import (
	"os"
	"path/filepath"
	"strings"
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
//     notes the time in <state-dir>/bgp-graceful-stop. Back within the
//     restart time, its OPEN says it restarted with its forwarding state
//     kept, and its routes replace the stale ones after the End-of-RIB.
//  4. The rest of the agent stops.
//
// Coming back, a gateway advertises nothing until its peers have had time
// to send it the connection and NAT state it must hold (liveness.synced;
// they send it when they hear it again), so no reply it receives finds its
// connection missing.

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
	sp.StopGraceful()
	if a.cfg.BGPRestartTime > 0 {
		path := filepath.Join(a.cfg.StateDir, gracefulStopFile)
		if err := os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
			a.log.Warn("agent: noting the graceful stop", "err", err)
		}
	}
}

// bgpRestart is the speaker's graceful restart: restarting when the last
// stop was graceful and within the restart time.
func (a *Agent) bgpRestart() gateway.Restart {
	r := gateway.Restart{Time: a.cfg.BGPRestartTime}
	path := filepath.Join(a.cfg.StateDir, gracefulStopFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return r
	}
	_ = os.Remove(path)
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil && r.Time > 0 && time.Since(t) < r.Time {
		r.Restarting = true
		a.log.Info("agent: bgp graceful restart", "stopped", t, "restart_time", r.Time)
	}
	return r
}
