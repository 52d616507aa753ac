package agent

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
	"golang.org/x/time/rate"
)

// Learned tables are network state (DESIGN.md §5.7): a bridge's learned MAC
// entries and a router's ARP cache are the same on every host. What a
// simulation on this host learns is applied here at once (the flows that
// looked the entry up, or missed it, are invalidated) and published to the
// store under this host's prefix (nsdb.LearnedEntry); every agent watches
// every host's entries, applies them the same way, and re-simulates the
// packets parked for an ARP entry that another host learned.
//
// Ownership: each host writes only its own entries. When two hosts publish
// the same (device, key) — a MAC that moved between hosts — the later write
// wins, and the host whose entry lost deletes it. An owned entry lives while
// it is in use: the simulation reports it again once its refresh time has
// passed (a MAC still sending, a next hop still answering the ARP refresh a
// stale entry triggers), and an entry not reported for its TTL is deleted.
//
// Writes are bounded: one write per key per LearnWriteInterval (a MAC
// flapping between ports is coalesced to its latest port and logged) and
// LearnWriteRate writes per second in all.

// Defaults of the learned tables.
const (
	// DefaultMACTTL is how long a learned MAC lives without being seen
	// (Linux's bridge ageing time).
	DefaultMACTTL = 300 * time.Second
	// DefaultARPTTL is how long a learned ARP entry lives without being
	// confirmed; it is refreshed (an ARP request while still in use) after
	// half of it.
	DefaultARPTTL = 600 * time.Second
	// DefaultLearnWriteInterval spaces the writes of one entry.
	DefaultLearnWriteInterval = time.Second
	// DefaultLearnWriteRate bounds this host's learned-entry writes per
	// second (the burst is a tenth of a second's worth, at least 20).
	DefaultLearnWriteRate = 200
)

// lkey names an entry of a learned table, independently of who holds it.
type lkey struct {
	arp bool
	dev string
	mac [6]byte // MAC table
	ip  uint32  // ARP cache
}

func (k lkey) kind() topology.Kind {
	if k.arp {
		return topology.KindRouter
	}
	return topology.KindBridge
}

func (k lkey) storeKey() string {
	if k.arp {
		return packet.AddrFrom(k.ip).String()
	}
	return net.HardwareAddr(k.mac[:]).String()
}

func (k lkey) devTag() flow.Tag { return flow.TagOf(string(k.kind()), k.dev) }

func (k lkey) tag() flow.Tag {
	if k.arp {
		return sim.ARPTag(k.devTag(), k.ip)
	}
	return sim.MACTag(k.devTag(), k.mac)
}

// keyOfEntry parses a store entry's key.
func keyOfEntry(e *nsdb.LearnedEntry) (lkey, bool) {
	switch e.Kind {
	case topology.KindBridge:
		m, err := net.ParseMAC(e.Key)
		if err != nil || len(m) != 6 {
			return lkey{}, false
		}
		k := lkey{dev: e.Device}
		copy(k.mac[:], m)
		return k, true
	case topology.KindRouter:
		a, err := netip.ParseAddr(e.Key)
		if err != nil || !a.Is4() {
			return lkey{}, false
		}
		return lkey{arp: true, dev: e.Device, ip: packet.U32(a)}, true
	}
	return lkey{}, false
}

func keyOfLearned(l *sim.Learned) lkey {
	if l.ARP {
		return lkey{arp: true, dev: l.DeviceID, ip: l.IP}
	}
	return lkey{dev: l.DeviceID, mac: l.MAC}
}

// valueOf is the store value of a learned entry: the port id of a MAC, the
// MAC of an address.
func valueOf(l *sim.Learned) string {
	if l.ARP {
		return net.HardwareAddr(l.MAC[:]).String()
	}
	return l.PortID
}

type published struct {
	value string
	rev   int64
}

type writtenOp struct {
	op  writeOp
	rev int64
}

