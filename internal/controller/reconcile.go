package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// partition is the controller's memory of one partition's desired objects
// (translate.Partition: "" for the cloud, else a VPC id): their keys, so
// that an object the partition no longer wants is deleted even once the
// store no longer shows it as the partition's, and what the translator
// skipped, so that each skip is logged once.
type partition struct {
	want  map[topology.ObjectKey]struct{}
	skips []translate.Skip
}

// errStale means the store changed between the diff and the write (a
// revision guard failed, an object appeared): diff again.
var errStale = errors.New("the topology changed under the diff")

// staleRetries bounds the re-diffs of one round before it gives up and
// falls back to a full resync.
const staleRetries = 3

func (c *Controller) reconcile(ctx context.Context) error {
	if c.full {
		return c.fullResync(ctx)
	}
	// This watch can be ahead of the store's cache, which the diff reads:
	// let the cache catch up with another writer's change first.
	if c.store.Revision() < c.topoSeen {
		if err := c.store.Sync(ctx); err != nil {
			return err
		}
	}
	parts := c.dirty
	c.dirty = idset{}
	if err := c.sync(ctx, parts); err != nil {
		for p := range parts {
			c.dirty.add(p)
		}
		return err
	}
	return nil
}

// fullResync takes a fresh snapshot of the owned topology, restarts the
// topology watch after it, and reconciles every partition.
func (c *Controller) fullResync(ctx context.Context) error {
	// Every topology write committed before now is in the cache after Sync.
	if err := c.store.Sync(ctx); err != nil {
		return err
	}
	rev := c.store.Revision()
	c.present = map[string]map[topology.ObjectKey]struct{}{}
	c.presentPart = map[topology.ObjectKey]string{}
	c.store.Read(func(r topology.Reader) {
		for _, k := range topology.Kinds {
			for _, o := range r.List(k) {
				if translate.Owned(o) {
					c.setPresent(topology.Key(o), translate.Partition(o))
				}
			}
		}
	})
	for r := range c.ownRevs {
		if r <= rev {
			delete(c.ownRevs, r)
		}
	}
	c.startTopoWatch(ctx, rev+1)

	parts := c.m.vpcIDs()
	parts.add("")
	for p := range c.present {
		parts.add(p)
	}
	for p := range c.parts {
		parts.add(p)
	}
	if err := c.sync(ctx, parts); err != nil {
		return err
	}
	c.full = false
	c.dirty = idset{}
	c.count(func(s *Stats) { s.Resyncs++ })
	c.log.Debug("full resync done", "partitions", len(parts), "vpc_revision", c.m.rev)
	return nil
}

// sync translates the given partitions and makes the store match them.
// The translations, and the comparisons of their objects with the store's,
// run on every core (parallel): a partition's translation reads only its
// own sub-state, gathered beforehand by the loop.
func (c *Controller) sync(ctx context.Context, parts idset) error {
	ids := make([]string, 0, len(parts))
	for p := range parts {
		ids = append(ids, p)
	}
	slices.Sort(ids) // the cloud ("") first
	in := make([]func() *translate.Desired, len(ids))
	for i, p := range ids {
		in[i] = c.translator(p)
	}
	out := make([]*translate.Desired, len(ids))
	parallel(len(ids), func(i int) { out[i] = in[i]() })
	desired := make(map[string][]topology.Object, len(ids))
	for i, p := range ids {
		c.record(p, out[i])
		desired[p] = out[i].Objects
	}
	c.count(func(s *Stats) { s.Translated += int64(len(ids)) })
	for attempt := 0; ; attempt++ {
		err := c.diffAndApply(ctx, ids, desired)
		if !errors.Is(err, errStale) || attempt+1 >= staleRetries {
			return err
		}
		c.log.Debug("diff was stale, diffing again", "err", err)
	}
}

// parallel runs f(0) … f(n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

// translator gathers what partition p's translation reads (the loop's
// state: the mirror, the hosts, the learned routes) and returns the
// translation itself, which touches nothing of the controller's and may run
// on another goroutine.
func (c *Controller) translator(p string) func() *translate.Desired {
	if p == "" {
		hosts := c.hosts()
		cloud := c.cloud
		learned := c.learned
		return func() *translate.Desired {
			d := translate.TranslateCloud(cloud, hosts)
			addLearned(cloud, d, learned)
			return d
		}
	}
	st := c.m.subState(p)
	cloud := c.cloud
	return func() *translate.Desired { return translate.TranslateVPC(st, cloud, p) }
}

