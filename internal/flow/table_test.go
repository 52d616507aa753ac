package flow

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/packet"
)

// TestFlowTableDifferential checks the tag index against a naive model: a
// list of entries scanned in full, on random installs, invalidations, drop
// sweeps and expiries.
func TestFlowTableDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ft := NewTable()
	type model struct {
		tags    []Tag
		expires int64
		drop    bool
	}
	naive := map[Key]model{}
	var gen uint64
	now := int64(1000)
	for step := 0; step < 20000; step++ {
		k := Key{In: uint32(rng.IntN(4)), Tuple: packet.Key{Src: uint32(rng.IntN(30))}}
		switch op := rng.IntN(10); {
		case op < 6:
			tags := []Tag{Tag(rng.IntN(8)), Tag(8 + rng.IntN(8))}
			e := &Entry{Key: k, Tags: tags, Expires: now + int64(rng.IntN(50)), Drop: rng.IntN(4) == 0}
			if ft.Install(e, gen) {
				naive[k] = model{tags, e.Expires, e.Drop}
			}
			if rng.IntN(50) == 0 { // a stale simulation must be refused
				if ft.Install(&Entry{Key: k, Expires: now + 100}, gen+1) {
					t.Fatal("installed a flow from another generation")
				}
			}
		case op < 8:
			tag := Tag(rng.IntN(16))
			gen++
			ft.Invalidate(map[Tag]struct{}{tag: {}}, false, gen)
			for nk, m := range naive {
				for _, x := range m.tags {
					if x == tag {
						delete(naive, nk)
						break
					}
				}
			}
		case op < 9:
			ft.InvalidateDrops()
			for nk, m := range naive {
				if m.drop {
					delete(naive, nk)
				}
			}
		default:
			now += int64(rng.IntN(20))
			ft.Expire(now, nil)
			for nk, m := range naive {
				if m.expires <= now {
					delete(naive, nk)
				}
			}
		}
		for nk, m := range naive {
			e := ft.Lookup(&nk, now)
			if (e != nil) != (m.expires > now) {
				t.Fatalf("step %d: lookup %v = %v, model expires %d now %d", step, nk, e, m.expires, now)
			}
		}
		if ft.Len() != len(naive) {
			t.Fatalf("step %d: table holds %d flows, model %d", step, ft.Len(), len(naive))
		}
	}
	// Every flow the table holds is listed under each of its tags (or an
	// invalidation would miss it), and compaction keeps the dead entries of
	// the lists bounded.
	for _, e := range ft.m {
		for _, tag := range e.Tags {
			l, found := ft.byTag[tag], false
			for i := 0; l != nil && i < len(l.chunks); i++ {
				found = found || slices.Contains(l.chunks[i], e)
			}
			if !found {
				t.Fatalf("flow %v not listed under its tag %d", e.Key, tag)
			}
		}
	}
	ft.Expire(now, nil)
	if live := ft.liveListed; ft.listed > 2*live+1024 {
		t.Fatalf("tag lists hold %d entries for %d live ones after expire", ft.listed, live)
	}
}

// TestFlowTableCompaction: flows replaced over and over leave dead entries
// in the tag lists; expire drops them, and invalidating a tag still removes
// exactly the live flows carrying it.
func TestFlowTableCompaction(t *testing.T) {
	ft := NewTable()
	for i := range 10000 {
		k := Key{Tuple: packet.Key{Src: uint32(i % 10)}}
		ft.Install(&Entry{Key: k, Tags: []Tag{1, Tag(2 + i%10)}, Expires: 100}, 0)
	}
	if ft.listed != 20000 {
		t.Fatalf("listed %d, want 20000", ft.listed)
	}
	ft.Expire(1, nil)
	if ft.listed != 20 || ft.Len() != 10 {
		t.Fatalf("after expire: listed %d (want 20), flows %d (want 10)", ft.listed, ft.Len())
	}
	if n := ft.Invalidate(map[Tag]struct{}{1: {}}, false, 0); n != 10 || ft.Len() != 0 {
		t.Fatalf("invalidate removed %d (want 10), %d left", n, ft.Len())
	}
}