type ownedEntry struct {
	value string
	seen  int64 // Unix nanoseconds of the last time a simulation reported it
}

// writeOp is a pending store write of an owned entry: a put of value, or a
// delete.
type writeOp struct {
	del   bool
	value string
}

// learning is the agent's replication of learned tables. owned, store and
// the sim.Tables it feeds change only under the simulation lock
// (missQueue.run; Tables also under simMu, which the simulation reads
// them under); the writer's queue has its own lock.
type learning struct {
	owned map[lkey]*ownedEntry
	store map[lkey]map[string]published // host → what the store holds

	wmu sync.Mutex
	// pending are the writes not yet done (one in flight included: it
	// leaves pending only once written). written are the writes done whose
	// watch event has not been applied yet (seenRev: the revision the watch
	// has applied). Until its event arrives, this host's own latest write
	// is what it must use, whatever the watch showed before.
	pending  map[lkey]writeOp
	written  map[lkey]writtenOp
	seenRev  int64
	lastPut  map[lkey]int64 // Unix nanoseconds of the last write of the key
	flapLog  map[lkey]int64 // last "flapping" log line per key
	kick     chan struct{}
	limit    *rate.Limiter
	interval time.Duration

	tb tunBatch // the watch's re-simulations of parked packets

	failing bool // the last write failed (logged once until one succeeds)

	// listed: the watch's first listing was applied (adoptOwn).
	listed bool
}

func newLearning(ratePerSec float64, interval time.Duration) *learning {
	return &learning{owned: map[lkey]*ownedEntry{}, store: map[lkey]map[string]published{},
		pending: map[lkey]writeOp{}, written: map[lkey]writtenOp{}, lastPut: map[lkey]int64{}, flapLog: map[lkey]int64{}, kick: make(chan struct{}, 1),
		limit: rate.NewLimiter(rate.Limit(ratePerSec), max(20, int(ratePerSec/10))), interval: interval}
}

// queueWrite queues a write of k. A write replacing one not yet done is
// coalesced with it; one of a key written less than the write interval ago
// waits (a MAC flapping between ports: logged, at most every 10 s per key).
func (a *Agent) queueWrite(k lkey, op writeOp) {
	l := a.learn
	now := time.Now().UnixNano()
	l.wmu.Lock()
	if _, ok := l.pending[k]; ok {
		a.m.learnCoalesced.Inc()
	}
	if last, ok := l.lastPut[k]; ok && !op.del && now-last < int64(l.interval) && now-l.flapLog[k] > int64(10*time.Second) {
		l.flapLog[k] = now
		a.log.Warn("agent: learned entry changing faster than its write interval; its writes are coalesced",
			"table", tableName(k), "device_id", k.dev, "key", k.storeKey(), "interval", l.interval)
	}
	l.pending[k] = op
	l.wmu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// pendingPut returns the value of a put not yet written.
func (l *learning) pendingPut(k lkey) (string, bool) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	op, ok := l.pending[k]
	return op.value, ok && !op.del
}

// mine is this host's own entry for k as the other hosts see it or soon
// will: a write not yet done (rev -1: newer than anything stored), else the
// last write whose event the watch has not applied yet, else what the watch
// showed. ok is false when this host holds (or is withdrawing) no entry.
func (l *learning) mine(k lkey, self string) (p published, ok bool) {
	l.wmu.Lock()
	op, pend := l.pending[k]
	w, wok := l.written[k]
	l.wmu.Unlock()
	switch {
	case pend:
		return published{value: op.value, rev: -1}, !op.del
	case wok:
		return published{value: w.op.value, rev: w.rev}, !w.op.del
	}
	p, ok = l.store[k][self]
	return p, ok
}

// ttl of an entry of the kind of k.
func (a *Agent) learnTTL(k lkey) time.Duration {
	if k.arp {
		return a.cfg.ARPTTL
	}
	return a.cfg.MACTTL
}

