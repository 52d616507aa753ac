package controller

import (
	"slices"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// The gateways of the cloud config name their hosts, which register when
// their agents first start, possibly long after the server. The cloud
// partition is therefore translated from the config and the Host objects
// in the store (translate.TranslateCloud), and every change to a Host
// dirties it (handle): an uplink is bound, moved or unbound by the round
// that follows the host's change, like any other reconcile.

// hosts returns the id and name of every Host in the store's cache.
func (c *Controller) hosts() []*topology.Host {
	var out []*topology.Host
	c.store.Read(func(r topology.Reader) {
		for _, o := range r.List(topology.KindHost) {
			m := o.GetMeta()
			out = append(out, &topology.Host{Meta: topology.Meta{ID: m.ID, Name: m.Name}})
		}
	})
	return out
}

// setGateways records how the gateways resolved and logs each change once:
// a gateway waiting for its host is a state, not a failure to retry.
func (c *Controller) setGateways(gws []translate.GatewayStatus) {
	c.mu.Lock()
	old := c.gateways
	c.gateways = gws
	c.mu.Unlock()
	if slices.Equal(old, gws) {
		return
	}
	for i, g := range gws {
		if i < len(old) && old[i] == g {
			continue
		}
		switch g.State {
		case translate.GatewayBound:
			c.log.Info("gateway bound", "host", g.Host, "host_id", g.HostID, "interface", g.Interface)
		case translate.GatewayPending:
			c.log.Info("gateway pending: its uplink is bound when the host registers", "host", g.Host, "interface", g.Interface, "reason", g.Reason)
		default:
			c.log.Warn("gateway not bound", "host", g.Host, "interface", g.Interface, "state", g.State, "reason", g.Reason)
		}
	}
	c.wakeStatus()
}

// Gateways returns how each gateway of the cloud config resolved at the
// last translation of the cloud partition (nil before the first).
func (c *Controller) Gateways() []translate.GatewayStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.gateways)
}
