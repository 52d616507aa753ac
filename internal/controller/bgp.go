package controller

import (
	"context"
	"maps"
	"slices"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// Routes learned by the gateways' BGP speakers. Each gateway host's agent
// publishes what its speaker learned under its own host's state keys
// (nsdb.PutBGPRoutes), bound to its lease; agents write no topology. The
// controller watches those keys, keeps the latest list per host in the
// loop's state, and makes them part of the cloud partition's desired
// topology: Route objects on the edge router, learned = true, out of the
// uplink of the host that learned them (translate.LearnedRoutes). A change
// of any host's list dirties the cloud partition, as a Host change does; a
// dead gateway's routes go when its lease expires.

// watchBGP feeds the loop every host's learned routes until ctx is done.
func (c *Controller) watchBGP(ctx context.Context) {
	conv := func(in map[string][]nsdb.BGPRoute) map[string][]translate.LearnedRoute {
		out := make(map[string][]translate.LearnedRoute, len(in))
		for h, rs := range in {
			var lrs []translate.LearnedRoute
			for _, r := range rs {
				lrs = append(lrs, translate.LearnedRoute{Prefix: r.Prefix, NextHop: r.NextHop})
			}
			out[h] = lrs
		}
		return out
	}
	_ = c.store.WatchBGPRoutes(ctx, nsdb.BGPRoutesHandler{
		Reset:   func(m map[string][]nsdb.BGPRoute) { c.q.push(event{bgp: true, bgpReset: true, bgpRoutes: conv(m)}) },
		Changed: func(m map[string][]nsdb.BGPRoute) { c.q.push(event{bgp: true, bgpRoutes: conv(m)}) },
	})
}

// handleBGP applies a learned-routes event to the loop's state.
func (c *Controller) handleBGP(e event) {
	if e.bgpReset {
		if !maps.EqualFunc(c.learned, e.bgpRoutes, slices.Equal) {
			c.learned = e.bgpRoutes
			c.dirty.add("")
		}
		return
	}
	for h, rs := range e.bgpRoutes {
		if slices.Equal(c.learned[h], rs) {
			continue
		}
		if len(rs) == 0 {
			delete(c.learned, h)
		} else {
			c.learned[h] = rs
		}
		c.dirty.add("")
	}
}

// addLearned adds the learned routes to d, the cloud partition.
func addLearned(cloud translate.CloudConfig, d *translate.Desired, learned map[string][]translate.LearnedRoute) {
	if len(learned) == 0 {
		return
	}
	objs, skips := translate.LearnedRoutes(cloud, d, learned)
	d.Objects = append(d.Objects, objs...)
	d.Skipped = append(d.Skipped, skips...)
}
