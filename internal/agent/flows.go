package agent

import (
	"sync"
	"sync/atomic"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// flowKey is the exact-match key of a cached flow: everything a simulation
// may have looked at, packed and pointer-free. It is a superset of the
// fields that decided (sim.Result.Fields): megaflow-style wildcarding is a
// later optimisation.
type flowKey struct {
	in        uint32 // tunnel key of the ingress port
	ethSrc    [6]byte
	ethDst    [6]byte
	etherType uint16
	vlan      uint16
	ttl       uint8 // a router's TTL check
	tos       uint8
	icmpType  uint8
	icmpCode  uint8
	frag      bool
	size      uint8 // length class: routers check the MTU
	k         packet.Key
}

// sizeClasses are the boundaries of flowKey.size: a packet's decision can
// differ only where a port's MTU falls, and MTUs are nearly always one of
// these.
var sizeClasses = [...]int{576, 1280, 1400, 1450, 1500, 9000}

func sizeClass(ipLen int) uint8 {
	for i, b := range sizeClasses {
		if ipLen <= b {
			return uint8(i)
		}
	}
	return uint8(len(sizeClasses))
}

func keyOf(in uint32, p *packet.Packet, ipLen int) flowKey {
	k := flowKey{in: in, ethSrc: p.EthSrc, ethDst: p.EthDst, etherType: p.EtherType, vlan: vlanKey(p),
		ttl: p.TTL, tos: p.TOS, frag: p.IsFragment(), size: sizeClass(ipLen), k: packet.KeyOf(p, 0)}
	if p.Proto == packet.ProtoICMP {
		k.icmpType, k.icmpCode = p.ICMPType, p.ICMPCode
	}
	return k
}

// vlanKey tells a tagged frame from an untagged one even with VLAN id 0
// (a priority tag): the chains drop tagged frames from VMs, and a flow
// cached for untagged traffic must not carry them.
func vlanKey(p *packet.Packet) uint16 {
	if p.Flags&packet.FlagVLAN != 0 {
		return p.VLAN | 0x1000
	}
	return 0
}

// flowEntry is one cached flow. It is immutable once installed, except its
// hit counter.
type flowEntry struct {
	acts    []flow.Action
	tags    []flow.Tag
	expires int64
	drop    bool
	dropGen uint64 // flowTable.dropGen at install (drop flows)
	reason  string
	hits    atomic.Uint64
	key     flowKey
}

// flowTable is the exact-match flow cache. Lookups take the read lock only.
//
// Two things keep a new flow's cost independent of the table's size (a
// flood of new flows fills it with hundreds of thousands):
//   - byTag lists are append-only: a removed flow stays listed (dead: it is
//     no longer t.m's entry for its key) until expire compacts the lists
//     when the dead outnumber the live. A per-tag set would cost a map
//     insert per tag per flow, and every flow of a bridge shares its tags.
//   - invalidateDrops bumps dropGen instead of sweeping the table: a drop
//     flow installed under an older dropGen is stale, treated as absent and
//     swept by expire.
//   - expire visits only the flows due (a wheel of one-second buckets by
//     hard expiry), not the whole table under the write lock: a sweep of
//     a few hundred thousand flows stalled every lookup for milliseconds,
//     long enough for the miss queues to overflow.
type flowTable struct {
	mu         sync.RWMutex
	m          map[flowKey]*flowEntry
	byTag      map[flow.Tag]*entryList
	listed     int                  // entries in byTag, dead ones included
	liveListed int                  // entries in byTag that t.m's flows need
	wheel      map[int64]*entryList // by the second their flows expire in
	gen        uint64               // the snapshot generation the table is valid for
	dropGen    atomic.Uint64        // bumped by invalidateDrops
	imports    atomic.Uint64        // bumped by every import of a peer's state (installAt)
}

func newFlowTable() *flowTable {
	return &flowTable{m: map[flowKey]*flowEntry{}, byTag: map[flow.Tag]*entryList{}, wheel: map[int64]*entryList{}}
}

// entryList is an append-only list of flows in chunks: appending never
// copies what is listed already. A tag every flow of a bridge carries lists
// hundreds of thousands of flows under a flood of new ones; growing one
// slice copied them all again and again, with write barriers while the GC
// ran (a tenth of the agent's CPU). Chunks start small (most tags list a
// few flows) and double up to maxChunk.
type entryList struct {
	chunks [][]*flowEntry
	n      int
}

const maxChunk = 512

func (l *entryList) add(e *flowEntry) {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == cap(l.chunks[k-1]) {
		c := maxChunk
		if k < 8 {
			c = min(maxChunk, 4<<k)
		}
		l.chunks = append(l.chunks, make([]*flowEntry, 0, c))
	}
	k := len(l.chunks) - 1
	l.chunks[k] = append(l.chunks[k], e)
	l.n++
}

// addTo appends e to the list at m[k], creating it.
func addTo[K comparable](m map[K]*entryList, k K, e *flowEntry) {
	l := m[k]
	if l == nil {
		l = &entryList{}
		m[k] = l
	}
	l.add(e)
}

// second is the wheel bucket of a flow expiring at ns: the first second
// boundary at or after it.
func second(ns int64) int64 { return (ns + 999_999_999) / 1_000_000_000 }

// removeLocked drops e from the table (it stays, dead, in the lists).
func (t *flowTable) removeLocked(e *flowEntry) {
	delete(t.m, e.key)
	t.liveListed -= len(e.tags)
}

// live reports whether e, found in the table, still stands at now.
func (t *flowTable) live(e *flowEntry, now int64) bool {
	return e.expires > now && (!e.drop || e.dropGen == t.dropGen.Load())
}

// lookup returns the live flow for k, or nil.
func (t *flowTable) lookup(k *flowKey, now int64) *flowEntry {
	t.mu.RLock()
	e := t.m[*k]
	t.mu.RUnlock()
	if e == nil || !t.live(e, now) {
		return nil
	}
	e.hits.Add(1)
	return e
}

// install adds e unless the snapshot it was simulated on (gen) has been
// replaced meanwhile: a flow computed on an old topology must not outlive
// the invalidation that already ran.
func (t *flowTable) install(e *flowEntry, gen uint64) bool {
	return t.installAt(e, gen, t.imports.Load())
}

// installAt is install for a flow simulated when imports read imp: state
// imported from a peer since then (the tunnel reader applies it while a
// simulation runs) may change the decision, so the flow is not cached; the
// next packet simulates again.
func (t *flowTable) installAt(e *flowEntry, gen, imp uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen || imp != t.imports.Load() {
		return false
	}
	// Read under the lock: an invalidateDrops that ran before this install
	// (it cannot tell this simulation's drop from an older one) is then
	// still honoured by the next one.
	e.dropGen = t.dropGen.Load()
	if old := t.m[e.key]; old != nil {
		t.removeLocked(old) // left dead in the lists and the wheel
	}
	t.m[e.key] = e
	for _, tag := range e.tags {
		addTo(t.byTag, tag, e)
	}
	t.listed += len(e.tags)
	t.liveListed += len(e.tags)
	addTo(t.wheel, second(e.expires), e)
	return true
}

// invalidate removes every flow carrying one of tags (all: every flow) and
// moves the table to snapshot generation gen. It returns how many went.
func (t *flowTable) invalidate(tags map[flow.Tag]struct{}, all bool, gen uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen = gen
	if all {
		n := len(t.m)
		t.m = map[flowKey]*flowEntry{}
		t.byTag = map[flow.Tag]*entryList{}
		t.wheel = map[int64]*entryList{}
		t.listed, t.liveListed = 0, 0
		return n
	}
	return t.invalidateLocked(tags)
}

func (t *flowTable) invalidateLocked(tags map[flow.Tag]struct{}) int {
	n := 0
	for tag := range tags {
		n += t.invalidateTagLocked(tag)
	}
	return n
}

func (t *flowTable) invalidateTagLocked(tag flow.Tag) int {
	l := t.byTag[tag]
	if l == nil {
		return 0
	}
	n := 0
	for _, c := range l.chunks {
		for _, e := range c {
			if t.m[e.key] == e {
				t.removeLocked(e)
				n++
			}
		}
	}
	t.listed -= l.n
	delete(t.byTag, tag)
	return n
}

// invalidateTagList is invalidateTags for a few tags in a slice (the keys
// of new connection state), without building a set.
func (t *flowTable) invalidateTagList(tags []flow.Tag) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, tag := range tags {
		n += t.invalidateTagLocked(tag)
	}
	return n
}

