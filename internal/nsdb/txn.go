package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxAttempts bounds how often Txn re-runs f because another process
// committed first. Each retry starts from a fresher view, so running out
// means sustained contention, reported as a conflict.
const maxAttempts = 50

// cacheLagTimeout bounds the wait for the cache to show a commit.
const cacheLagTimeout = 30 * time.Second

// Tx is a set of changes being prepared inside Store.Txn. Each call checks
// integrity against the view as changed so far. A Tx is only valid inside
// the function given to Txn, and that function must not call the Store's
// own methods (the Tx holds the cache's read lock).
type Tx struct {
	c       *cache
	changes map[topology.ObjectKey]topology.Object // nil value: deleted
	order   []topology.ObjectKey                   // first-change order, for a stable commit
	// refs is the reverse reference index of the changed objects (target →
	// referrers among changes), so Referrers costs the answer, not a scan
	// of every change: a controller resync writes hundreds per Tx.
	refs    map[topology.ObjectKey]map[topology.ObjectKey]struct{}
	newKeys map[uint32]bool // tunnel keys given out in this Tx
	freed   map[uint32]bool // tunnel keys of ports deleted in this Tx
	nextKey uint32
}

func newTx(c *cache) *Tx {
	return &Tx{c: c, changes: map[topology.ObjectKey]topology.Object{}, refs: map[topology.ObjectKey]map[topology.ObjectKey]struct{}{}, newKeys: map[uint32]bool{}, freed: map[uint32]bool{}, nextKey: c.maxKey}
}

// view is the topology.Reader of the cache with the Tx's changes layered on
// top. It returns the stored objects themselves (no copies): it is only for
// topology.Check and PlanDelete, which do not modify what they read.
type view struct{ tx *Tx }

func (v view) Get(k topology.Kind, id string) topology.Object {
	if o, ok := v.tx.changes[topology.ObjectKey{Kind: k, ID: id}]; ok {
		return o
	}
	return v.tx.c.idx.Get(k, id)
}

