package nsdb_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// recorder is a watch receiver that checks ordering as it goes.
type recorder struct {
	mu      sync.Mutex
	state   map[string]string
	rev     int64
	listRev int64 // revision of the last Reset
	resets  int
	seen    map[int64]bool // revisions delivered as events
	dupes   []string
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{seen: map[int64]bool{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) handler() nsdb.Handler {
	return nsdb.Handler{
		Reset: func(kvs []nsdb.KV, rev int64) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.state = map[string]string{}
			for _, kv := range kvs {
				r.state[kv.Key] = string(kv.Value)
			}
			r.rev, r.listRev = rev, rev
			r.resets++
			r.poke()
		},
		Events: func(evs []nsdb.Event, rev int64) {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, e := range evs {
				// Every event is newer than what the receiver has: a
				// duplicate or a replay would be at or below it.
				if e.KV.ModRevision <= r.rev {
					r.dupes = append(r.dupes, fmt.Sprintf("%s at %d after %d", e.KV.Key, e.KV.ModRevision, r.rev))
				}
				r.seen[e.KV.ModRevision] = true
				if e.Delete {
					delete(r.state, e.KV.Key)
				} else {
					r.state[e.KV.Key] = string(e.KV.Value)
				}
			}
			r.rev = rev
			r.poke()
		},
	}
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitState waits until the recorder holds exactly what etcd holds under prefix.
func (r *recorder) waitState(t *testing.T, cli *clientv3.Client, prefix string) {
	t.Helper()
	resp, err := cli.Get(ctxT(t), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, kv := range resp.Kvs {
		want[string(kv.Key)] = string(kv.Value)
	}
	ctx := ctxT(t)
	for {
		r.mu.Lock()
		same := maps.Equal(r.state, want)
		r.mu.Unlock()
		if same {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("watcher never converged: at %d with %d keys, etcd at %d with %d keys", r.rev, len(r.state), resp.Header.Revision, len(want))
		}
	}
}

// startWatch runs a watch until the test ends and waits for it to return.
func startWatch(t *testing.T, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("watch returned %v, want context.Canceled", err)
		}
	})
}

// writeStream writes n changes under prefix from two goroutines (puts and
// deletes over a small key space) and returns the revision of each.
func writeStream(t *testing.T, cli *clientv3.Client, prefix string, n int) []int64 {
	var mu sync.Mutex
	var revs []int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 2 {
				key := fmt.Sprintf("%sk%02d", prefix, (i*7+w)%40)
				var rev int64
				if i%5 == 4 {
					resp, err := cli.Delete(ctxT(t), key)
					if err != nil {
						t.Error(err)
						return
					}
					if resp.Deleted == 0 {
						continue // nothing deleted, no event
					}
					rev = resp.Header.Revision
				} else {
					resp, err := cli.Put(ctxT(t), key, fmt.Sprintf("w%d-%d", w, i))
					if err != nil {
						t.Error(err)
						return
					}
					rev = resp.Header.Revision
				}
				mu.Lock()
				revs = append(revs, rev)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return revs
}

func testWatchNoGapNoDuplicate(t *testing.T, open opener) {
	s := open()
	cli := s.Client()
	prefix := s.Prefix() + "w/"
	writeStream(t, cli, prefix, 40) // some state before the watch starts
	rec := newRecorder()
	startWatch(t, func(ctx context.Context) error { return s.Watch(ctx, "w/", rec.handler()) })
	revs := writeStream(t, cli, prefix, 400)
	rec.waitState(t, cli, prefix)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.dupes) > 0 {
		t.Fatalf("duplicate or out-of-order events: %v", rec.dupes)
	}
	if rec.resets != 1 {
		t.Fatalf("%d resets without a compaction", rec.resets)
	}
	var before, missing int
	for _, rev := range revs {
		if rev <= rec.listRev {
			before++
			continue
		}
		if !rec.seen[rev] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d writes never delivered", missing, len(revs)-before)
	}
}

