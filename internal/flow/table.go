package flow

import (
	"sync"
	"sync/atomic"

	"github.com/canopy-sdn/canopy/internal/packet"
)

// Key is the exact-match key of a cached flow: everything a simulation
// may have looked at, packed and pointer-free. It is a superset of the
// fields that decided (sim.Result.Fields): megaflow-style wildcarding is a
// later optimisation.
type Key struct {
	In        uint32 // tunnel key of the ingress port
	EthSrc    [6]byte
	EthDst    [6]byte
	EtherType uint16
	VLAN      uint16 // the id with 0x1000 set when tagged (see vlanKey)
	TTL       uint8  // a router's TTL check
	TOS       uint8
	ICMPType  uint8
	ICMPCode  uint8
	Frag      bool
	Size      uint8 // length class: routers check the MTU
	Tuple     packet.Key
}

// sizeClasses are the boundaries of Key.Size: a packet's decision can
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

// KeyOf is the key of packet p, parsed, that came in on the port with
// tunnel key in; ipLen is its IP length.
func KeyOf(in uint32, p *packet.Packet, ipLen int) Key {
	k := Key{In: in, EthSrc: p.EthSrc, EthDst: p.EthDst, EtherType: p.EtherType, VLAN: vlanKey(p),
		TTL: p.TTL, TOS: p.TOS, Frag: p.IsFragment(), Size: sizeClass(ipLen), Tuple: packet.KeyOf(p, 0)}
	if p.Proto == packet.ProtoICMP {
		k.ICMPType, k.ICMPCode = p.ICMPType, p.ICMPCode
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

// Entry is one cached flow. It is immutable once installed, except its
// hit counter.
type Entry struct {
	Key     Key
	Actions []Action
	Tags    []Tag  // what the simulation consulted: a change to one removes the flow
	Expires int64  // hard expiry, Unix nanoseconds
	Drop    bool   // a drop flow (Actions empty)
	Reason  string // why it drops, for the dump
	Refs    []Ref  // the connection and NAT entries it relies on (sim.Result.Refs)
	dropGen uint64 // Table.dropGen at install (drop flows)
	hits    atomic.Uint64
	// ext is a later expiry than Expires (0: none): the mirror's copy of
	// the flow was busy when it fell due.
	ext atomic.Int64
}

// Hits is how many lookups found e.
func (e *Entry) Hits() uint64 { return e.hits.Load() }

// Expiry is when e expires: Expires, or later while its kernel copy is busy.
func (e *Entry) Expiry() int64 { return max(e.Expires, e.ext.Load()) }

// Mirror keeps a copy of the table elsewhere (the kernel fast path's flow
// map) in step with it. Its methods are called with the table's lock held,
// in the order the table changes.
type Mirror interface {
	// Put copies a flow just installed (it replaces any copy of its key).
	Put(e *Entry)
	// Delete removes the copy of the flow with key k.
	Delete(k *Key)
	// DeleteDrops removes the copies of every drop flow.
	DeleteDrops()
	// Clear removes every copy.
	Clear()
	// Idle is how long (ns) the copy of the flow with key k has not been
	// used; false when there is none.
	Idle(k *Key) (int64, bool)
}

// Table is the exact-match flow cache of an agent, safe for concurrent use:
// lookups (every port's reader) take the read lock only.
//
// Two things keep a new flow's cost independent of the table's size (a
// flood of new flows fills it with hundreds of thousands):
//   - byTag lists are append-only: a removed flow stays listed (dead: it is
//     no longer t.m's entry for its key) until Expire compacts the lists
//     when the dead outnumber the live. A per-tag set would cost a map
//     insert per tag per flow, and every flow of a bridge shares its tags.
//   - InvalidateDrops bumps dropGen instead of sweeping the table: a drop
//     flow installed under an older dropGen is stale, treated as absent and
//     swept by Expire.
//   - Expire visits only the flows due (a wheel of one-second buckets by
//     hard expiry), not the whole table under the write lock: a sweep of
//     a few hundred thousand flows stalled every lookup for milliseconds,
//     long enough for the miss queues to overflow.
type Table struct {
	mu         sync.RWMutex
	m          map[Key]*Entry
	byTag      map[Tag]*entryList
	listed     int                  // entries in byTag, dead ones included
	liveListed int                  // entries in byTag that t.m's flows need
	wheel      map[int64]*entryList // by the second their flows expire in
	gen        uint64               // the snapshot generation the table is valid for
	dropGen    atomic.Uint64        // bumped by InvalidateDrops
	imports    atomic.Uint64        // bumped by every import of a peer's state (NoteImport)

	mirror  Mirror // nil: none
	busyTTL int64  // a flow's life after its mirror copy's last use
}

// SetMirror makes m follow every change of the table from now on (install
// it before the first flow). A flow that falls due while m's copy was used
// within busyTTL lives on for busyTTL after that use: a flow the kernel keeps
// forwarding never expires, an idle one does. Expire reports the copy's last
// use (Use) so that the connection state the flow relies on lives as long.
func (t *Table) SetMirror(m Mirror, busyTTL int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mirror, t.busyTTL = m, busyTTL
}

// NewTable returns an empty table at generation 0.
func NewTable() *Table {
	return &Table{m: map[Key]*Entry{}, byTag: map[Tag]*entryList{}, wheel: map[int64]*entryList{}}
}

// Gen is the snapshot generation the table is valid for: Install refuses a
// flow simulated on another.
func (t *Table) Gen() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.gen
}

// Imports reads the count of imports of peers' connection state; a
// simulation reads it before it runs and hands it to InstallAt.
func (t *Table) Imports() uint64 { return t.imports.Load() }

// NoteImport counts an import of a peer's connection state: a simulation
// running now did not see it, so its flow is not cached.
func (t *Table) NoteImport() { t.imports.Add(1) }

// entryList is an append-only list of flows in chunks: appending never
// copies what is listed already. A tag every flow of a bridge carries lists
// hundreds of thousands of flows under a flood of new ones; growing one
// slice copied them all again and again, with write barriers while the GC
// ran (a tenth of the agent's CPU). Chunks start small (most tags list a
// few flows) and double up to maxChunk.
type entryList struct {
	chunks [][]*Entry
	n      int
}

const maxChunk = 512

func (l *entryList) add(e *Entry) {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == cap(l.chunks[k-1]) {
		c := maxChunk
		if k < 8 {
			c = min(maxChunk, 4<<k)
		}
		l.chunks = append(l.chunks, make([]*Entry, 0, c))
	}
	k := len(l.chunks) - 1
	l.chunks[k] = append(l.chunks[k], e)
	l.n++
}

// addTo appends e to the list at m[k], creating it.
func addTo[K comparable](m map[K]*entryList, k K, e *Entry) {
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
func (t *Table) removeLocked(e *Entry) {
	delete(t.m, e.Key)
	t.liveListed -= len(e.Tags)
	if t.mirror != nil {
		t.mirror.Delete(&e.Key)
	}
}

// live reports whether e, found in the table, still stands at now.
func (t *Table) live(e *Entry, now int64) bool {
	return e.Expiry() > now && (!e.Drop || e.dropGen == t.dropGen.Load())
}

// Lookup returns the live flow for k, or nil.
func (t *Table) Lookup(k *Key, now int64) *Entry {
	t.mu.RLock()
	e := t.m[*k]
	t.mu.RUnlock()
	if e == nil || !t.live(e, now) {
		return nil
	}
	e.hits.Add(1)
	return e
}

// Install adds e unless the snapshot it was simulated on (gen) has been
// replaced meanwhile: a flow computed on an old topology must not outlive
// the invalidation that already ran.
func (t *Table) Install(e *Entry, gen uint64) bool {
	return t.InstallAt(e, gen, t.imports.Load())
}

// InstallAt is Install for a flow simulated when Imports read imp: state
// imported from a peer since then (the tunnel reader applies it while a
// simulation runs) may change the decision, so the flow is not cached; the
// next packet simulates again.
func (t *Table) InstallAt(e *Entry, gen, imp uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen || imp != t.imports.Load() {
		return false
	}
	// Read under the lock: an InvalidateDrops that ran before this install
	// (it cannot tell this simulation's drop from an older one) is then
	// still honoured by the next one.
	e.dropGen = t.dropGen.Load()
	if old := t.m[e.Key]; old != nil {
		t.removeLocked(old) // left dead in the lists and the wheel
	}
	t.m[e.Key] = e
	for _, tag := range e.Tags {
		addTo(t.byTag, tag, e)
	}
	t.listed += len(e.Tags)
	t.liveListed += len(e.Tags)
	addTo(t.wheel, second(e.Expires), e)
	if t.mirror != nil {
		t.mirror.Put(e)
	}
	return true
}

// Invalidate removes every flow carrying one of tags (all: every flow) and
// moves the table to snapshot generation gen. It returns how many went.
func (t *Table) Invalidate(tags map[Tag]struct{}, all bool, gen uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen = gen
	if all {
		n := len(t.m)
		if t.mirror != nil {
			t.mirror.Clear()
		}
		t.m = map[Key]*Entry{}
		t.byTag = map[Tag]*entryList{}
		t.wheel = map[int64]*entryList{}
		t.listed, t.liveListed = 0, 0
		return n
	}
	return t.invalidateLocked(tags)
}

func (t *Table) invalidateLocked(tags map[Tag]struct{}) int {
	n := 0
	for tag := range tags {
		n += t.invalidateTagLocked(tag)
	}
	return n
}

func (t *Table) invalidateTagLocked(tag Tag) int {
	l := t.byTag[tag]
	if l == nil {
		return 0
	}
	n := 0
	for _, c := range l.chunks {
		for _, e := range c {
			if t.m[e.Key] == e {
				t.removeLocked(e)
				n++
			}
		}
	}
	t.listed -= l.n
	delete(t.byTag, tag)
	return n
}

// InvalidateTagList is InvalidateTags for a few tags in a slice (the keys
// of new connection state), without building a set.
func (t *Table) InvalidateTagList(tags []Tag) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, tag := range tags {
		n += t.invalidateTagLocked(tag)
	}
	return n
}

// InvalidateTags removes every flow carrying one of tags (a learned table
// entry changed), leaving the snapshot generation alone.
func (t *Table) InvalidateTags(tags map[Tag]struct{}) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.invalidateLocked(tags)
}