// learnLocal applies what a simulation on this host learned (under the
// simulation lock) and queues it for the store.
func (a *Agent) learnLocal(ls []sim.Learned, now int64) {
	l := a.learn
	tags := map[flow.Tag]struct{}{}
	for i := range ls {
		e := &ls[i]
		k := keyOfLearned(e)
		v := valueOf(e)
		if o := l.owned[k]; o != nil && o.value == v {
			o.seen = now // in use: keep it
		} else {
			l.owned[k] = &ownedEntry{value: v, seen: now}
			a.queueWrite(k, writeOp{value: v})
			a.m.learned.WithLabelValues(tableName(k), "local").Inc()
		}
		if a.setTable(k, v, true, now) {
			tags[k.tag()] = struct{}{}
		}
	}
	if len(tags) > 0 {
		a.flows.InvalidateTags(tags)
	}
}

func tableName(k lkey) string {
	if k.arp {
		return "arp"
	}
	return "mac"
}

// setTable makes the simulation's table hold v for k (present=false: no
// entry) and reports whether that changed what a simulation would decide.
// The entry's refresh time restarts either way.
func (a *Agent) setTable(k lkey, v string, present bool, now int64) bool {
	refresh := now + int64(a.learnTTL(k)/2)
	a.simMu.Lock()
	defer a.simMu.Unlock()
	t := a.tables
	if k.arp {
		tk := sim.ARPKey{Router: k.devTag(), IP: k.ip}
		cur, had := t.ARP[tk]
		if !present {
			delete(t.ARP, tk)
			return had
		}
		m, err := net.ParseMAC(v)
		if err != nil || len(m) != 6 {
			return false
		}
		var mac [6]byte
		copy(mac[:], m)
		t.ARP[tk] = sim.ARPEntry{MAC: mac, Refresh: refresh}
		return !had || cur.MAC != mac
	}
	tk := sim.MACKey{Bridge: k.devTag(), MAC: k.mac}
	cur, had := t.MACs[tk]
	if !present {
		delete(t.MACs, tk)
		return had
	}
	pt := flow.TagOf(string(topology.KindPort), v)
	t.MACs[tk] = sim.MACEntry{Port: pt, Refresh: refresh}
	return !had || cur.Port != pt
}

// effective is the entry a simulation should use for k: this host's own
// value while its write is pending (it is newer than anything stored),
// else the stored entry written last.
func (a *Agent) effective(k lkey) (string, bool) {
	best, found := a.learn.mine(k, a.hostID)
	if found && best.rev < 0 {
		return best.value, true
	}
	for h, p := range a.learn.store[k] {
		if h != a.hostID && (!found || p.rev > best.rev) {
			best, found = p, true
		}
	}
	return best.value, found
}

