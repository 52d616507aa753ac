package agent

import (
	"math/rand/v2"
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
	// The tag index holds nothing the table does not.
	for tag, s := range ft.byTag {
		for e := range s {
			if ft.m[e.key] != e {
				t.Fatalf("tag %d indexes a removed flow", tag)
			}
		}
	}
}

func TestSizeClass(t *testing.T) {
	for _, c := range []struct{ n, want int }{{60, 0}, {576, 0}, {577, 1}, {1500, 4}, {1501, 5}, {9001, 6}} {
		if got := sizeClass(c.n); int(got) != c.want {
			t.Errorf("sizeClass(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}
