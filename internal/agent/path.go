package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
)

// execute applies a flow's actions to a frame in place and emits it.
//
// Frames from a TAP often carry a partial L4 checksum (NEEDS_CSUM: the field
// holds the pseudo-header sum, not its complement). An address rewrite must
// then update that sum, not a final checksum: complementing the field around
// the incremental update does exactly that. A port rewrite must leave it
// alone (the ports are summed later, with the payload).
//
// With tb, tunnel outputs are queued there (the simulation goroutine sends
// them in one batch), and on the kernel path outputs to local ports too;
// without, each is sent at once.
func (a *Agent) execute(v *view, in *vport, frame []byte, hdr *datapath.VnetHdr, pkt *packet.Packet, acts []flow.Action, tb *tunBatch) {
	csum := partialCsum(frame, hdr)
	for i := range acts {
		act := &acts[i]
		switch act.Kind {
		case flow.SetEthSrc:
			packet.SetEthSrc(frame, pkt, act.MAC)
		case flow.SetEthDst:
			packet.SetEthDst(frame, pkt, act.MAC)
		case flow.SetIPSrc, flow.SetIPDst:
			setIP(frame, pkt, csum, act.Kind == flow.SetIPDst, act.IP)
		case flow.SetSrcPort, flow.SetDstPort:
			var saved uint16
			if csum >= 0 {
				saved = binary.BigEndian.Uint16(frame[csum:])
			}
			if act.Kind == flow.SetSrcPort {
				packet.SetSrcPort(frame, pkt, act.Port)
			} else {
				packet.SetDstPort(frame, pkt, act.Port)
			}
			if csum >= 0 {
				binary.BigEndian.PutUint16(frame[csum:], saved)
			}
		case flow.DecTTL:
			packet.DecTTL(frame, pkt, uint8(act.Port))
		case flow.Output:
			if tb != nil && a.kernel != nil && !rewritesAfter(acts[i+1:]) {
				a.queueLocal(tb, in, act.Key, frame, *hdr)
			} else {
				a.toLocal(in, act.Key, frame, *hdr)
			}
		case flow.Tunnel:
			if tb != nil {
				a.queueTunnel(tb, v, in, act.Host, act.Key, frame, *hdr)
			} else {
				a.toTunnel(v, in, act.Host, act.Key, frame, *hdr)
			}
		case flow.Drop:
			return
		}
	}
}

func invert(b []byte) { binary.BigEndian.PutUint16(b, ^binary.BigEndian.Uint16(b)) }

// partialCsum is the offset of the L4 checksum field when it holds a
// partial (pseudo-header) sum, -1 otherwise.
func partialCsum(frame []byte, hdr *datapath.VnetHdr) int {
	if hdr.NeedsCsum() {
		if o := int(hdr.CsumStart) + int(hdr.CsumOffset); o+2 <= len(frame) {
			return o
		}
	}
	return -1
}

// setIP rewrites the source (or destination) address, keeping a partial
// checksum at csum (see execute) a partial one.
func setIP(frame []byte, pkt *packet.Packet, csum int, dst bool, ip uint32) {
	if csum >= 0 {
		invert(frame[csum:])
	}
	if dst {
		packet.SetIPDst(frame, pkt, ip)
	} else {
		packet.SetIPSrc(frame, pkt, ip)
	}
	if csum >= 0 {
		invert(frame[csum:])
	}
}

func (a *Agent) toLocal(in *vport, key uint32, frame []byte, hdr datapath.VnetHdr) {
	out := a.ports.Load().byKey[key]
	if out == nil {
		if in != nil {
			in.dropOut.Inc()
		}
		return
	}
	out.write(frame, hdr)
}

