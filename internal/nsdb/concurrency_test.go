package nsdb_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// Two stores (two processes, as far as etcd can tell) increment a counter
// in the same object by read-modify-write: no increment is lost.
func testConcurrentCounters(t *testing.T, open opener) {
	a, b := open(), open()
	r := create(t, a, &topology.Router{Meta: topology.Meta{Labels: map[string]string{"n": "0"}}})
	syncStore(t, b)
	const perStore = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*perStore)
	for _, s := range []*nsdb.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perStore {
				_, err := s.Txn(ctxT(t), func(tx *nsdb.Tx) error {
					o := tx.Get(topology.KindRouter, r.ID)
					n, _ := strconv.Atoi(o.GetMeta().Labels["n"])
					o.GetMeta().Labels["n"] = strconv.Itoa(n + 1)
					_, err := tx.Update(o)
					return err
				})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*nsdb.Store{a, b} {
		syncStore(t, s) // the other store's last write may still be on its way
		if got := get[*topology.Router](t, s, topology.KindRouter, r.ID).Labels["n"]; got != strconv.Itoa(2*perStore) {
			t.Fatalf("counter %s, want %d", got, 2*perStore)
		}
	}
}

// One store deletes a chain while the other attaches it to a port: exactly
// one wins and no reference dangles.
func testConcurrentDeleteVsAttach(t *testing.T, open opener) {
	a, b := open(), open()
	br := create(t, a, &topology.Bridge{})
	for round := range 10 {
		c := create(t, a, &topology.Chain{Rules: []topology.Rule{{Action: topology.ActionAccept}}})
		p := create(t, a, bridgePort(br, round))
		waitSeen(t, b, topology.KindPort, p.ID)
		var wg sync.WaitGroup
		var delErr, attachErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, delErr = a.Delete(ctxT(t), topology.KindChain, c.ID, 0)
		}()
		go func() {
			defer wg.Done()
			_, attachErr = b.Txn(ctxT(t), func(tx *nsdb.Tx) error {
				q := tx.Get(topology.KindPort, p.ID).(*topology.Port)
				q.InFilter = c.ID
				_, err := tx.Update(q)
				return err
			})
		}()
		wg.Wait()
		if (delErr == nil) == (attachErr == nil) {
			t.Fatalf("round %d: delete %v, attach %v: want exactly one to win", round, delErr, attachErr)
		}
		syncStore(t, a)
		port := get[*topology.Port](t, a, topology.KindPort, p.ID)
		_, chainErr := a.Get(ctxT(t), topology.KindChain, c.ID)
		if delErr == nil {
			var fe *topology.FieldError
			if !errors.As(attachErr, &fe) || port.InFilter != "" || !errors.Is(chainErr, nsdb.ErrNotFound) {
				t.Fatalf("round %d: delete won, attach said %v, port filter %q, chain %v", round, attachErr, port.InFilter, chainErr)
			}
		} else {
			if !errors.Is(delErr, nsdb.ErrConflict) || port.InFilter != c.ID || chainErr != nil {
				t.Fatalf("round %d: attach won, delete said %v, port filter %q, chain %v", round, delErr, port.InFilter, chainErr)
			}
		}
		noDangling(t, a)
	}
}

// A write through one store is visible through another once its cache has
// caught up.
func testSecondStoreSeesWrites(t *testing.T, open opener) {
	a, b := open(), open()
	r := create(t, a, &topology.Router{Meta: topology.Meta{Name: "seen"}})
	waitSeen(t, b, topology.KindRouter, r.ID)
	got := get[*topology.Router](t, b, topology.KindRouter, r.ID)
	if jsonOf(got) != jsonOf(r) {
		t.Fatalf("b sees %s, a wrote %s", jsonOf(got), jsonOf(r))
	}
	if _, err := b.Delete(ctxT(t), topology.KindRouter, r.ID, r.Revision); err != nil {
		t.Fatal(err)
	}
	syncStore(t, a)
	assertNotFound(t, a, topology.KindRouter, r.ID)
}

// waitSeen syncs s with etcd: afterwards it has every committed write.
func waitSeen(t *testing.T, s *nsdb.Store, k topology.Kind, id string) {
	t.Helper()
	syncStore(t, s)
	if _, err := s.Get(ctxT(t), k, id); err != nil {
		t.Fatalf("after Sync: %v", err)
	}
}