// TestInvalidateDropsKeepsLaterDrops: a drop installed after a sweep stands;
// one installed before it does not, is not counted, and goes at its expiry.
func TestInvalidateDropsKeepsLaterDrops(t *testing.T) {
	ft := NewTable()
	a, b, c := Key{In: 1}, Key{In: 2}, Key{In: 3}
	ft.Install(&Entry{Key: a, Drop: true, Expires: 100}, 0)
	ft.Install(&Entry{Key: c, Expires: 100}, 0)
	ft.InvalidateDrops()
	ft.Install(&Entry{Key: b, Drop: true, Expires: 100}, 0)
	if ft.Lookup(&a, 1) != nil || ft.Lookup(&b, 1) == nil || ft.Lookup(&c, 1) == nil {
		t.Fatal("want a gone, b and c standing")
	}
	if ft.Len() != 2 || len(ft.Snapshot()) != 2 {
		t.Fatalf("stale drop counted: %d flows, %d listed", ft.Len(), len(ft.Snapshot()))
	}
	ft.Expire(100, nil) // the stale drop goes at its expiry, with the others
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
	ft := NewTable()
	for i := range 300000 {
		ft.Install(&Entry{Key: Key{Tuple: packet.Key{Src: uint32(i)}}, Tags: []Tag{1, 2},
			Expires: int64(30+i%30) * 1_000_000_000}, 0)
	}
	for b.Loop() {
		ft.Expire(10_000_000_000, nil)
	}
	if ft.Len() != 300000 {
		b.Fatal("flows expired early")
	}
}

// A flow simulated before a peer's state arrived, but installed after the
// import, is not cached: the import may have changed its verdict (the
// simulation did not see the connection; the invalidation of the import ran
// before the flow was there to remove).
func TestFlowSimulatedBeforeAnImportIsNotCached(t *testing.T) {
	ft := NewTable()
	imp := ft.Imports()
	ft.NoteImport() // a state import lands between the simulation and the install
	e := &Entry{Key: Key{In: 7}, Actions: []Action{{Kind: Output, Key: 2}}, Expires: 1000}
	if ft.InstallAt(e, ft.Gen(), imp) {
		t.Fatal("a flow simulated before the import was cached")
	}
	if !ft.InstallAt(e, ft.Gen(), ft.Imports()) {
		t.Fatal("a flow simulated after the import was refused")
	}
}

// BenchmarkLookup: a hit in a table of 100,000 flows, key built from a
// decoded packet as the agent does; no allocation.
func BenchmarkLookup(b *testing.B) {
	ft := NewTable()
	for i := range 100000 {
		ft.Install(&Entry{Key: Key{In: 1, Tuple: packet.Key{Src: uint32(i)}}, Tags: []Tag{1}, Expires: 1 << 62}, 0)
	}
	k := Key{In: 1, Tuple: packet.Key{Src: 4242}}
	b.ReportAllocs()
	for b.Loop() {
		if ft.Lookup(&k, 1) == nil {
			b.Fatal("miss")
		}
	}
}

// mapMirror is a Mirror over a map; busy keys report an idle time of 0.
type mapMirror struct {
	m    map[Key]bool // key → a drop flow
	busy map[Key]bool
}

func (m *mapMirror) Put(e *Entry)  { m.m[e.Key] = e.Drop }
func (m *mapMirror) Delete(k *Key) { delete(m.m, *k) }
func (m *mapMirror) DeleteDrops() {
	for k, drop := range m.m {
		if drop {
			delete(m.m, k)
		}
	}
}
func (m *mapMirror) Clear() { clear(m.m) }
func (m *mapMirror) Idle(k *Key) (int64, bool) {
	if _, ok := m.m[*k]; !ok {
		return 0, false
	}
	if m.busy[*k] {
		return 0, true
	}
	return 1 << 40, true
}

