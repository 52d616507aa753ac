package agent

import (
	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/fastpath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
)

// simBatch is how many misses the simulation goroutine handles before it
// sends what they put into the tunnel. Each send into the tunnel costs a
// system call; under a flood of new flows one sendmmsg per batch leaves more
// of the CPU to the simulations. The held miss items are buffers the ports'
// readers cannot use meanwhile, so the batch stays well below the miss
// queue's depth.
const simBatch = 16

// tunBatch is the simulation goroutine's pending tunnel sends and the miss
// items whose buffers they point into. On the kernel path it also holds
// the outputs to local ports (one Injector.Send for the batch's frames and
// one map update for its flows, instead of one of each per frame).
type tunBatch struct {
	pkts  []datapath.TunnelPacket
	local []localOut
	out   []fastpath.Outgoing // flushLocal's, with their ports
	outVP []*vport
	held  []heldItem
}

type localOut struct {
	vp    *vport
	frame []byte
	hdr   datapath.VnetHdr
}

// queueLocal adds frame, for the local port with tunnel key key, to the
// batch.
func (a *Agent) queueLocal(tb *tunBatch, in *vport, key uint32, frame []byte, hdr datapath.VnetHdr) {
	out := a.ports.Load().byKey[key]
	if out == nil {
		if in != nil {
			in.dropOut.Inc()
		}
		return
	}
	tb.local = append(tb.local, localOut{out, frame, hdr})
}

// rewritesAfter reports whether acts change the frame: an output before
// them must then be sent before they run, not queued.
func rewritesAfter(acts []flow.Action) bool {
	for i := range acts {
		if k := acts[i].Kind; k != flow.Output && k != flow.Tunnel && k != flow.Drop {
			return true
		}
	}
	return false
}

// flushLocal sends the batch's outputs to local ports: those of kernel
// ports in one Injector.Send, the others (ports served in userspace) one
// by one.
func (a *Agent) flushLocal(tb *tunBatch) {
	if len(tb.local) == 0 {
		return
	}
	out, vps := tb.out[:0], tb.outVP[:0]
	for i := range tb.local {
		l := &tb.local[i]
		if kp, ok := l.vp.dev.(*kernelPort); ok {
			out = append(out, fastpath.Outgoing{Frame: l.frame, Hdr: l.hdr, Key: kp.key})
			vps = append(vps, l.vp)
		} else {
			l.vp.write(l.frame, l.hdr)
		}
	}
	if len(out) > 0 {
		n, _ := a.kernel.inj.Send(out)
		for i, vp := range vps {
			if i < n {
				vp.tx.Inc()
			} else {
				vp.dropTx.Inc() // refused (or the first bytes of a large send)
			}
		}
	}
	clear(out)
	clear(vps)
	tb.out, tb.outVP = out[:0], vps[:0]
	clear(tb.local)
	tb.local = tb.local[:0]
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
	a.flushLocal(tb)
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

// inlineSim is a port reader's own simulation state.
type inlineSim struct {
	it  missItem
	pkt packet.Packet
	res sim.Result
	tb  tunBatch
}

// simulateInline simulates a miss on the reader's thread when nothing else
// is simulating and the port has no miss waiting: the common case of a
// handful of new flows then costs no hand-off to the simulation goroutine
// (a wake-up and a context switch each, which under a flood of new flows
// cost more CPU than the simulations). When the simulation goroutine is
// busy the miss is queued as before, so a port flooding new flows still
// gets only its share of it: a reader simulating inline competes for the
// same lock, which Go's mutex hands over in turn once a waiter has waited
// a millisecond.
func (a *Agent) simulateInline(vp *vport, p *datapath.Packet, in *inlineSim) bool {
	if len(vp.q) > 0 || !a.miss.run.TryLock() {
		return false
	}
	in.it.buf, in.it.n, in.it.hdr = p.Buf, p.N, p.Hdr
	a.simulate(vp, &in.it, &in.pkt, &in.res, &in.tb)
	a.miss.run.Unlock()
	in.it.buf = nil
	return true
}
