package agent

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// TestFlowTableDifferential checks the tag index against a naive model: a
// list of entries scanned in full, on random installs, invalidations, drop
// sweeps and expiries.
func TestFlowTableDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ft := newFlowTable()
	type model struct {
		tags    []flow.Tag
		expires int64
		drop    bool
	}
	naive := map[flowKey]model{}
	var gen uint64
	now := int64(1000)
	for step := 0; step < 20000; step++ {
		k := flowKey{in: uint32(rng.IntN(4)), k: packet.Key{Src: uint32(rng.IntN(30))}}
		switch op := rng.IntN(10); {
		case op < 6:
			tags := []flow.Tag{flow.Tag(rng.IntN(8)), flow.Tag(8 + rng.IntN(8))}
			e := &flowEntry{key: k, tags: tags, expires: now + int64(rng.IntN(50)), drop: rng.IntN(4) == 0}
			if ft.install(e, gen) {
				naive[k] = model{tags, e.expires, e.drop}
			}
			if rng.IntN(50) == 0 { // a stale simulation must be refused
				if ft.install(&flowEntry{key: k, expires: now + 100}, gen+1) {
					t.Fatal("installed a flow from another generation")
				}
			}
		case op < 8:
			tag := flow.Tag(rng.IntN(16))
			gen++
			ft.invalidate(map[flow.Tag]struct{}{tag: {}}, false, gen)
			for nk, m := range naive {
				for _, x := range m.tags {
					if x == tag {
						delete(naive, nk)
						break
					}
				}
			}
		case op < 9:
			ft.invalidateDrops()
			for nk, m := range naive {
				if m.drop {
					delete(naive, nk)
				}
			}
		default:
			now += int64(rng.IntN(20))
			ft.expire(now)
			for nk, m := range naive {
				if m.expires <= now {
					delete(naive, nk)
				}
			}
		}
		for nk, m := range naive {
			e := ft.lookup(&nk, now)
			if (e != nil) != (m.expires > now) {
				t.Fatalf("step %d: lookup %v = %v, model expires %d now %d", step, nk, e, m.expires, now)
			}
		}
		if ft.len() != len(naive) {
			t.Fatalf("step %d: table holds %d flows, model %d", step, ft.len(), len(naive))
		}
	}
	// Every flow the table holds is listed under each of its tags (or an
	// invalidation would miss it), and compaction keeps the dead entries of
	// the lists bounded.
	for _, e := range ft.m {
		for _, tag := range e.tags {
			l, found := ft.byTag[tag], false
			for i := 0; l != nil && i < len(l.chunks); i++ {
				found = found || slices.Contains(l.chunks[i], e)
			}
			if !found {
				t.Fatalf("flow %v not listed under its tag %d", e.key, tag)
			}
		}
	}
	ft.expire(now)
	if live := ft.liveListed; ft.listed > 2*live+1024 {
		t.Fatalf("tag lists hold %d entries for %d live ones after expire", ft.listed, live)
	}
}

// TestFlowTableCompaction: flows replaced over and over leave dead entries
// in the tag lists; expire drops them, and invalidating a tag still removes
// exactly the live flows carrying it.
func TestFlowTableCompaction(t *testing.T) {
	ft := newFlowTable()
	for i := range 10000 {
		k := flowKey{k: packet.Key{Src: uint32(i % 10)}}
		ft.install(&flowEntry{key: k, tags: []flow.Tag{1, flow.Tag(2 + i%10)}, expires: 100}, 0)
	}
	if ft.listed != 20000 {
		t.Fatalf("listed %d, want 20000", ft.listed)
	}
	ft.expire(1)
	if ft.listed != 20 || ft.len() != 10 {
		t.Fatalf("after expire: listed %d (want 20), flows %d (want 10)", ft.listed, ft.len())
	}
	if n := ft.invalidate(map[flow.Tag]struct{}{1: {}}, false, 0); n != 10 || ft.len() != 0 {
		t.Fatalf("invalidate removed %d (want 10), %d left", n, ft.len())
	}
}

// TestInvalidateDropsKeepsLaterDrops: a drop installed after a sweep stands;
// one installed before it does not, is not counted, and goes at its expiry.
func TestInvalidateDropsKeepsLaterDrops(t *testing.T) {
	ft := newFlowTable()
	a, b, c := flowKey{in: 1}, flowKey{in: 2}, flowKey{in: 3}
	ft.install(&flowEntry{key: a, drop: true, expires: 100}, 0)
	ft.install(&flowEntry{key: c, expires: 100}, 0)
	ft.invalidateDrops()
	ft.install(&flowEntry{key: b, drop: true, expires: 100}, 0)
	if ft.lookup(&a, 1) != nil || ft.lookup(&b, 1) == nil || ft.lookup(&c, 1) == nil {
		t.Fatal("want a gone, b and c standing")
	}
	if ft.len() != 2 || len(ft.snapshot()) != 2 {
		t.Fatalf("stale drop counted: %d flows, %d listed", ft.len(), len(ft.snapshot()))
	}
	ft.expire(100) // the stale drop goes at its expiry, with the others
	if len(ft.m) != 0 || ft.liveListed != 0 {
		t.Fatalf("expire left %d flows (%d tag entries)", len(ft.m), ft.liveListed)
	}
}

func TestSizeClass(t *testing.T) {
	for _, c := range []struct{ n, want int }{{60, 0}, {576, 0}, {577, 1}, {1500, 4}, {1501, 5}, {9001, 6}} {
		if got := sizeClass(c.n); int(got) != c.want {
			t.Errorf("sizeClass(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// BenchmarkExpireNoneDue: the once-a-second sweep over a table of 300,000
// flows none of which is due holds the write lock (every port's lookups
// wait) for this long.
func BenchmarkExpireNoneDue(b *testing.B) {
	ft := newFlowTable()
	for i := range 300000 {
		ft.install(&flowEntry{key: flowKey{k: packet.Key{Src: uint32(i)}}, tags: []flow.Tag{1, 2},
			expires: int64(30+i%30) * 1_000_000_000}, 0)
	}
	for b.Loop() {
		ft.expire(10_000_000_000)
	}
	if ft.len() != 300000 {
		b.Fatal("flows expired early")
	}
}
