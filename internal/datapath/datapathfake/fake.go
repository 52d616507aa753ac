// Package datapathfake is an in-memory datapath.Port for component tests
// of the agent: a pair of ports joined like the two ends of a cable, with a
// bounded queue each way (a full queue drops and counts, as a NIC ring
// would) and the same blocking and Close semantics as the real devices.
package datapathfake

import (
	"sync"

	"github.com/canopy-sdn/canopy/internal/datapath"
)

// QueueLen is how many frames a direction holds before dropping.
const QueueLen = 1024

type frame struct {
	b   []byte
	hdr datapath.VnetHdr
}

// queue is one direction of the cable.
type queue struct {
	mu     sync.Mutex
	cond   sync.Cond
	q      []frame // ring of QueueLen
	head   int
	n      int
	closed bool
	free   [][]byte // recycled frame buffers
	// readers is how many ReadBatch calls are blocked waiting for a frame:
	// a test waits for it to know a reader is parked before it acts.
	readers int
}

func newQueue() *queue {
	q := &queue{q: make([]frame, QueueLen)}
	q.cond.L = &q.mu
	return q
}

// Port is one end of a pair.
type Port struct {
	name string
	in   *queue // what this end reads
	out  *queue // what this end writes
	// Stats count like a real device's.
	Stats datapath.PortStats
}

var _ datapath.Port = (*Port)(nil)

// Pair returns two connected ports: what one writes, the other reads.
// Typically the agent drives one end and the test plays the VM on the other.
func Pair(nameA, nameB string) (*Port, *Port) {
	ab, ba := newQueue(), newQueue()
	return &Port{name: nameA, in: ba, out: ab}, &Port{name: nameB, in: ab, out: ba}
}

// Name is the port's name.
func (p *Port) Name() string { return p.name }

// ReadBatch blocks until a frame is queued, then copies up to len(pkts)
// frames into the callers' buffers. Frames longer than their buffer are
// dropped and counted, as the kernel would.
func (p *Port) ReadBatch(pkts []datapath.Packet) (int, error) {
	q := p.in
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.n == 0 && !q.closed {
		q.readers++
		q.cond.Wait()
		q.readers--
	}
	if q.closed {
		return 0, datapath.ErrClosed
	}
	n := 0
	for n < len(pkts) && q.n > 0 {
		f := q.q[q.head]
		q.q[q.head] = frame{}
		q.head = (q.head + 1) % len(q.q)
		q.n--
		if len(f.b) > len(pkts[n].Buf) {
			p.Stats.RxDropped.Add(1)
		} else {
			pkts[n].N = copy(pkts[n].Buf, f.b)
			pkts[n].Hdr = f.hdr
			n++
		}
		q.free = append(q.free, f.b[:0])
	}
	p.Stats.RxFrames.Add(uint64(n))
	return n, nil
}

// WriteBatch copies the frames to the other end's queue.
func (p *Port) WriteBatch(pkts []datapath.Packet) (int, error) {
	q := p.out
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0, datapath.ErrClosed
	}
	for i := range pkts {
		if q.n == len(q.q) {
			p.Stats.TxDropped.Add(1)
			continue
		}
		var b []byte
		if k := len(q.free); k > 0 {
			b, q.free = q.free[k-1], q.free[:k-1]
		}
		b = append(b, pkts[i].Frame()...)
		q.q[(q.head+q.n)%len(q.q)] = frame{b: b, hdr: pkts[i].Hdr}
		q.n++
		p.Stats.TxFrames.Add(1)
	}
	q.cond.Broadcast()
	return len(pkts), nil
}

// Close closes both directions (as unplugging the cable would for this
// end) and wakes blocked readers on both ends.
func (p *Port) Close() error {
	for _, q := range []*queue{p.in, p.out} {
		q.mu.Lock()
		q.closed = true
		q.cond.Broadcast()
		q.mu.Unlock()
	}
	return nil
}
