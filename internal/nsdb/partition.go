package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Partitions let an agent follow only the part of the topology its ports
// can reach (DESIGN.md §4). Every topology object is also stored, in the
// same transaction, under the partition of its VPC (topology.LabelVPC), or
// under CloudPartition when it has none: the edge, the transit bridge, hosts,
// tunnel zones, and whatever an operator made through the REST API. A bound
// port is indexed under its host with its partition as value. An agent
// watches its host's bindings, the cloud partition, and the partitions of
// its bound ports: nothing of a VPC it has no port in reaches it.
//
// A route on a router of another partition (an elastic IP's /32 on the
// edge router, which is the cloud's) is copied into its router's partition
// too: whoever follows the router knows where that route leads and that it
// leads into a partition it may not hold, so a simulation taking it can ask
// for that partition instead of dropping the packet (agent/replica.go).
//
//	part/<partition>/<kind>/<id>   copy of topo/<kind>/<id>
//	index/binding/<host>/<port>    the port's partition
//	index/version                  indexVersion once every object written before is indexed

// CloudPartition is the partition of the objects of no VPC.
const CloudPartition = "-"

// indexVersion is the value of index/version once IndexTopology has run
// ("2": routes are copied into their router's partition too).
const indexVersion = "2"

// PartitionOf is the partition o is kept in.
func PartitionOf(o topology.Object) string {
	p := o.GetMeta().Labels[topology.LabelVPC]
	if p == "" || p == CloudPartition || checkID(p) != nil {
		return CloudPartition
	}
	return p
}

func partitionPrefix(prefix, part string) string { return prefix + "part/" + part + "/" }

func bindingPrefix(prefix, host string) string { return prefix + "index/binding/" + host + "/" }

// CopyPartitions are the partitions o is copied into: its own, and for a
// route on a router of another partition, the router's as well. router
// finds the route's router (nil: unknown, no second copy).
func CopyPartitions(o topology.Object, router func(id string) topology.Object) []string {
	own := PartitionOf(o)
	if rt, ok := o.(*topology.Route); ok && router != nil {
		if r := router(rt.RouterID); r != nil {
			if rp := PartitionOf(r); rp != own {
				return []string{own, rp}
			}
		}
	}
	return []string{own}
}

// partitionOps keeps an object's partition copies and its binding index in
// step with a change from old (copied into oldParts) to o (into newParts,
// value being its stored JSON); either may be nil.
func partitionOps(prefix string, key topology.ObjectKey, old, o topology.Object, oldParts, newParts []string, value string) []clientv3.Op {
	var ops []clientv3.Op
	for _, p := range oldParts {
		if o == nil || !slices.Contains(newParts, p) {
			ops = append(ops, clientv3.OpDelete(partitionPrefix(prefix, p)+string(key.Kind)+"/"+key.ID))
		}
	}
	if o != nil {
		for _, p := range newParts {
			ops = append(ops, clientv3.OpPut(partitionPrefix(prefix, p)+string(key.Kind)+"/"+key.ID, value))
		}
	}
	oldPart, newPart := "", ""
	if old != nil {
		oldPart = PartitionOf(old)
	}
	if o != nil {
		newPart = PartitionOf(o)
	}
	oldHost, newHost := boundHost(old), boundHost(o)
	if oldHost != "" && oldHost != newHost {
		ops = append(ops, clientv3.OpDelete(bindingPrefix(prefix, oldHost)+key.ID))
	}
	if newHost != "" && (newHost != oldHost || newPart != oldPart) {
		ops = append(ops, clientv3.OpPut(bindingPrefix(prefix, newHost)+key.ID, newPart))
	}
	return ops
}

func boundHost(o topology.Object) string {
	if p, ok := o.(*topology.Port); ok {
		return p.HostID
	}
	return ""
}