// record notes partition p's new translation: its keys as wanted, what the
// translator skipped (logged when it changes) and, for the cloud, how the
// gateways resolved.
func (c *Controller) record(p string, d *translate.Desired) {
	if p == "" {
		c.setGateways(d.Gateways)
	}
	old := c.parts[p]
	if old == nil {
		old = &partition{}
	}
	for k := range old.want {
		if c.wantedBy[k] == p {
			delete(c.wantedBy, k)
		}
	}
	for _, o := range d.Objects {
		c.wantedBy[topology.Key(o)] = p
	}
	if !slices.Equal(old.skips, d.Skipped) {
		for _, s := range d.Skipped {
			c.log.Warn("VPC object not realized", "vpc_id", p, "object", s.Object, "reason", s.Reason)
		}
		n := len(d.Skipped) - len(old.skips)
		c.count(func(s *Stats) { s.Skipped += n })
		old.skips = d.Skipped
	}
	c.parts[p] = old
}

// op is one write of a plan.
type op struct {
	kind opKind
	obj  topology.Object // desired (create), with the guard revision (update), as stored (delete)
}

type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opDelete
)

// diffAndApply diffs each partition against the store's cache, then writes
// the changes: the cloud's creates and updates first (VPC objects link to
// the transit bridge and route via the edge), then each VPC's creates,
// updates and deletes, then the cloud's deletes.
func (c *Controller) diffAndApply(ctx context.Context, ids []string, desired map[string][]topology.Object) error {
	// Comparing every desired object with the store's is most of a
	// resync's work when little changed: on every core.
	cmps := make([]comparison, len(ids))
	parallel(len(ids), func(i int) { cmps[i] = c.compare(desired[ids[i]]) })
	var groups [][]op
	var cloudDeletes []op
	for i, p := range ids {
		creates, updates, deletes, unsafe := c.diff(p, cmps[i])
		if len(unsafe) > 0 {
			c.count(func(s *Stats) { s.Refused += int64(len(unsafe)) })
		}
		var g []op
		for _, o := range creates {
			g = append(g, op{opCreate, o})
		}
		for _, o := range updates {
			g = append(g, op{opUpdate, o})
		}
		for _, o := range deletes {
			if p == "" {
				cloudDeletes = append(cloudDeletes, op{opDelete, o})
			} else {
				g = append(g, op{opDelete, o})
			}
		}
		if len(g) > 0 {
			groups = append(groups, g)
		}
		if len(desired[p]) == 0 && len(c.present[p]) == 0 {
			c.forget(p)
		}
	}
	if len(cloudDeletes) > 0 {
		groups = append(groups, cloudDeletes)
	}
	for _, chunk := range chunks(groups, c.chunk) {
		if err := c.apply(ctx, chunk); err != nil {
			return err
		}
	}
	return nil
}

// forget drops a partition that has nothing left, wanted or stored.
func (c *Controller) forget(p string) {
	if p == "" {
		return
	}
	delete(c.parts, p)
}

// comparison is a partition's desired objects compared with the store's
// cache: their keys, and those that differ from what is stored (cur: the
// stored object, nil when absent or not the controller's).
type comparison struct {
	want      map[topology.ObjectKey]struct{}
	dWant     []topology.Object
	dCur      []topology.Object
	unchanged int
}

// compare compares desired objects with the store's cache. It reads only
// the cache and desired, so partitions are compared in parallel.
func (c *Controller) compare(desired []topology.Object) comparison {
	cmp := comparison{want: make(map[topology.ObjectKey]struct{}, len(desired))}
	c.store.Read(func(r topology.Reader) {
		for _, d := range desired {
			k := topology.Key(d)
			cmp.want[k] = struct{}{}
			switch cur := r.Get(k.Kind, k.ID); {
			case cur == nil || !translate.Owned(cur):
				cmp.dWant = append(cmp.dWant, d)
			case translate.Equal(d, cur):
				cmp.unchanged++
			default:
				cmp.dWant = append(cmp.dWant, d)
				cmp.dCur = append(cmp.dCur, cur)
			}
		}
	})
	return cmp
}

// diff turns partition p's comparison into writes in dependency order, and
// returns the deletes it declined because their cascade would take objects
// the controller does not own.
func (c *Controller) diff(p string, cmp comparison) (creates, updates, deletes []topology.Object, unsafe []topology.ObjectKey) {
	part := c.parts[p]
	if part == nil {
		part = &partition{} // forgotten by an earlier try of this round
	}
	want := cmp.want
	dCur := cmp.dCur
	c.store.Read(func(r topology.Reader) {
		// What the partition holds and no longer wants (unless another
		// partition now wants it: an elastic IP's edge route moving with
		// its address to another VPC is updated by that VPC).
		gone := func(k topology.ObjectKey) {
			if _, ok := want[k]; ok {
				return
			}
			if _, ok := c.wantedBy[k]; ok {
				return
			}
			cur := r.Get(k.Kind, k.ID)
			if cur == nil || !translate.Owned(cur) || translate.Partition(cur) != p {
				return
			}
			if plan, err := topology.PlanDelete(r, k.Kind, k.ID); err == nil && !ownsAll(r, plan) {
				unsafe = append(unsafe, k)
				c.log.Warn("not deleting: the cascade would take objects the controller does not own", "object", k.String())
				return
			}
			dCur = append(dCur, cur)
		}
		for k := range c.present[p] {
			gone(k)
		}
		for k := range part.want {
			if _, present := c.present[p][k]; !present {
				gone(k)
			}
		}
	})
	part.want = want
	creates, updates, deletes = translate.Diff(cmp.dWant, dCur)
	return creates, updates, deletes, unsafe
}

