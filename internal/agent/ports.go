package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/prometheus/client_golang/prometheus"
)

// readBatch is how many frames one ReadBatch takes from a TAP.
const readBatch = 16

// vport is a bound port plugged into a device.
type vport struct {
	id    string
	iface string // the device's name (the host side of the port)
	// ifindex is the device's interface index in the agent's namespace
	// (0 for a device that has none, such as datapathfake's).
	ifindex int
	key     uint32
	dev     datapath.Port
	gone    atomic.Bool // the device was deleted; reconcile unplugs the port

	wmu sync.Mutex // one writer at a time: readers of every port write here
	one [1]datapath.Packet

	q    chan *missItem // packets waiting for a simulation
	free chan *missItem // their buffers

	rx, tx, hits, misses      prometheus.Counter
	dropMalformed, dropQueue  prometheus.Counter
	dropFlow, dropTx, dropOut prometheus.Counter
	dropNoARP                 prometheus.Counter // parked, never resumed (park.go)

	done chan struct{} // closed when the reader has returned
}

// missItem is a copy of a frame waiting for the simulation goroutine.
type missItem struct {
	buf []byte
	n   int
	hdr datapath.VnetHdr
	// parkedUntil is the deadline of a parked packet being re-simulated
	// (park.go), kept if it has to wait again; 0 for a fresh miss.
	parkedUntil int64
	// stateRetried: simulated again after waiting for connection state
	// (parkForState); its verdict is final.
	stateRetried bool
}

// portMap is the set of plugged ports, replaced whole on every change so
// the packet path reads it without a lock.
type portMap struct {
	byKey map[uint32]*vport
	list  []*vport
}

func (a *Agent) newVport(id, iface string, key uint32, dev datapath.Port) *vport {
	vp := &vport{id: id, iface: iface, key: key, dev: dev, done: make(chan struct{}),
		q: make(chan *missItem, a.cfg.MissQueue), free: make(chan *missItem, a.cfg.MissQueue)}
	if d, ok := dev.(interface{ Ifindex() int }); ok {
		vp.ifindex = d.Ifindex()
	}
	for range a.cfg.MissQueue {
		vp.free <- &missItem{buf: make([]byte, datapath.MaxFrame)}
	}
	m := a.m
	vp.rx = m.rx.WithLabelValues(id)
	vp.tx = m.tx.WithLabelValues(id)
	vp.hits = m.hits.WithLabelValues(id)
	vp.misses = m.misses.WithLabelValues(id)
	vp.dropMalformed = m.drops.WithLabelValues(id, "malformed")
	vp.dropQueue = m.drops.WithLabelValues(id, "miss_queue_full")
	vp.dropFlow = m.drops.WithLabelValues(id, "flow")
	vp.dropTx = m.drops.WithLabelValues(id, "tx_error")
	vp.dropOut = m.drops.WithLabelValues(id, "no_egress")
	vp.dropNoARP = m.drops.WithLabelValues(id, "next_hop_unresolved")
	return vp
}

// write sends one frame out of the port (towards the VM).
func (vp *vport) write(frame []byte, hdr datapath.VnetHdr) {
	vp.wmu.Lock()
	vp.one[0] = datapath.Packet{Buf: frame, N: len(frame), Hdr: hdr}
	n, _ := vp.dev.WriteBatch(vp.one[:])
	vp.one[0].Buf = nil
	vp.wmu.Unlock()
	if n == 1 {
		vp.tx.Inc()
	} else {
		vp.dropTx.Inc()
	}
}

func (a *Agent) publishPorts() {
	pm := &portMap{byKey: make(map[uint32]*vport, len(a.bound))}
	for _, vp := range a.bound {
		pm.byKey[vp.key] = vp
		pm.list = append(pm.list, vp)
	}
	a.ports.Store(pm)
}

// reconcile makes the plugged ports match the bindings of the current view:
// plug the new ones, unplug the gone or changed ones and those whose device
// was deleted. It is idempotent and runs after every snapshot, when a
// device appears or goes (plug.go), and every second (a device that could
// not be opened is retried).
func (a *Agent) reconcile(ctx context.Context) {
	a.bmu.Lock()
	defer a.bmu.Unlock()
	// The view is read under bmu: a caller that waited for another's
	// reconcile must not apply an older view over it (unplugging a port
	// the newer one plugged).
	v := a.view.Load()
	if v == nil {
		return
	}
	if a.kernel != nil {
		a.kernel.checkGone()
	}
	changed := false
	for id, vp := range a.bound {
		if b, ok := v.want[id]; !ok || b.iface != vp.iface || b.key != vp.key || vp.gone.Load() {
			a.unplug(id, vp)
			changed = true
		}
	}
	for id := range a.openErr {
		if _, ok := v.want[id]; !ok {
			delete(a.openErr, id)
		}
	}
	var present func(string) bool
	for id, b := range v.want {
		if _, ok := a.bound[id]; ok {
			continue
		}
		if present == nil {
			present = a.devicesPresent()
		}
		var dev datapath.Port
		var err error
		if !present(b.iface) {
			err = fmt.Errorf("device %s: %w", b.iface, errNoDevice)
		} else if a.kernel != nil {
			dev, err = a.kernel.openPort(b.iface, b.key)
		} else if dev, err = a.cfg.OpenPort(b.iface); err == nil {
			a.waitLinkUp(b.iface) // before the port is published below
		}
		if err != nil {
			// Bound before its device exists is normal (a VM not started
			// yet): say so once per cause, not every second.
			if a.openErr[id] != err.Error() {
				a.openErr[id] = err.Error()
				a.log.Warn("agent: cannot plug port yet, will retry", "port_id", id, "interface", b.iface, "err", err)
			}
			continue
		}
		delete(a.openErr, id)
		vp := a.newVport(id, b.iface, b.key, dev)
		a.bound[id] = vp
		// Published before its status is written (a store round trip):
		// frames for it must not wait on that.
		a.publishPorts()
		a.wg.Go(func() { a.readPort(vp) })
		a.markActive(ctx, id)
		a.log.Info("agent: port plugged", "port_id", id, "interface", b.iface, "ifindex", vp.ifindex, "tunnel_key", b.key)
	}
	if changed {
		a.publishPorts()
	}
}

