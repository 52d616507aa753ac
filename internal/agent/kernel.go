package agent

import (
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/fastpath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/vishvananda/netlink"
)

// Datapath modes (Config.Datapath, --datapath).
const (
	DatapathAuto      = "auto"      // the default: the kernel fast path where the host has it, else userspace
	DatapathKernel    = "kernel"    // the kernel fast path, or the agent does not start
	DatapathUserspace = "userspace" // ports read by the agent, the tunnel a UDP socket
)

// kernelPath is the agent's side of the kernel fast path
// (internal/fastpath): the loaded program and its pinned maps, the ports
// attached to it, the miss reader and the injector. The flow table mirrors
// every flow it caches into the kernel (kernelMirror); misses come back
// through the ring and are simulated like a userspace port's.
type kernelPath struct {
	a    *Agent
	dp   *fastpath.Datapath
	inj  *fastpath.Injector
	mr   *fastpath.MissReader
	devs fastpath.Devices
	port uint16 // the tunnel's UDP port

	mu    sync.Mutex                             // writers of ports
	ports atomic.Pointer[map[int]*kernelPort]    // by ifindex
	keys  atomic.Pointer[map[uint32]*kernelPort] // by tunnel key

	tun *kernelTunnel

	// leaving: the agent stops with the kernel forwarding on (leave).
	leaving atomic.Bool

	// Mirror state (under mmu): the drop flows in the kernel (removed
	// together by invalidateDrops) and the flows a previous agent left
	// (adopted: forwarding on until they idle or the topology changes).
	mmu     sync.Mutex
	drops   map[fastpath.Key]struct{}
	adopted map[fastpath.Key]struct{}
	stale   bool // the topology changed since the adopted flows were decided
	// staleAttrs: what changed, for the log of their retirement.
	staleAttrs []any
	ttl        int64
	delBuf     []fastpath.Key // deleteKeys'
}

// openKernel loads the fast path for this host: program and pinned maps
// (adopting a previous agent's), the VXLAN device, the inject pair.
func (a *Agent) openKernel() (*kernelPath, error) {
	devs := a.cfg.KernelDevices
	if devs == (fastpath.Devices{}) {
		devs = fastpath.DefaultDevices
	}
	attach, err := fastpath.ParseAttach(a.cfg.KernelAttach)
	if err != nil {
		return nil, err
	}
	dp, err := fastpath.OpenWith(a.hostID, fastpath.Options{Attach: attach})
	if err != nil {
		return nil, err
	}
	k := &kernelPath{a: a, dp: dp, devs: devs, port: a.cfg.TunnelPort, drops: map[fastpath.Key]struct{}{},
		adopted: map[fastpath.Key]struct{}{}, ttl: int64(a.cfg.FlowTTL)}
	fail := func(err error) (*kernelPath, error) {
		if k.inj != nil {
			k.inj.Close()
		}
		if k.mr != nil {
			k.mr.Close()
		}
		// Nothing half-made stays: a VXLAN device left on the port would
		// keep the userspace tunnel from it.
		_ = dp.Remove()
		_ = fastpath.Purge(a.hostID, devs)
		return nil, err
	}
	if err := dp.SetupTunnel(devs.Tunnel, a.cfg.TunnelPort, a.tunMTU); err != nil {
		return fail(err)
	}
	if k.inj, err = dp.SetupInject(devs.Inject, devs.InjectTx); err != nil {
		return fail(err)
	}
	if k.mr, err = dp.NewMissReader(); err != nil {
		return fail(err)
	}
	if k.tun, err = newKernelTunnel(k); err != nil {
		return fail(err)
	}
	for _, key := range dp.FlowKeys() {
		k.adopted[key] = struct{}{}
	}
	if len(k.adopted) > 0 {
		a.log.Info("agent: adopted the flows a previous agent left", "flows", len(k.adopted))
	}
	k.ports.Store(&map[int]*kernelPort{})
	k.keys.Store(&map[uint32]*kernelPort{})
	return k, nil
}

