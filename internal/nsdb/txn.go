package nsdb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
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
	keys    *keyReservations
	viewRev int64                                  // the cache's revision when the Tx began
	changes map[topology.ObjectKey]topology.Object // nil value: deleted
	order   []topology.ObjectKey                   // first-change order, for a stable commit
	// refs is the reverse reference index of the changed objects (target →
	// referrers among changes), so Referrers costs the answer, not a scan
	// of every change: a controller resync writes hundreds per Tx.
	refs    map[topology.ObjectKey]map[topology.ObjectKey]struct{}
	newKeys map[uint32]bool // tunnel keys given out in this Tx
	freed   map[uint32]bool // tunnel keys of ports deleted in this Tx
	nextKey uint32

	// The read set: what f saw of the stored topology. The commit is
	// guarded by exactly these (guards), so writers that touch disjoint
	// objects commit in parallel and one that read something changed since
	// retries on a fresher view.
	reads    map[topology.ObjectKey]int64 // object → revision seen (0: absent)
	refReads map[topology.ObjectKey]bool  // objects whose referrer set was read
	kinds    map[topology.Kind]bool       // kinds listed whole
}

func newTx(c *cache, keys *keyReservations) *Tx {
	return &Tx{c: c, keys: keys, viewRev: c.rev, changes: map[topology.ObjectKey]topology.Object{},
		refs: map[topology.ObjectKey]map[topology.ObjectKey]struct{}{}, newKeys: map[uint32]bool{}, freed: map[uint32]bool{},
		nextKey: c.maxKey, reads: map[topology.ObjectKey]int64{}, refReads: map[topology.ObjectKey]bool{}, kinds: map[topology.Kind]bool{}}
}

// base reads an object from the stored view (not the Tx's changes) and
// records the read.
func (tx *Tx) base(key topology.ObjectKey) topology.Object {
	o := tx.c.idx.Get(key.Kind, key.ID)
	if _, seen := tx.reads[key]; !seen {
		var rev int64
		if o != nil {
			rev = o.GetMeta().Revision
		}
		tx.reads[key] = rev
	}
	return o
}

// view is the topology.Reader of the cache with the Tx's changes layered on
// top. It returns the stored objects themselves (no copies): it is only for
// topology.Check and PlanDelete, which do not modify what they read.
type view struct{ tx *Tx }

func (v view) Get(k topology.Kind, id string) topology.Object {
	key := topology.ObjectKey{Kind: k, ID: id}
	if o, ok := v.tx.changes[key]; ok {
		return o
	}
	return v.tx.base(key)
}

