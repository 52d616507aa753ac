package nsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV is one key as listed or watched.
type KV struct {
	Key         string
	Value       []byte
	ModRevision int64
	Lease       int64
}

// Event is one change seen by a watch. A delete has no Value.
type Event struct {
	Delete bool
	KV     KV
}

// Handler receives what a watch sees. Both callbacks run on the watching
// goroutine, one at a time, in revision order.
type Handler struct {
	// Reset gives the complete set of keys under the prefix at revision rev.
	// It is called first, and again whenever the watch had to re-list (after
	// a compaction or a lost watch): the receiver replaces its whole state.
	Reset func(kvs []KV, rev int64)
	// Events gives changes after the last Reset, never twice and never with a
	// gap. All events of one etcd transaction arrive in one call; rev is the
	// revision of the last of them.
	Events func(evs []Event, rev int64)
}

// listPage bounds one range request when listing, so that a large prefix
// (10,000 ports) never makes one huge gRPC message. A page grows up to
// listPageMax for a prefix of more than 8 pages: etcd counts every key from
// a page's first to the prefix's end for each page (the response's total
// count), so listing n keys in pages of p visits about n²/2p keys — 100,000
// topology objects in pages of 1,000 cost a restarting server 1.6 s of CPU
// in etcd alone.
const (
	listPage    = 1000
	listPageMax = 10000
)

// nextPage is the size of the pages after the first, for a listing of
// total keys.
func nextPage(total int64) int64 { return min(max(total/8, listPage), listPageMax) }

// Watch lists every key under prefix at a revision R, hands them to h.Reset,
// then watches from R+1 and hands the changes to h.Events, until ctx is done
// (it then returns ctx's error). When the watch breaks — the revision it needs
// was compacted, or the server cancelled it — it lists again and calls
// h.Reset, so the receiver always converges on the store's state. This is the
// pattern of etcd's client/v3/mirror/syncer.go.
func Watch(ctx context.Context, cli *clientv3.Client, prefix string, h Handler) error {
	return (&watcher{cli: cli, log: slog.Default(), prefix: prefix, h: h}).run(ctx)
}

// watcher is Watch's state; beforeWatch lets tests widen the window between
// the list and the watch (to make a compaction fall into it).
type watcher struct {
	cli         *clientv3.Client
	log         *slog.Logger
	prefix      string
	end         string // when set, the range [prefix, end) instead of the prefix
	h           Handler
	beforeWatch func(rev int64)
	onReady     func() // called after the first Reset
}

func (w *watcher) run(ctx context.Context) error {
	backoff := 50 * time.Millisecond
	first := true
	for {
		rev, err := w.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.log.Warn("nsdb: list failed, retrying", "prefix", w.prefix, "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if first && w.onReady != nil {
			w.onReady()
		}
		first = false
		if w.beforeWatch != nil {
			w.beforeWatch(rev)
		}
		err = w.watch(ctx, rev)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.log.Info("nsdb: watch broken, re-listing", "prefix", w.prefix, "rev", rev, "err", err)
	}
}

// list reads the prefix page by page at one revision and calls Reset.
func (w *watcher) list(ctx context.Context) (int64, error) {
	end := w.rangeEnd()
	key := w.prefix
	var rev int64
	var kvs []KV
	page := int64(listPage)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(page),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := w.cli.Get(ctx, key, opts...)
		if err != nil {
			return 0, fmt.Errorf("list %s: %w", w.prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
			page = nextPage(resp.Count)
			kvs = make([]KV, 0, resp.Count)
		}
		for _, kv := range resp.Kvs {
			kvs = append(kvs, toKV(kv))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(append(resp.Kvs[len(resp.Kvs)-1].Key, 0))
	}
	w.h.Reset(kvs, rev)
	return rev, nil
}

// watch follows changes from rev+1 until the watch breaks or ctx is done.
func (w *watcher) watch(ctx context.Context, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// WithRequireLeader: a member cut off from its cluster ends the watch
	// instead of silently delivering nothing; we then re-list elsewhere.
	wch := w.cli.Watch(clientv3.WithRequireLeader(wctx), w.prefix,
		clientv3.WithRange(w.rangeEnd()), clientv3.WithRev(rev+1))
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return fmt.Errorf("compacted at %d: %w", resp.CompactRevision, rpctypes.ErrCompacted)
		}
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return errors.New("watch cancelled by the server")
		}
		if len(resp.Events) == 0 {
			continue // progress notification
		}
		evs := make([]Event, len(resp.Events))
		for i, e := range resp.Events {
			evs[i] = Event{Delete: e.Type == clientv3.EventTypeDelete, KV: toKV(e.Kv)}
		}
		w.h.Events(evs, evs[len(evs)-1].KV.ModRevision)
	}
	return errors.New("watch channel closed")
}

func (w *watcher) rangeEnd() string {
	if w.end != "" {
		return w.end
	}
	return clientv3.GetPrefixRangeEnd(w.prefix)
}

func toKV(kv *mvccpb.KeyValue) KV {
	return KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision, Lease: kv.Lease}
}