// tunnelPacket addresses frame to host's tunnel endpoint; false (counted)
// when the host is unknown.
func (a *Agent) tunnelPacket(v *view, in *vport, host string, key uint32, frame []byte, hdr datapath.VnetHdr) (datapath.TunnelPacket, bool) {
	addr, ok := v.peers[host]
	if !ok {
		if in != nil {
			in.dropOut.Inc()
		} else {
			a.m.tunnelDrops.Inc()
		}
		return datapath.TunnelPacket{}, false
	}
	if hdr.IsGSO() && a.tunMTU > 0 {
		hdr.GSOSize = clampGSO(frame, hdr, a.tunMTU)
	}
	return datapath.TunnelPacket{Addr: addr, VNI: key, Frame: frame, Hdr: hdr}, true
}

func (a *Agent) toTunnel(v *view, in *vport, host string, key uint32, frame []byte, hdr datapath.VnetHdr) {
	p, ok := a.tunnelPacket(v, in, host, key, frame, hdr)
	if !ok {
		return
	}
	a.tunMu.Lock()
	a.tunOne[0] = p
	n, _ := a.tunnel.WriteBatch(a.tunOne[:])
	a.tunOne[0].Frame = nil
	a.tunMu.Unlock()
	if n == 1 {
		a.m.tunnelTx.Inc()
	} else {
		a.m.tunnelDrops.Inc()
	}
}

// runTunnelRx delivers tunnelled frames to the port the VNI names, without
// simulating (the ingress host did), and imports state messages.
func (a *Agent) runTunnelRx() {
	pkts := make([]datapath.TunnelPacket, 64)
	m := newMerger()
	for {
		n, err := a.tunnel.ReadBatch(pkts)
		if err != nil {
			if errors.Is(err, datapath.ErrClosed) {
				return
			}
			a.log.Warn("agent: tunnel read", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		pm := a.ports.Load()
		for i := range n {
			p := &pkts[i]
			a.m.tunnelRx.Inc()
			if p.VNI == StateVNI {
				if isHeartbeat(p.Frame) {
					a.live.heard(p.Addr, p.Frame, time.Now().UnixNano())
				} else {
					a.importState(p.Frame)
				}
				continue
			}
			vp := pm.byKey[p.VNI]
			if vp == nil {
				a.m.tunnelUnknown.Inc()
				continue
			}
			if !m.add(vp, p.Frame) {
				m.flush()
				vp.write(p.Frame, datapath.VnetHdr{})
			}
		}
		// The frames are views of the tunnel's buffers: nothing is held
		// across reads.
		m.flush()
	}
}

// missQueue wakes the simulation goroutine.
type missQueue struct {
	wake chan struct{}
	stop chan struct{}
	// run is held by whoever simulates: the simulation goroutine while it
	// drains the queues, or a port's reader simulating a miss itself (see
	// fromPort). Simulations stay one at a time, as if all ran on the one
	// goroutine.
	run sync.Mutex
}

func newMissQueue() *missQueue {
	return &missQueue{wake: make(chan struct{}, 1), stop: make(chan struct{})}
}

func (q *missQueue) notify() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *missQueue) close() { close(q.stop) }

// runSimulator is the one goroutine that simulates: it owns the conntrack
// and NAT state (with the tunnel reader's imports, under simMu) and serves
// the ports' miss queues round-robin, one packet per port per round, so a
// port flooding new flows takes at most its share.
//
// The packets it sends into the tunnel go out in batches (one sendmmsg for
// up to simBatch of them, see tunBatch); their miss items go back to the
// free lists once sent. A batch is flushed as soon as the queues are empty,
// so a lone miss waits for nothing.
func (a *Agent) runSimulator(ctx context.Context) {
	var res sim.Result
	var pkt packet.Packet
	tb := &tunBatch{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.miss.stop:
			return
		case <-a.miss.wake:
		}
		a.miss.run.Lock()
		if a.stateArrived.Swap(false) {
			a.resumeForState(tb)
		}
		for {
			pm := a.ports.Load()
			did := false
			for _, vp := range pm.list {
				select {
				case it := <-vp.q:
					a.simulate(vp, it, &pkt, &res, tb)
					tb.hold(vp, it)
					did = true
					if len(tb.held) >= simBatch {
						a.flushTunnel(tb)
					}
				default:
				}
			}
			if !did {
				break
			}
		}
		a.flushTunnel(tb)
		a.miss.run.Unlock()
	}
}

