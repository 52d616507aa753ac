package translate

import (
	"cmp"
	"maps"
	"reflect"
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
// store assigns (revision, tunnel key). It compares the structs field by
// field, an empty slice or map equal to a nil one (they store alike), and
// encodes nothing: the controller compares every desired object with the
// stored one on each resync, so this is its hot path.
func Equal(a, b topology.Object) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	if va.Type() != vb.Type() {
		return false
	}
	ma, mb := a.GetMeta(), b.GetMeta()
	if ma.ID != mb.ID || ma.Name != mb.Name || !maps.Equal(ma.Labels, mb.Labels) {
		return false
	}
	t := va.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == metaType || (t == portType && f.Name == "TunnelKey") {
			continue // compared above, or assigned by the store
		}
		if !equalValue(va.Field(i), vb.Field(i)) {
			return false
		}
	}
	return true
}

var (
	metaType = reflect.TypeFor[topology.Meta]()
	portType = reflect.TypeFor[topology.Port]()
)

// equalValue is reflect.DeepEqual with nil and empty slices and maps equal.
// It reads unexported fields (netip.Addr's) through the kind's getters,
// which reflect allows.
func equalValue(x, y reflect.Value) bool {
	switch x.Kind() {
	case reflect.Bool:
		return x.Bool() == y.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return x.Int() == y.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return x.Uint() == y.Uint()
	case reflect.Float32, reflect.Float64:
		return x.Float() == y.Float()
	case reflect.String:
		return x.String() == y.String()
	case reflect.Array, reflect.Slice:
		if x.Len() != y.Len() {
			return false
		}
		for i := range x.Len() {
			if !equalValue(x.Index(i), y.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if x.Len() != y.Len() {
			return false
		}
		it := x.MapRange()
		for it.Next() {
			w := y.MapIndex(it.Key())
			if !w.IsValid() || !equalValue(it.Value(), w) {
				return false
			}
		}
		return true
	case reflect.Pointer, reflect.Interface:
		if x.IsNil() || y.IsNil() {
			return x.IsNil() == y.IsNil()
		}
		if x.Kind() == reflect.Pointer && x.Pointer() == y.Pointer() {
			return true
		}
		x, y = x.Elem(), y.Elem()
		return x.Type() == y.Type() && equalValue(x, y)
	case reflect.Struct:
		for i := range x.NumField() {
			if !equalValue(x.Field(i), y.Field(i)) {
				return false
			}
		}
		return true
	}
	// Kinds no topology object has (channels, funcs, complex numbers).
	panic("translate: cannot compare a " + x.Kind().String())
}
