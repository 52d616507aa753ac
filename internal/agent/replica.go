package agent

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// replica is the agent's copy of the topology: fed by the watch, read by
// the snapshot builder. It holds the whole topology; following only what
// this host's ports can reach is a later optimisation (DESIGN.md §4).
type replica struct {
	mu      sync.Mutex
	idx     *topology.Index
	rev     int64
	changed map[flow.Tag]struct{} // tags of objects changed since the last build
	all     bool                  // a re-list: flush every flow
	dirty   chan struct{}         // cap 1: a build is due
	// alive are the hosts whose agents are alive (nil until first known:
	// then every host counts as up); unreach are those whose heartbeats
	// stopped (liveness.go). A host is down for the simulation when either
	// says so.
	alive   map[string]bool
	unreach map[string]bool
}

func newReplica() *replica {
	return &replica{idx: topology.NewIndex(), changed: map[flow.Tag]struct{}{}, dirty: make(chan struct{}, 1)}
}

func (r *replica) kick() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// objectOf decodes a key under topo/ ("<prefix>topo/<kind>/<id>").
func objectOf(prefix string, kv nsdb.KV) (topology.Kind, string, topology.Object) {
	rest := strings.TrimPrefix(kv.Key, prefix)
	kind, id, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", nil
	}
	k := topology.Kind(kind)
	if kv.Value == nil {
		return k, id, nil
	}
	o := topology.New(k)
	if o == nil || json.Unmarshal(kv.Value, o) != nil {
		return k, id, nil
	}
	o.GetMeta().Revision = kv.ModRevision
	return k, id, o
}

// taint records the tags a change to (or removal of) o invalidates. Besides
// the object's own tag: a port or route change also taints its device
// (floods and route lookups consult the device, not every candidate).
func (r *replica) taint(k topology.Kind, id string, o topology.Object) {
	r.changed[flow.TagOf(string(k), id)] = struct{}{}
	switch v := o.(type) {
	case *topology.Port:
		r.changed[flow.TagOf(string(v.DeviceKind), v.DeviceID)] = struct{}{}
	case *topology.Route:
		r.changed[flow.TagOf(string(topology.KindRouter), v.RouterID)] = struct{}{}
	case *topology.Chain:
		for _, ru := range v.Rules {
			r.changed[flow.TagOf("rule", ru.ID)] = struct{}{}
		}
	}
}

func (r *replica) handler(prefix string) nsdb.Handler {
	return nsdb.Handler{
		Reset: func(kvs []nsdb.KV, rev int64) {
			r.mu.Lock()
			r.idx = topology.NewIndex()
			for _, kv := range kvs {
				if _, _, o := objectOf(prefix, kv); o != nil {
					r.idx.Put(o)
				}
			}
			r.rev, r.all = rev, true
			r.mu.Unlock()
			r.kick()
		},
		Events: func(evs []nsdb.Event, rev int64) {
			r.mu.Lock()
			for _, e := range evs {
				k, id, o := objectOf(prefix, e.KV)
				if old := r.idx.Get(k, id); old != nil {
					r.taint(k, id, old)
				}
				if e.Delete || o == nil {
					r.idx.Delete(k, id)
					r.taint(k, id, nil)
					continue
				}
				r.taint(k, id, o)
				r.idx.Put(o)
			}
			r.rev = rev
			r.mu.Unlock()
			r.kick()
		},
	}
}

// setAlive records which hosts are alive (by their leases).
func (r *replica) setAlive(alive map[string]bool) {
	r.setDown(func() { r.alive = alive })
}

// setUnreachable records which hosts' heartbeats stopped.
func (r *replica) setUnreachable(unreach map[string]bool) {
	r.setDown(func() { r.unreach = unreach })
}

// downFunc is whether host h is down for the simulation (self never is:
// this host is up in its own eyes, even while its lease is being renewed);
// nil while nothing is known.
func (r *replica) downFunc(self string) func(string) bool {
	alive, unreach := r.alive, r.unreach
	if alive == nil && len(unreach) == 0 {
		return nil
	}
	return func(h string) bool { return h != self && (alive != nil && !alive[h] || unreach[h]) }
}

