package agent

import (
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
)

// Bounds of the parked packets (DESIGN.md §5 step 3: a packet whose next
// hop is unresolved waits for the ARP reply instead of blocking the
// simulation). A VM retransmits anyway; parking only saves the first
// packets of a flow (a TCP SYN, a DNS query) a round trip of their
// timeouts, so a few per address are enough, and the total bounds the
// memory a flood towards unresolvable addresses can hold.
const (
	parkPerAddr = 8
	parkMax     = 256
	// DefaultParkTTL is how long a parked packet waits for its next hop's
	// ARP reply before it is dropped (Linux's neighbour code gives up after
	// 3 probes a second apart).
	DefaultParkTTL = 3 * time.Second
)

// parkedPkt is a copy of a frame whose simulation answered VerdictNotYet.
type parkedPkt struct {
	vp       *vport
	frame    []byte
	hdr      datapath.VnetHdr
	deadline int64 // Unix nanoseconds
}

// parkLot holds the parked packets by the address whose ARP reply they
// wait for, or by the partition of the topology they went into that the
// replica is loading (replica.go). It belongs to whoever simulates (held
// under missQueue.run, like the simulation itself), so it takes no lock of
// its own.
type parkLot struct {
	byIP   map[uint32][]parkedPkt
	byPart map[string][]parkedPkt
	n      int
	// ready are packets whose address was just learned, re-simulated once
	// the simulation that learned it is done with its result.
	ready    []parkedPkt
	resuming bool
	it       missItem
	pkt      packet.Packet
	res      sim.Result

	// forState are packets waiting for connection state (parkForState).
	forState []parkedPkt
	sit      missItem
	spkt     packet.Packet
	sres     sim.Result
}

func newParkLot() *parkLot {
	return &parkLot{byIP: map[uint32][]parkedPkt{}, byPart: map[string][]parkedPkt{}}
}

// park keeps a copy of frame until the ARP entry for the next hop the
// simulation asked for (its ARP request in res.Generated) is learned — here,
// when the reply comes in through a port of this host, or on any other host
// whose port the request left through (the entry arrives through the store,
// learning.go). deadline is carried over when a resumed packet is parked
// again.
func (a *Agent) park(vp *vport, frame []byte, hdr *datapath.VnetHdr, res *sim.Result, deadline int64) {
	ip, ok := arpTarget(res)
	if !ok {
		return
	}
	l := a.parked
	q := l.byIP[ip]
	if len(q) >= parkPerAddr || l.n >= parkMax {
		a.m.parked.WithLabelValues("overflow").Inc()
		vp.dropNoARP.Inc()
		return
	}
	l.byIP[ip] = append(q, parkedPkt{vp: vp, frame: append([]byte(nil), frame...), hdr: *hdr, deadline: deadline})
	l.n++
}

// parkForPartition keeps a copy of frame until the replica holds partition
// part, which its simulation went into (res.Need).
func (a *Agent) parkForPartition(vp *vport, frame []byte, hdr *datapath.VnetHdr, part string, deadline int64) {
	l := a.parked
	q := l.byPart[part]
	if len(q) >= parkPerAddr || l.n >= parkMax {
		a.m.parked.WithLabelValues("overflow").Inc()
		vp.dropNoARP.Inc()
		return
	}
	l.byPart[part] = append(q, parkedPkt{vp: vp, frame: append([]byte(nil), frame...), hdr: *hdr, deadline: deadline})
	l.n++
}

// resumeLoaded re-simulates the packets parked for partitions v holds.
func (a *Agent) resumeLoaded(v *view) {
	a.miss.run.Lock()
	defer a.miss.run.Unlock()
	l := a.parked
	for part, q := range l.byPart {
		if v.loaded[part] {
			delete(l.byPart, part)
			l.n -= len(q)
			l.ready = append(l.ready, q...)
		}
	}
	if len(l.ready) == 0 || l.resuming {
		return
	}
	a.resume(nil, &a.resumeTB)
	a.flushTunnel(&a.resumeTB)
}

