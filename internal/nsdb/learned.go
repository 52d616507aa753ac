package nsdb

import (
	"context"
	"fmt"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Learned tables are network state, not host state (DESIGN.md §5.7): what
// one agent learns — a bridge's MAC → port entry, a router's IP → MAC ARP
// entry — every agent replicating the device must see. Each host publishes
// what it learned under its own prefix,
//
//	state/learned/<host id>/<device kind>/<device id>/<key>  →  value
//
// bound to its liveness lease, so there is one writer per key (an agent's
// credentials need write access to its own prefix only) and a dead agent's
// entries vanish with it. When two hosts hold an entry for the same
// (device, key) — a MAC that moved from a port on one host to a port on
// another — the one written last (the higher mod revision) is the truth,
// and the host whose entry lost deletes it.

const learnedRel = "state/learned/"

// LearnedEntry is one published entry.
type LearnedEntry struct {
	Host   string        // the host that learned it, and the only one that writes it
	Kind   topology.Kind // KindBridge: a MAC table; KindRouter: an ARP cache
	Device string
	Key    string // a MAC (bridge) or an IPv4 address (router)
	Value  string // a port id (bridge) or a MAC (router)
	// Revision is the entry's mod revision, as listed or watched.
	Revision int64
}

// LearnedEvent is a change to one entry; a deletion carries no Value.
type LearnedEvent struct {
	Delete bool
	Entry  LearnedEntry
}

// LearnedHandler receives the learned tables of every host, as Handler does
// for raw keys: Reset with everything (first, and after a re-list), then
// Events in revision order.
type LearnedHandler struct {
	Reset  func(es []LearnedEntry, rev int64)
	Events func(evs []LearnedEvent, rev int64)
}

func (s *Store) learnedKey(e *LearnedEntry) (string, error) {
	if e.Kind != topology.KindBridge && e.Kind != topology.KindRouter {
		return "", &topology.FieldError{Field: "kind", Reason: "learned tables belong to bridges and routers"}
	}
	for _, part := range []struct{ name, v string }{{"host", e.Host}, {"device", e.Device}, {"key", e.Key}} {
		if part.v == "" {
			return "", &topology.FieldError{Field: part.name, Reason: "is required"}
		}
		if err := checkID(part.v); err != nil {
			return "", &topology.FieldError{Field: part.name, Reason: err.(*topology.FieldError).Reason}
		}
	}
	return s.prefix + learnedRel + e.Host + "/" + string(e.Kind) + "/" + e.Device + "/" + e.Key, nil
}

// PutLearned publishes e for its host, bound to lease (nil: no lease).
func (s *Store) PutLearned(ctx context.Context, e LearnedEntry, lease *Lease) (int64, error) {
	k, err := s.learnedKey(&e)
	if err != nil {
		return 0, err
	}
	var opts []clientv3.OpOption
	if lease != nil {
		opts = append(opts, clientv3.WithLease(lease.id))
	}
	resp, err := s.cli.Put(ctx, k, e.Value, opts...)
	if err != nil {
		return 0, fmt.Errorf("learned %s %s/%s: %w", e.Kind, e.Device, e.Key, err)
	}
	return resp.Header.Revision, nil
}

// DeleteLearned withdraws e (its value is ignored) and returns the
// revision of the deletion.
func (s *Store) DeleteLearned(ctx context.Context, e LearnedEntry) (int64, error) {
	k, err := s.learnedKey(&e)
	if err != nil {
		return 0, err
	}
	resp, err := s.cli.Delete(ctx, k)
	if err != nil {
		return 0, fmt.Errorf("learned %s %s/%s: %w", e.Kind, e.Device, e.Key, err)
	}
	return resp.Header.Revision, nil
}

// ListLearned returns every host's learned entries and the revision read at.
func (s *Store) ListLearned(ctx context.Context) ([]LearnedEntry, int64, error) {
	pfx := s.prefix + learnedRel
	resp, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("learned tables: %w", err)
	}
	out := make([]LearnedEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if e, ok := decodeLearned(pfx, string(kv.Key), string(kv.Value), kv.ModRevision); ok {
			out = append(out, e)
		}
	}
	return out, resp.Header.Revision, nil
}

// WatchLearned follows every host's learned entries until ctx is done.
func (s *Store) WatchLearned(ctx context.Context, h LearnedHandler) error {
	pfx := s.prefix + learnedRel
	return s.Watch(ctx, learnedRel, Handler{
		Reset: func(kvs []KV, rev int64) {
			es := make([]LearnedEntry, 0, len(kvs))
			for _, kv := range kvs {
				if e, ok := decodeLearned(pfx, kv.Key, string(kv.Value), kv.ModRevision); ok {
					es = append(es, e)
				}
			}
			h.Reset(es, rev)
		},
		Events: func(evs []Event, rev int64) {
			out := make([]LearnedEvent, 0, len(evs))
			for _, ev := range evs {
				if e, ok := decodeLearned(pfx, ev.KV.Key, string(ev.KV.Value), ev.KV.ModRevision); ok {
					out = append(out, LearnedEvent{Delete: ev.Delete, Entry: e})
				}
			}
			if len(out) > 0 {
				h.Events(out, rev)
			}
		},
	})
}

// decodeLearned parses "<host>/<kind>/<device>/<key>" under pfx; keys of
// another shape (written by something else) are skipped.
func decodeLearned(pfx, key, value string, rev int64) (LearnedEntry, bool) {
	parts := strings.Split(strings.TrimPrefix(key, pfx), "/")
	if len(parts) != 4 || parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return LearnedEntry{}, false
	}
	k := topology.Kind(parts[1])
	if k != topology.KindBridge && k != topology.KindRouter {
		return LearnedEntry{}, false
	}
	return LearnedEntry{Host: parts[0], Kind: k, Device: parts[2], Key: parts[3], Value: value, Revision: rev}, true
}