// leave is the start of a planned stop that keeps the kernel forwarding
// (a lone gateway's graceful restart): the ports the agent unplugs next
// stay attached to the program.
func (k *kernelPath) leave() { k.leaving.Store(true) }

// close ends the fast path when the agent stops on purpose: its ports
// are unplugged already, and the program, pins and devices go (the host
// leaves; the VXLAN port is free for whatever runs next) — unless keep
// (leave): then, as when an agent is killed, what is pinned keeps
// forwarding established flows until the next agent adopts it.
func (k *kernelPath) close(keep bool) {
	k.mr.Close()
	k.tun.Close()
	k.inj.Close()
	if keep {
		if err := k.dp.Close(); err != nil {
			k.a.log.Warn("agent: closing the kernel datapath", "err", err)
		}
		return
	}
	if err := k.dp.Remove(); err != nil {
		k.a.log.Warn("agent: removing the kernel datapath", "err", err)
	}
	if err := fastpath.Purge(k.a.hostID, k.devs); err != nil {
		k.a.log.Warn("agent: removing the kernel datapath", "err", err)
	}
}

// missBatch is how many misses runMisses takes from the ring at once.
const missBatch = 64

// pipelineMin is the fewest frames of a batch that runMisses hands to its
// sender, when more misses wait in the ring: a smaller batch, or one with
// nothing behind it (the agent keeps up), is sent inline, as a hand-off
// costs a goroutine's wake-up.
const pipelineMin = 8

