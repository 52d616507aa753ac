package nsdb_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestUnavailableMapping: the etcd errors that mean "cannot answer now"
// become ErrUnavailable (keeping the original in the chain); everything else
// keeps its meaning.
func TestUnavailableMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.DeadlineExceeded, true},
		{fmt.Errorf("reading access key: %w", context.DeadlineExceeded), true},
		{rpctypes.ErrNoLeader, true},
		{rpctypes.ErrTimeout, true},
		{rpctypes.ErrTimeoutDueToLeaderFail, true},
		{rpctypes.ErrTimeoutDueToConnectionLost, true},
		{rpctypes.ErrLeaderChanged, true},
		{rpctypes.ErrStopped, true},
		{rpctypes.ErrTooManyRequests, true},
		{status.Error(codes.Unavailable, "connection refused"), true},
		{status.Error(codes.DeadlineExceeded, "deadline"), true},
		// A member's own wait ran out just before the client's deadline.
		{status.Error(codes.Unknown, "context deadline exceeded"), true},
		{status.Error(codes.Unknown, "context canceled"), false},
		{status.Error(codes.Unknown, "something else"), false},
		{context.Canceled, false}, // the caller gave up
		{rpctypes.ErrCompacted, false},
		{rpctypes.ErrPermissionDenied, false},
		{status.Error(codes.InvalidArgument, "bad"), false},
		{nsdb.ErrNotFound, false},
		{&topology.FieldError{Field: "name", Reason: "bad"}, false},
	} {
		got := nsdb.Unavailable(tc.err)
		if errors.Is(got, nsdb.ErrUnavailable) != tc.want {
			t.Errorf("%v: unavailable = %v, want %v", tc.err, errors.Is(got, nsdb.ErrUnavailable), tc.want)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%v: the original error is lost: %v", tc.err, got)
		}
		if tc.want && nsdb.Unavailable(got) != got {
			t.Errorf("%v: wrapped twice", tc.err)
		}
	}
	if nsdb.Unavailable(nil) != nil {
		t.Error("nil must stay nil")
	}
}

// bounded runs f and fails the test if it has not returned within limit: a
// hang detector, not a timing assertion (the bound is far above the store's
// own deadlines).
func bounded(t *testing.T, what string, limit time.Duration, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		t.Logf("%s: %v after %s", what, err, time.Since(start).Round(time.Millisecond))
		return err
	case <-time.After(limit):
		t.Fatalf("%s: no answer within %s", what, limit)
		return nil
	}
}

// TestQuorumLoss: on a 3-member cluster with two members gone — frozen
// (SIGSTOP: connections stay open, nothing answers, like hung hosts or a
// partition) or killed (connections refused, like crashed hosts) — every
// store call returns ErrUnavailable instead of hanging, Health says so, reads
// served from the cache still answer; once the members are back, the same
// Store works again by itself and nothing written before is lost.
func TestQuorumLoss(t *testing.T) {
	for _, mode := range []struct {
		name       string
		stop, back func(c *nsdbtest.Cluster, t testing.TB, i int)
	}{
		{"frozen", (*nsdbtest.Cluster).Pause, (*nsdbtest.Cluster).Resume},
		{"killed", (*nsdbtest.Cluster).Kill, (*nsdbtest.Cluster).Restart},
	} {
		t.Run(mode.name, func(t *testing.T) { testQuorumLoss(t, mode.stop, mode.back) })
	}
}

func testQuorumLoss(t *testing.T, stop, back func(c *nsdbtest.Cluster, t testing.TB, i int)) {
	c := nsdbtest.StartCluster(t, 3)
	s := nsdbtest.Open(t, nsdb.Config{Endpoints: c.Endpoints})
	before := create(t, s, &topology.Router{Meta: topology.Meta{Name: "before"}})
	if err := s.Health(ctxT(t)); err != nil {
		t.Fatalf("healthy cluster: %v", err)
	}

	stop(c, t, 1)
	stop(c, t, 2)
	resumed := false
	resume := func() {
		if !resumed {
			back(c, t, 1)
			back(c, t, 2)
			resumed = true
		}
	}
	defer resume()

	wantUnavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, nsdb.ErrUnavailable) {
			t.Errorf("%s without quorum: %v, want ErrUnavailable", what, err)
		}
	}
	limit := nsdb.CallTimeout + 5*time.Second
	wantUnavailable("Health", bounded(t, "Health", limit, func() error { return s.Health(context.Background()) }))
	// As an API request does it: with the request's budget.
	wantUnavailable("Create", bounded(t, "Create", limit, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), nsdb.RequestTimeout)
		defer cancel()
		_, err := s.Create(ctx, &topology.Router{Meta: topology.Meta{Name: "during"}})
		return err
	}))
	// Without a deadline of the caller's: CallTimeout bounds it.
	wantUnavailable("Sync", bounded(t, "Sync", limit, func() error { return s.Sync(context.Background()) }))
	wantUnavailable("client Get", bounded(t, "client Get", limit, func() error {
		_, err := s.Client().Get(context.Background(), s.Prefix()+"topo-seq")
		return err
	}))
	// The cache still answers: the last state this store saw.
	if _, err := s.Get(ctxT(t), topology.KindRouter, before.ID); err != nil {
		t.Errorf("cached read without quorum: %v", err)
	}

	resume()
	deadline := time.Now().Add(60 * time.Second)
	for s.Health(ctxT(t)) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store not healthy 60 s after the members continued: %v\n%s", s.Health(ctxT(t)), c.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var after *topology.Router
	for after == nil {
		o, err := s.Create(ctxT(t), &topology.Router{Meta: topology.Meta{Name: "after"}})
		switch {
		case err == nil:
			after = o.(*topology.Router)
		case !errors.Is(err, nsdb.ErrUnavailable) || time.Now().After(deadline):
			t.Fatalf("create after recovery: %v", err)
		}
	}
	// A fresh store (another process, as far as etcd can tell) sees both:
	// nothing written before the outage was lost. ("during" may be there
	// too: a write that timed out had reached a frozen member, which
	// committed it once it continued — a timeout is an unknown outcome.)
	s2 := nsdbtest.Open(t, nsdb.Config{Endpoints: c.Endpoints})
	routers, err := s2.List(ctxT(t), topology.KindRouter)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range routers {
		names = append(names, o.GetMeta().Name)
	}
	if !contains(names, "before") || !contains(names, "after") {
		t.Errorf("routers after recovery: %v, want before and after", names)
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
