package nsdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TopologyEvent is one change to a topology object.
type TopologyEvent struct {
	Key    topology.ObjectKey
	Delete bool
	Value  []byte // the object's JSON (none for a delete)
}

// WatchTopologyFrom watches the topology objects from revision from without
// listing first (for a reader that already holds the state at from-1),
// handing f the changes one revision (one transaction) at a time, in order.
// It returns when ctx ends or the watch breaks (a compaction, a
// cancellation, a lost leader), saying why; the caller re-reads and
// watches again.
func (s *Store) WatchTopologyFrom(ctx context.Context, from int64, f func(rev int64, evs []TopologyEvent)) error {
	pfx := s.prefix + "topo/"
	wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), pfx, clientv3.WithPrefix(), clientv3.WithRev(from))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("topology watch compacted at %d", resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return errors.New("topology watch cancelled by the server")
		}
		var batch []TopologyEvent
		var rev int64
		for _, ev := range resp.Events {
			if r := ev.Kv.ModRevision; r != rev {
				if len(batch) > 0 {
					f(rev, batch)
				}
				batch, rev = nil, r
			}
			kind, id, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), pfx), "/")
			if !ok {
				continue
			}
			batch = append(batch, TopologyEvent{Key: topology.ObjectKey{Kind: topology.Kind(kind), ID: id},
				Delete: ev.Type == clientv3.EventTypeDelete, Value: ev.Kv.Value})
		}
		if len(batch) > 0 {
			f(rev, batch)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("topology watch closed")
}
