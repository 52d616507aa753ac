package topology

import (
	"cmp"
	"slices"
	"strings"
)

// Reader is a read-only view of a consistent set of objects.
type Reader interface {
	// Get returns the object, or nil if there is none. Callers must not
	// modify it.
	Get(k Kind, id string) Object
	// Referrers returns the keys of every object holding a Ref to (k, id),
	// sorted.
	Referrers(k Kind, id string) []ObjectKey
	// List returns every object of kind k, sorted by id.
	List(k Kind) []Object
}

// Index is an in-memory set of objects with a reverse reference index. It is
// the Reader the store's cache and the tests use. It is not safe for
// concurrent use; its owner serializes access.
type Index struct {
	objs map[Kind]map[string]Object
	refs map[ObjectKey]map[ObjectKey]int // target → referrer → number of refs
	// out is what each object referenced when it was put. Delete undoes
	// exactly that, even if the caller changed the object in place since.
	out map[ObjectKey][]ObjectKey
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		objs: map[Kind]map[string]Object{},
		refs: map[ObjectKey]map[ObjectKey]int{},
		out:  map[ObjectKey][]ObjectKey{},
	}
}

// Put inserts or replaces an object. The index keeps o itself (no copy).
func (x *Index) Put(o Object) {
	k := Key(o)
	x.Delete(k.Kind, k.ID)
	m := x.objs[k.Kind]
	if m == nil {
		m = map[string]Object{}
		x.objs[k.Kind] = m
	}
	m[k.ID] = o
	var targets []ObjectKey
	for _, r := range o.Refs() {
		t := ObjectKey{r.Kind, r.ID}
		targets = append(targets, t)
		rs := x.refs[t]
		if rs == nil {
			rs = map[ObjectKey]int{}
			x.refs[t] = rs
		}
		rs[k]++
	}
	if len(targets) > 0 {
		x.out[k] = targets
	}
}

// Delete removes an object if present.
func (x *Index) Delete(k Kind, id string) {
	if x.objs[k][id] == nil {
		return
	}
	delete(x.objs[k], id)
	self := ObjectKey{k, id}
	for _, t := range x.out[self] {
		if rs := x.refs[t]; rs != nil {
			if rs[self]--; rs[self] <= 0 {
				delete(rs, self)
			}
			if len(rs) == 0 {
				delete(x.refs, t)
			}
		}
	}
	delete(x.out, self)
}

func (x *Index) Get(k Kind, id string) Object { return x.objs[k][id] }

// Len returns the number of objects of kind k.
func (x *Index) Len(k Kind) int { return len(x.objs[k]) }

func (x *Index) Referrers(k Kind, id string) []ObjectKey {
	rs := x.refs[ObjectKey{k, id}]
	out := make([]ObjectKey, 0, len(rs))
	for r := range rs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b ObjectKey) int {
		return cmp.Or(strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.ID, b.ID))
	})
	return out
}

func (x *Index) List(k Kind) []Object {
	// Sorted by the map's keys (the ids), without an interface call per
	// comparison: a snapshot lists every kind of the replica per change.
	m := x.objs[k]
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Object, len(ids))
	for i, id := range ids {
		out[i] = m[id]
	}
	return out
}
