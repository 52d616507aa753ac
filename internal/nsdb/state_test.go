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
)

// waitAlive polls HostAlive until it reports want or the deadline passes.
func waitAlive(t *testing.T, s *nsdb.Store, host string, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		alive, err := s.HostAlive(ctxT(t), host)
		if err != nil {
			t.Fatal(err)
		}
		if alive == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host %s alive=%v, want %v within %s", host, alive, want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testHostLease(t *testing.T, open opener) {
	s := open()
	const ttl = 2 * time.Second
	l, err := s.KeepHostAlive(ctxT(t), "host-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	waitAlive(t, s, "host-a", true, 0)
	if alive, _ := s.HostAlive(ctxT(t), "host-b"); alive {
		t.Fatal("a host that never announced itself is alive")
	}
	// Kept alive well past its TTL.
	time.Sleep(2 * ttl)
	waitAlive(t, s, "host-a", true, 0)
	hosts, err := s.AliveHosts(ctxT(t))
	if err != nil || !hosts["host-a"] || len(hosts) != 1 {
		t.Fatalf("alive hosts %v, %v", hosts, err)
	}
	// The agent stops refreshing (as if it died): dead within TTL + margin.
	l.Stop()
	select {
	case <-l.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	waitAlive(t, s, "host-a", false, ttl+5*time.Second)

	// A clean shutdown revokes at once.
	l2, err := s.KeepHostAlive(ctxT(t), "host-b", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitAlive(t, s, "host-b", true, 0)
	if err := l2.Revoke(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitAlive(t, s, "host-b", false, 0)

	// The lease also ends with the context it was granted under.
	ctx, cancel := context.WithCancel(context.Background())
	l3, err := s.KeepHostAlive(ctx, "host-c", ttl)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-l3.Done()
	waitAlive(t, s, "host-c", false, ttl+5*time.Second)

	var fe *topology.FieldError
	if _, err := s.KeepHostAlive(ctxT(t), "a/b", ttl); !errors.As(err, &fe) {
		t.Fatalf("bad host id: %v", err)
	}
}

func testTableEntries(t *testing.T, open opener) {
	s := open()
	l, err := s.GrantLease(ctxT(t), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	for i := range 3 {
		e := nsdb.LearnedEntry{Host: "h1", Kind: topology.KindBridge, Device: "br1", Key: fmt.Sprintf("02:00:00:00:00:0%d", i), Value: "port-x"}
		if _, err := s.PutLearned(ctxT(t), e, l); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutLearned(ctxT(t), nsdb.LearnedEntry{Host: "h2", Kind: topology.KindRouter, Device: "r1", Key: "10.0.0.1", Value: "02:00:00:00:00:01"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPortActive(ctxT(t), "h1", "port-x", l); err != nil {
		t.Fatal(err)
	}
	count := func(host string, kind topology.Kind) int {
		es, rev, err := s.ListLearned(ctxT(t))
		if err != nil || rev == 0 {
			t.Fatalf("list at %d: %v", rev, err)
		}
		n := 0
		for _, e := range es {
			if e.Host == host && e.Kind == kind && e.Revision > 0 {
				n++
			}
		}
		return n
	}
	if n := count("h1", topology.KindBridge); n != 3 {
		t.Fatalf("%d MAC entries", n)
	}
	if _, err := s.DeleteLearned(ctxT(t), nsdb.LearnedEntry{Host: "h1", Kind: topology.KindBridge, Device: "br1", Key: "02:00:00:00:00:01"}); err != nil {
		t.Fatal(err)
	}
	if n := count("h1", topology.KindBridge); n != 2 {
		t.Fatalf("after delete: %d", n)
	}
	if active, _ := s.PortActive(ctxT(t), "h1", "port-x"); !active {
		t.Fatal("port not active")
	}
	// Revoking the lease of the agent that learned them removes its entries,
	// not the others.
	if err := l.Revoke(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := count("h1", topology.KindBridge); n != 0 {
		t.Fatalf("%d entries outlived their lease", n)
	}
	if active, _ := s.PortActive(ctxT(t), "h1", "port-x"); active {
		t.Fatal("port still active after its lease ended")
	}
	if n := count("h2", topology.KindRouter); n != 1 {
		t.Fatalf("%d ARP entries", n)
	}
	var fe *topology.FieldError
	for _, e := range []nsdb.LearnedEntry{
		{Host: "h1", Kind: topology.KindBridge, Device: "br1", Key: "a/b", Value: "v"},
		{Host: "", Kind: topology.KindBridge, Device: "br1", Key: "k", Value: "v"},
		{Host: "h1", Kind: topology.KindPort, Device: "p", Key: "k", Value: "v"},
	} {
		if _, err := s.PutLearned(ctxT(t), e, nil); !errors.As(err, &fe) {
			t.Fatalf("bad entry %+v: %v", e, err)
		}
	}
}

// Closing the embedded store and opening it again on the same data dir
// finds everything, and tunnel keys stay unique.
func TestEmbeddedRestart(t *testing.T) {
	cfg := nsdbtest.EmbeddedConfig(t)
	ctx := ctxT(t)
	s, err := nsdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := buildWorld(t, s)
	before := dump(t, s)
	var objs []topology.Object
	for _, k := range topology.Kinds {
		l, _ := s.List(ctx, k)
		objs = append(objs, l...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s2, err := nsdb.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	sameDump(t, before, dump(t, s2))
	for _, o := range objs {
		got, err := s2.Get(ctx, o.Kind(), o.GetMeta().ID)
		if err != nil || jsonOf(got) != jsonOf(o) {
			t.Fatalf("after restart %s: %v\nwant %s\ngot  %s", topology.Key(o), err, jsonOf(o), jsonOf(got))
		}
	}
	keys := map[uint32]bool{}
	for _, p := range []*topology.Port{w.rp, w.bp, w.xp} {
		keys[p.TunnelKey] = true
	}
	p := create(t, s2, routerPort(w.r, 9))
	if keys[p.TunnelKey] {
		t.Fatalf("tunnel key %d reused after restart", p.TunnelKey)
	}
	noDangling(t, s2)
	s2.Close()
	checkNoLeaks(t)
}