// InvalidateDrops removes every drop flow: new connection state may have
// turned what was dropped into a permitted return direction. O(1): the
// drop flows installed before it turn stale (see Table).
func (t *Table) InvalidateDrops() {
	t.dropGen.Add(1)
	if t.mirror != nil {
		// The mirror has no generations: its drop copies go now.
		t.mu.Lock()
		t.mirror.DeleteDrops()
		t.mu.Unlock()
	}
}

// Use is when the mirror's copy of a flow relying on connection state last
// forwarded a packet (Unix nanoseconds): the caller extends the state
// (State.Touch), which no simulation refreshed meanwhile.
type Use struct {
	Refs []Ref
	At   int64
}

// Expire removes flows past their hard expiry (stale drop flows with
// them: their expiry is short), and compacts the tag lists when most of
// what they hold is dead. It appends to uses the last use of every flow
// due now that has refs and a mirror copy, kept or removed.
func (t *Table) Expire(now int64, uses []Use) []Use {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s, l := range t.wheel {
		if (s-1)*1_000_000_000 >= now {
			continue // all its flows expire after now
		}
		keep := &entryList{} // the bucket of the current second is due in part
		for _, c := range l.chunks {
			for _, e := range c {
				if t.m[e.Key] != e { // replaced or invalidated
					continue
				}
				if e.Expiry() > now {
					keep.add(e)
					continue
				}
				if e.Drop { // a drop's copy never keeps it
					t.removeLocked(e)
					continue
				}
				used, ok := t.lastUse(e, now)
				if ok && len(e.Refs) > 0 {
					uses = append(uses, Use{Refs: e.Refs, At: used})
				}
				if !ok || now-used >= t.busyTTL {
					t.removeLocked(e)
					continue
				}
				// Busy: it lives busyTTL past its last use.
				e.ext.Store(used + t.busyTTL)
				if b := second(e.ext.Load()); b == s {
					keep.add(e)
				} else {
					addTo(t.wheel, b, e)
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
		return uses
	}
	t.byTag = make(map[Tag]*entryList, len(t.byTag))
	for _, e := range t.m {
		for _, tag := range e.Tags {
			addTo(t.byTag, tag, e)
		}
	}
	t.listed = t.liveListed
	return uses
}

// lastUse is when e's mirror copy last forwarded; false when there is no
// mirror or no copy.
func (t *Table) lastUse(e *Entry, now int64) (int64, bool) {
	if t.mirror == nil {
		return 0, false
	}
	idle, ok := t.mirror.Idle(&e.Key)
	return now - idle, ok
}

// Len is the number of flows that stand now (drop flows made stale by
// InvalidateDrops excluded).
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	g := t.dropGen.Load()
	for _, e := range t.m {
		if !e.Drop || e.dropGen == g {
			n++
		}
	}
	return n
}

// Snapshot copies the entries, for the /flows dump (stale drop flows
// excluded).
func (t *Table) Snapshot() []*Entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*Entry, 0, len(t.m))
	g := t.dropGen.Load()
	for _, e := range t.m {
		if !e.Drop || e.dropGen == g {
			out = append(out, e)
		}
	}
	return out
}