// openDevice attaches to the host side of the named device — a TAP a
// hypervisor holds, the host end of a veth, an uplink — and brings it up.
// The device must exist: whoever runs the VM or the namespace creates it,
// and the agent plugs it when it appears (plug.go).
func openDevice(name string) (datapath.Port, error) { return datapath.Plug(name) }

// unplug closes a port's device and waits for its reader. Caller holds bmu.
func (a *Agent) unplug(id string, vp *vport) {
	delete(a.bound, id)
	a.publishPorts()
	vp.dev.Close()
	<-vp.done
	if !a.keepForwarding.Load() { // else the kernel forwards for it on (gatewaystop.go)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := a.store.ClearPortActive(ctx, a.hostID, id); err != nil {
			a.log.Warn("agent: clearing port active", "port_id", id, "err", err)
		}
	}
	a.m.forget(id)
	a.log.Info("agent: port unplugged", "port_id", id, "interface", vp.iface)
}

// readPort is a port's reader: batched reads, then the flow cache; misses go
// to the port's queue for the simulation goroutine.
func (a *Agent) readPort(vp *vport) {
	defer close(vp.done)
	runtime.LockOSThread() // blocking reads in the kernel, not the netpoller
	defer runtime.UnlockOSThread()
	pkts := make([]datapath.Packet, readBatch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, datapath.MaxFrame)
	}
	var pkt packet.Packet
	in := &inlineSim{}
	for {
		n, err := vp.dev.ReadBatch(pkts)
		if err != nil {
			if errors.Is(err, datapath.ErrClosed) {
				return
			}
			if errors.Is(err, datapath.ErrGone) {
				a.log.Info("agent: port's device deleted", "port_id", vp.id, "interface", vp.iface)
				vp.gone.Store(true)
				a.kickPlug()
				return
			}
			vp.dropMalformed.Inc()
			time.Sleep(time.Millisecond) // a failing device must not spin
			continue
		}
		v := a.view.Load()
		now := time.Now().UnixNano()
		for i := range n {
			a.fromPort(v, vp, &pkts[i], &pkt, now, in)
		}
		// The frames are views of pkts' buffers, read into again next.
		a.flushTunnel(&in.tb)
	}
}

// fromPort handles one frame a VM sent. Its tunnel output goes into in's
// batch, sent after the read batch, in the order the frames came.
func (a *Agent) fromPort(v *view, vp *vport, p *datapath.Packet, pkt *packet.Packet, now int64, in *inlineSim) {
	vp.rx.Inc()
	frame := p.Frame()
	pkt.Decode(frame)
	if len(frame) < packet.EthHeaderLen || pkt.Flags&(packet.FlagTruncated|packet.FlagBadHeader) != 0 {
		vp.dropMalformed.Inc()
		return
	}
	if a.toSpeaker(vp, frame, p.Hdr, pkt) { // BGP and BFD of a gateway's speaker (gateway.go)
		return
	}
	if isService(v.svc[vp.id], pkt) { // DHCP, metadata: answered here, never simulated
		a.serve(v, vp, frame, &p.Hdr, pkt)
		return
	}
	if pkt.EtherType != packet.EtherTypeARP { // ARP is always simulated
		k := flow.KeyOf(vp.key, pkt, ipLen(pkt, &p.Hdr))
		if e := a.flows.Lookup(&k, now); e != nil {
			vp.hits.Inc()
			if e.Drop {
				vp.dropFlow.Inc()
				return
			}
			a.execute(v, vp, frame, &p.Hdr, pkt, e.Actions, &in.tb)
			return
		}
	}
	vp.misses.Inc()
	if a.simulateInline(vp, p, in) {
		return
	}
	var it *missItem
	select {
	case it = <-vp.free:
	default:
		vp.dropQueue.Inc()
		return
	}
	it.n = copy(it.buf, frame)
	it.hdr = p.Hdr
	vp.q <- it // never blocks: there are as many items as slots
	a.miss.notify()
}

// ipLen is the IP length the simulation must judge the packet by: for a
// GSO super-frame, that of one segment (what actually goes on a wire).
func ipLen(p *packet.Packet, h *datapath.VnetHdr) int {
	if p.Flags&packet.FlagIPv4 == 0 {
		return 0
	}
	if !h.IsGSO() || h.GSOSize == 0 {
		return int(p.TotalLen)
	}
	l4 := 8
	if p.Proto == packet.ProtoTCP && p.Flags&packet.FlagL4 != 0 {
		l4 = 20 // the options vary per segment; the base header is enough here
	}
	return p.IHL + l4 + int(h.GSOSize)
}