// IndexTopology writes the partition copies (topology and VPC objects),
// bindings and referrer index keys of every object stored before they existed (an upgraded store), once:
// index/version records it is done. Each batch is guarded by its objects'
// revisions, so a concurrent writer (which indexes its own writes) is never
// overwritten with a stale copy. A server runs it at start; it is idempotent.
func (s *Store) IndexTopology(ctx context.Context) error {
	vkey := s.prefix + "index/version"
	resp, err := s.cli.Get(ctx, vkey)
	if err != nil {
		return unavailable(fmt.Errorf("index version: %w", err))
	}
	if len(resp.Kvs) > 0 && string(resp.Kvs[0].Value) == indexVersion {
		return nil
	}
	if err := s.indexVPC(ctx); err != nil {
		return err
	}
	const batch = 200
	for attempt := 0; ; attempt++ {
		if attempt == maxAttempts {
			return &topology.ConflictError{Reason: "indexing the topology: the store is changing too fast"}
		}
		if err := s.Sync(ctx); err != nil {
			return err
		}
		var objs []topology.Object
		routers := map[string]topology.Object{}
		s.cache.mu.RLock()
		for _, k := range topology.Kinds {
			objs = append(objs, s.cache.idx.List(k)...)
		}
		for _, r := range s.cache.idx.List(topology.KindRouter) {
			routers[r.GetMeta().ID] = r
		}
		s.cache.mu.RUnlock()
		stale := false
		for i := 0; i < len(objs); i += batch {
			var cmps []clientv3.Cmp
			var ops []clientv3.Op
			for _, o := range objs[i:min(i+batch, len(objs))] {
				key := topology.Key(o)
				c := *o.GetMeta()
				b, err := encode(topology.Clone(o)) // the cache's object is shared: not even briefly modified
				if err != nil {
					return err
				}
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(objectKey(s.prefix, key.Kind, key.ID)), "=", c.Revision))
				parts := CopyPartitions(o, func(id string) topology.Object { return routers[id] })
				ops = append(ops, partitionOps(s.prefix, key, nil, o, nil, parts, b)...)
				seen := map[string]bool{}
				for _, r := range o.Refs() {
					if k := refIndexKey(s.prefix, topology.ObjectKey{Kind: r.Kind, ID: r.ID}, key); !seen[k] {
						seen[k] = true
						ops = append(ops, clientv3.OpPut(k, ""))
					}
				}
				if p, ok := o.(*topology.Port); ok && p.TunnelKey != 0 {
					ops = append(ops, clientv3.OpPut(tunnelClaimKey(s.prefix, p.TunnelKey), p.ID))
				}
			}
			r, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
			if err != nil {
				return unavailable(fmt.Errorf("indexing the topology: %w", err))
			}
			if !r.Succeeded {
				stale = true
				break
			}
		}
		if !stale {
			break
		}
	}
	if _, err := s.cli.Put(ctx, vkey, indexVersion); err != nil {
		return unavailable(fmt.Errorf("index version: %w", err))
	}
	return nil
}

// encode is an object's stored JSON: the revision lives in etcd's
// ModRevision, not in the value. It briefly clears o's Revision: o must be
// the caller's own.
func encode(o topology.Object) (string, error) {
	m := o.GetMeta()
	rev := m.Revision
	m.Revision = 0
	b, err := json.Marshal(o)
	m.Revision = rev
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", topology.Key(o), err)
	}
	return string(b), nil
}

// WatchHostBindings follows the ports bound to host (port id → partition)
// until ctx is done: h gets the whole set first, and again after every
// change.
func (s *Store) WatchHostBindings(ctx context.Context, host string, h func(bound map[string]string)) error {
	pfx := bindingPrefix(s.prefix, host)
	bound := map[string]string{}
	copyOf := func() map[string]string {
		out := make(map[string]string, len(bound))
		for k, v := range bound {
			out[k] = v
		}
		return out
	}
	return s.Watch(ctx, strings.TrimPrefix(pfx, s.prefix), Handler{
		Reset: func(kvs []KV, _ int64) {
			bound = map[string]string{}
			for _, kv := range kvs {
				bound[strings.TrimPrefix(kv.Key, pfx)] = string(kv.Value)
			}
			h(copyOf())
		},
		Events: func(evs []Event, _ int64) {
			for _, e := range evs {
				if e.Delete {
					delete(bound, strings.TrimPrefix(e.KV.Key, pfx))
				} else {
					bound[strings.TrimPrefix(e.KV.Key, pfx)] = string(e.KV.Value)
				}
			}
			h(copyOf())
		},
	})
}

// WatchPartition runs Watch on the copies of one partition's objects. Their
// keys end in "<kind>/<id>", like topo/'s (TopologyObject decodes either).
func (s *Store) WatchPartition(ctx context.Context, part string, h Handler) error {
	return s.Watch(ctx, strings.TrimPrefix(partitionPrefix(s.prefix, part), s.prefix), h)
}

// WatchTopology runs Watch on the whole topology (topo/).
func (s *Store) WatchTopology(ctx context.Context, h Handler) error {
	return s.Watch(ctx, TopologyRel, h)
}

// TopologyObject decodes a watched topology key (under topo/ or a
// partition) into its kind, id and object (nil for a delete or a value this
// version cannot read), with the object's Revision set.
func TopologyObject(kv KV) (topology.Kind, string, topology.Object) {
	i := strings.LastIndexByte(kv.Key, '/')
	if i < 0 {
		return "", "", nil
	}
	j := strings.LastIndexByte(kv.Key[:i], '/')
	k, id := topology.Kind(kv.Key[j+1:i]), kv.Key[i+1:]
	if kv.Value == nil {
		return k, id, nil
	}
	o := topology.New(k)
	if o == nil || json.Unmarshal(kv.Value, o) != nil {
		return k, id, nil
	}
	o.GetMeta().ID = id
	o.GetMeta().Revision = kv.ModRevision
	return k, id, o
}
