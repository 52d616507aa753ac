package nsdb_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestVPCStoreUpdateAtomicAndMirrored(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := nsdb.OpenVPCStore(ctx, s) // a second writer on the same etcd
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Two objects in one commit; visible in the writer's mirror on return.
	_, err = a.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		if err := tx.Put("vpc-1", &vpc.Vpc{ID: "vpc-1", OwnerID: "1", CidrBlock: netip.MustParsePrefix("10.0.0.0/16")}); err != nil {
			return err
		}
		return tx.Put("subnet-1", &vpc.Subnet{ID: "subnet-1", OwnerID: "1", VpcID: "vpc-1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	a.Read(func(st *vpc.State) {
		if st.Vpcs["vpc-1"] == nil || st.Subnets["subnet-1"] == nil {
			t.Fatalf("mirror misses the commit: %+v", st)
		}
	})
	// A failing function commits nothing, even what it put first.
	boom := errors.New("boom")
	if _, err := a.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		_ = tx.Delete("vpcs", "vpc-1")
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	resp, err := s.Client().Get(ctx, s.Prefix()+"vpc/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	st, err := nsdb.DecodeVPCState(s.Prefix(), fromKVs(resp.Kvs))
	if err != nil || len(st.Vpcs) != 1 || len(st.Subnets) != 1 || st.Subnets["subnet-1"].VpcID != "vpc-1" {
		t.Fatalf("decoded %+v, %v", st, err)
	}

	// Concurrent counters from two stores: vpc-seq guards every write, so
	// no increment is lost.
	var wg sync.WaitGroup
	for _, w := range []*nsdb.VPCStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_, err := w.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
					n := len(st.Accounts)
					id := fmt.Sprintf("%012d", n)
					return tx.Put(id, &vpc.Account{ID: id})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	b.Read(func(st *vpc.State) {
		if len(st.Accounts) != 40 {
			t.Fatalf("%d accounts, want 40 (a lost update)", len(st.Accounts))
		}
	})
}

func fromKVs(kvs []*mvccpb.KeyValue) []nsdb.KV {
	out := make([]nsdb.KV, len(kvs))
	for i, kv := range kvs {
		out[i] = nsdb.KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision}
	}
	return out
}

// waitBlockedIn waits until a goroutine is blocked on a lock (a
// sync.RWMutex or Mutex) inside the function frame, as runtime.Stack names
// it.
func waitBlockedIn(t *testing.T, frame string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, frame+"(") && strings.Contains(g, "sync.(*") && strings.Contains(g, "Lock(") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine blocked on a lock in %s:\n%s", frame, buf[:n])
		}
	}
}

// TestVPCStoreUpdateInPlace checks the in-place Update: the function sees
// its own changes, readers never see an uncommitted one, and a failing or
// panicking function leaves the mirror exactly as it was.
func TestVPCStoreUpdateInPlace(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	orig := &vpc.Vpc{ID: "vpc-1", OwnerID: "1", CidrBlock: netip.MustParsePrefix("10.0.0.0/16")}
	if _, err := v.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error { return tx.Put(orig.ID, orig) }); err != nil {
		t.Fatal(err)
	}
	var before *vpc.Vpc
	v.Read(func(st *vpc.State) { before = st.Vpcs["vpc-1"] })

	// A reader started while f runs waits for f, then sees the old state
	// (vpc-1 only; during f the mirror holds vpc-2 only).
	seen := make(chan []string, 1)
	boom := errors.New("boom")
	_, err = v.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		_ = tx.Delete("vpcs", "vpc-1")
		_ = tx.Put("vpc-2", &vpc.Vpc{ID: "vpc-2", OwnerID: "1"})
		_ = tx.Put("vpc-2", &vpc.Vpc{ID: "vpc-2", OwnerID: "2"}) // twice: undo restores the first state
		if st.Vpcs["vpc-1"] != nil || st.Vpcs["vpc-2"].OwnerID != "2" || tx.State() != st {
			t.Errorf("f does not see its own changes: %v", st.Vpcs)
		}
		go v.Read(func(st *vpc.State) { seen <- slices.Sorted(maps.Keys(st.Vpcs)) })
		waitBlockedIn(t, "nsdb.(*VPCStore).Read")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if ids := <-seen; !slices.Equal(ids, []string{"vpc-1"}) {
		t.Fatalf("a reader blocked during a failing Update saw %v, want [vpc-1]", ids)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = v.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
			_ = tx.Delete("vpcs", "vpc-1")
			panic("f panics")
		})
	}()
	v.Read(func(st *vpc.State) {
		if len(st.Vpcs) != 1 || st.Vpcs["vpc-1"] != before {
			t.Fatalf("the mirror changed after failed Updates: %v", st.Vpcs)
		}
	})
	// The store is still usable (the lock was released after the panic).
	if _, err := v.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error { return tx.Delete("vpcs", "vpc-1") }); err != nil {
		t.Fatal(err)
	}
	v.Read(func(st *vpc.State) {
		if len(st.Vpcs) != 0 {
			t.Fatalf("delete not mirrored: %v", st.Vpcs)
		}
	})
}
