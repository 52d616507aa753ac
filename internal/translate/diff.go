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
// Creates and updates come in dependency order (topology.Kinds order, and
// within a kind referenced objects first), deletes in the reverse order. Ports linked to each other are both
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
	creates = dependencyOrder(creates)
	updates = dependencyOrder(updates)
	deletes = dependencyOrder(deletes)
	slices.Reverse(deletes)
	return creates, updates, deletes
}

// dependencyOrder sorts objects so that each comes after the objects of
// the set it references: by topology.Kinds order, and within a kind (chains
// jumping to chains) referenced objects first, else by id. Linked port
// pairs reference each other; they come by id.
func dependencyOrder(objs []topology.Object) []topology.Object {
	order := map[topology.Kind]int{}
	for i, k := range topology.Kinds {
		order[k] = i
	}
	slices.SortFunc(objs, func(x, y topology.Object) int {
		return cmp.Or(cmp.Compare(order[x.Kind()], order[y.Kind()]), cmp.Compare(x.GetMeta().ID, y.GetMeta().ID))
	})
	in := make(map[topology.ObjectKey]topology.Object, len(objs))
	for _, o := range objs {
		in[topology.Key(o)] = o
	}
	out := make([]topology.Object, 0, len(objs))
	seen := make(map[topology.ObjectKey]bool, len(objs))
	var visit func(o topology.Object)
	visit = func(o topology.Object) {
		k := topology.Key(o)
		if seen[k] {
			return
		}
		seen[k] = true
		for _, r := range o.Refs() {
			if t, ok := in[topology.ObjectKey{Kind: r.Kind, ID: r.ID}]; ok && r.Kind == o.Kind() {
				visit(t)
			}
		}
		out = append(out, o)
	}
	for _, o := range objs {
		visit(o)
	}
	return out
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