func (v view) Referrers(k topology.Kind, id string) []topology.ObjectKey {
	v.tx.refReads[topology.ObjectKey{Kind: k, ID: id}] = true
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
	v.tx.kinds[k] = true
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
// A key another Tx of this process holds is skipped (parallel creates do not
// collide); one taken by another process is caught by its claim at commit.
func (tx *Tx) allocKey() (uint32, error) {
	used := func(k uint32) bool {
		if tx.newKeys[k] {
			return true
		}
		if _, ok := tx.c.keys[k]; ok && !tx.freed[k] {
			return true
		}
		return !tx.freed[k] && !tx.keys.reserve(k)
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
// their order does not matter to readers): the objects, their copies in
// their partitions, the bindings index, their referrer index keys and the
// claims of the tunnel keys given out.
func (tx *Tx) ops(prefix string) ([]clientv3.Op, error) {
	ops := make([]clientv3.Op, 0, len(tx.order)+1)
	idx := map[string]bool{} // referrer index key → put (false: delete)
	stored := func(id string) topology.Object { return tx.c.idx.Get(topology.KindRouter, id) }
	changed := func(id string) topology.Object {
		if o, ok := tx.changes[topology.ObjectKey{Kind: topology.KindRouter, ID: id}]; ok {
			return o
		}
		return stored(id)
	}
	for _, key := range tx.order {
		o := tx.changes[key]
		old := tx.c.idx.Get(key.Kind, key.ID)
		var oldParts []string
		if old != nil {
			oldParts = CopyPartitions(old, stored)
		}
		if o == nil {
			ops = append(ops, partitionOps(prefix, key, old, nil, oldParts, nil, "")...)
		}
		// Every referrer index key of the new version is put (touched, so a
		// reader of the target's referrers sees the change); those only the
		// stored version had are deleted.
		if old := tx.c.idx.Get(key.Kind, key.ID); old != nil {
			for _, r := range old.Refs() {
				if k := refIndexKey(prefix, topology.ObjectKey{Kind: r.Kind, ID: r.ID}, key); !idx[k] {
					idx[k] = false
				}
			}
		}
		if o != nil {
			for _, r := range o.Refs() {
				idx[refIndexKey(prefix, topology.ObjectKey{Kind: r.Kind, ID: r.ID}, key)] = true
			}
		}
		if o == nil {
			ops = append(ops, clientv3.OpDelete(objectKey(prefix, key.Kind, key.ID)))
			continue
		}
		b, err := encode(o)
		if err != nil {
			return nil, err
		}
		ops = append(ops, clientv3.OpPut(objectKey(prefix, key.Kind, key.ID), b))
		ops = append(ops, partitionOps(prefix, key, old, o, oldParts, CopyPartitions(o, changed), b)...)
		if old != nil && key.Kind == topology.KindRouter && PartitionOf(old) != PartitionOf(o) {
			moved, err := tx.moveRouteCopies(prefix, key.ID, PartitionOf(old), PartitionOf(o))
			if err != nil {
				return nil, err
			}
			ops = append(ops, moved...)
		}
	}
	if len(ops) == 0 {
		return nil, nil
	}
	for k, put := range idx {
		if put {
			ops = append(ops, clientv3.OpPut(k, ""))
		} else {
			ops = append(ops, clientv3.OpDelete(k))
		}
	}
	claimed := map[uint32]bool{}
	for _, key := range tx.order {
		if p, ok := tx.changes[key].(*topology.Port); ok && tx.newKeys[p.TunnelKey] {
			claimed[p.TunnelKey] = true
			ops = append(ops, clientv3.OpPut(tunnelClaimKey(prefix, p.TunnelKey), p.ID))
		}
	}
	for k := range tx.freed {
		if !claimed[k] {
			ops = append(ops, clientv3.OpDelete(tunnelClaimKey(prefix, k)))
		}
	}
	return ops, nil
}

// moveRouteCopies moves the copies of a router's routes (those the Tx does
// not change itself) from the router's old partition to its new one. The
// router's referrers are read through the view: the commit is guarded on
// them, so a route added meanwhile makes the Tx retry.
func (tx *Tx) moveRouteCopies(prefix, routerID, from, to string) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	for _, ref := range (view{tx}).Referrers(topology.KindRouter, routerID) {
		if _, ok := tx.changes[ref]; ok || ref.Kind != topology.KindRoute {
			continue
		}
		rt := tx.c.idx.Get(ref.Kind, ref.ID)
		if rt == nil {
			continue
		}
		own := PartitionOf(rt)
		if from != own {
			ops = append(ops, clientv3.OpDelete(partitionPrefix(prefix, from)+string(ref.Kind)+"/"+ref.ID))
		}
		if to != own {
			b, err := encode(topology.Clone(rt))
			if err != nil {
				return nil, err
			}
			ops = append(ops, clientv3.OpPut(partitionPrefix(prefix, to)+string(ref.Kind)+"/"+ref.ID, b))
		}
	}
	return ops, nil
}

// guards are the compares the commit is conditional on: every object read
// (or written) is still at the revision seen, or still absent; no referrer
// set read has changed, and no kind listed whole has gained or changed an
// object, since the view (every referrer index key and object is at most
// at the view's revision); the tunnel keys given out are unclaimed.
func (tx *Tx) guards(prefix string) []clientv3.Cmp {
	for _, key := range tx.order {
		tx.base(key) // a written object is guarded even if f never read it
	}
	cmps := make([]clientv3.Cmp, 0, len(tx.reads)+len(tx.refReads)+len(tx.kinds)+len(tx.newKeys))
	for key, rev := range tx.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(objectKey(prefix, key.Kind, key.ID)), "=", rev))
	}
	for key := range tx.refReads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(refIndexPrefix(prefix, key)), "<", tx.viewRev+1).
			WithPrefix())
	}
	for k := range tx.kinds {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(prefix+"topo/"+string(k)+"/"), "<", tx.viewRev+1).
			WithPrefix())
	}
	for k := range tx.newKeys {
		if !tx.freed[k] {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(tunnelClaimKey(prefix, k)), "=", 0))
		}
	}
	return cmps
}

