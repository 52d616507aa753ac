package nsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/vpc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// VPC objects live one per key, <prefix>vpc/<collection>/<id>, where
// <collection> is the json name of the object's map in vpc.State ("vpcs",
// "subnets", …) and the value is the JSON of the vpc struct. Every write
// transaction also puts <prefix>vpc-seq and is guarded on its mod revision,
// so a multi-object EC2 call (CreateVpc writes a VPC, its main route table,
// default group and default ACL) is one atomic change and two writers never
// interleave on a stale view.

// VPCPrefix is the store-relative prefix of VPC objects.
const VPCPrefix = "vpc/"

// vpcSeqRel is the store-relative key guarding VPC writes.
const vpcSeqRel = "vpc-seq"

// vpcCollections maps a collection name to the vpc.State map field index,
// built once from the struct's json tags so the two cannot drift apart.
var vpcCollections = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeOf(vpc.State{})
	for i := range t.NumField() {
		if !t.Field(i).IsExported() {
			continue // the State's index
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		m[name] = i
	}
	return m
}()

// VPCCollections returns every collection name (for tests and tools).
func VPCCollections() []string {
	out := make([]string, 0, len(vpcCollections))
	for k := range vpcCollections {
		out = append(out, k)
	}
	return out
}

// collectionOf returns the collection of a vpc object (*vpc.Vpc → "vpcs").
func collectionOf(obj any) (string, error) {
	t := reflect.TypeOf(obj)
	st := reflect.TypeOf(vpc.State{})
	for name, i := range vpcCollections {
		if st.Field(i).Type.Elem() == t {
			return name, nil
		}
	}
	return "", fmt.Errorf("nsdb: %T is not a VPC object", obj)
}

// stateMap returns the reflect value of st's map for a collection.
func stateMap(st *vpc.State, coll string) (reflect.Value, bool) {
	i, ok := vpcCollections[coll]
	if !ok {
		return reflect.Value{}, false
	}
	m := reflect.ValueOf(st).Elem().Field(i)
	if m.IsNil() {
		m.Set(reflect.MakeMap(m.Type()))
	}
	return m, true
}

// applyVPCKV applies one key (relative to the vpc/ prefix, "subnets/subnet-…")
// to st: a put with value, a delete without.
func applyVPCKV(st *vpc.State, rel string, value []byte, del bool) error {
	coll, id, ok := strings.Cut(rel, "/")
	if !ok || id == "" {
		return fmt.Errorf("nsdb: bad VPC key %q", rel)
	}
	m, ok := stateMap(st, coll)
	if !ok {
		return fmt.Errorf("nsdb: unknown VPC collection %q", coll)
	}
	k := reflect.ValueOf(id)
	var old any
	if o := m.MapIndex(k); o.IsValid() {
		old = o.Interface()
	}
	if del {
		m.SetMapIndex(k, reflect.Value{})
		st.Changed(id, old, nil)
		return nil
	}
	obj := reflect.New(m.Type().Elem().Elem())
	if err := json.Unmarshal(value, obj.Interface()); err != nil {
		return fmt.Errorf("nsdb: decode %s: %w", rel, err)
	}
	m.SetMapIndex(k, obj)
	st.Changed(id, old, obj.Interface())
	return nil
}

// DecodeVPCState decodes listed keys into a fresh vpc.State. Keys are full
// etcd keys; prefix is the store prefix (Store.Prefix()). Keys outside
// <prefix>vpc/ (vpc-seq, say) are ignored; an undecodable key is an error.
func DecodeVPCState(prefix string, kvs []KV) (*vpc.State, error) {
	st := vpc.NewState()
	var errs []error
	for _, kv := range kvs {
		rel, ok := strings.CutPrefix(kv.Key, prefix+VPCPrefix)
		if !ok {
			continue
		}
		if err := applyVPCKV(st, rel, kv.Value, false); err != nil {
			errs = append(errs, err)
		}
	}
	return st, errors.Join(errs...)
}