// arpTarget is the address of the ARP request res sends.
func arpTarget(res *sim.Result) (uint32, bool) {
	for i := range res.Generated {
		var p packet.Packet
		p.Decode(res.Generated[i].Frame)
		if p.EtherType == packet.EtherTypeARP && p.ARPOp == packet.ARPRequest {
			return p.ARPTPA, true
		}
	}
	return 0, false
}

// resume re-simulates the packets waiting for the addresses res learned.
// It runs after the simulation that learned them has used its result; a
// resumed packet's own simulation may learn more (a bridge's MAC entry),
// which only queues more packets for the loop already running here.
func (a *Agent) resume(learned []sim.Learned, tb *tunBatch) {
	l := a.parked
	for _, e := range learned {
		if !e.ARP || e.MAC == ([6]byte{}) {
			continue
		}
		q, ok := l.byIP[e.IP]
		if !ok {
			continue
		}
		delete(l.byIP, e.IP)
		l.n -= len(q)
		l.ready = append(l.ready, q...)
	}
	if l.resuming {
		return
	}
	l.resuming = true
	for len(l.ready) > 0 {
		p := l.ready[0]
		l.ready[0] = parkedPkt{}
		l.ready = l.ready[1:]
		a.m.parked.WithLabelValues("resumed").Inc()
		l.it = missItem{buf: p.frame, n: len(p.frame), hdr: p.hdr, parkedUntil: p.deadline}
		a.simulate(p.vp, &l.it, &l.pkt, &l.res, tb)
	}
	l.ready = nil
	l.it = missItem{}
	l.resuming = false
}

// expireParked drops the packets whose next hop did not answer in time (or
// whose partition did not load in time). The router's behaviour for the
// address is unchanged: the next packet towards it asks again.
func (a *Agent) expireParked(now int64) {
	expireParkedIn(a, a.parked.byIP, now)
	expireParkedIn(a, a.parked.byPart, now)
}

func expireParkedIn[K comparable](a *Agent, m map[K][]parkedPkt, now int64) {
	l := a.parked
	for k, q := range m {
		keep := q[:0]
		for _, p := range q {
			if p.deadline > now {
				keep = append(keep, p)
				continue
			}
			l.n--
			a.m.parked.WithLabelValues("expired").Inc()
			p.vp.dropNoARP.Inc()
		}
		clear(q[len(keep):])
		if len(keep) == 0 {
			delete(m, k)
		} else {
			m[k] = keep
		}
	}
}

// stateWaitMax bounds the packets waiting for connection state.
const stateWaitMax = 256

// parkForState keeps a packet that entered through a member of a stateful
// port group (an uplink) and was dropped: it may be the reply of a
// connection whose state a peer sent before the data, and which this host
// has not imported yet — the state message and the reply race through
// different readers, and on a busy host the reply can win. It waits for
// the next state import (importState wakes the simulator) or at most the
// next housekeeping tick, and is simulated once more; that verdict is the
// one cached. It reports false when the packet cannot wait (the lot is
// full).
func (a *Agent) parkForState(vp *vport, frame []byte, hdr *datapath.VnetHdr) bool {
	l := a.parked
	if len(l.forState) >= stateWaitMax {
		return false
	}
	l.forState = append(l.forState, parkedPkt{vp: vp, frame: append([]byte(nil), frame...), hdr: *hdr})
	return true
}

// resumeForState simulates the packets waiting for state again, each for
// the last time. Caller holds miss.run.
func (a *Agent) resumeForState(tb *tunBatch) {
	l := a.parked
	q := l.forState
	l.forState = nil
	for i, p := range q {
		a.m.parked.WithLabelValues("state_resumed").Inc()
		l.sit = missItem{buf: p.frame, n: len(p.frame), hdr: p.hdr, stateRetried: true}
		a.simulate(p.vp, &l.sit, &l.spkt, &l.sres, tb)
		q[i] = parkedPkt{}
	}
	l.sit = missItem{}
}
