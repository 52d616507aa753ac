package agent

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unique"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// replica is the agent's copy of the topology: fed by the watches, read by
// the snapshot builder. A full replica follows all of topo/. A partial one
// (Config.Replica) follows only what this host needs (DESIGN.md §4): the cloud partition (edge, transit, hosts,
// tunnel zones, objects of no VPC), the partition of each VPC a port bound
// here is in (nsdb.WatchHostBindings), and the partitions the simulation
// went into: a route into a partition not held (the route is copied into
// its router's partition, nsdb/partition.go) stops a simulation with
// sim.Result.Need; the agent parks the packet, follows that partition and
// simulates the packet again once it is loaded (widening). A partition
// followed for flows only is dropped once no cached flow can have gone
// through it (narrowing: every flow through it carries the tag of the route
// into it, and flows expire). A gateway host follows, besides, every
// partition with a route on the routers of its uplinks: the VPCs whose
// public addresses it carries.
type replica struct {
	mu      sync.Mutex
	idx     *topology.Index
	rev     int64
	changed map[flow.Tag]struct{} // tags of objects changed since the last build
	flapped int                   // hosts whose liveness changed since the last build (setDown)
	all     bool                  // a re-list: flush every flow
	dirty   chan struct{}         // cap 1: a build is due
	// alive are the hosts whose agents are alive (nil until first known:
	// then every host counts as up); unreach are those whose heartbeats
	// stopped (liveness.go). A host is down for the simulation when either
	// says so.
	alive   map[string]bool
	unreach map[string]bool
	// partOf are the partitions each held object came from (partial only;
	// a route can be in two: its own and its router's): a partition's
	// re-list or removal touches only its own objects, and an object moving
	// between partitions is not removed by the late delete from the one it
	// left.
	partOf map[topology.ObjectKey][]string
	// partial: the replica follows partitions. loaded are those whose
	// listing it holds; bound those of this host's ports; gwParts those
	// routed through this host's uplinks (set at each build).
	partial bool
	loaded  map[string]bool
	bound   map[string]bool
	gwParts map[string]bool
	// far are the routes held only as the copy in their router's partition
	// while their own partition is not loaded (partial only): the /32 of
	// every elastic IP and NAT gateway of the cloud on the edge. The
	// replica needs of such a route only where it leads (a simulation
	// taking it stops with Result.Need), so it is kept out of idx and
	// compactly (compactRoute): no name, its partition's shared labels,
	// shared strings, no index entries. A route moves into idx when its own
	// partition loads and back when that partition is dropped; the routes
	// of the routers with an uplink on this host (gwRouters, set at each
	// build) are never far (the gateway advertises them). farList is far's
	// routes for the snapshot (nil: to be made again); labels the shared
	// label maps, by partition.
	far       map[string]farRoute
	farList   []*topology.Route
	gwRouters map[string]bool
	labels    map[string]map[string]string
	// wake is closed (and replaced) after every change, for waitUntil.
	wake chan struct{}

	// need are the partitions followed for flows: until when (Unix
	// nanoseconds) a simulation or a cached flow needs each. Written from
	// the packet path, so under a lock of its own. want (cap 1) tells
	// follow that the wanted partitions changed.
	nmu  sync.Mutex
	need map[string]int64
	want chan struct{}
}

// farRoute is a route of replica.far and the partition it came from.
type farRoute struct {
	rt   *topology.Route
	part string
}

func newReplica() *replica {
	return &replica{idx: topology.NewIndex(), changed: map[flow.Tag]struct{}{}, dirty: make(chan struct{}, 1),
		partOf: map[topology.ObjectKey][]string{}, loaded: map[string]bool{}, wake: make(chan struct{}),
		far: map[string]farRoute{}, labels: map[string]map[string]string{},
		need: map[string]int64{}, want: make(chan struct{}, 1)}
}

// poke tells follow the wanted partitions changed.
func (r *replica) poke() {
	select {
	case r.want <- struct{}{}:
	default:
	}
}

// needPartition records that a simulation went into partition part, which
// is not held: it is followed until at least until.
func (r *replica) needPartition(part string, until int64) {
	r.nmu.Lock()
	cur, ok := r.need[part]
	if until > cur {
		r.need[part] = until
	}
	r.nmu.Unlock()
	if !ok {
		r.poke()
	}
}