// ApplyVPCEvents applies watch events to st in place (keys outside the vpc/
// prefix are ignored), for a reader mirroring the VPC view itself.
func ApplyVPCEvents(prefix string, st *vpc.State, evs []Event) error {
	var errs []error
	for _, e := range evs {
		rel, ok := strings.CutPrefix(e.KV.Key, prefix+VPCPrefix)
		if !ok {
			continue
		}
		if err := applyVPCKV(st, rel, e.KV.Value, e.Delete); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// VPCStore keeps the VPC objects in etcd and an in-memory mirror of them. It
// is safe for concurrent use.
type VPCStore struct {
	s *Store

	mu     sync.RWMutex
	cond   *sync.Cond // signalled (under mu) on every applied change
	st     *vpc.State
	rev    int64 // etcd revision the mirror reflects
	seqRev int64 // mod revision of vpc-seq in the mirror

	wmu    sync.Mutex // serializes this process's writers
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// OpenVPCStore loads the VPC objects and follows their changes until Close.
// It returns once the mirror holds everything stored.
func OpenVPCStore(ctx context.Context, s *Store) (*VPCStore, error) {
	v := &VPCStore{s: s, st: vpc.NewState(), done: make(chan struct{})}
	v.cond = sync.NewCond(&v.mu)
	wctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	ready := make(chan struct{})
	var readyOnce sync.Once
	seqKey := s.Prefix() + vpcSeqRel
	h := Handler{
		Reset: func(kvs []KV, rev int64) {
			st, err := DecodeVPCState(s.Prefix(), kvs)
			if err != nil {
				s.log.Error("nsdb: undecodable VPC objects skipped", "err", err)
			}
			var seq int64
			for _, kv := range kvs {
				if kv.Key == seqKey {
					seq = kv.ModRevision
				}
			}
			st.Reindex() // kept with every change from now on
			v.mu.Lock()
			v.st, v.rev, v.seqRev = st, rev, seq
			v.cond.Broadcast()
			v.mu.Unlock()
			readyOnce.Do(func() { close(ready) })
		},
		Events: func(evs []Event, rev int64) {
			v.mu.Lock()
			defer v.mu.Unlock()
			// In place, so a change costs work in proportion to the change:
			// readers hold the read lock while they look, and objects are
			// replaced, never mutated, so what a reader copied out stays valid.
			if err := ApplyVPCEvents(s.Prefix(), v.st, evs); err != nil {
				s.log.Error("nsdb: undecodable VPC change skipped", "err", err)
			}
			for _, e := range evs {
				if e.KV.Key == seqKey {
					v.seqRev = e.KV.ModRevision
				}
			}
			v.rev = rev
			v.cond.Broadcast()
		},
	}
	go func() {
		defer close(v.done)
		_ = s.WatchVPC(wctx, h)
	}()
	if _, ok := ctx.Deadline(); !ok {
		var c context.CancelFunc
		ctx, c = context.WithTimeout(ctx, openTimeout)
		defer c()
	}
	select {
	case <-ready:
		return v, nil
	case <-ctx.Done():
		v.Close()
		return nil, fmt.Errorf("loading the VPC objects: %w", ctx.Err())
	}
}

// Close stops following the store.
func (v *VPCStore) Close() {
	v.once.Do(func() {
		v.cancel()
		<-v.done
		v.mu.Lock()
		v.cond.Broadcast()
		v.mu.Unlock()
	})
}

// Store is the underlying store.
func (v *VPCStore) Store() *Store { return v.s }

// Read runs f on the current state under a read lock. f must not modify
// what it reads, nor keep the state or its maps after it returns (they
// change in place); keeping an object pointer is fine (objects are
// replaced, never changed).
func (v *VPCStore) Read(f func(st *vpc.State)) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	f(v.st)
}

// Revision is the etcd revision the mirror reflects.
func (v *VPCStore) Revision() int64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.rev
}

// VPCTx records the changes of one Update: puts and deletes of VPC objects,
// and puts/deletes of other keys that must commit with them (the EC2 server's
// access keys and client tokens).
//
// While Update's function runs it holds the mirror's write lock, and Put and
// Delete change the mirror's maps in place, logging what they replaced; the
// log is undone before the lock is released. So the function sees its own
// changes, no reader ever sees an uncommitted one, and a change costs work
// in proportion to its size, not to the number of objects stored.
type VPCTx struct {
	st      *vpc.State        // the mirror's state, with this Tx's changes applied until rollback
	order   []string          // relative keys in first-change order
	changes map[string][]byte // nil: delete
	undo    []undoEntry
	// objs are, for each VPC object changed, the stored and the new version
	// (nil: absent), for the partition copies.
	objs map[string]*[2]any
}

// undoEntry restores one map entry: old is the zero Value when the key was
// absent.
type undoEntry struct {
	m, key, old reflect.Value
}

// State is the view as changed so far by this Tx (the base state with every
// Put and Delete applied). Objects in it must not be modified in place, and
// it must not be used after the Update's function returns.
func (tx *VPCTx) State() *vpc.State { return tx.st }

func (tx *VPCTx) set(rel string, val []byte) {
	if _, ok := tx.changes[rel]; !ok {
		tx.order = append(tx.order, rel)
	}
	tx.changes[rel] = val
}

// setEntry sets (obj valid) or deletes m[id], logging the entry it replaces.
func (tx *VPCTx) setEntry(rel string, m reflect.Value, id string, obj reflect.Value) {
	k := reflect.ValueOf(id)
	old := m.MapIndex(k)
	tx.undo = append(tx.undo, undoEntry{m: m, key: k, old: old})
	m.SetMapIndex(k, obj)
	tx.st.Changed(id, ifaceOf(old), ifaceOf(obj))
	if tx.objs == nil {
		tx.objs = map[string]*[2]any{}
	}
	e := tx.objs[rel]
	if e == nil {
		e = &[2]any{}
		if old.IsValid() {
			e[0] = old.Interface()
		}
		tx.objs[rel] = e
	}
	e[1] = nil
	if obj.IsValid() {
		e[1] = obj.Interface()
	}
}

// ifaceOf is v's value, nil when v is not valid (an absent map entry).
func ifaceOf(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	return v.Interface()
}

// rollback undoes every Put and Delete on the state, newest first.
func (tx *VPCTx) rollback() {
	for i := len(tx.undo) - 1; i >= 0; i-- {
		u := tx.undo[i]
		cur := u.m.MapIndex(u.key)
		u.m.SetMapIndex(u.key, u.old)
		tx.st.Changed(u.key.String(), ifaceOf(cur), ifaceOf(u.old))
	}
	tx.undo = nil
}

// Put stores obj, a pointer to a vpc object (*vpc.Vpc, *vpc.Subnet, …),
// under its id. The Tx keeps obj: the caller must not change it afterwards.
func (tx *VPCTx) Put(id string, obj any) error {
	coll, err := collectionOf(obj)
	if err != nil {
		return err
	}
	if id == "" || strings.ContainsAny(id, "/ ") {
		return fmt.Errorf("nsdb: bad VPC object id %q", id)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("nsdb: encode %s/%s: %w", coll, id, err)
	}
	m, _ := stateMap(tx.st, coll)
	tx.setEntry(coll+"/"+id, m, id, reflect.ValueOf(obj))
	tx.set(VPCPrefix+coll+"/"+id, b)
	return nil
}

// Delete removes the object id of collection coll ("subnets", …).
func (tx *VPCTx) Delete(coll, id string) error {
	m, ok := stateMap(tx.st, coll)
	if !ok {
		return fmt.Errorf("nsdb: unknown VPC collection %q", coll)
	}
	tx.setEntry(coll+"/"+id, m, id, reflect.Value{})
	tx.set(VPCPrefix+coll+"/"+id, nil)
	return nil
}

// PutKey puts a store-relative key outside vpc/ (say "ec2/keys/AKIA…") in the
// same transaction.
func (tx *VPCTx) PutKey(rel string, val []byte) error {
	if strings.HasPrefix(rel, VPCPrefix) || rel == vpcSeqRel || strings.HasPrefix(rel, "topo") {
		return fmt.Errorf("nsdb: PutKey %q: not a free key", rel)
	}
	if val == nil {
		val = []byte{}
	}
	tx.set(rel, val)
	return nil
}

// DeleteKey deletes a store-relative key outside vpc/ in the same transaction.
func (tx *VPCTx) DeleteKey(rel string) error {
	if strings.HasPrefix(rel, VPCPrefix) || rel == vpcSeqRel || strings.HasPrefix(rel, "topo") {
		return fmt.Errorf("nsdb: DeleteKey %q: not a free key", rel)
	}
	tx.set(rel, nil)
	return nil
}

// Changed reports whether the Tx holds any change.
func (tx *VPCTx) Changed() bool { return len(tx.order) > 0 }

// Update runs f against the current state and commits what it recorded in tx
// as one etcd transaction guarded by vpc-seq. If another writer (this
// process or another) committed first, f runs again on the fresher state, so
// f must have no other side effects. f runs under the mirror's write lock
// (readers wait for it), so it must be quick, do no I/O and not call Read.
// An error from f commits nothing. It returns once the mirror shows the commit (read-your-writes), with the
// commit's revision (the mirror's revision when f changed nothing).
func (v *VPCStore) Update(ctx context.Context, f func(st *vpc.State, tx *VPCTx) error) (int64, error) {
	return v.update(ctx, nil, f)
}

// UpdateAs is Update for the holder of a leadership: the commit also
// requires that lead's term goes on (its election key is still its own), so
// a leader whose term ended unnoticed — paused, or cut off while its lease
// ran out — writes nothing (ErrNotLeader) once another may lead.
func (v *VPCStore) UpdateAs(ctx context.Context, lead *Leadership, f func(st *vpc.State, tx *VPCTx) error) (int64, error) {
	return v.update(ctx, lead, f)
}

func (v *VPCStore) update(ctx context.Context, lead *Leadership, f func(st *vpc.State, tx *VPCTx) error) (int64, error) {
	v.wmu.Lock()
	defer v.wmu.Unlock()
	cli := v.s.Client()
	prefix := v.s.Prefix()
	seqKey := prefix + vpcSeqRel
	for attempt := 0; attempt < maxAttempts; attempt++ {
		tx := &VPCTx{changes: map[string][]byte{}}
		seq, rev, err := v.run(f, tx)
		if err != nil {
			return 0, err
		}
		if !tx.Changed() {
			return rev, nil
		}
		ops := make([]clientv3.Op, 0, len(tx.order)+1)
		for _, rel := range tx.order {
			val := tx.changes[rel]
			if val == nil {
				ops = append(ops, clientv3.OpDelete(prefix+rel))
			} else {
				ops = append(ops, clientv3.OpPut(prefix+rel, string(val)))
			}
			if o := tx.objs[strings.TrimPrefix(rel, VPCPrefix)]; o != nil {
				coll, id, _ := strings.Cut(strings.TrimPrefix(rel, VPCPrefix), "/")
				ops = append(ops, vpcPartitionOps(prefix, coll, id, o[0], o[1], string(val))...)
			}
		}
		ops = append(ops, clientv3.OpPut(seqKey, strconv.FormatInt(seq+1, 10)))
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(seqKey), "=", seq)}
		if lead != nil {
			cmps = append(cmps, lead.stillLeads())
		}
		resp, err := cli.Txn(ctx).
			If(cmps...).
			Then(ops...).
			Else(clientv3.OpGet(seqKey)).
			Commit()
		if err != nil {
			return 0, fmt.Errorf("commit VPC change: %w", err)
		}
		if resp.Succeeded {
			crev := resp.Header.Revision
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cacheLagTimeout)
			err := v.waitFor(wctx, func() bool { return v.rev >= crev })
			cancel()
			if err != nil {
				return 0, fmt.Errorf("committed at revision %d, but the VPC mirror did not follow: %w", crev, err)
			}
			return crev, nil
		}
		var cur int64
		if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			cur = rr.Kvs[0].ModRevision
		}
		if lead != nil && cur == seq {
			return 0, ErrNotLeader // vpc-seq held: the term is what failed
		}
		if err := v.waitFor(ctx, func() bool { return v.seqRev >= cur && v.seqRev != seq }); err != nil {
			return 0, unavailable(err)
		}
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) * int64(min(attempt+1, 20))))
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return 0, unavailable(ctx.Err())
		}
	}
	return 0, fmt.Errorf("VPC change: gave up after %d attempts: the store is changing too fast", maxAttempts)
}