// setDown applies change to the liveness views, tainting the exterior
// ports of the hosts whose state changed and their devices: the routes
// through them come or go (sim.WithHostsDown), and every flow their router
// decided is simulated again.
func (r *replica) setDown(change func()) {
	r.mu.Lock()
	isDown := func(h string) bool { return r.alive != nil && !r.alive[h] || r.unreach[h] }
	before := map[string]bool{}
	for _, o := range r.idx.List(topology.KindPort) {
		if h := o.(*topology.Port).HostID; h != "" {
			before[h] = isDown(h)
		}
	}
	change()
	for _, o := range r.idx.List(topology.KindPort) {
		p := o.(*topology.Port)
		if p.HostID == "" || before[p.HostID] == isDown(p.HostID) {
			continue
		}
		r.changed[flow.TagOf(string(topology.KindPort), p.ID)] = struct{}{}
		r.changed[flow.TagOf(string(p.DeviceKind), p.DeviceID)] = struct{}{}
	}
	r.mu.Unlock()
	r.kick()
}

// runReplica follows topo/ and publishes a new view after every burst of
// changes: events arriving while a snapshot builds are coalesced into the
// next build, not built one by one.
func (a *Agent) runReplica(ctx context.Context) {
	r := newReplica()
	a.wg.Go(func() { _ = a.store.Watch(ctx, nsdb.TopologyRel, r.handler(a.store.Prefix()+nsdb.TopologyRel)) })
	a.wg.Go(func() { _ = a.store.WatchAliveHosts(ctx, r.setAlive) })
	a.wg.Go(func() { a.runLiveness(ctx, r.setUnreachable) })
	var gen uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.dirty:
		}
		start := time.Now()
		r.mu.Lock()
		var snap *sim.Snapshot
		if down := r.downFunc(a.hostID); down != nil {
			snap = sim.NewSnapshot(r.idx, sim.WithHostsDown(down))
		} else {
			snap = sim.NewSnapshot(r.idx)
		}
		v := &view{snap: snap, peers: map[string]netip.AddrPort{}, want: map[string]binding{}, keyOf: map[string]uint32{},
			svc: map[string]*portSvc{}}
		for _, o := range r.idx.List(topology.KindTunnelZone) {
			for _, m := range o.(*topology.TunnelZone).Members {
				if _, ok := v.peers[m.HostID]; !ok && m.Address.IsValid() {
					v.peers[m.HostID] = netip.AddrPortFrom(m.Address, a.cfg.TunnelPort)
				}
			}
		}
		for _, ref := range r.idx.Referrers(topology.KindHost, a.hostID) {
			if ref.Kind != topology.KindPort {
				continue
			}
			p := r.idx.Get(topology.KindPort, ref.ID).(*topology.Port)
			if p.Interface != "" {
				v.want[p.ID] = binding{iface: p.Interface, key: p.TunnelKey}
				v.keyOf[p.ID] = p.TunnelKey
				v.svc[p.ID] = servicesOf(r.idx, p, a.overlayMTU())
			}
		}
		v.live = livenessPeers(r.idx, a.hostID, v.peers)
		gw, uplinks := wantGateway(r.idx, a.hostID), uplinksOf(r.idx, a.hostID)
		changed, all := r.changed, r.all
		r.changed, r.all = map[flow.Tag]struct{}{}, false
		rev := r.rev
		r.mu.Unlock()

		gen++
		v.gen = gen
		a.view.Store(v)
		n := a.flows.Invalidate(changed, all, gen)
		if a.kernel != nil {
			if gen > 1 && (all || len(changed) > 0) {
				// A previous agent's flows were decided on an older
				// topology: past its first view, a change retires them.
				a.kernel.dropAdopted()
			}
			a.kernel.reconcilePorts(v.want)
		}
		a.m.snapshots.Inc()
		a.log.Debug("agent: snapshot", "rev", rev, "changed", len(changed), "flows_removed", n, "took", time.Since(start))
		a.reconcile(ctx)
		a.live.ready.Store(true) // its ports are plugged: it forwards
		a.setGateway(gw, uplinks)
	}
}
