package topology

import "reflect"

// Clone returns a deep copy of o: nothing the copy holds (slices, maps,
// pointers) is shared with o. It copies field by field rather than through
// JSON: a controller resync clones every object it writes, and a JSON round
// trip was most of its time. Unexported fields (netip's) are values copied
// whole.
func Clone(o Object) Object {
	if o == nil {
		return nil
	}
	v := reflect.ValueOf(o)
	return deepCopy(v).Interface().(Object)
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(deepCopy(v.Elem()))
		return c
	case reflect.Struct:
		c := reflect.New(v.Type()).Elem()
		c.Set(v) // value fields, unexported ones included
		for i := range v.NumField() {
			if f := c.Field(i); f.CanSet() && needsCopy(f.Kind()) {
				f.Set(deepCopy(v.Field(i)))
			}
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		if !needsCopy(v.Type().Elem().Kind()) {
			reflect.Copy(c, v)
			return c
		}
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Map:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return c
	case reflect.Array:
		if !needsCopy(v.Type().Elem().Kind()) {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Interface:
		if v.IsNil() {
			return reflect.Zero(v.Type())
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(deepCopy(v.Elem()))
		return c
	}
	return v
}

// needsCopy is whether a value of kind k may share memory when assigned.
func needsCopy(k reflect.Kind) bool {
	switch k {
	case reflect.Pointer, reflect.Struct, reflect.Slice, reflect.Map, reflect.Array, reflect.Interface:
		return true
	}
	return false
}