// run runs f on the mirror's state under the write lock (see VPCTx) and
// undoes its changes before unlocking, even when f panics. It returns the
// vpc-seq and etcd revisions f's view reflects.
func (v *VPCStore) run(f func(st *vpc.State, tx *VPCTx) error, tx *VPCTx) (seq, rev int64, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	defer tx.rollback()
	tx.st = v.st
	return v.seqRev, v.rev, f(tx.st, tx)
}

// Sync waits until the mirror has every VPC change committed before the
// call, by any process.
func (v *VPCStore) Sync(ctx context.Context) error {
	resp, err := v.s.Client().Get(ctx, v.s.Prefix()+vpcSeqRel)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	var seq int64
	if len(resp.Kvs) > 0 {
		seq = resp.Kvs[0].ModRevision
	}
	return unavailable(v.waitFor(ctx, func() bool { return v.seqRev >= seq }))
}

// waitFor waits until cond (evaluated under mu) holds.
func (v *VPCStore) waitFor(ctx context.Context, cond func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		v.mu.Lock()
		v.cond.Broadcast()
		v.mu.Unlock()
	})
	defer stop()
	v.mu.Lock()
	defer v.mu.Unlock()
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-v.done:
			return errors.New("VPC store closed")
		default:
		}
		v.cond.Wait()
	}
	return nil
}