// runMisses handles the misses in batches, pipelined: what the ring holds
// (up to missBatch) is simulated on this goroutine and the batch's flows are
// written into the kernel in one map update; then its frames go to the
// sender goroutine, which re-injects them with one sendmmsg while this one
// reads and simulates the next batch — when the agent is behind: a batch
// with nothing waiting behind it in the ring, or of fewer than pipelineMin
// frames, is sent inline. A batch is handed over, or sent, only once the
// previous one is sent (frames keep their order), and the ring's records
// alternate between two sets (MissReader.ReadBatch), so a batch's frames
// stay valid while it is sent. The re-injection is the larger part of a new
// flow's cost on the agent's side: the sendmmsg carries the kernel's
// forwarding of the frames (the program on the inject device, the VXLAN
// encapsulation, the underlay and, in the same softirq, the receiving
// side); done inline, it left the miss path on one CPU (docs/benchmarks.md).
// Misses of one flow in a batch are simulated once: the first installs the
// flow, the others hit it in the flow table (fromPort).
// A tunnelled frame for a key no kernel port has goes to the agent's port
// of that key.
func (k *kernelPath) runMisses() {
	type batch struct {
		ms []fastpath.Miss
		in inlineSim
	}
	var bs [2]batch
	for i := range bs {
		bs[i].ms = make([]fastpath.Miss, missBatch)
	}
	send := make(chan *tunBatch)
	sent := make(chan struct{}, 1)
	var sender sync.WaitGroup
	sender.Go(func() {
		for tb := range send {
			k.a.flushTunnel(tb)
			sent <- struct{}{}
		}
	})
	defer func() {
		close(send)
		sender.Wait()
	}()
	tunIf := k.dp.TunnelIfindex()
	var pkt packet.Packet
	var p datapath.Packet
	busy := false // the sender has a batch
	for cur := 0; ; cur ^= 1 {
		// The records of batch cur were last used two batches ago, which
		// the sender finished before the previous one was handed over.
		b := &bs[cur]
		n, err := k.mr.ReadBatch(b.ms)
		if err != nil {
			if errors.Is(err, fastpath.ErrClosed) {
				return
			}
			if busy { // the next batch takes the sender's records and batch
				<-sent
				busy = false
			}
			k.a.log.Warn("agent: kernel miss read", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		v := k.a.view.Load()
		pm := k.a.ports.Load()
		kps := *k.ports.Load()
		now := time.Now().UnixNano()
		in := &b.in
		for i := range n {
			m := &b.ms[i]
			if m.Ifindex == tunIf {
				k.a.m.tunnelRx.Inc()
				vp := pm.byKey[m.InKey]
				if vp == nil || m.Truncated {
					k.a.m.tunnelUnknown.Inc()
					continue
				}
				vp.write(m.Frame, datapath.VnetHdr{})
				continue
			}
			kp := kps[m.Ifindex]
			if kp == nil {
				continue
			}
			vp := pm.byKey[kp.key]
			if vp == nil || vp.dev != kp || v == nil {
				// Plugged a moment ago: its reader takes it once the
				// port is published.
				kp.deliver(m)
				continue
			}
			p = datapath.Packet{Buf: m.Frame, N: len(m.Frame), Hdr: missHdr(m)}
			k.a.fromPort(v, vp, &p, &pkt, now, in)
		}
		// The batch's flows (drop flows, and flows whose frames went
		// nowhere, included) are in before any of its frames is sent.
		if err := k.dp.FlushFlows(); err != nil {
			k.a.m.kernelErrors.Inc()
		}
		if busy {
			<-sent
			busy = false
		}
		tb := &in.tb
		switch m := len(tb.local) + len(tb.pkts); {
		case m >= pipelineMin && k.mr.Behind():
			send <- tb
			busy = true
		case m > 0 || len(tb.held) > 0:
			// Keeping up (nothing waits in the ring) or a few frames:
			// sent inline, as a hand-off costs a wake-up of the sender
			// (measured: 2-5 µs per flow more at 10,000-25,000 flows/s
			// when every batch was handed over).
			k.a.flushTunnel(tb)
		}
	}
}

// missHdr is the offload metadata of a missed frame: a frame that is part
// of a large send carries its segment size, so that its key's length class
// is the kernel's; when only its first bytes came (Miss.Truncated) the
// injector refuses to forward it: its flow is installed and the sender's
// retransmission goes through the kernel.
func missHdr(m *fastpath.Miss) datapath.VnetHdr {
	var h datapath.VnetHdr
	if m.GSOSize != 0 || m.Truncated {
		h.GSOType, h.GSOSize = datapath.GSOTCPv4, m.GSOSize
		if len(m.Frame) > packet.EthHeaderLen+9 && m.Frame[packet.EthHeaderLen+9] == packet.ProtoUDP {
			h.GSOType = datapath.GSOUDPL4
		}
	}
	return h
}

// openPort attaches the program to iface, the host side of a port's
// device — the host end of a veth pair, a TAP a hypervisor holds, an
// uplink — and returns the port the agent reads its misses from. The
// kernel sends a port's frames into a veth's peer namespace
// (bpf_redirect_peer) and out of any other device (bpf_redirect: a TAP's
// frames reach the hypervisor's descriptor). A device the program cannot
// take is opened the userspace way; the kernel leaves its frames to the
// agent (flows from or to it are not mirrored).
func (k *kernelPath) openPort(iface string, key uint32) (datapath.Port, error) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		// Not there yet (a VM not started): plugged when it appears.
		return nil, fmt.Errorf("device %s: %w", iface, err)
	}
	err = k.dp.AttachPortIngress(iface, key)
	if err == nil {
		// Whoever made the device left it down for the agent to plug.
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		// Nothing of the program may stay on a device the agent reads.
		k.dp.DetachPort(iface, key)
		k.a.log.Info("agent: port served in userspace", "interface", iface, "reason", err)
		return k.a.cfg.OpenPort(iface)
	}
	kp := &kernelPort{k: k, name: iface, key: key, ifindex: l.Attrs().Index, q: make(chan []byte, 256),
		free: make(chan []byte, 256), closed: make(chan struct{}), gone: make(chan struct{})}
	for range cap(kp.free) {
		kp.free <- make([]byte, 0, fastpath.MissCap+3)
	}
	// The port's own frames reach its queue (runMisses) before anything
	// is sent to it: the guest's first answer (the ARP request for its
	// gateway that an echo request prompts) must not be dropped as a
	// frame from an unknown device.
	k.mu.Lock()
	ports := clonePorts(*k.ports.Load())
	ports[kp.ifindex] = kp
	k.ports.Store(&ports)
	keys := clonePorts(*k.keys.Load())
	keys[key] = kp
	k.keys.Store(&keys)
	k.mu.Unlock()
	// Frames are sent to the port once its link is up (waitLinkUp).
	k.a.waitLinkUp(iface)
	if err := k.dp.DeliverPort(iface, key); err != nil {
		k.removePort(kp)
		k.a.log.Info("agent: port served in userspace", "interface", iface, "reason", err)
		return k.a.cfg.OpenPort(iface)
	}
	return kp, nil
}