// simulate handles one miss; tunnel outputs go to tb when it is not nil.
func (a *Agent) simulate(vp *vport, it *missItem, pkt *packet.Packet, res *sim.Result, tb *tunBatch) {
	v := a.view.Load()
	frame := it.buf[:it.n]
	pkt.Decode(frame)
	il := ipLen(pkt, &it.hdr)
	k := flow.KeyOf(vp.key, pkt, il)
	now := time.Now().UnixNano()
	isARP := pkt.EtherType == packet.EtherTypeARP
	if !isARP {
		// An earlier packet of the same flow may have installed it.
		if e := a.flows.Lookup(&k, now); e != nil {
			if !e.Drop {
				a.execute(v, vp, frame, &it.hdr, pkt, e.Actions, tb)
			}
			return
		}
	}
	sp := *pkt
	if il > 0 {
		sp.TotalLen = uint16(min(il, 0xffff))
	}
	opts := sim.Options{Now: now, LocalHost: a.hostID, Tables: a.tables,
		ConnTTL: int64(a.cfg.ConnTTL), NATTTL: int64(a.cfg.ConnTTL)}
	a.simMu.Lock()
	imp := a.flows.Imports() // what this simulation sees of the peers' state
	sim.Simulate(v.snap, a.state, vp.id, frame, &sp, &opts, res)
	if res.Verdict == sim.VerdictForward {
		// A packet of each connection it relied on went through: they
		// live on (replies and existing translations included).
		a.state.Touch(res.Refs, now+int64(a.cfg.ConnTTL))
	}
	a.simMu.Unlock()
	a.m.sims.WithLabelValues(res.Verdict.String()).Inc()
	parked := false

	if len(res.Conns) > 0 || len(res.NATs) > 0 {
		// State first: the peer must know the connection before the
		// first packet reaches it, or its reply would be dropped.
		a.sendState(v, vp.id, res)
		a.flows.InvalidateDrops()
		a.invalidateNewState(res)
	}
	switch res.Verdict {
	case sim.VerdictForward:
		if !res.Uncacheable && !isARP {
			a.flows.InstallAt(&flow.Entry{Key: k, Actions: slices.Clone(res.Actions), Tags: withPeerTags(res.Tags, res.Actions),
				Refs: slices.Clone(res.Refs), Expires: now + int64(a.cfg.FlowTTL)}, v.gen, imp)
			a.keepDoors(v, res.Tags, now+int64(a.cfg.FlowTTL))
		}
		a.execute(v, vp, frame, &it.hdr, pkt, res.Actions, tb)
	case sim.VerdictDrop:
		if !it.stateRetried && !isARP && len(v.snap.StateHosts(vp.id)) > 0 && a.parkForState(vp, frame, &it.hdr) {
			parked = true
			break
		}
		vp.dropFlow.Inc()
		if !isARP && !res.Uncacheable {
			a.flows.InstallAt(&flow.Entry{Key: k, Drop: true, Reason: res.Reason, Tags: slices.Clone(res.Tags),
				Expires: now + int64(a.cfg.DropTTL)}, v.gen, imp)
			a.keepDoors(v, res.Tags, now+int64(a.cfg.DropTTL))
		}
	case sim.VerdictNotYet:
		// No flow: the next packet of the flow must be simulated again
		// (and parked too) until the next hop is known.
		deadline := it.parkedUntil
		if deadline == 0 {
			deadline = now + int64(a.cfg.ParkTTL)
		}
		if res.Need != "" {
			// Widen: the replica follows that partition too, and the
			// packet is simulated again once it is loaded.
			a.rep.needPartition(res.Need, now+int64(a.cfg.FlowTTL))
			a.parkForPartition(vp, frame, &it.hdr, res.Need, deadline)
			a.rep.kickIfLoaded(res.Need)
			break
		}
		a.park(vp, frame, &it.hdr, res, deadline)
	}
	for i := range res.Generated {
		if parked {
			break // its answer (an ICMP error) waits for the last verdict
		}
		g := &res.Generated[i]
		if g.Host == a.hostID || g.Host == "" {
			a.toLocal(vp, g.TunnelKey, g.Frame, datapath.VnetHdr{})
		} else {
			a.toTunnel(v, vp, g.Host, g.TunnelKey, g.Frame, datapath.VnetHdr{})
		}
	}
	if len(res.Learned) > 0 {
		// After the flow is installed: learning invalidates the flows that
		// looked the entries up, which this one did not (it learned them).
		a.learnLocal(res.Learned, now)
		a.resume(res.Learned, tb)
	}
}

