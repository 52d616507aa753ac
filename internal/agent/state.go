package agent

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// StateVNI is the reserved tunnel key of connection-state messages between
// agents (MidoNet's flow-state key). No port is given it: the store hands
// out port keys up to topology.MaxTunnelKey, below it.
const StateVNI = topology.StateTunnelKey

// A state message is a VXLAN payload on StateVNI: an Ethernet header (so it
// is a well-formed inner frame; EtherType 0x88B5, local experimental), then
//
//	version u8 | conns u16 | nats u16 | ttl seconds u32
//	conns × key(21)
//	nats  × kind u8 | key(21) | ip u32 | port u16
//
// key = zone u64 | src u32 | dst u32 | sport u16 | dport u16 | proto u8.
const (
	stateEtherType = 0x88B5
	stateVersion   = 1
	keyLen         = 21
	stateHdrLen    = packet.EthHeaderLen + 9
)

func putKey(b []byte, k packet.Key) {
	binary.BigEndian.PutUint64(b, k.Zone)
	binary.BigEndian.PutUint32(b[8:], k.Src)
	binary.BigEndian.PutUint32(b[12:], k.Dst)
	binary.BigEndian.PutUint16(b[16:], k.SrcPort)
	binary.BigEndian.PutUint16(b[18:], k.DstPort)
	b[20] = k.Proto
}

func getKey(b []byte) packet.Key {
	return packet.Key{Zone: binary.BigEndian.Uint64(b), Src: binary.BigEndian.Uint32(b[8:]), Dst: binary.BigEndian.Uint32(b[12:]),
		SrcPort: binary.BigEndian.Uint16(b[16:]), DstPort: binary.BigEndian.Uint16(b[18:]), Proto: b[20]}
}

// encodeState builds the message for res's new connections and NATs.
func encodeState(res *sim.Result, ttl time.Duration) []byte {
	b := make([]byte, stateHdrLen, stateHdrLen+len(res.Conns)*keyLen+len(res.NATs)*(keyLen+7))
	binary.BigEndian.PutUint16(b[12:], stateEtherType)
	h := b[packet.EthHeaderLen:]
	h[0] = stateVersion
	binary.BigEndian.PutUint16(h[1:], uint16(len(res.Conns)))
	binary.BigEndian.PutUint16(h[3:], uint16(len(res.NATs)))
	binary.BigEndian.PutUint32(h[5:], uint32(ttl/time.Second))
	var kb [keyLen + 7]byte
	for _, k := range res.Conns {
		putKey(kb[:], k)
		b = append(b, kb[:keyLen]...)
	}
	for _, n := range res.NATs {
		kb[0] = byte(n.Kind)
		putKey(kb[1:], n.Key)
		binary.BigEndian.PutUint32(kb[1+keyLen:], n.Binding.IP)
		binary.BigEndian.PutUint16(kb[5+keyLen:], n.Binding.Port)
		b = append(b, kb[:]...)
	}
	return b
}