// kickIfLoaded schedules a build if partition part is loaded already: a
// packet parked for it after the build that loaded it had resumed the
// parked ones (the simulation, the load and the build raced on a busy
// machine) is resumed by the next build, not left to expire.
func (r *replica) kickIfLoaded(part string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded[part] {
		r.kickLocked()
	}
}

// kick schedules a build and wakes the waiters; r.mu is held.
func (r *replica) kickLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// waitUntil blocks until cond holds on the replica or ctx ends. cond runs
// under the replica's lock: it must not keep or modify what it reads.
func (r *replica) waitUntil(ctx context.Context, cond func(topology.Reader) bool) error {
	for {
		r.mu.Lock()
		ok, ch := cond(r.idx), r.wake
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// taint records the tags a change to (or removal of) o invalidates. Besides
// the object's own tag: a port or route change also taints its device
// (floods and route lookups consult the device, not every candidate).
//
// A Host object taints nothing: the simulation reads none (a host's
// interfaces and labels decide no flow; its liveness is setAlive's), so no
// flow carries a host's tag. Its controller rewrites it whenever the host's
// interfaces change — each VM or instance that comes or goes, and an agent
// that restarts (its fast-path devices now exist) — and such a change, had
// it counted, would retire the flows a restarted agent adopted from its
// predecessor (runReplica), which the kernel was forwarding.
func (r *replica) taint(k topology.Kind, id string, o topology.Object) {
	if k == topology.KindHost {
		return
	}
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

// remove drops a held object (from partition part; "": from all), tainting
// what it invalidates unless another partition still holds it; r.mu is held.
func (r *replica) removeLocked(k topology.Kind, id string, part string) {
	key := topology.ObjectKey{Kind: k, ID: id}
	if part != "" {
		parts := slices.DeleteFunc(r.partOf[key], func(p string) bool { return p == part })
		if len(parts) > 0 {
			r.partOf[key] = parts
			return
		}
	}
	if old := r.idx.Get(k, id); old != nil {
		r.taint(k, id, old)
		r.idx.Delete(k, id)
	}
	r.taint(k, id, nil)
	delete(r.partOf, key)
}

// put holds o (from partition part), tainting what it invalidates; r.mu is held.
func (r *replica) putLocked(k topology.Kind, id string, o topology.Object, part string) {
	if rt, ok := o.(*topology.Route); ok && r.partial && part != "" {
		key := topology.ObjectKey{Kind: k, ID: id}
		if f, ok := r.far[id]; ok {
			delete(r.far, id)
			r.farList = nil
			if f.rt.Revision != rt.Revision {
				r.taint(k, id, f.rt)
				r.taint(k, id, rt)
			}
			if r.farLocked(rt, part) {
				r.putFarLocked(rt, part)
				return
			}
			// Its own partition brings it: held in full from now on.
			r.idx.Put(rt)
			r.addPartLocked(key, f.part)
			r.addPartLocked(key, part)
			return
		}
		if r.idx.Get(k, id) == nil && r.farLocked(rt, part) {
			r.taint(k, id, rt)
			r.putFarLocked(rt, part)
			return
		}
	}
	if old := r.idx.Get(k, id); old != nil {
		if old.GetMeta().Revision == o.GetMeta().Revision && part != "" {
			// The same version from a second partition (a route and its
			// copy in its router's): nothing changes.
			r.addPartLocked(topology.ObjectKey{Kind: k, ID: id}, part)
			return
		}
		r.taint(k, id, old)
	}
	r.taint(k, id, o)
	r.idx.Put(o)
	if part != "" {
		r.addPartLocked(topology.ObjectKey{Kind: k, ID: id}, part)
	}
}

// farLocked is whether route rt, coming from partition part, is a far
// one: a copy whose own partition is not loaded, on a router with no uplink
// on this host. r.mu is held.
func (r *replica) farLocked(rt *topology.Route, part string) bool {
	own := nsdb.PartitionOf(rt)
	return own != part && !r.loaded[own] && !r.gwRouters[rt.RouterID]
}

// compactRoute is what replica.far keeps of rt: the fields a simulation
// reads, with the strings many routes share (router, next hop, type, label
// map) shared, and its id not a slice of the watched key.
func (r *replica) compactRoute(rt *topology.Route) *topology.Route {
	c := &topology.Route{Meta: topology.Meta{ID: strings.Clone(rt.ID), Revision: rt.Revision}, RouterID: unique.Make(rt.RouterID).Value(),
		Type: topology.RouteType(unique.Make(string(rt.Type)).Value()), SrcPrefix: rt.SrcPrefix, DstPrefix: rt.DstPrefix,
		NextHopPort: unique.Make(rt.NextHopPort).Value(), NextHopGateway: rt.NextHopGateway, InPort: unique.Make(rt.InPort).Value(),
		Weight: rt.Weight, Learned: rt.Learned}
	if p := nsdb.PartitionOf(rt); p != nsdb.CloudPartition {
		l := r.labels[p]
		if l == nil {
			l = map[string]string{topology.LabelVPC: p}
			r.labels[p] = l
		}
		c.Labels = l
	}
	return c
}

// putFarLocked holds rt, from partition part, as a far route (keyed by the
// compact copy's id: the watched key, which the decoded id is a slice of,
// is not kept). r.mu is held.
func (r *replica) putFarLocked(rt *topology.Route, part string) {
	c := r.compactRoute(rt)
	r.far[c.ID] = farRoute{c, part}
	r.farList = nil
}

// farRoutesLocked are far's routes, for the snapshot; r.mu is held.
func (r *replica) farRoutesLocked() []*topology.Route {
	if r.farList == nil && len(r.far) > 0 {
		r.farList = make([]*topology.Route, 0, len(r.far))
		for _, f := range r.far {
			r.farList = append(r.farList, f.rt)
		}
	}
	return r.farList
}

func (r *replica) addPartLocked(key topology.ObjectKey, part string) {
	if parts := r.partOf[key]; !slices.Contains(parts, part) {
		r.partOf[key] = append(parts, part)
	}
}

// handler feeds the whole topology (part "") or one partition.
func (r *replica) handler(part string) nsdb.Handler {
	return nsdb.Handler{
		Reset: func(kvs []nsdb.KV, rev int64) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if part == "" {
				r.idx = topology.NewIndex()
				for _, kv := range kvs {
					if _, _, o := nsdb.TopologyObject(kv); o != nil {
						r.idx.Put(o)
					}
				}
				r.all = true
			} else {
				r.dropLocked(part)
				for _, kv := range kvs {
					if k, id, o := nsdb.TopologyObject(kv); o != nil {
						r.putLocked(k, id, o, part)
					}
				}
				r.loaded[part] = true
			}
			r.rev = max(r.rev, rev)
			r.kickLocked()
		},
		Events: func(evs []nsdb.Event, rev int64) {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, e := range evs {
				k, id, o := nsdb.TopologyObject(e.KV)
				if f, ok := r.far[id]; ok && k == topology.KindRoute && (e.Delete || o == nil) && f.part == part {
					r.taint(k, id, f.rt)
					delete(r.far, id)
					r.farList = nil
					continue
				}
				if e.Delete || o == nil {
					if part == "" || slices.Contains(r.partOf[topology.ObjectKey{Kind: k, ID: id}], part) {
						r.removeLocked(k, id, part)
					}
					continue
				}
				r.putLocked(k, id, o, part)
			}
			r.rev = max(r.rev, rev)
			r.kickLocked()
		},
	}
}

// dropLocked removes every object held from partition part; r.mu is held.
// A route still held as the copy in its router's partition becomes a far
// one again.
func (r *replica) dropLocked(part string) {
	var kept []topology.ObjectKey
	for key, parts := range r.partOf {
		if slices.Contains(parts, part) {
			r.removeLocked(key.Kind, key.ID, part)
			if key.Kind == topology.KindRoute && len(r.partOf[key]) == 1 {
				kept = append(kept, key)
			}
		}
	}
	delete(r.loaded, part)
	for _, key := range kept {
		rt, _ := r.idx.Get(key.Kind, key.ID).(*topology.Route)
		if from := r.partOf[key][0]; rt != nil && r.farLocked(rt, from) {
			r.idx.Delete(key.Kind, key.ID)
			delete(r.partOf, key)
			r.putFarLocked(rt, from)
		}
	}
	for id, f := range r.far {
		if f.part == part {
			r.taint(topology.KindRoute, id, f.rt)
			delete(r.far, id)
			r.farList = nil
		}
	}
}

// partitionFollower is a copy of some of the store (the topology, the VPC
// mirror) that follows it partition by partition.
type partitionFollower interface {
	// followPartition follows one partition until ctx ends.
	followPartition(ctx context.Context, store *nsdb.Store, part string)
	// dropPartition forgets what it holds of a partition no longer followed.
	dropPartition(part string)
}

func (r *replica) followPartition(ctx context.Context, store *nsdb.Store, part string) {
	_ = store.WatchPartition(ctx, part, r.handler(part))
}

func (r *replica) dropPartition(part string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dropLocked(part)
	r.kickLocked()
}

// follow feeds the replica (and with it the other followers) from the store
// until ctx ends: the whole topology, or (partial) the cloud partition and
// those of the VPCs of the ports bound to host; the replica also follows
// the partitions its simulations need and, on a gateway host, those routed
// through it (the other followers do not: they serve this host's ports).
func (r *replica) follow(ctx context.Context, store *nsdb.Store, host string, partial bool, others ...partitionFollower) {
	if !partial {
		_ = store.WatchTopology(ctx, r.handler(""))
		return
	}
	r.mu.Lock()
	r.partial = true
	r.mu.Unlock()
	followers := append([]partitionFollower{r}, others...)
	var wg sync.WaitGroup
	defer wg.Wait()
	gotBindings := false
	wg.Go(func() {
		_ = store.WatchHostBindings(ctx, host, func(bound map[string]string) {
			parts := map[string]bool{}
			for _, p := range bound {
				parts[p] = true
			}
			r.mu.Lock()
			r.bound = parts
			r.kickLocked() // a partition followed for flows may now be bound
			r.mu.Unlock()
			r.poke()
		})
	})
	type running struct {
		stop context.CancelFunc
		done sync.WaitGroup
	}
	type fkey struct {
		f    int // index in followers
		part string
	}
	following := map[fkey]*running{}
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		select {
		case <-ctx.Done():
			for _, f := range following {
				f.stop()
				f.done.Wait()
			}
			return
		case <-r.want:
		case <-expiry.C:
		}
		r.mu.Lock()
		if r.bound != nil {
			gotBindings = true
		}
		base := map[string]bool{nsdb.CloudPartition: true}
		for p := range r.bound {
			base[p] = true
		}
		extra := maps.Clone(r.gwParts)
		r.mu.Unlock()
		if !gotBindings {
			continue // the first set of bindings decides what to load first
		}
		if extra == nil {
			extra = map[string]bool{}
		}
		next := r.expireNeed(time.Now().UnixNano(), extra)
		expiry.Reset(next)
		wanted := func(i int, p string) bool { return base[p] || (i == 0 && extra[p]) }
		for i, fl := range followers {
			for _, set := range []map[string]bool{base, extra} {
				for p := range set {
					k := fkey{i, p}
					if _, ok := following[k]; ok || !wanted(i, p) {
						continue
					}
					pctx, stop := context.WithCancel(ctx)
					f := &running{stop: stop}
					following[k] = f
					f.done.Go(func() { fl.followPartition(pctx, store, p) })
				}
			}
		}
		for k, f := range following {
			if wanted(k.f, k.part) {
				continue
			}
			// Narrow: the last port of that VPC left this host, or no flow
			// can need it any more.
			f.stop()
			f.done.Wait()
			delete(following, k)
			followers[k.f].dropPartition(k.part)
		}
	}
}

// expireNeed forgets the partitions no longer needed at now, adds those
// still needed to extra, and returns how long until the next one expires.
func (r *replica) expireNeed(now int64, extra map[string]bool) time.Duration {
	r.nmu.Lock()
	defer r.nmu.Unlock()
	next := time.Hour
	for p, until := range r.need {
		if until <= now {
			delete(r.need, p)
			continue
		}
		extra[p] = true
		next = min(next, time.Duration(until-now))
	}
	return next
}

// elsewhereLocked is the snapshot option of a partial replica: a route of a
// partition not loaded leads elsewhere. r.mu is held.
func (r *replica) elsewhereLocked() sim.SnapshotOption {
	loaded := maps.Clone(r.loaded)
	return sim.WithElsewhere(func(rt *topology.Route) string {
		if p := nsdb.PartitionOf(rt); !loaded[p] {
			return p
		}
		return ""
	})
}

// doorsLocked are the tags of the routes into the partitions followed for
// flows only (neither bound here nor routed through this host): a flow
// carrying one keeps its partition followed until the flow expires. It
// also recomputes the partitions routed through this host's uplinks and
// asks follow to follow them. r.mu is held.
func (r *replica) doorsLocked(host string) map[flow.Tag]string {
	gw := map[string]bool{}
	gwRouters := map[string]bool{}
	for _, u := range uplinksOf(r.idx, host) {
		if p, _ := r.idx.Get(topology.KindPort, u.port).(*topology.Port); p != nil {
			gwRouters[p.DeviceID] = true
		}
	}
	if !maps.Equal(gwRouters, r.gwRouters) {
		// The far routes of a router with an uplink here come into idx.
		r.gwRouters = gwRouters
		for id, f := range r.far {
			if gwRouters[f.rt.RouterID] {
				delete(r.far, id)
				r.farList = nil
				r.idx.Put(f.rt)
				r.addPartLocked(topology.Key(f.rt), f.part)
			}
		}
	}
	for _, u := range uplinksOf(r.idx, host) {
		p, _ := r.idx.Get(topology.KindPort, u.port).(*topology.Port)
		if p == nil {
			continue
		}
		for _, ref := range r.idx.Referrers(topology.KindRouter, p.DeviceID) {
			if ref.Kind != topology.KindRoute {
				continue
			}
			if rt, _ := r.idx.Get(ref.Kind, ref.ID).(*topology.Route); rt != nil {
				gw[nsdb.PartitionOf(rt)] = true
			}
		}
	}
	if !maps.Equal(gw, r.gwParts) {
		r.gwParts = gw
		r.poke()
	}
	flowOnly := false
	for p := range r.loaded {
		flowOnly = flowOnly || !(r.bound[p] || gw[p] || p == nsdb.CloudPartition)
	}
	if !flowOnly {
		return nil
	}
	var doors map[flow.Tag]string
	for _, o := range r.idx.List(topology.KindRoute) {
		rt := o.(*topology.Route)
		p := nsdb.PartitionOf(rt)
		if !r.loaded[p] || r.bound[p] || gw[p] || len(r.partOf[topology.Key(rt)]) < 2 {
			continue
		}
		if doors == nil {
			doors = map[flow.Tag]string{}
		}
		doors[flow.TagOf(string(topology.KindRoute), rt.ID)] = p
	}
	return doors
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
	for h, was := range before {
		if isDown(h) != was {
			r.flapped++
		}
	}
	for _, o := range r.idx.List(topology.KindPort) {
		p := o.(*topology.Port)
		if p.HostID == "" || before[p.HostID] == isDown(p.HostID) {
			continue
		}
		r.changed[flow.TagOf(string(topology.KindPort), p.ID)] = struct{}{}
		r.changed[flow.TagOf(string(p.DeviceKind), p.DeviceID)] = struct{}{}
	}
	r.kickLocked()
	r.mu.Unlock()
}

// runReplica publishes a new view after every burst of changes to the
// replica (which follow, started earlier, feeds): events arriving while a snapshot builds are coalesced into the
// next build, not built one by one.
func (a *Agent) runReplica(ctx context.Context) {
	r := a.rep
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
		var opts []sim.SnapshotOption
		if down := r.downFunc(a.hostID); down != nil {
			opts = append(opts, sim.WithHostsDown(down))
		}
		var doors map[flow.Tag]string
		if r.partial {
			opts = append(opts, r.elsewhereLocked())
			doors = r.doorsLocked(a.hostID)
			opts = append(opts, sim.WithRoutes(r.farRoutesLocked()))
		}
		if prev := a.view.Load(); prev != nil {
			// The replica's objects are replaced, never modified: what
			// the last snapshot compiled from one still there is reused.
			opts = append(opts, sim.WithPrevious(prev.snap))
		}
		v := &view{snap: sim.NewSnapshot(r.idx, opts...), peers: map[string]netip.AddrPort{}, want: map[string]binding{}, keyOf: map[string]uint32{},
			svc: map[string]*portSvc{}, doors: doors, loaded: maps.Clone(r.loaded)}
		for _, o := range r.idx.List(topology.KindTunnelZone) {
			for _, m := range o.(*topology.TunnelZone).Members {
				if _, ok := v.peers[m.HostID]; !ok && m.Address.IsValid() {
					v.peers[m.HostID] = netip.AddrPortFrom(m.Address, a.cfg.TunnelPort)
				}
			}
		}
		bridges := map[string]*bridgeSvc{}
		for _, ref := range r.idx.Referrers(topology.KindHost, a.hostID) {
			if ref.Kind != topology.KindPort {
				continue
			}
			p := r.idx.Get(topology.KindPort, ref.ID).(*topology.Port)
			if p.Interface != "" {
				v.want[p.ID] = binding{iface: p.Interface, key: p.TunnelKey}
				v.keyOf[p.ID] = p.TunnelKey
				v.svc[p.ID] = servicesOf(r.idx, p, a.overlayMTU(), bridges)
			}
		}
		v.live = livenessPeers(r.idx, a.hostID, v.peers)
		gw, uplinks := wantGateway(r.idx, a.hostID), uplinksOf(r.idx, a.hostID)
		// A partial replica sets the gateway role once it holds every
		// partition routed through this host's uplinks: a gateway that
		// advertised (or came back from a restart) before would draw the
		// outside's traffic into partitions it does not hold yet and park
		// it, or lose it past the park's bound.
		gwReady := true
		for p := range r.gwParts {
			gwReady = gwReady && r.loaded[p]
		}
		changed, all, flapped := r.changed, r.all, r.flapped
		r.changed, r.all, r.flapped = map[flow.Tag]struct{}{}, false, 0
		rev := r.rev
		r.mu.Unlock()

		if prev := a.view.Load(); prev != nil {
			// A flow decided to tunnel to a host holds its address in
			// the kernel: a host whose address changed is a change.
			peersChanged(prev.peers, v.peers, changed)
		}
		gen++
		v.gen = gen
		a.view.Store(v)
		n := a.flows.Invalidate(changed, all, gen)
		if a.kernel != nil {
			if gen > 1 && (all || len(changed) > 0) {
				// A previous agent's flows were decided on an older
				// topology: past its first view, a change retires them —
				// once this agent holds the connection state its peers
				// send it (liveness.synced), which the flows replacing
				// them may need (housekeeping retires them then).
				// hosts_liveness: how many hosts went down or came back
				// (a restart that outlasted the lease is one).
				a.kernel.retireAdopted(a.live.synced(), "changed", len(changed), "all", all, "hosts_liveness", flapped)
			}
			a.kernel.reconcilePorts(v.want)
		}
		a.m.snapshots.Inc()
		a.log.Debug("agent: snapshot", "rev", rev, "changed", len(changed), "flows_removed", n, "took", time.Since(start))
		a.reconcile(ctx)
		a.live.ready.Store(true) // its ports are plugged: it forwards
		if gwReady {
			a.setGateway(gw, uplinks)
		}
		a.resumeLoaded(v)
	}
}