// TestMirrorFollowsTable: on random installs, replacements, invalidations
// by tag and in full, drop sweeps and expiries, the mirror holds exactly
// the flows that stand in the table (what the kernel map must hold).
func TestMirrorFollowsTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ft := NewTable()
	mm := &mapMirror{m: map[Key]bool{}, busy: map[Key]bool{}}
	ft.SetMirror(mm, 10)
	var gen uint64
	now := int64(1000)
	for step := range 20000 {
		k := Key{In: uint32(rng.IntN(4)), Tuple: packet.Key{Src: uint32(rng.IntN(30))}}
		if rng.IntN(10) == 0 { // its kernel copy starts or stops forwarding
			mm.busy[k] = !mm.busy[k]
		}
		switch op := rng.IntN(20); {
		case op < 12:
			tags := []Tag{Tag(rng.IntN(8)), Tag(8 + rng.IntN(8))}
			ft.Install(&Entry{Key: k, Tags: tags, Expires: now + int64(rng.IntN(50)), Drop: rng.IntN(4) == 0}, gen)
		case op < 16:
			gen++
			ft.Invalidate(map[Tag]struct{}{Tag(rng.IntN(16)): {}}, false, gen)
		case op < 17:
			gen++
			ft.Invalidate(nil, true, gen)
		case op < 18:
			ft.InvalidateDrops()
		default:
			now += int64(rng.IntN(20))
			ft.Expire(now, nil)
		}
		want := map[Key]bool{}
		for _, e := range ft.Snapshot() {
			want[e.Key] = e.Drop
		}
		if len(want) != len(mm.m) {
			t.Fatalf("step %d: mirror holds %d flows, the table %d", step, len(mm.m), len(want))
		}
		for k, d := range want {
			if md, ok := mm.m[k]; !ok || md != d {
				t.Fatalf("step %d: flow %+v (drop %v) in the table, mirror has it: %v", step, k, d, ok)
			}
		}
	}
}

// TestMirrorBusyFlowLivesOn: a flow whose mirror copy is in use outlives
// its hard expiry (and Lookup still finds it); an idle one expires, from
// the table and the mirror.
func TestMirrorBusyFlowLivesOn(t *testing.T) {
	ft := NewTable()
	mm := &mapMirror{m: map[Key]bool{}, busy: map[Key]bool{}}
	const ttl = 30_000_000_000
	ft.SetMirror(mm, ttl)
	busy, idle := Key{In: 1}, Key{In: 2}
	mm.busy[busy] = true
	now := int64(1_000_000_000_000)
	for _, k := range []Key{busy, idle} {
		if !ft.Install(&Entry{Key: k, Expires: now + ttl}, 0) {
			t.Fatal("install refused")
		}
	}
	for i := range 5 { // five lives later
		now += ttl + 1_000_000_000
		ft.Expire(now, nil)
		if ft.Lookup(&busy, now) == nil {
			t.Fatalf("busy flow expired after %d lives", i+1)
		}
		if _, ok := mm.m[busy]; !ok {
			t.Fatal("busy flow's mirror copy removed")
		}
	}
	if ft.Lookup(&idle, now) != nil {
		t.Error("idle flow still cached")
	}
	if _, ok := mm.m[idle]; ok {
		t.Error("idle flow's mirror copy still there")
	}
	delete(mm.busy, busy) // traffic stops: it expires one life later
	now += 2*ttl + 1_000_000_000
	ft.Expire(now, nil)
	if ft.Lookup(&busy, now) != nil || len(mm.m) != 0 {
		t.Errorf("flow idle for a life still there (table %v, mirror %d)", ft.Lookup(&busy, now) != nil, len(mm.m))
	}
}

// TestExpireReportsUses: a flow with refs reports its mirror copy's last
// use when it falls due — busy (kept) or idle (removed) — so its connection
// state can be extended; a flow without refs or without a copy reports
// nothing.
func TestExpireReportsUses(t *testing.T) {
	ft := NewTable()
	mm := &mapMirror{m: map[Key]bool{}, busy: map[Key]bool{}}
	const ttl = 30_000_000_000
	ft.SetMirror(mm, ttl)
	refs := []Ref{{Key: packet.Key{Src: 1}}}
	busy, idle, norefs := Key{In: 1}, Key{In: 2}, Key{In: 3}
	mm.busy[busy] = true
	now := int64(1_000_000_000_000)
	ft.Install(&Entry{Key: busy, Refs: refs, Expires: now + ttl}, 0)
	ft.Install(&Entry{Key: idle, Refs: refs, Expires: now + ttl}, 0)
	ft.Install(&Entry{Key: norefs, Expires: now + ttl}, 0)
	now += ttl + 1_000_000_000
	uses := ft.Expire(now, nil)
	got := map[int64]int{}
	for _, u := range uses {
		if len(u.Refs) != 1 || u.Refs[0] != refs[0] {
			t.Errorf("use with refs %+v", u.Refs)
		}
		got[u.At]++
	}
	// mapMirror: busy copies were used now, idle ones 1<<40 ns ago.
	if len(uses) != 2 || got[now] != 1 || got[now-1<<40] != 1 {
		t.Errorf("uses %+v, want one at now (busy) and one long ago (idle)", uses)
	}
	if ft.Lookup(&busy, now) == nil || ft.Lookup(&idle, now) != nil {
		t.Error("busy flow not kept or idle flow kept")
	}
}
