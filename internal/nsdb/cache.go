package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// cache mirrors the topo/ prefix (and topo-seq) in memory. The watching
// goroutine is its only writer; readers and transaction builders hold mu for
// reading.
type cache struct {
	prefix string // the store's prefix; keys are prefix+"topo/<kind>/<id>"
	log    *slog.Logger

	mu     sync.RWMutex
	idx    *topology.Index
	keys   map[uint32]string // tunnel key → port id, for O(1) allocation checks
	maxKey uint32            // highest key handed out, where allocation resumes
	rev    int64             // revision the cache reflects
	seqRev int64             // mod revision of topo-seq (0 when absent)
	resets int               // how many times the cache was rebuilt from a list
	// changed is closed (and replaced) whenever rev moves, to wake waiters.
	changed chan struct{}
}

func newCache(prefix string, log *slog.Logger) *cache {
	return &cache{prefix: prefix, log: log, idx: topology.NewIndex(), keys: map[uint32]string{}, changed: make(chan struct{})}
}

func (c *cache) seqKey() string  { return c.prefix + "topo-seq" }
func (c *cache) topoPfx() string { return c.prefix + "topo/" }

// objectKey is the etcd key of an object.
func objectKey(prefix string, k topology.Kind, id string) string {
	return prefix + "topo/" + string(k) + "/" + id
}

// decode parses a topo/ key and value into an object with its Revision set.
func (c *cache) decode(kv KV) (topology.Object, error) {
	kind, id, ok := strings.Cut(strings.TrimPrefix(kv.Key, c.topoPfx()), "/")
	o := topology.New(topology.Kind(kind))
	if !ok || o == nil || id == "" {
		return nil, fmt.Errorf("unknown key %q", kv.Key)
	}
	if err := json.Unmarshal(kv.Value, o); err != nil {
		return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	// The key is the truth for the id; the revision is etcd's, never the JSON's.
	o.GetMeta().ID = id
	o.GetMeta().Revision = kv.ModRevision
	return o, nil
}

func (c *cache) handler() Handler {
	return Handler{Reset: c.reset, Events: c.apply}
}

func (c *cache) reset(kvs []KV, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx = topology.NewIndex()
	c.keys = map[uint32]string{}
	c.maxKey = 0
	c.seqRev = 0
	for _, kv := range kvs {
		c.putLocked(kv)
	}
	c.resets++
	c.advanceLocked(rev)
}

func (c *cache) apply(evs []Event, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range evs {
		if e.Delete {
			c.deleteLocked(e.KV.Key)
		} else {
			c.putLocked(e.KV)
		}
	}
	c.advanceLocked(rev)
}

func (c *cache) putLocked(kv KV) {
	if kv.Key == c.seqKey() {
		c.seqRev = kv.ModRevision
		return
	}
	o, err := c.decode(kv)
	if err != nil {
		// A value this version cannot read must not stop the cache; it is
		// logged once per change so an operator can find it.
		c.log.Error("nsdb: skipping undecodable object", "key", kv.Key, "err", err)
		return
	}
	c.deleteLocked(kv.Key) // releases the old tunnel key, if any
	c.idx.Put(o)
	if p, ok := o.(*topology.Port); ok && p.TunnelKey != 0 {
		c.keys[p.TunnelKey] = p.ID
		c.maxKey = max(c.maxKey, p.TunnelKey)
	}
}

func (c *cache) deleteLocked(key string) {
	if key == c.seqKey() {
		c.seqRev = 0
		return
	}
	kind, id, ok := strings.Cut(strings.TrimPrefix(key, c.topoPfx()), "/")
	if !ok {
		return
	}
	k := topology.Kind(kind)
	if p, ok := c.idx.Get(k, id).(*topology.Port); ok && c.keys[p.TunnelKey] == p.ID {
		delete(c.keys, p.TunnelKey)
	}
	c.idx.Delete(k, id)
}

func (c *cache) advanceLocked(rev int64) {
	if rev > c.rev || c.rev == 0 {
		c.rev = rev
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitFor blocks until cond holds on the cache (checked under the read lock)
// or ctx is done.
func (c *cache) waitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.RLock()
		ok, ch := cond(), c.changed
		c.mu.RUnlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the cache: %w", ctx.Err())
		}
	}
}

// waitRev waits until the cache reflects revision rev.
func (c *cache) waitRev(ctx context.Context, rev int64) error {
	return c.waitFor(ctx, func() bool { return c.rev >= rev })
}

// waitSeq waits until the cache has seen topo-seq at revision seq or later.
func (c *cache) waitSeq(ctx context.Context, seq int64) error {
	return c.waitFor(ctx, func() bool { return c.seqRev >= seq })
}
