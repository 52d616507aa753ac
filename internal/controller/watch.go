package controller

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// event is what a watcher hands the loop.
type event struct {
	// From the VPC watch: a complete list (reset) or changes, at rev.
	vpc        bool
	vpcReset   bool
	vpcChanges []vpcChange
	vpcRev     int64

	// From the topology watch of generation gen: changes at rev, or
	// broken (the watch ended; the loop resyncs).
	topo        bool
	gen         int
	topoChanges []topoChange
	topoRev     int64
	broken      error

	// From the learned-routes watch (bgp.go): every host's routes
	// (reset), or the hosts whose routes changed (nil: withdrawn).
	bgp       bool
	bgpReset  bool
	bgpRoutes map[string][]translate.LearnedRoute
}

// topoChange is one topology key that changed: whether it now carries the
// owner label, and its partition if so.
type topoChange struct {
	key   topology.ObjectKey
	del   bool
	owned bool
	part  string
}

// watchVPC follows the VPC objects (list, then watch; a re-list after a
// compaction comes as a reset) until ctx is done. It watches vpc/ and
// vpc-seq (nsdb.Store.WatchVPC), so the mirror's revision is that of the
// last VPC write. Values are decoded here, off the loop.
func (c *Controller) watchVPC(ctx context.Context) {
	pfx := c.store.Prefix() + nsdb.VPCPrefix
	decode := func(kv nsdb.KV, del bool) (vpcChange, bool) {
		rel, ok := strings.CutPrefix(kv.Key, pfx)
		if !ok {
			return vpcChange{}, false // vpc-seq
		}
		coll, id, ok := parseVPCKey(rel)
		if !ok {
			c.log.Error("ignoring a malformed VPC key", "key", kv.Key)
			return vpcChange{}, false
		}
		if coll == collKeyPairs || coll == collSubnetPools {
			return vpcChange{}, false
		}
		ch := vpcChange{coll: coll, id: id}
		if del {
			return ch, true
		}
		obj, err := decodeVPC(coll, kv.Value)
		if err != nil {
			// A value this version cannot read must not stop the others;
			// the object is treated as absent until it is rewritten.
			c.log.Error("ignoring an undecodable VPC object", "key", kv.Key, "err", err)
			return ch, true
		}
		ch.obj = obj
		return ch, true
	}
	h := nsdb.Handler{
		Reset: func(kvs []nsdb.KV, rev int64) {
			// A whole cloud's objects at start: decoded on every core.
			chs := make([]vpcChange, len(kvs))
			parallel(len(kvs), func(i int) { chs[i], _ = decode(kvs[i], false) })
			e := event{vpc: true, vpcReset: true, vpcRev: rev}
			for _, ch := range chs {
				if ch.obj != nil {
					e.vpcChanges = append(e.vpcChanges, ch)
				}
			}
			c.q.push(e)
		},
		Events: func(evs []nsdb.Event, rev int64) {
			e := event{vpc: true, vpcRev: rev}
			for _, ev := range evs {
				if ch, ok := decode(ev.KV, ev.Delete); ok {
					e.vpcChanges = append(e.vpcChanges, ch)
				}
			}
			c.q.push(e)
		},
	}
	_ = c.store.WatchVPC(ctx, h) // returns when ctx is done
}

// startTopoWatch (re)starts the topology watch from revision from, as a
// new generation: events of older generations are dropped. The loop calls
// it at each full resync, right after taking its snapshot of the owned
// objects at a revision of at least from-1, so nothing is missed; changes
// replayed from before the snapshot converge on the same state.
func (c *Controller) startTopoWatch(ctx context.Context, from int64) {
	if c.topoCancel != nil {
		c.topoCancel()
	}
	c.topoGen++
	gen := c.topoGen
	wctx, cancel := context.WithCancel(ctx)
	c.topoCancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := c.watchTopo(wctx, from, gen)
		if wctx.Err() == nil {
			c.q.push(event{topo: true, gen: gen, broken: err})
		}
	}()
}

// watchTopo watches topo/ from revision from. It does not list: the loop
// takes its snapshot from the store's cache. A compaction or a lost watch
// ends it with an error.
func (c *Controller) watchTopo(ctx context.Context, from int64, gen int) error {
	// One revision at a time, so the loop can tell its own commits apart.
	return c.store.WatchTopologyFrom(ctx, from, func(rev int64, evs []nsdb.TopologyEvent) {
		e := event{topo: true, gen: gen, topoRev: rev}
		for _, ev := range evs {
			ch := topoChange{key: ev.Key, del: ev.Delete}
			if !ch.del {
				var m struct {
					Labels map[string]string `json:"labels"`
				}
				if json.Unmarshal(ev.Value, &m) == nil && m.Labels[translate.LabelOwner] == translate.OwnerValue {
					ch.owned, ch.part = true, m.Labels[translate.LabelVPC]
				}
			}
			e.topoChanges = append(e.topoChanges, ch)
		}
		c.q.push(e)
	})
}

// handle applies one event to the loop's state.
func (c *Controller) handle(e event) {
	switch {
	case e.bgp:
		c.handleBGP(e)
	case e.vpc && e.vpcReset:
		c.m = newMirror()
		for _, ch := range e.vpcChanges {
			c.m.apply(ch, idset{})
		}
		c.m.rev = e.vpcRev
		c.vpcReady = true
		c.full = true
	case e.vpc:
		for _, ch := range e.vpcChanges {
			c.m.apply(ch, c.dirty)
		}
		c.m.rev = max(c.m.rev, e.vpcRev)
	case e.topo && e.gen != c.topoGen:
		// from a watch that a resync replaced
	case e.topo && e.broken != nil:
		c.log.Info("topology watch ended, resyncing", "err", e.broken)
		c.full = true
	case e.topo:
		own := c.ownRevs[e.topoRev]
		delete(c.ownRevs, e.topoRev)
		for _, ch := range e.topoChanges {
			old, had := c.presentPart[ch.key]
			c.unpresent(ch.key)
			if !ch.del && ch.owned {
				c.setPresent(ch.key, ch.part)
			}
			// The cloud partition reads the hosts its gateways name: a
			// host registering, renamed or deleted may bind, move or
			// unbind an uplink (whoever wrote the host, this controller
			// included).
			if ch.key.Kind == topology.KindHost && len(c.cloud.Gateways) > 0 {
				c.topoSeen = max(c.topoSeen, e.topoRev)
				c.dirty.add("")
			}
			if own {
				continue
			}
			c.topoSeen = max(c.topoSeen, e.topoRev)
			// Someone else changed the topology: every partition that
			// owns, owned or wants the object looks again.
			if had {
				c.dirty.add(old)
			}
			if ch.owned {
				c.dirty.add(ch.part)
			}
			if p, ok := c.wantedBy[ch.key]; ok {
				c.dirty.add(p)
			}
		}
	}
}

func (c *Controller) setPresent(k topology.ObjectKey, part string) {
	s := c.present[part]
	if s == nil {
		s = map[topology.ObjectKey]struct{}{}
		c.present[part] = s
	}
	s[k] = struct{}{}
	c.presentPart[k] = part
}

func (c *Controller) unpresent(k topology.ObjectKey) {
	p, ok := c.presentPart[k]
	if !ok {
		return
	}
	delete(c.present[p], k)
	if len(c.present[p]) == 0 {
		delete(c.present, p)
	}
	delete(c.presentPart, k)
}