// sendState sends the new state of res to every other host the flow
// tunnels to, and to the hosts of the stateful port groups of the ports it
// entered and leaves through, before the flow's first packet: the return
// traffic enters the virtual network there and must find the connection. It also records
// what it exported, so refreshExports can keep it alive there.
func (a *Agent) sendState(v *view, ingress string, res *sim.Result) {
	var hosts []string
	add := func(h string) {
		if h != "" && h != a.hostID && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	for _, act := range res.Actions {
		if act.Kind == flow.Tunnel {
			add(act.Host)
		}
	}
	// A flow through a member of a stateful port group: its return may
	// enter through any member, so every member's host gets the state
	// (MidoNet's flow-state peers). Both ends count: the ports it leaves
	// through and the one it entered on.
	for _, o := range res.Outputs {
		for _, h := range v.snap.StateHosts(o.PortID) {
			add(h)
		}
	}
	for _, h := range v.snap.StateHosts(ingress) {
		add(h)
	}
	if len(hosts) == 0 {
		return
	}
	a.simMu.Lock()
	for _, k := range res.Conns {
		a.exportConns[k] = hosts
	}
	for _, n := range res.NATs {
		a.exportNATs[exportNAT{n.Kind, n.Key}] = hosts
	}
	a.simMu.Unlock()
	msg := encodeState(res, a.cfg.ConnTTL)
	for _, h := range hosts {
		a.sendStateTo(v, h, msg)
	}
}

type exportNAT struct {
	kind flow.NATKind
	key  packet.Key
}

func (a *Agent) sendStateTo(v *view, host string, msg []byte) {
	addr, ok := v.peers[host]
	if !ok {
		return
	}
	a.tunMu.Lock()
	a.stOne[0] = datapath.TunnelPacket{Addr: addr, VNI: StateVNI, Frame: msg}
	n, _ := a.tunnel.WriteBatch(a.stOne[:])
	a.stOne[0].Frame = nil
	a.tunMu.Unlock()
	if n == 1 {
		a.m.stateTx.Inc()
	}
}

// maxStateEntries keeps one state message within a UDP datagram.
const maxStateEntries = 2000

// refreshExports re-sends the state of connections this host exported and
// still tracks (its flows re-simulate while traffic flows, which keeps the
// local entries alive) to host, or to every host when host is "", so the
// peer's copies live as long as the connection does rather than for a
// fixed time. Entries no longer tracked here are forgotten.
func (a *Agent) refreshExports(now int64, host string) {
	v := a.view.Load()
	if v == nil {
		return
	}
	per := map[string]*sim.Result{}
	res := func(h string) *sim.Result {
		r := per[h]
		if r == nil {
			r = &sim.Result{}
			per[h] = r
		}
		return r
	}
	a.simMu.Lock()
	for k, hosts := range a.exportConns {
		if !a.state.Tracked(k, now) {
			delete(a.exportConns, k)
			continue
		}
		for _, h := range hosts {
			r := res(h)
			r.Conns = append(r.Conns, k)
		}
	}
	for nk, hosts := range a.exportNATs {
		b, ok := a.state.LookupNAT(nk.kind, nk.key, now)
		if !ok {
			delete(a.exportNATs, nk)
			continue
		}
		for _, h := range hosts {
			r := res(h)
			r.NATs = append(r.NATs, sim.NATEntry{Kind: nk.kind, Key: nk.key, Binding: b})
		}
	}
	a.simMu.Unlock()
	for h, r := range per {
		if host != "" && h != host {
			continue
		}
		for len(r.Conns) > 0 || len(r.NATs) > 0 {
			chunk := &sim.Result{}
			nc := min(len(r.Conns), maxStateEntries)
			chunk.Conns, r.Conns = r.Conns[:nc], r.Conns[nc:]
			nn := min(len(r.NATs), maxStateEntries-nc)
			chunk.NATs, r.NATs = r.NATs[:nn], r.NATs[nn:]
			a.sendStateTo(v, h, encodeState(chunk, a.cfg.ConnTTL))
		}
	}
}

// importState applies a peer's state message to this host's tables.
func (a *Agent) importState(b []byte) {
	if len(b) < stateHdrLen || binary.BigEndian.Uint16(b[12:]) != stateEtherType || b[packet.EthHeaderLen] != stateVersion {
		a.m.stateBad.Inc()
		return
	}
	h := b[packet.EthHeaderLen:]
	nc, nn := int(binary.BigEndian.Uint16(h[1:])), int(binary.BigEndian.Uint16(h[3:]))
	ttl := int64(binary.BigEndian.Uint32(h[5:])) * int64(time.Second)
	body := b[stateHdrLen:]
	if len(body) < nc*keyLen+nn*(keyLen+7) {
		a.m.stateBad.Inc()
		return
	}
	now := time.Now().UnixNano()
	tags := make([]flow.Tag, 0, nc+nn)
	a.simMu.Lock()
	for range nc {
		k := getKey(body)
		a.state.Track(k, now+ttl)
		tags = append(tags, flow.KeyTag(k))
		body = body[keyLen:]
	}
	for range nn {
		kind := flow.NATKind(body[0])
		k := getKey(body[1:])
		b := flow.Binding{IP: binary.BigEndian.Uint32(body[1+keyLen:]), Port: binary.BigEndian.Uint16(body[5+keyLen:])}
		// Allocating exactly the peer's binding reproduces its entry (and
		// its reverse mapping) in this host's table.
		a.state.AllocateNAT(kind, k, []flow.Target{{IPFrom: b.IP, IPTo: b.IP, PortFrom: b.Port, PortTo: b.Port}}, now, now+ttl)
		tags = append(tags, flow.KeyTag(flow.ReplyKey(kind, k, b)))
		body = body[keyLen+7:]
	}
	a.flows.NoteImport() // a simulation running now must not cache its verdict
	a.simMu.Unlock()
	a.m.stateRx.Inc()
	a.flows.InvalidateDrops()
	a.flows.InvalidateTagList(tags)
	// Packets waiting for state (parkForState) are simulated again.
	a.stateArrived.Store(true)
	a.miss.notify()
}

// invalidateNewState removes the flows that decided on the absence of the
// connections and NAT entries res created: a reply cached before its
// connection existed ("not a return flow", "nothing to translate back")
// must be simulated again now that it does. Drop flows go with
// invalidateDrops; this also catches forwarded ones, such as a reply that
// passed untranslated.
func (a *Agent) invalidateNewState(res *sim.Result) {
	tags := make([]flow.Tag, 0, len(res.Conns)+len(res.NATs))
	for _, k := range res.Conns {
		tags = append(tags, flow.KeyTag(k))
	}
	for _, n := range res.NATs {
		tags = append(tags, flow.KeyTag(flow.ReplyKey(n.Kind, n.Key, n.Binding)))
	}
	a.flows.InvalidateTagList(tags)
}
