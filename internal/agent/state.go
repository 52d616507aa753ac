package agent

import (
	"encoding/binary"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
)

// StateVNI is the reserved tunnel key of connection-state messages between
// agents (MidoNet's flow-state key). No port is given it: the store hands
// out port keys below it.
const StateVNI = 0xFFFFFF

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
// tunnels to, before the flow's first packet: the return traffic enters
// the virtual network there and must find the connection.
func (a *Agent) sendState(v *view, res *sim.Result) {
	var msg []byte
	var sent [4]string
	ns := 0
	for _, act := range res.Actions {
		if act.Kind != flow.Tunnel || act.Host == a.hostID {
			continue
		}
		dup := false
		for _, h := range sent[:ns] {
			dup = dup || h == act.Host
		}
		if dup {
			continue
		}
		if ns < len(sent) {
			sent[ns] = act.Host
			ns++
		}
		addr, ok := v.peers[act.Host]
		if !ok {
			continue
		}
		if msg == nil {
			msg = encodeState(res, a.cfg.ConnTTL)
		}
		a.tunMu.Lock()
		a.stOne[0] = datapath.TunnelPacket{Addr: addr, VNI: StateVNI, Frame: msg}
		n, _ := a.tunnel.WriteBatch(a.stOne[:])
		a.tunMu.Unlock()
		if n == 1 {
			a.m.stateTx.Inc()
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
	a.simMu.Lock()
	for range nc {
		a.state.Track(getKey(body), now+ttl)
		body = body[keyLen:]
	}
	for range nn {
		kind := flow.NATKind(body[0])
		k := getKey(body[1:])
		ip := binary.BigEndian.Uint32(body[1+keyLen:])
		port := binary.BigEndian.Uint16(body[5+keyLen:])
		// Allocating exactly the peer's binding reproduces its entry (and
		// its reverse mapping) in this host's table.
		a.state.AllocateNAT(kind, k, []flow.Target{{IPFrom: ip, IPTo: ip, PortFrom: port, PortTo: port}}, now, now+ttl)
		body = body[keyLen+7:]
	}
	a.simMu.Unlock()
	a.m.stateRx.Inc()
	a.flows.invalidateDrops()
}