func (v view) Referrers(k topology.Kind, id string) []topology.ObjectKey {
	var out []topology.ObjectKey
	for _, r := range v.tx.c.idx.Referrers(k, id) {
		if _, changed := v.tx.changes[r]; !changed {
			out = append(out, r)
		}
	}
	for key := range v.tx.refs[topology.ObjectKey{Kind: k, ID: id}] {
		out = append(out, key)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (v view) List(k topology.Kind) []topology.Object {
	base := v.tx.c.idx.List(k)
	out := make([]topology.Object, 0, len(base))
	for _, o := range base {
		if _, changed := v.tx.changes[topology.Key(o)]; !changed {
			out = append(out, o)
		}
	}
	for key, o := range v.tx.changes {
		if key.Kind == k && o != nil {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetMeta().ID < out[j].GetMeta().ID })
	return out
}

// Get returns a copy of the object as the Tx sees it, or nil.
func (tx *Tx) Get(k topology.Kind, id string) topology.Object {
	if o := (view{tx}).Get(k, id); o != nil {
		return topology.Clone(o)
	}
	return nil
}

// List returns copies of every object of kind k as the Tx sees them, sorted by id.
func (tx *Tx) List(k topology.Kind) []topology.Object {
	objs := view{tx}.List(k)
	for i, o := range objs {
		objs[i] = topology.Clone(o)
	}
	return objs
}

func (tx *Tx) set(key topology.ObjectKey, o topology.Object) {
	old, ok := tx.changes[key]
	if !ok {
		tx.order = append(tx.order, key)
	}
	if old != nil {
		for _, r := range old.Refs() {
			t := topology.ObjectKey{Kind: r.Kind, ID: r.ID}
			delete(tx.refs[t], key)
			if len(tx.refs[t]) == 0 {
				delete(tx.refs, t)
			}
		}
	}
	tx.changes[key] = o
	if o != nil {
		for _, r := range o.Refs() {
			t := topology.ObjectKey{Kind: r.Kind, ID: r.ID}
			if tx.refs[t] == nil {
				tx.refs[t] = map[topology.ObjectKey]struct{}{}
			}
			tx.refs[t][key] = struct{}{}
		}
	}
}

// Create adds o (a copy of it is kept: the caller's value is not retained).
// It assigns an id when o has none and, to a port, a fresh tunnel key. A port
// created with a peer_id is linked: the peer is updated to point back.
func (tx *Tx) Create(o topology.Object) (topology.Object, error) {
	if o == nil || topology.New(o.Kind()) == nil {
		return nil, &topology.FieldError{Reason: "unknown object kind"}
	}
	o = topology.Clone(o)
	m := o.GetMeta()
	m.Revision = 0
	if m.ID == "" {
		m.ID = uuid.NewString()
	} else if err := checkID(m.ID); err != nil {
		return nil, err
	}
	if (view{tx}).Get(o.Kind(), m.ID) != nil {
		return nil, &topology.ConflictError{Field: "id", Reason: fmt.Sprintf("%s %s already exists", o.Kind(), m.ID)}
	}
	fillRuleIDs(o)
	if p, ok := o.(*topology.Port); ok {
		k, err := tx.allocKey()
		if err != nil {
			return nil, err
		}
		p.TunnelKey = k
	}
	if err := tx.check(nil, o); err != nil {
		return nil, err
	}
	tx.set(topology.Key(o), o)
	if err := tx.fixPeer(nil, o); err != nil {
		return nil, err
	}
	return topology.Clone(o), nil
}

// Update replaces an existing object. A non-zero Revision must match the
// stored one. A port's tunnel key left at 0 keeps the stored key.
func (tx *Tx) Update(o topology.Object) (topology.Object, error) {
	if o == nil || topology.New(o.Kind()) == nil {
		return nil, &topology.FieldError{Reason: "unknown object kind"}
	}
	o = topology.Clone(o)
	m := o.GetMeta()
	old := (view{tx}).Get(o.Kind(), m.ID)
	if old == nil {
		return nil, fmt.Errorf("%s %s: %w", o.Kind(), m.ID, ErrNotFound)
	}
	if m.Revision != 0 && m.Revision != old.GetMeta().Revision {
		return nil, &RevisionError{Key: topology.Key(o), Want: m.Revision, Current: old.GetMeta().Revision}
	}
	m.Revision = old.GetMeta().Revision
	fillRuleIDs(o)
	if p, ok := o.(*topology.Port); ok && p.TunnelKey == 0 {
		p.TunnelKey = old.(*topology.Port).TunnelKey
	}
	if err := tx.check(old, o); err != nil {
		return nil, err
	}
	tx.set(topology.Key(o), o)
	if err := tx.fixPeer(old, o); err != nil {
		return nil, err
	}
	return topology.Clone(o), nil
}

// Delete removes an object and everything topology.PlanDelete takes with it.
func (tx *Tx) Delete(k topology.Kind, id string, rev int64) (*topology.DeletePlan, error) {
	v := view{tx}
	cur := v.Get(k, id)
	if cur == nil {
		return nil, fmt.Errorf("%s %s: %w", k, id, ErrNotFound)
	}
	if rev != 0 && rev != cur.GetMeta().Revision {
		return nil, &RevisionError{Key: topology.ObjectKey{Kind: k, ID: id}, Want: rev, Current: cur.GetMeta().Revision}
	}
	plan, err := topology.PlanDelete(v, k, id)
	if err != nil {
		return nil, err
	}
	for _, d := range plan.Deletes {
		if p, ok := v.Get(d.Kind, d.ID).(*topology.Port); ok {
			tx.freed[p.TunnelKey] = true
		}
		tx.set(d, nil)
	}
	for _, u := range plan.Updates {
		tx.set(topology.Key(u), u)
	}
	return plan, nil
}

func (tx *Tx) check(old, o topology.Object) error {
	if err := o.Validate(); err != nil {
		return err
	}
	return topology.Check(view{tx}, old, o)
}

// fixPeer keeps links symmetric: when a port's peer_id changes, the new peer
// points back to it and the old peer no longer does. Both sides are checked.
func (tx *Tx) fixPeer(old, o topology.Object) error {
	p, ok := o.(*topology.Port)
	if !ok {
		return nil
	}
	oldPeer := ""
	if op, ok := old.(*topology.Port); ok {
		oldPeer = op.PeerID
	}
	if oldPeer == p.PeerID {
		return nil
	}
	v := view{tx}
	if oldPeer != "" {
		if q, ok := v.Get(topology.KindPort, oldPeer).(*topology.Port); ok && q.PeerID == p.ID {
			nq := topology.Clone(q).(*topology.Port)
			nq.PeerID = ""
			tx.set(topology.Key(nq), nq)
		}
	}
	if p.PeerID != "" {
		q := v.Get(topology.KindPort, p.PeerID).(*topology.Port) // Check saw it exists
		if q.PeerID != p.ID {
			nq := topology.Clone(q).(*topology.Port)
			nq.PeerID = p.ID
			if err := tx.check(q, nq); err != nil {
				return err
			}
			tx.set(topology.Key(nq), nq)
		}
	}
	return nil
}

// allocKey hands out the next unused tunnel key after the highest one seen,
// wrapping to the lowest free key once the 24-bit space has been walked.
func (tx *Tx) allocKey() (uint32, error) {
	used := func(k uint32) bool {
		if tx.newKeys[k] {
			return true
		}
		_, ok := tx.c.keys[k]
		return ok && !tx.freed[k]
	}
	k := tx.nextKey
	for range topology.MaxTunnelKey {
		k++
		if k > topology.MaxTunnelKey {
			k = 1
		}
		if !used(k) {
			tx.nextKey = k
			tx.newKeys[k] = true
			return k, nil
		}
	}
	return 0, &topology.ConflictError{Field: "tunnel_key", Reason: "every tunnel key is in use"}
}

// ops turns the Tx's changes into etcd operations (one atomic transaction, so
// their order does not matter to readers).
func (tx *Tx) ops(prefix string) ([]clientv3.Op, error) {
	ops := make([]clientv3.Op, 0, len(tx.order)+1)
	for _, key := range tx.order {
		o := tx.changes[key]
		if o == nil {
			ops = append(ops, clientv3.OpDelete(objectKey(prefix, key.Kind, key.ID)))
			continue
		}
		// The revision lives in etcd's ModRevision, not in the value.
		c := topology.Clone(o)
		c.GetMeta().Revision = 0
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", key, err)
		}
		ops = append(ops, clientv3.OpPut(objectKey(prefix, key.Kind, key.ID), string(b)))
	}
	return ops, nil
}

// Txn runs f against a consistent view and commits every change it made in
// one etcd transaction (all or nothing). f may be run more than once if a
// concurrent writer got there first, so it must have no other side effects,
// and it must not call the Store's methods (use tx's). It returns the
// revision of the commit (the cache's revision if f changed nothing).
func (s *Store) Txn(ctx context.Context, f func(tx *Tx) error) (int64, error) {
	rev, _, err := s.txn(ctx, f)
	return rev, err
}

// txn is Txn that also returns the committed Tx, so callers can return the
// stored objects with their new revision.
func (s *Store) txn(ctx context.Context, f func(tx *Tx) error) (int64, *Tx, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		s.cache.mu.RLock()
		tx := newTx(s.cache)
		seq := s.cache.seqRev
		err := f(tx)
		var ops []clientv3.Op
		if err == nil {
			ops, err = tx.ops(s.prefix)
		}
		cacheRev := s.cache.rev
		s.cache.mu.RUnlock()
		if err != nil {
			return 0, nil, err
		}
		if len(ops) == 0 {
			return cacheRev, tx, nil
		}
		seqKey := s.cache.seqKey()
		ops = append(ops, clientv3.OpPut(seqKey, strconv.FormatInt(seq+1, 10)))
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(seqKey), "=", seq)).
			Then(ops...).
			Else(clientv3.OpGet(seqKey)).
			Commit()
		if err != nil {
			return 0, nil, fmt.Errorf("commit: %w", err)
		}
		if resp.Succeeded {
			rev := resp.Header.Revision
			// Read-your-writes: once we return, Get sees this commit. The
			// commit is done, so a caller giving up now must not turn it
			// into an error: the wait has its own bound.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheLagTimeout)
			err := s.cache.waitRev(wctx, rev)
			cancel()
			if err != nil {
				return 0, nil, fmt.Errorf("committed at revision %d, but the cache did not follow: %w", rev, err)
			}
			for _, o := range tx.changes {
				if o != nil {
					o.GetMeta().Revision = rev
				}
			}
			return rev, tx, nil
		}
		// Another writer committed since our view: wait until the cache has
		// its change, then build the change again on the fresher view.
		var cur int64
		if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			cur = rr.Kvs[0].ModRevision
		}
		if err := s.cache.waitFor(ctx, func() bool { return s.cache.seqRev >= cur && s.cache.seqRev != seq }); err != nil {
			return 0, nil, unavailable(err)
		}
		// Two processes in lockstep would keep colliding: a random pause,
		// growing with the attempts, lets one of them through.
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt+1, 20))))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return 0, nil, unavailable(ctx.Err())
		}
	}
	return 0, nil, &topology.ConflictError{Reason: fmt.Sprintf("gave up after %d attempts: the store is changing too fast", maxAttempts)}
}

// checkID accepts caller-chosen ids that are safe as one etcd key segment.
// The store itself hands out UUIDs.
func checkID(id string) error {
	if len(id) > 128 {
		return &topology.FieldError{Field: "id", Reason: "is longer than 128 characters"}
	}
	for _, r := range id {
		if r == '/' || r <= ' ' || r == 0x7f {
			return &topology.FieldError{Field: "id", Reason: "must not contain '/', spaces or control characters"}
		}
	}
	return nil
}

// fillRuleIDs gives every rule of a chain without an id a fresh one, so a
// client can add a rule without inventing an id.
func fillRuleIDs(o topology.Object) {
	if c, ok := o.(*topology.Chain); ok {
		for i := range c.Rules {
			if c.Rules[i].ID == "" {
				c.Rules[i].ID = uuid.NewString()
			}
		}
	}
}