// Replica is an agent's topology replica without the rest of the agent: it
// follows the store as the agent of a host would and compiles the simulation
// snapshot after every burst of changes. bench/scale runs hundreds of them
// in one process.
type Replica struct {
	r       *replica
	store   *nsdb.Store
	host    string
	partial bool
}

// NewReplica makes the replica of host's agent (partial: as with
// Config.PartialReplica).
func NewReplica(store *nsdb.Store, host string, partial bool) *Replica {
	return &Replica{r: newReplica(), store: store, host: host, partial: partial}
}

// Run follows the store and builds snapshots until ctx ends; built, when
// not nil, gets the revision each build reflects.
func (x *Replica) Run(ctx context.Context, built func(rev int64)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { x.r.follow(ctx, x.store, x.host, x.partial) })
	var snap *sim.Snapshot
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.r.dirty:
		}
		x.r.mu.Lock()
		opts := []sim.SnapshotOption{sim.WithPrevious(snap)}
		if x.r.partial {
			opts = append(opts, x.r.elsewhereLocked())
			x.r.doorsLocked(x.host)
			opts = append(opts, sim.WithRoutes(x.r.farRoutesLocked()))
		}
		snap = sim.NewSnapshot(x.r.idx, opts...)
		x.r.changed, x.r.all = map[flow.Tag]struct{}{}, false
		rev := x.r.rev
		x.r.mu.Unlock()
		_ = snap // what an agent would publish; building it is the cost measured
		if built != nil {
			built(rev)
		}
	}
}

// Objects is how many objects the replica holds.
func (x *Replica) Objects() int {
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	n := len(x.r.far)
	for _, k := range topology.Kinds {
		n += x.r.idx.Len(k)
	}
	return n
}

// WaitUntil blocks until cond holds on what the replica holds, or ctx ends.
func (x *Replica) WaitUntil(ctx context.Context, cond func(topology.Reader) bool) error {
	return x.r.waitUntil(ctx, cond)
}
