package translate

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// Owned reports whether o carries the translator's owner label.
func Owned(o topology.Object) bool {
	return o.GetMeta().Labels[LabelOwner] == OwnerValue
}

// Diff compares the desired objects with those the store holds and returns
// what to create, update and delete. Objects in current without the owner
// label are never touched: not updated, not deleted, and a desired object
// with the same key is reported as a create (which the store will refuse;
// ids are UUIDv5s in the translator's namespace, so that means someone
// forged one). Fields the store assigns (revision, a port's tunnel key) are
// ignored in the comparison; updates carry the current object's revision
// and tunnel key, so the store's revision guard applies.
//
// Creates come in topology.Kinds order (referenced kinds first), deletes in
// the reverse order, each then by id. Ports linked to each other are both
// desired with their peer_id set; the controller creates the first without
// it (the store links the pair when the second is created).
func Diff(desired, current []topology.Object) (creates, updates, deletes []topology.Object) {
	cur := make(map[topology.ObjectKey]topology.Object, len(current))
	for _, o := range current {
		cur[topology.Key(o)] = o
	}
	want := make(map[topology.ObjectKey]bool, len(desired))
	for _, d := range desired {
		k := topology.Key(d)
		want[k] = true
		c, ok := cur[k]
		switch {
		case !ok || !Owned(c):
			creates = append(creates, d)
		case !Equal(d, c):
			u := topology.Clone(d)
			u.GetMeta().Revision = c.GetMeta().Revision
			if p, ok := u.(*topology.Port); ok {
				p.TunnelKey = c.(*topology.Port).TunnelKey
			}
			updates = append(updates, u)
		}
	}
	for _, c := range current {
		if Owned(c) && !want[topology.Key(c)] {
			deletes = append(deletes, c)
		}
	}
	order := map[topology.Kind]int{}
	for i, k := range topology.Kinds {
		order[k] = i
	}
	byKind := func(rev bool) func(x, y topology.Object) int {
		return func(x, y topology.Object) int {
			c := cmp.Compare(order[x.Kind()], order[y.Kind()])
			if rev {
				c = -c
			}
			return cmp.Or(c, cmp.Compare(x.GetMeta().ID, y.GetMeta().ID))
		}
	}
	slices.SortFunc(creates, byKind(false))
	slices.SortFunc(updates, byKind(false))
	slices.SortFunc(deletes, byKind(true))
	return creates, updates, deletes
}

// Equal reports whether two objects are the same but for the fields the
// store assigns (revision, tunnel key).
func Equal(a, b topology.Object) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	return bytes.Equal(canonical(a), canonical(b))
}

func canonical(o topology.Object) []byte {
	c := topology.Clone(o)
	c.GetMeta().Revision = 0
	if p, ok := c.(*topology.Port); ok {
		p.TunnelKey = 0
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic("translate: marshal " + err.Error()) // every topology object marshals
	}
	return b
}
