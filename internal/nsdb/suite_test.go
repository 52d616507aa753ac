package nsdb_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// opener gives a test its stores: the first call returns a store on an
// empty etcd namespace, later calls more stores on the same etcd and prefix
// (other processes, as far as the store can tell).
// mods change the config of the store being opened.
type opener func(mods ...func(nsdb.Config) nsdb.Config) *nsdb.Store

// backend makes an opener for one test.
type backend func(t *testing.T) opener

// runStoreSuite runs every component test against one kind of etcd.
func runStoreSuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		f    func(t *testing.T, open opener)
	}{
		{"CRUDEveryKind", testCRUDEveryKind},
		{"RevisionMismatch", testRevisionMismatch},
		{"TunnelKeys", testTunnelKeys},
		{"LinkUnlink", testLinkUnlink},
		{"CascadesAndRefusals", testCascadesAndRefusals},
		{"TxnAllOrNothing", testTxnAllOrNothing},
		{"BigTransaction", testBigTransaction},
		{"ConcurrentCounters", testConcurrentCounters},
		{"ConcurrentDeleteVsAttach", testConcurrentDeleteVsAttach},
		{"ParallelWriters", testParallelWriters},
		{"SecondStoreSeesWrites", testSecondStoreSeesWrites},
		{"WatchNoGapNoDuplicate", testWatchNoGapNoDuplicate},
		{"WatchRelistsAfterCompaction", testWatchRelistsAfterCompaction},
		{"CacheRelistsAfterCompaction", testCacheRelistsAfterCompaction},
		{"HostLease", testHostLease},
		{"TableEntries", testTableEntries},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, b(t)) })
	}
	checkNoLeaks(t)
}

func TestEmbedded(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) opener {
		var endpoint string
		return func(mods ...func(nsdb.Config) nsdb.Config) *nsdb.Store {
			apply := func(cfg nsdb.Config) nsdb.Config {
				for _, m := range mods {
					cfg = m(cfg)
				}
				return cfg
			}
			if endpoint == "" {
				// The first store of a test embeds etcd (on fresh ports,
				// again if one was taken meanwhile); the others are its
				// clients.
				s, cfg := nsdbtest.OpenEmbeddedWith(t, apply)
				endpoint = cfg.ClientURL
				return s
			}
			return nsdbtest.Open(t, apply(nsdb.Config{Endpoints: []string{endpoint}}))
		}
	})
}

func TestExternalCluster(t *testing.T) {
	c := nsdbtest.StartCluster(t, 3)
	unsafe := regexp.MustCompile(`[^A-Za-z0-9]+`)
	runStoreSuite(t, func(t *testing.T) opener {
		// One cluster for all tests; each test gets its own key prefix.
		prefix := "/canopy-test/" + unsafe.ReplaceAllString(t.Name(), "-") + "/"
		return func(mods ...func(nsdb.Config) nsdb.Config) *nsdb.Store {
			cfg := nsdb.Config{Endpoints: c.Endpoints, Prefix: prefix}
			for _, m := range mods {
				cfg = m(cfg)
			}
			return nsdbtest.Open(t, cfg)
		}
	})
}

// checkNoLeaks fails if a goroutine running this package's code is still
// alive once every store of the test has been closed.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaks := nsdbGoroutines()
		if leaks == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left running:\n%s", leaks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nsdbGoroutines() string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		// Frames of package nsdb itself (not nsdb_test, not nsdbtest).
		if strings.Contains(g, "canopy/internal/nsdb.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks := nsdbGoroutines(); leaks != "" {
			time.Sleep(time.Second)
			if leaks = nsdbGoroutines(); leaks != "" {
				fmt.Fprintf(os.Stderr, "goroutines left running:\n%s\n", leaks)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// ctxT is a context bounded so that a hang fails the test instead of the run.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dump returns every key under the store's topology (and topo-seq) with its
// value and mod revision: two equal dumps mean nothing was written.
func dump(t *testing.T, s *nsdb.Store) map[string]string {
	t.Helper()
	resp, err := s.Client().Get(ctxT(t), s.Prefix()+"topo", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = fmt.Sprintf("%d %s", kv.ModRevision, kv.Value)
	}
	return out
}

func sameDump(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("store changed: %d keys before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("store changed at %s:\nbefore %s\nafter  %s", k, v, after[k])
		}
	}
}
