package agent

import "github.com/canopy-sdn/canopy/internal/datapath"

// simBatch is how many misses the simulation goroutine handles before it
// sends what they put into the tunnel. Each send into the tunnel costs a
// system call; under a flood of new flows one sendmmsg per batch leaves more
// of the CPU to the simulations. The held miss items are buffers the ports'
// readers cannot use meanwhile, so the batch stays well below the miss
// queue's depth.
const simBatch = 16

// tunBatch is the simulation goroutine's pending tunnel sends and the miss
// items whose buffers they point into.
type tunBatch struct {
	pkts []datapath.TunnelPacket
	held []heldItem
}

type heldItem struct {
	vp *vport
	it *missItem
}

// hold keeps it out of vp's free list until the batch is sent.
func (tb *tunBatch) hold(vp *vport, it *missItem) { tb.held = append(tb.held, heldItem{vp, it}) }

// queueTunnel adds frame, for host's port key, to the batch.
func (a *Agent) queueTunnel(tb *tunBatch, v *view, in *vport, host string, key uint32, frame []byte, hdr datapath.VnetHdr) {
	if p, ok := a.tunnelPacket(v, in, host, key, frame, hdr); ok {
		tb.pkts = append(tb.pkts, p)
	}
}

// flushTunnel sends the batch and gives the held items back to their ports.
func (a *Agent) flushTunnel(tb *tunBatch) {
	if len(tb.pkts) > 0 {
		a.tunMu.Lock()
		n, _ := a.tunnel.WriteBatch(tb.pkts)
		a.tunMu.Unlock()
		a.m.tunnelTx.Add(float64(n))
		if n < len(tb.pkts) {
			a.m.tunnelDrops.Add(float64(len(tb.pkts) - n))
		}
		clear(tb.pkts) // no reference to the buffers past this point
		tb.pkts = tb.pkts[:0]
	}
	for _, h := range tb.held {
		h.vp.free <- h.it
	}
	clear(tb.held)
	tb.held = tb.held[:0]
}