// refIndexPrefix is where the referrers of target are indexed: one key per
// referrer, written in the same transaction as the referrer. It lets a
// writer that read target's referrers (a delete planning its cascade, a
// check for a duplicate binding) guard that set without a global lock.
func refIndexPrefix(prefix string, target topology.ObjectKey) string {
	return prefix + "index/ref/" + string(target.Kind) + "/" + target.ID + "/"
}

func refIndexKey(prefix string, target, referrer topology.ObjectKey) string {
	return refIndexPrefix(prefix, target) + string(referrer.Kind) + "/" + referrer.ID
}

// tunnelClaimKey claims a tunnel key for the port holding it, so two
// processes cannot hand out the same key at once.
func tunnelClaimKey(prefix string, k uint32) string {
	return prefix + "index/tunnel-key/" + strconv.FormatUint(uint64(k), 10)
}

// keyReservations are the tunnel keys handed out by this process's Txs not
// yet committed (or abandoned), so parallel creates pick different keys.
type keyReservations struct {
	mu   sync.Mutex
	held map[uint32]bool
}

// reserve takes k unless another Tx holds it.
func (r *keyReservations) reserve(k uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held[k] {
		return false
	}
	if r.held == nil {
		r.held = map[uint32]bool{}
	}
	r.held[k] = true
	return true
}

// release gives back the keys a Tx reserved.
func (r *keyReservations) release(keys map[uint32]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range keys {
		delete(r.held, k)
	}
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
	if s.noTopology {
		return 0, nil, ErrNoTopology
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		rev, tx, retry, err := s.attempt(ctx, f)
		if !retry {
			return rev, tx, err
		}
		// Two writers in lockstep would keep colliding: a random pause,
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

// attempt builds the Tx once and commits it, guarded by what it read. retry
// says another writer changed something it read first.
func (s *Store) attempt(ctx context.Context, f func(tx *Tx) error) (rev int64, _ *Tx, retry bool, _ error) {
	s.cache.mu.RLock()
	tx := newTx(s.cache, &s.keys)
	defer s.keys.release(tx.newKeys) // after the cache holds the commit, or abandoned
	err := f(tx)
	var ops []clientv3.Op
	var cmps []clientv3.Cmp
	if err == nil {
		ops, err = tx.ops(s.prefix)
		cmps = tx.guards(s.prefix)
	}
	cacheRev := s.cache.rev
	s.cache.mu.RUnlock()
	if err != nil {
		return 0, nil, false, err
	}
	if len(ops) == 0 {
		return cacheRev, tx, false, nil
	}
	// topo-seq is the revision of the last topology commit (Sync's read
	// barrier); it is put, not compared: it orders nothing.
	seqKey := s.cache.seqKey()
	ops = append(ops, clientv3.OpPut(seqKey, ""))
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(seqKey)).Commit()
	if err != nil {
		return 0, nil, false, fmt.Errorf("commit: %w", err)
	}
	if !resp.Succeeded {
		// Another writer committed something we read: wait until the cache
		// has it, then build the change again on the fresher view.
		var cur int64
		if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			cur = rr.Kvs[0].ModRevision
		}
		if err := s.cache.waitSeq(ctx, cur); err != nil {
			return 0, nil, false, unavailable(err)
		}
		return 0, nil, true, nil
	}
	rev = resp.Header.Revision
	// Read-your-writes: once we return, Get sees this commit. The commit is
	// done, so a caller giving up now must not turn it into an error: the
	// wait has its own bound.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheLagTimeout)
	err = s.cache.waitRev(wctx, rev)
	cancel()
	if err != nil {
		return 0, nil, false, fmt.Errorf("committed at revision %d, but the cache did not follow: %w", rev, err)
	}
	for _, o := range tx.changes {
		if o != nil {
			o.GetMeta().Revision = rev
		}
	}
	return rev, tx, false, nil
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
