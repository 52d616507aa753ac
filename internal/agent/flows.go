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
	k := flowKey{in: in, ethSrc: p.EthSrc, ethDst: p.EthDst, etherType: p.EtherType, vlan: p.VLAN,
		ttl: p.TTL, tos: p.TOS, frag: p.IsFragment(), size: sizeClass(ipLen), k: packet.KeyOf(p, 0)}
	if p.Proto == packet.ProtoICMP {
		k.icmpType, k.icmpCode = p.ICMPType, p.ICMPCode
	}
	return k
}

// flowEntry is one cached flow. It is immutable once installed, except its
// hit counter.
type flowEntry struct {
	acts    []flow.Action
	tags    []flow.Tag
	expires int64
	drop    bool
	reason  string
	hits    atomic.Uint64
	key     flowKey
}

// flowTable is the exact-match flow cache. Lookups take the read lock only.
type flowTable struct {
	mu    sync.RWMutex
	m     map[flowKey]*flowEntry
	byTag map[flow.Tag]map[*flowEntry]struct{}
	gen   uint64 // the snapshot generation the table is valid for
}

func newFlowTable() *flowTable {
	return &flowTable{m: map[flowKey]*flowEntry{}, byTag: map[flow.Tag]map[*flowEntry]struct{}{}}
}

// lookup returns the live flow for k, or nil.
func (t *flowTable) lookup(k *flowKey, now int64) *flowEntry {
	t.mu.RLock()
	e := t.m[*k]
	t.mu.RUnlock()
	if e == nil || e.expires <= now {
		return nil
	}
	e.hits.Add(1)
	return e
}

// install adds e unless the snapshot it was simulated on (gen) has been
// replaced meanwhile: a flow computed on an old topology must not outlive
// the invalidation that already ran.
func (t *flowTable) install(e *flowEntry, gen uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen {
		return false
	}
	if old := t.m[e.key]; old != nil {
		t.removeLocked(old)
	}
	t.m[e.key] = e
	for _, tag := range e.tags {
		s := t.byTag[tag]
		if s == nil {
			s = map[*flowEntry]struct{}{}
			t.byTag[tag] = s
		}
		s[e] = struct{}{}
	}
	return true
}

func (t *flowTable) removeLocked(e *flowEntry) {
	if t.m[e.key] == e {
		delete(t.m, e.key)
	}
	for _, tag := range e.tags {
		if s := t.byTag[tag]; s != nil {
			delete(s, e)
			if len(s) == 0 {
				delete(t.byTag, tag)
			}
		}
	}
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
		t.byTag = map[flow.Tag]map[*flowEntry]struct{}{}
		return n
	}
	n := 0
	for tag := range tags {
		for e := range t.byTag[tag] {
			t.removeLocked(e)
			n++
		}
	}
	return n
}

// invalidateDrops removes every drop flow: new connection state may have
// turned what was dropped into a permitted return direction.
func (t *flowTable) invalidateDrops() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.m {
		if e.drop {
			t.removeLocked(e)
		}
	}
}

// expire removes flows past their hard expiry.
func (t *flowTable) expire(now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.m {
		if e.expires <= now {
			t.removeLocked(e)
		}
	}
}

func (t *flowTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}

// snapshot copies the entries, for the /flows dump.
func (t *flowTable) snapshot() []*flowEntry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*flowEntry, 0, len(t.m))
	for _, e := range t.m {
		out = append(out, e)
	}
	return out
}