func clonePorts[K comparable](m map[K]*kernelPort) map[K]*kernelPort {
	out := make(map[K]*kernelPort, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (k *kernelPath) removePort(kp *kernelPort) {
	k.mu.Lock()
	ports := clonePorts(*k.ports.Load())
	if ports[kp.ifindex] == kp {
		delete(ports, kp.ifindex)
	}
	k.ports.Store(&ports)
	keys := clonePorts(*k.keys.Load())
	if keys[kp.key] == kp {
		delete(keys, kp.key)
	}
	k.keys.Store(&keys)
	k.mu.Unlock()
	if !k.leaving.Load() {
		k.dp.DetachPort(kp.name, kp.key)
	}
}

// isKernelPort reports whether the port with tunnel key key is attached.
func (k *kernelPath) isKernelPort(key uint32) bool { return (*k.keys.Load())[key] != nil }

// kernelPort is a port attached to the program. What the agent reads from
// it are the frames that missed the kernel's flows; what it writes goes out
// through the injector.
type kernelPort struct {
	k       *kernelPath
	name    string
	key     uint32
	ifindex int

	q      chan []byte // missed frames (GSO length in the buffer's tail, see deliver)
	free   chan []byte
	closed chan struct{}
	once   sync.Once
	gone   chan struct{} // closed when the device was deleted (checkGone)
	goneMu sync.Once

	wmu sync.Mutex
	out []fastpath.Outgoing // WriteBatch's
}

// Ifindex is the device's index (the vport keeps it).
func (kp *kernelPort) Ifindex() int { return kp.ifindex }

// checkGone tells the readers of ports whose device was deleted (a VM or
// an instance went): their ReadBatch returns datapath.ErrGone and the agent
// unplugs them. It runs with every reconcile, which a link deletion
// triggers.
func (k *kernelPath) checkGone() {
	for ifindex, kp := range *k.ports.Load() {
		if l, err := netlink.LinkByIndex(ifindex); err != nil || l.Attrs().Name != kp.name {
			kp.goneMu.Do(func() { close(kp.gone) })
		}
	}
}

// deliver queues a miss for the port's reader; a full queue drops it (the
// sender retransmits, as from a full NIC ring).
func (kp *kernelPort) deliver(m *fastpath.Miss) {
	var b []byte
	select {
	case b = <-kp.free:
	default:
		return
	}
	b = append(b[:0], m.Frame...)
	// The reader needs the segment size of a large send (the key's length
	// class) and whether the frame is whole: two bytes and a flag after
	// the frame, within the buffer's capacity.
	b = append(b, byte(m.GSOSize>>8), byte(m.GSOSize), boolByte(m.Truncated))
	select {
	case kp.q <- b:
	default:
		kp.free <- b
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (kp *kernelPort) Name() string { return kp.name }

// ReadBatch returns the misses that came before the port was published
// (runMisses handles the others itself), with their offload metadata
// (missHdr).
func (kp *kernelPort) ReadBatch(pkts []datapath.Packet) (int, error) {
	var b []byte
	select {
	case b = <-kp.q:
	case <-kp.closed:
		return 0, datapath.ErrClosed
	case <-kp.gone:
		return 0, datapath.ErrGone
	}
	n := 0
	for {
		p := &pkts[n]
		fl := len(b) - 3
		m := fastpath.Miss{Frame: b[:fl], GSOSize: uint16(b[fl])<<8 | uint16(b[fl+1]), Truncated: b[fl+2] != 0}
		p.N = copy(p.Buf, m.Frame)
		p.Hdr = missHdr(&m)
		kp.free <- b
		n++
		if n == len(pkts) {
			return n, nil
		}
		select {
		case b = <-kp.q:
		default:
			return n, nil
		}
	}
}

// WriteBatch sends frames out of the port through the injector, in one
// batch.
func (kp *kernelPort) WriteBatch(pkts []datapath.Packet) (int, error) {
	kp.wmu.Lock()
	defer kp.wmu.Unlock()
	out := kp.out[:0]
	for i := range pkts {
		p := &pkts[i]
		out = append(out, fastpath.Outgoing{Frame: p.Frame(), Hdr: p.Hdr, Key: kp.key})
	}
	n, err := kp.k.inj.Send(out)
	clear(out) // no frame kept past the call
	kp.out = out[:0]
	return n, err
}

// Close detaches the program from the device and ends a blocked read.
func (kp *kernelPort) Close() error {
	kp.once.Do(func() {
		close(kp.closed)
		kp.k.removePort(kp)
	})
	return nil
}

// kernelTunnel is the agent's tunnel when the kernel owns the VXLAN port:
// what the agent sends (state, heartbeats, frames of misses) goes through
// the injector; what it receives are the state messages and heartbeats on
// StateVNI (the kernel delivers the rest itself).
type kernelTunnel struct {
	k       *kernelPath
	readers []*fastpath.StateReader
	rx      chan datapath.TunnelPacket
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	out     []fastpath.Outgoing // WriteBatch's, under the agent's tunMu
}

func newKernelTunnel(k *kernelPath) (*kernelTunnel, error) {
	t := &kernelTunnel{k: k, rx: make(chan datapath.TunnelPacket, 256), closed: make(chan struct{})}
	for _, et := range []uint16{stateEtherType, livenessEtherType} {
		r, err := fastpath.NewStateReader(k.devs.Tunnel, et)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.readers = append(t.readers, r)
		t.wg.Go(func() { t.read(r) })
	}
	return t, nil
}

func (t *kernelTunnel) read(r *fastpath.StateReader) {
	buf := make([]byte, 65536)
	for {
		n, err := r.Read(buf)
		if err != nil {
			if errors.Is(err, fastpath.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		f := append([]byte(nil), buf[:n]...)
		from := netip.AddrPortFrom(fastpath.StateSender(f), t.k.port)
		select {
		case t.rx <- datapath.TunnelPacket{Addr: from, VNI: StateVNI, Frame: f}:
		case <-t.closed:
			return
		}
	}
}

// ReadBatch returns the next state messages and heartbeats.
func (t *kernelTunnel) ReadBatch(pkts []datapath.TunnelPacket) (int, error) {
	select {
	case pkts[0] = <-t.rx:
	case <-t.closed:
		return 0, datapath.ErrClosed
	}
	n := 1
	for n < len(pkts) {
		select {
		case pkts[n] = <-t.rx:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// WriteBatch sends each frame to its host's VXLAN endpoint with its VNI, in
// one batch. The agent's writes to the tunnel are serialized (tunMu).
func (t *kernelTunnel) WriteBatch(pkts []datapath.TunnelPacket) (int, error) {
	out := t.out[:0]
	for i := range pkts {
		p := &pkts[i]
		out = append(out, fastpath.Outgoing{Frame: p.Frame, Hdr: p.Hdr, Key: p.VNI, Remote: p.Addr.Addr()})
	}
	n, err := t.k.inj.Send(out)
	clear(out)
	t.out = out[:0]
	return n, err
}

func (t *kernelTunnel) Close() error {
	t.once.Do(func() {
		close(t.closed)
		for _, r := range t.readers {
			r.Close()
		}
	})
	t.wg.Wait()
	return nil
}

// kernelKey is k as the program computes it; false for a key it never
// looks up.
func kernelKey(k *flow.Key) (fastpath.Key, bool) {
	if k.VLAN != 0 {
		return fastpath.Key{}, false
	}
	kk := fastpath.Key{InKey: k.In, Src: k.Tuple.Src, Dst: k.Tuple.Dst, Sport: k.Tuple.SrcPort, Dport: k.Tuple.DstPort,
		Ethertype: k.EtherType, EthSrc: k.EthSrc, EthDst: k.EthDst, Proto: k.Tuple.Proto, Ttl: k.TTL, Tos: k.TOS,
		IcmpType: k.ICMPType, IcmpCode: k.ICMPCode, Size: k.Size}
	if k.Frag {
		kk.Frag = 1
	}
	return kk, true
}

// Put mirrors a flow just cached into the kernel (flow.Mirror). Only flows
// the kernel can execute entirely are written: from a kernel port, every
// output to a kernel port or a known tunnel endpoint. The others stay the
// agent's.
func (k *kernelPath) Put(e *flow.Entry) {
	key, ok := kernelKey(&e.Key)
	if !ok || !k.isKernelPort(e.Key.In) {
		return
	}
	for _, a := range e.Actions {
		if a.Kind == flow.Output && !k.isKernelPort(a.Key) {
			return
		}
	}
	v := k.a.view.Load()
	f, err := fastpath.Encode(e.Actions, e.Drop, func(host string) (netip.Addr, bool) {
		if v == nil {
			return netip.Addr{}, false
		}
		ap, ok := v.peers[host]
		return ap.Addr(), ok
	})
	if err != nil {
		k.a.m.kernelSkipped.Inc()
		return
	}
	// Queued: it is written with the batch's others before any frame is
	// re-injected (Injector.Send) and at the end of the batch (runMisses).
	k.dp.QueueFlow(&key, &f)
	k.mmu.Lock()
	delete(k.adopted, key)
	if e.Drop {
		k.drops[key] = struct{}{}
	}
	k.mmu.Unlock()
}

// Delete removes a flow's kernel copy.
func (k *kernelPath) Delete(fk *flow.Key) {
	key, ok := kernelKey(fk)
	if !ok {
		return
	}
	if err := k.dp.DeleteFlow(&key); err != nil {
		k.a.m.kernelErrors.Inc()
	}
	k.mmu.Lock()
	delete(k.drops, key)
	k.mmu.Unlock()
}

// DeleteDrops removes every drop flow from the kernel (new connection
// state may permit what they drop).
func (k *kernelPath) DeleteDrops() {
	k.mmu.Lock()
	defer k.mmu.Unlock()
	k.deleteKeys(maps.Keys(k.drops))
	clear(k.drops)
}

// deleteKeys removes the kernel flows of keys in one batch (their count
// is what a batch costs: a flood's drop flows can be thousands).
func (k *kernelPath) deleteKeys(keys iter.Seq[fastpath.Key]) {
	k.delBuf = slices.AppendSeq(k.delBuf[:0], keys)
	if len(k.delBuf) == 0 {
		return
	}
	if err := k.dp.DeleteFlows(k.delBuf); err != nil {
		k.a.m.kernelErrors.Inc()
	}
	if cap(k.delBuf) > 4096 {
		k.delBuf = nil // a flood's worth is not kept
	}
}

// Clear removes the kernel copy of every flow of the table (a full
// invalidation). The flows a previous agent left are not the table's: they
// stay, forwarding, until they idle or a change of the topology past the
// first view retires them (runReplica). The first view after a restart is a
// full invalidation (the replica's first load), and clearing them there
// cut every established flow at each restart: its packets missed until
// the agent had its ports plugged and the flow simulated again, and a TCP
// stream stalled for a retransmission timeout (TestKernelKill9Hitless).
func (k *kernelPath) Clear() {
	if err := k.dp.FlushFlows(); err != nil { // the queued ones go too
		k.a.m.kernelErrors.Inc()
	}
	k.mmu.Lock()
	defer k.mmu.Unlock()
	k.deleteKeys(func(yield func(fastpath.Key) bool) {
		for _, key := range k.dp.FlowKeys() {
			if _, ok := k.adopted[key]; !ok && !yield(key) {
				return
			}
		}
	})
	clear(k.drops)
}

// Idle is how long the kernel's copy of a flow has not forwarded (ns);
// false when the kernel has none.
func (k *kernelPath) Idle(fk *flow.Key) (int64, bool) {
	key, ok := kernelKey(fk)
	if !ok {
		return 0, false
	}
	return k.dp.IdleFor(&key)
}

// expireAdopted removes the adopted flows (a previous agent's) that have
// idled for a flow's life; dropAdopted removes them all, when the topology
// changed and their decisions may be stale.
func (k *kernelPath) expireAdopted() {
	k.mmu.Lock()
	defer k.mmu.Unlock()
	k.deleteKeys(func(yield func(fastpath.Key) bool) {
		for key := range k.adopted {
			if idle, ok := k.dp.IdleFor(&key); !ok || idle >= k.ttl {
				delete(k.adopted, key)
				if !yield(key) {
					return
				}
			}
		}
	})
}

func (k *kernelPath) dropAdopted() int {
	k.mmu.Lock()
	defer k.mmu.Unlock()
	n := len(k.adopted)
	k.deleteKeys(maps.Keys(k.adopted))
	clear(k.adopted)
	k.stale = false
	return n
}

// retireAdopted retires the adopted flows after a topology change (what
// changed: attrs, for the log): now when synced, else at the first
// housekeeping once it is.
func (k *kernelPath) retireAdopted(synced bool, attrs ...any) {
	if !synced {
		k.mmu.Lock()
		k.stale, k.staleAttrs = len(k.adopted) > 0, attrs
		k.mmu.Unlock()
		return
	}
	if n := k.dropAdopted(); n > 0 {
		k.a.log.Info("agent: retired the flows a previous agent left", append([]any{"flows", n}, attrs...)...)
	}
}

// reconcilePorts detaches the devices a previous agent attached for ports
// no longer bound here.
func (k *kernelPath) reconcilePorts(want map[string]binding) {
	keep := map[uint32]bool{}
	for _, b := range want {
		keep[b.key] = true
	}
	for _, key := range k.dp.PortKeys() {
		if !keep[key] && !k.isKernelPort(key) {
			k.a.log.Info("agent: detaching a port a previous agent attached", "tunnel_key", key)
			k.dp.DetachPortKey(key)
		}
	}
}

func (k *kernelPath) String() string {
	return fmt.Sprintf("kernel (attach %s, tunnel %s:%d, pins %s)", k.dp.Attach(), k.devs.Tunnel, k.port, k.dp.Dir())
}

// housekeeping runs every second: adopted flows that idled go, and the
// program's counters are published.
func (k *kernelPath) housekeeping() {
	k.expireAdopted()
	k.mmu.Lock()
	stale, attrs := k.stale, k.staleAttrs
	k.mmu.Unlock()
	if stale && k.a.live.synced() {
		k.retireAdopted(true, attrs...)
	}
	st := k.dp.Stats()
	for name, v := range map[string]uint64{"hit": st.Hits, "miss": st.Misses, "miss_lost": st.MissesLost, "drop": st.Drops,
		"tunnel_tx": st.TunnelTx, "tunnel_rx": st.TunnelRx, "tunnel_unknown": st.TunnelUnknown, "injected": st.Injected,
		"no_port": st.NoPort, "error": st.Errors} {
		k.a.m.kernelStats.WithLabelValues(name).Set(float64(v))
	}
}