func testWatchRelistsAfterCompaction(t *testing.T, open opener) {
	s := open()
	cli := s.Client()
	prefix := s.Prefix() + "c/"
	writeStream(t, cli, prefix, 40)
	listed, release := make(chan int64, 1), make(chan struct{})
	var once sync.Once
	rec := newRecorder()
	startWatch(t, func(ctx context.Context) error {
		return nsdb.WatchWithHook(ctx, cli, prefix, rec.handler(), func(rev int64) {
			// Between the first list and its watch, the history the watch
			// needs is compacted away.
			once.Do(func() {
				listed <- rev
				select {
				case <-release:
				case <-ctx.Done():
				}
			})
		})
	})
	<-listed
	writeStream(t, cli, prefix, 60)
	compactNow(t, cli)
	close(release)
	writeStream(t, cli, prefix, 60)
	rec.waitState(t, cli, prefix)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.resets < 2 {
		t.Fatalf("%d resets: the watcher did not re-list after the compaction", rec.resets)
	}
	if len(rec.dupes) > 0 {
		t.Fatalf("duplicate or out-of-order events: %v", rec.dupes)
	}
}

func compactNow(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	resp, err := cli.Get(ctxT(t), "compact-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctxT(t), resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
}

// The store's own cache re-lists by itself when it missed history.
func testCacheRelistsAfterCompaction(t *testing.T, open opener) {
	b := open()
	listed, release := make(chan int64, 1), make(chan struct{})
	var once sync.Once
	a := open(func(c nsdb.Config) nsdb.Config {
		return nsdb.WithBeforeWatch(c, func(rev int64) {
			once.Do(func() { listed <- rev; <-release })
		})
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	<-listed
	var ids []string
	for i := range 10 {
		r := create(t, b, &topology.Router{Meta: topology.Meta{Name: fmt.Sprint("r", i)}})
		ids = append(ids, r.ID)
	}
	for _, id := range ids[:3] {
		if _, err := b.Delete(ctxT(t), topology.KindRouter, id, 0); err != nil {
			t.Fatal(err)
		}
	}
	compactNow(t, b.Client())
	close(release)
	for i := range 5 {
		create(t, b, &topology.Router{Meta: topology.Meta{Name: fmt.Sprint("late", i)}})
	}
	syncStore(t, a)
	want, _ := b.List(ctxT(t), topology.KindRouter)
	got, _ := a.List(ctxT(t), topology.KindRouter)
	if len(got) != 12 || len(want) != 12 {
		t.Fatalf("a has %d routers, b %d, want 12", len(got), len(want))
	}
	for i := range want {
		if jsonOf(got[i]) != jsonOf(want[i]) {
			t.Fatalf("router %d: a has %s, b %s", i, jsonOf(got[i]), jsonOf(want[i]))
		}
	}
	if n := nsdb.CacheResets(a); n < 2 {
		t.Fatalf("cache reset %d times, want a re-list after the compaction", n)
	}
	// And a keeps working as a writer on the rebuilt cache.
	create(t, a, &topology.Router{Meta: topology.Meta{Name: "after"}})
}

// A listing of more keys than 8 first pages reads them all, once each and
// in key order, in the larger pages that follow the first (watch.go,
// nextPage).
func TestListManyPages(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	cli := s.Client()
	const n = 12345
	prefix := s.Prefix() + "listtest/"
	for i := 0; i < n; i += 100 {
		var ops []clientv3.Op
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sk%06d", prefix, j), fmt.Sprint(j)))
		}
		if _, err := cli.Txn(ctxT(t)).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan []nsdb.KV, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = nsdb.Watch(ctx, cli, prefix, nsdb.Handler{Reset: func(kvs []nsdb.KV, _ int64) {
			select {
			case got <- kvs:
			default:
			}
		}, Events: func([]nsdb.Event, int64) {}})
	}()
	var kvs []nsdb.KV
	select {
	case kvs = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("no listing")
	}
	if len(kvs) != n {
		t.Fatalf("listed %d keys, want %d", len(kvs), n)
	}
	for i, kv := range kvs {
		if want := fmt.Sprintf("%sk%06d", prefix, i); kv.Key != want || string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("key %d: %s=%s, want %s=%d", i, kv.Key, kv.Value, want, i)
		}
	}
}