// applyLearned follows the store's learned entries (the watch; every event,
// this host's own writes included). It takes the simulation lock, so what
// it changes is atomic with respect to simulations and flow installs.
func (a *Agent) applyLearned(reset bool, es []nsdb.LearnedEvent, rev int64) {
	a.miss.run.Lock()
	defer a.miss.run.Unlock()
	l := a.learn
	// This host's writes the watch now shows are no longer in flight.
	l.wmu.Lock()
	for i := range es {
		if e := &es[i].Entry; e.Host == a.hostID {
			if k, ok := keyOfEntry(e); ok {
				if w, ok := l.written[k]; ok && w.rev <= e.Revision {
					delete(l.written, k)
				}
			}
		}
	}
	if reset {
		clear(l.written)
	}
	l.seenRev = rev
	l.wmu.Unlock()
	touched := map[lkey]struct{}{}
	if reset {
		for k := range l.store {
			touched[k] = struct{}{}
		}
		l.store = map[lkey]map[string]published{}
	}
	for i := range es {
		ev := &es[i]
		k, ok := keyOfEntry(&ev.Entry)
		if !ok {
			continue
		}
		touched[k] = struct{}{}
		hosts := l.store[k]
		if ev.Delete {
			delete(hosts, ev.Entry.Host)
			if len(hosts) == 0 {
				delete(l.store, k)
			}
			continue
		}
		if hosts == nil {
			hosts = map[string]published{}
			l.store[k] = hosts
		}
		hosts[ev.Entry.Host] = published{value: ev.Entry.Value, rev: ev.Entry.Revision}
		if ev.Entry.Host != a.hostID {
			a.m.learned.WithLabelValues(tableName(k), "remote").Inc()
		}
	}
	now := time.Now().UnixNano()
	if reset && !l.listed {
		l.listed = true
		a.adoptOwn(now)
	}
	tags := map[flow.Tag]struct{}{}
	var resolved []sim.Learned
	for k := range touched {
		hosts := l.store[k]
		// Another host's newer entry for a key this host owns: the MAC
		// moved away (or another host confirmed the address later). Ours is
		// stale; withdraw it unless a newer local value is on its way.
		if o := l.owned[k]; o != nil {
			if mine, stored := l.mine(k, a.hostID); stored && mine.rev >= 0 {
				for h, p := range hosts {
					if h != a.hostID && p.rev > mine.rev {
						delete(l.owned, k)
						a.queueWrite(k, writeOp{del: true})
						break
					}
				}
			}
		}
		v, ok := a.effective(k)
		if a.setTable(k, v, ok, now) {
			tags[k.tag()] = struct{}{}
			if ok && k.arp {
				m, _ := net.ParseMAC(v)
				e := sim.Learned{ARP: true, DeviceID: k.dev, IP: k.ip}
				copy(e.MAC[:], m)
				resolved = append(resolved, e)
			}
		}
	}
	if len(tags) > 0 {
		a.flows.InvalidateTags(tags)
	}
	if len(resolved) > 0 {
		// Packets parked here for a next hop another host resolved.
		a.resume(resolved, &l.tb)
		a.flushTunnel(&l.tb)
	}
}

// adoptOwn takes over the entries a previous agent of this host left in
// the store (its lease not run out yet: it was killed, or it stopped for a
// lone gateway's graceful restart): they are owned again and written
// under this agent's lease, so they do not go when the old lease runs out
// (the upstream router's ARP entry, on a gateway whose kernel datapath
// forwarded on meanwhile, would, and every flow out through it with it).
// Like an entry learned here, each lives while simulations report it.
func (a *Agent) adoptOwn(now int64) {
	l := a.learn
	n := 0
	for k, hosts := range l.store {
		p, ok := hosts[a.hostID]
		if !ok || l.owned[k] != nil {
			continue
		}
		newer := false // another host saw it since: the MAC moved
		for h, o := range hosts {
			newer = newer || h != a.hostID && o.rev > p.rev
		}
		if newer {
			continue
		}
		l.owned[k] = &ownedEntry{value: p.value, seen: now}
		a.queueWrite(k, writeOp{value: p.value})
		n++
	}
	if n > 0 {
		a.log.Info("agent: adopted the learned entries a previous agent of this host published", "entries", n)
	}
}

// expireLearned withdraws the owned entries no simulation has reported for
// their TTL (under the simulation lock).
func (a *Agent) expireLearned(now int64) {
	l := a.learn
	for k, o := range l.owned {
		if now-o.seen > int64(a.learnTTL(k)) {
			delete(l.owned, k)
			a.queueWrite(k, writeOp{del: true})
		}
	}
}

// republishLearned queues every owned entry again: the lease they were
// bound to was lost, and they with it.
func (a *Agent) republishLearned() {
	a.miss.run.Lock()
	defer a.miss.run.Unlock()
	for k, o := range a.learn.owned {
		a.queueWrite(k, writeOp{value: o.value})
	}
}

