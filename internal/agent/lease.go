package agent

import "github.com/canopy-sdn/canopy/internal/nsdb"

// Lease is the agent's current host liveness lease: nil until Run has taken
// it, replaced when a lost lease is taken again (runLease). Keys that must
// vanish with this host (the instance driver's instance reports) are put
// with it and re-put when it changes.
func (a *Agent) Lease() *nsdb.Lease {
	a.leaseMu.Lock()
	defer a.leaseMu.Unlock()
	return a.lease
}