func syncStore(t *testing.T, s *nsdb.Store) {
	t.Helper()
	if err := s.Sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// Eight writers on two stores change one small topology at once: ports bound
// to the same host interfaces, router ports with overlapping subnets, chains
// attached while others delete them, and a shared counter. Writes are
// guarded per object (no global lock), so the store must still end with no
// dangling reference, no interface bound twice, no overlapping router
// subnets, distinct tunnel keys, and every counter increment kept.
func testParallelWriters(t *testing.T, open opener) {
	a, b := open(), open()
	br := create(t, a, &topology.Bridge{})
	rt := create(t, a, &topology.Router{Meta: topology.Meta{Labels: map[string]string{"n": "0"}}})
	host := create(t, a, &topology.Host{Meta: topology.Meta{Name: "h"}})
	syncStore(t, b)

	const writers, rounds = 8, 12
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		chains    []string
		increment int
		created   int
	)
	errs := make(chan error, writers*rounds*4)
	// expected: the refusals a correct store may answer under contention.
	expected := func(err error) bool {
		return err == nil || errors.Is(err, nsdb.ErrConflict) || errors.Is(err, nsdb.ErrNotFound) ||
			errors.As(err, new(*topology.FieldError))
	}
	for w := range writers {
		s := []*nsdb.Store{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := ctxT(t)
			for i := range rounds {
				c, err := s.Create(ctx, &topology.Chain{Rules: []topology.Rule{{Action: topology.ActionAccept}}})
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				chains = append(chains, c.GetMeta().ID)
				victim := chains[(w*7+i*3)%len(chains)]
				mu.Unlock()
				// A bridge port bound to one of three interfaces of the
				// host, filtered by a chain someone may be deleting.
				_, err = s.Create(ctx, &topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.ID, MAC: mac(w*rounds + i),
					HostID: host.ID, Interface: fmt.Sprintf("tap%d", (w+i)%3), InFilter: victim})
				if err == nil {
					mu.Lock()
					created++
					mu.Unlock()
				} else if !expected(err) {
					errs <- fmt.Errorf("bind: %w", err)
				}
				// A router port on one of four subnets.
				_, err = s.Create(ctx, &topology.Port{DeviceKind: topology.KindRouter, DeviceID: rt.ID, MAC: mac(0x4000 + w*rounds + i),
					Address: netip.MustParsePrefix(fmt.Sprintf("10.0.%d.%d/24", (w*rounds+i)%4, 2+w*rounds+i))})
				if !expected(err) {
					errs <- fmt.Errorf("router port: %w", err)
				}
				if _, err := s.Delete(ctx, topology.KindChain, victim, 0); !expected(err) {
					errs <- fmt.Errorf("delete chain: %w", err)
				}
				_, err = s.Txn(ctx, func(tx *nsdb.Tx) error {
					o := tx.Get(topology.KindRouter, rt.ID)
					n, _ := strconv.Atoi(o.GetMeta().Labels["n"])
					o.GetMeta().Labels["n"] = strconv.Itoa(n + 1)
					_, err := tx.Update(o)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("increment: %w", err)
					continue
				}
				mu.Lock()
				increment++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if created == 0 {
		t.Fatal("no bound port was created: the writers never got through")
	}
	// A third store reads what etcd holds, not what a writer's cache saw.
	c := open()
	for _, s := range []*nsdb.Store{a, b, c} {
		syncStore(t, s)
		noDangling(t, s)
		if got := get[*topology.Router](t, s, topology.KindRouter, rt.ID).Labels["n"]; got != strconv.Itoa(increment) {
			t.Fatalf("counter %s, want %d: an update was lost", got, increment)
		}
	}
	c.Read(func(r topology.Reader) {
		keys := map[uint32]string{}
		ifaces := map[string]string{}
		var subnets []netip.Prefix
		for _, o := range r.List(topology.KindPort) {
			p := o.(*topology.Port)
			if q, dup := keys[p.TunnelKey]; dup {
				t.Errorf("ports %s and %s share tunnel key %d", q, p.ID, p.TunnelKey)
			}
			keys[p.TunnelKey] = p.ID
			if p.HostID != "" {
				if q, dup := ifaces[p.Interface]; dup {
					t.Errorf("ports %s and %s are both bound to %s", q, p.ID, p.Interface)
				}
				ifaces[p.Interface] = p.ID
			}
			if p.DeviceKind == topology.KindRouter {
				for _, s := range subnets {
					if s.Overlaps(p.Address.Masked()) {
						t.Errorf("router subnets %s and %s overlap", s, p.Address)
					}
				}
				subnets = append(subnets, p.Address.Masked())
			}
		}
		if len(ifaces) != 3 {
			t.Errorf("%d interfaces bound, want all 3", len(ifaces))
		}
		if len(subnets) != 4 {
			t.Errorf("%d router subnets, want all 4", len(subnets))
		}
	})
}