// runLearnedWatch follows every host's learned entries.
func (a *Agent) runLearnedWatch(ctx context.Context) {
	_ = a.store.WatchLearned(ctx, nsdb.LearnedHandler{
		Reset: func(es []nsdb.LearnedEntry, rev int64) {
			evs := make([]nsdb.LearnedEvent, len(es))
			for i, e := range es {
				evs[i] = nsdb.LearnedEvent{Entry: e}
			}
			a.applyLearned(true, evs, rev)
		},
		Events: func(evs []nsdb.LearnedEvent, rev int64) { a.applyLearned(false, evs, rev) },
	})
}

// runLearnedWriter writes the queued entries to the store, at a bounded
// rate: a key written less than LearnWriteInterval ago waits (its later
// values replace the queued one), and all keys share LearnWriteRate.
func (a *Agent) runLearnedWriter(ctx context.Context) {
	l := a.learn
	t := time.NewTicker(l.interval / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-t.C:
		}
		for {
			k, op, ok := a.nextWrite()
			if !ok {
				break
			}
			if err := l.limit.Wait(ctx); err != nil {
				return
			}
			if !a.writeLearned(ctx, k, op) {
				break // the store is unreachable: retry at the next tick
			}
		}
	}
}

// nextWrite takes a queued write that is due.
func (a *Agent) nextWrite() (lkey, writeOp, bool) {
	l := a.learn
	now := time.Now().UnixNano()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	for k, op := range l.pending {
		if last, ok := l.lastPut[k]; ok && now-last < int64(l.interval) {
			continue
		}
		l.lastPut[k] = now
		return k, op, true
	}
	// Forget the write times that no longer hold anything back.
	for k, last := range l.lastPut {
		if now-last >= int64(l.interval) {
			delete(l.lastPut, k)
			delete(l.flapLog, k)
		}
	}
	return lkey{}, writeOp{}, false
}

// writeLearned performs one write; on failure the write stays queued and
// it reports false.
func (a *Agent) writeLearned(ctx context.Context, k lkey, op writeOp) bool {
	e := nsdb.LearnedEntry{Host: a.hostID, Kind: k.kind(), Device: k.dev, Key: k.storeKey(), Value: op.value}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var err error
	var rev int64
	if op.del {
		rev, err = a.store.DeleteLearned(wctx, e)
		a.m.learnWrites.WithLabelValues("delete").Inc()
	} else {
		a.leaseMu.Lock()
		lease := a.lease
		a.leaseMu.Unlock()
		rev, err = a.store.PutLearned(wctx, e, lease)
		a.m.learnWrites.WithLabelValues("put").Inc()
	}
	l := a.learn
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err != nil {
		delete(l.lastPut, k)
		if !l.failing { // retried every tick: say it once, not at every retry
			l.failing = true
			a.log.Warn("agent: publishing learned entries failed; retrying", "table", tableName(k), "device_id", k.dev, "key", e.Key, "err", err)
		}
		return false
	}
	if l.failing {
		l.failing = false
		a.log.Info("agent: publishing learned entries again")
	}
	if rev > l.seenRev { // its event is still to come
		l.written[k] = writtenOp{op: op, rev: rev}
	}
	if l.pending[k] == op { // not replaced by a newer one meanwhile
		delete(l.pending, k)
	}
	return true
}

// Learned returns what this agent's simulations use for one learned entry:
// the id of the port behind a MAC of a bridge (kind KindBridge, key a MAC),
// or the MAC of an address for a router (KindRouter, key an IPv4 address),
// as the store spells them. ok is false when it has no such entry.
func (a *Agent) Learned(kind topology.Kind, device, key string) (value string, ok bool) {
	k, ok := keyOfEntry(&nsdb.LearnedEntry{Kind: kind, Device: device, Key: key})
	if !ok {
		return "", false
	}
	a.miss.run.Lock()
	defer a.miss.run.Unlock()
	return a.effective(k)
}