// ownsAll reports whether a delete plan only deletes and updates objects
// the translator owns.
func ownsAll(r topology.Reader, plan *topology.DeletePlan) bool {
	for _, k := range plan.Deletes {
		if o := r.Get(k.Kind, k.ID); o != nil && !translate.Owned(o) {
			return false
		}
	}
	for _, u := range plan.Updates {
		if !translate.Owned(u) {
			return false
		}
	}
	return true
}

// chunks splits groups of writes (one group per partition, each in a valid
// order) into transactions of at most max writes: whole groups together
// while they fit, a larger group cut into consecutive pieces. Every prefix
// of a group is valid on its own: creates come in dependency order (a
// linked port is created unlinked until its peer exists), updates after
// every create, deletes last.
func chunks(groups [][]op, max int) [][]op {
	var out [][]op
	var cur []op
	for _, g := range groups {
		if len(cur) > 0 && len(cur)+len(g) > max {
			out = append(out, cur)
			cur = nil
		}
		for len(g) > max {
			out = append(out, g[:max])
			g = g[max:]
		}
		cur = append(cur, g...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// apply commits one chunk in one store transaction. Writes the store
// rejects on their merits (an operator's object holds the id, a reference
// the controller could not realize) are refused and logged, not retried:
// they would fail the same way until the state changes. A write that
// finds the store changed since the diff fails the chunk with errStale.
func (c *Controller) apply(ctx context.Context, ops []op) error {
	var refused []string
	var nc, nu, nd int64
	rev, err := c.txn(ctx, func(tx *nsdb.Tx) error {
		refused, nc, nu, nd = nil, 0, 0, 0
		refuse := func(o topology.Object, err error) error {
			var fe *topology.FieldError
			var ce *topology.ConflictError
			if errors.As(err, &fe) || errors.As(err, &ce) {
				refused = append(refused, fmt.Sprintf("%s (%s): %v", topology.Key(o), o.GetMeta().Name, err))
				return nil
			}
			return err
		}
		for _, w := range ops {
			o := w.obj
			k := topology.Key(o)
			switch w.kind {
			case opCreate:
				if ex := tx.Get(k.Kind, k.ID); ex != nil {
					if translate.Owned(ex) {
						return fmt.Errorf("%s appeared: %w", k, errStale)
					}
					refused = append(refused, fmt.Sprintf("%s (%s): an object the controller does not own has its id", k, o.GetMeta().Name))
					continue
				}
				if p, ok := o.(*topology.Port); ok && p.PeerID != "" && tx.Get(topology.KindPort, p.PeerID) == nil {
					// Created unlinked; creating the peer links both.
					q := *p
					q.PeerID = ""
					o = &q
				}
				if _, err := tx.Create(o); err != nil {
					if err := refuse(o, err); err != nil {
						return err
					}
					continue
				}
				nc++
			case opUpdate:
				if _, err := tx.Update(o); err != nil {
					var re *nsdb.RevisionError
					if errors.As(err, &re) || errors.Is(err, nsdb.ErrNotFound) {
						return fmt.Errorf("update %s: %v: %w", k, err, errStale)
					}
					if err := refuse(o, err); err != nil {
						return err
					}
					continue
				}
				nu++
			case opDelete:
				cur := tx.Get(k.Kind, k.ID)
				if cur == nil {
					continue // went with an earlier cascade
				}
				if _, err := tx.Delete(k.Kind, k.ID, 0); err != nil {
					if err := refuse(o, err); err != nil {
						return err
					}
					continue
				}
				nd++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range refused {
		c.log.Warn("write refused", "object", r)
	}
	if nc+nu+nd > 0 {
		c.ownRevs[rev] = true
	}
	c.count(func(s *Stats) {
		if nc+nu+nd > 0 {
			s.Txns++
		}
		s.Creates += nc
		s.Updates += nu
		s.Deletes += nd
		s.Refused += int64(len(refused))
	})
	return nil
}
