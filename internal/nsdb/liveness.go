package nsdb

import (
	"context"
	"strings"
)

// WatchAliveHosts follows which hosts' agents are alive (hold their
// liveness key, state/host/<id>) until ctx is done: h gets the whole set
// first, and again after every change.
func (s *Store) WatchAliveHosts(ctx context.Context, h func(alive map[string]bool)) error {
	pfx := s.prefix + "state/host/"
	alive := map[string]bool{}
	id := func(key string) (string, bool) {
		rest := strings.TrimPrefix(key, pfx)
		return rest, rest != "" && !strings.Contains(rest, "/")
	}
	copyOf := func() map[string]bool {
		out := make(map[string]bool, len(alive))
		for k := range alive {
			out[k] = true
		}
		return out
	}
	return s.Watch(ctx, "state/host/", Handler{
		Reset: func(kvs []KV, _ int64) {
			alive = map[string]bool{}
			for _, kv := range kvs {
				if h, ok := id(kv.Key); ok {
					alive[h] = true
				}
			}
			h(copyOf())
		},
		Events: func(evs []Event, _ int64) {
			changed := false
			for _, e := range evs {
				hid, ok := id(e.KV.Key)
				if !ok {
					continue
				}
				if e.Delete {
					changed = changed || alive[hid]
					delete(alive, hid)
				} else {
					changed = changed || !alive[hid]
					alive[hid] = true
				}
			}
			if changed {
				h(copyOf())
			}
		},
	})
}