// peerTag is the tag of the tunnel endpoint of host: a flow that tunnels
// to host carries it, and a change of that host's address (its tunnel zone
// membership: a host re-addressed, moved to another zone, gone) invalidates
// the flow. The kernel's copy holds the address itself (fastpath.Encode),
// so without it a kernel flow kept sending to the old address.
func peerTag(host string) flow.Tag { return flow.TagOf("peer", host) }

// withPeerTags is a copy of tags with the peer tag of every host acts
// tunnel to.
func withPeerTags(tags []flow.Tag, acts []flow.Action) []flow.Tag {
	n := 0
	for i := range acts {
		if acts[i].Kind == flow.Tunnel {
			n++
		}
	}
	out := make([]flow.Tag, len(tags), len(tags)+n)
	copy(out, tags)
	for i := range acts {
		if acts[i].Kind == flow.Tunnel {
			out = append(out, peerTag(acts[i].Host))
		}
	}
	return out
}

// peersChanged adds to changed the peer tag of every host whose tunnel
// endpoint differs between old and cur (moved, gone or new).
func peersChanged(old, cur map[string]netip.AddrPort, changed map[flow.Tag]struct{}) {
	for h, ap := range old {
		if cur[h] != ap {
			changed[peerTag(h)] = struct{}{}
		}
	}
	for h := range cur {
		if _, ok := old[h]; !ok {
			changed[peerTag(h)] = struct{}{}
		}
	}
}

// keepDoors keeps followed, until a flow's expiry, the partitions it went
// into through a route of v.doors (replica.go: narrowing).
func (a *Agent) keepDoors(v *view, tags []flow.Tag, until int64) {
	if len(v.doors) == 0 {
		return
	}
	for _, t := range tags {
		if p, ok := v.doors[t]; ok {
			a.rep.needPartition(p, until)
		}
	}
}

// clampGSO returns the segment size for a super-frame going into the
// tunnel: the VM's MSS, or less when a segment plus the VXLAN overhead would
// not fit the underlay MTU. A TCP receiver takes smaller segments as they
// come, so the stream flows without outer fragmentation and keeps UDP GSO
// (an MSS clamp applied where the overhead is added). Frames that are not
// super-frames and do not fit are fragmented by the kernel (never dropped).
func clampGSO(frame []byte, hdr datapath.VnetHdr, mtu int) uint16 {
	l4 := int(hdr.CsumStart)
	if l4+13 > len(frame) {
		return hdr.GSOSize
	}
	hl := l4 + 8 // UDP
	if hdr.GSOType&^datapath.GSOECN != datapath.GSOUDPL4 {
		hl = l4 + int(frame[l4+12]>>4)*4 // TCP data offset
	}
	room := mtu - (datapath.TunnelOverhead - packet.EthHeaderLen) - hl
	// Below 256 bytes the underlay is misconfigured; segments that small
	// would not help.
	if room < 256 || room >= int(hdr.GSOSize) {
		return hdr.GSOSize
	}
	return uint16(room)
}