// invalidateTags removes every flow carrying one of tags (a learned table
// entry changed), leaving the snapshot generation alone.
func (t *flowTable) invalidateTags(tags map[flow.Tag]struct{}) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.invalidateLocked(tags)
}

// invalidateDrops removes every drop flow: new connection state may have
// turned what was dropped into a permitted return direction. O(1): the
// drop flows installed before it turn stale (see flowTable).
func (t *flowTable) invalidateDrops() { t.dropGen.Add(1) }

// expire removes flows past their hard expiry (stale drop flows with
// them: their expiry is short), and compacts the tag lists when most of
// what they hold is dead.
func (t *flowTable) expire(now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s, l := range t.wheel {
		if (s-1)*1_000_000_000 >= now {
			continue // all its flows expire after now
		}
		keep := &entryList{} // the bucket of the current second is due in part
		for _, c := range l.chunks {
			for _, e := range c {
				switch {
				case t.m[e.key] != e: // replaced or invalidated
				case e.expires <= now:
					t.removeLocked(e)
				default:
					keep.add(e)
				}
			}
		}
		if keep.n == 0 {
			delete(t.wheel, s)
		} else {
			t.wheel[s] = keep
		}
	}
	if t.listed <= 2*t.liveListed+1024 {
		return
	}
	t.byTag = make(map[flow.Tag]*entryList, len(t.byTag))
	for _, e := range t.m {
		for _, tag := range e.tags {
			addTo(t.byTag, tag, e)
		}
	}
	t.listed = t.liveListed
}

// len is the number of flows that stand now (drop flows made stale by
// invalidateDrops excluded).
func (t *flowTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	g := t.dropGen.Load()
	for _, e := range t.m {
		if !e.drop || e.dropGen == g {
			n++
		}
	}
	return n
}

// snapshot copies the entries, for the /flows dump (stale drop flows
// excluded).
func (t *flowTable) snapshot() []*flowEntry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*flowEntry, 0, len(t.m))
	g := t.dropGen.Load()
	for _, e := range t.m {
		if !e.drop || e.dropGen == g {
			out = append(out, e)
		}
	}
	return out
}
