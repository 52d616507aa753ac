package nsdb_test

import (
	"errors"
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
