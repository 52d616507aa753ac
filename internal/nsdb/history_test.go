package nsdb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestVPCHistory reads the history of one collection between two VPC
// commits, right after they commit, on Debian's etcd (the one the e2e
// clusters run), while other watches on the same client come and go and
// other collections' histories are read at the same time: each
// round's history holds exactly that round's changes of that collection,
// in order. (An audit that ended its read at a progress notification read
// an empty history: etcd 3.4 answers a progress request with its current
// revision even for a watch that has not caught up.)
func TestVPCHistory(t *testing.T) {
	cluster := nsdbtest.StartCluster(t, 1)
	s := nsdbtest.Open(t, nsdb.Config{Endpoints: cluster.Endpoints})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	vs, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	put := func(f func(tx *nsdb.VPCTx) error) {
		t.Helper()
		if _, err := vs.Update(ctx, func(_ *vpc.State, tx *nsdb.VPCTx) error { return f(tx) }); err != nil {
			t.Fatal(err)
		}
	}
	// Watches of the same client start and stop throughout.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for wctx.Err() == nil {
			c, done := context.WithTimeout(wctx, 20*time.Millisecond)
			_ = s.WatchVPCCollection(c, "instances", func() {})
			done()
		}
	}()
	for round := range 20 {
		from, err := s.VPCSeqRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("nat-%017d", round)
		var want []string
		for _, state := range []string{vpc.StatePending, vpc.StateAvailable, vpc.StateDeleting, vpc.StateDeleted} {
			put(func(tx *nsdb.VPCTx) error {
				// Another collection's change in the same commit and alone.
				if err := tx.Put(fmt.Sprintf("i-%017d", round), &vpc.Instance{ID: fmt.Sprintf("i-%017d", round), State: state}); err != nil {
					return err
				}
				return tx.Put(id, &vpc.NatGateway{ID: id, State: state})
			})
			put(func(tx *nsdb.VPCTx) error {
				return tx.Put(fmt.Sprintf("vpc-%017d", round), &vpc.Vpc{ID: fmt.Sprintf("vpc-%017d", round), State: state})
			})
			want = append(want, state)
		}
		put(func(tx *nsdb.VPCTx) error { return tx.Delete("nat_gateways", id) })
		want = append(want, "(removed)")
		to, err := s.VPCSeqRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Audits of other collections at the same time, on the same client.
		var wg sync.WaitGroup
		for _, coll := range []string{"instances", "vpcs"} {
			wg.Go(func() {
				if _, err := s.VPCHistory(ctx, coll, from, to); err != nil {
					t.Error(err)
				}
			})
		}
		hist, err := s.VPCHistory(ctx, "nat_gateways", from, to)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		last := from
		for _, h := range hist {
			if h.ID != id || h.Revision <= last || h.Revision > to {
				t.Fatalf("round %d: %s at %d (from %d, to %d, previous %d)", round, h.ID, h.Revision, from, to, last)
			}
			last = h.Revision
			if h.Value == nil {
				got = append(got, "(removed)")
				continue
			}
			var o struct{ State string }
			if err := json.Unmarshal(h.Value, &o); err != nil {
				t.Fatal(err)
			}
			got = append(got, o.State)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: history %v, want %v", round, got, want)
		}
	}
}
