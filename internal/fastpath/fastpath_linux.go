package fastpath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PinRoot holds a directory of pinned maps and links per host.
const PinRoot = "/sys/fs/bpf/canopy"

// Datapath is the loaded program and its maps, pinned under
// PinRoot/<host> so that they outlive the agent: a restarted agent adopts
// them and the kernel forwards established flows meanwhile.
type Datapath struct {
	objs       fastpathObjects
	dir        string
	tunIfindex int

	mode Attach

	mu    sync.Mutex
	links map[string]link.Link // tcx links by device name
	tc    map[string]int       // devices with a classic filter, by name

	// Flows queued by QueueFlow, written in one batch by FlushFlows.
	qmu     sync.Mutex
	qkeys   []Key
	qvals   []Flow
	noBatch bool // the kernel has no BPF_MAP_UPDATE_BATCH: one update each

	noBatchDel atomic.Bool // the kernel has no BPF_MAP_DELETE_BATCH: one delete each
}

// Options are how Open loads and attaches the program.
type Options struct {
	Attach Attach // AttachAuto: tcx where the kernel has it, else classic TC
}

// Open loads the program with the maps pinned for host, adopting the maps a
// previous agent left there, and attaches with tcx where the kernel has it.
func Open(host string) (*Datapath, error) { return OpenWith(host, Options{}) }

// OpenWith is Open with options. Maps of another layout (an upgrade
// changed them) are replaced: their flows are rewritten by the agent
// anyway.
func OpenWith(host string, o Options) (*Datapath, error) {
	if err := mountBPFFS(); err != nil {
		return nil, err
	}
	dir := pinDir(host)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	spec, err := loadFastpath()
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	d := &Datapath{dir: dir, links: map[string]link.Link{}, tc: map[string]int{}}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: dir}}
	err = spec.LoadAndAssign(&d.objs, opts)
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		for name := range spec.Maps {
			_ = os.Remove(filepath.Join(dir, name))
		}
		err = spec.LoadAndAssign(&d.objs, opts)
	}
	if err != nil {
		_ = os.Remove(dir) // made for nothing (a previous agent's pins stay)
		return nil, fmt.Errorf("fastpath: load: %w", err)
	}
	if d.mode, err = chooseAttach(o.Attach, d.objs.CanopyIngress); err != nil {
		d.objs.Close()
		return nil, err
	}
	return d, nil
}

func pinDir(host string) string { return filepath.Join(PinRoot, strings.ReplaceAll(host, "/", "_")) }

// Dir is the directory of the pinned maps and links.
func (d *Datapath) Dir() string { return d.dir }

// mountBPFFS mounts the BPF filesystem where pins live, unless it is there.
func mountBPFFS() error {
	const bpfFSMagic = 0xcafe4a11
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type == bpfFSMagic {
		return nil
	}
	if err := os.MkdirAll("/sys/fs/bpf", 0o700); err != nil {
		return fmt.Errorf("fastpath: %w", err)
	}
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("fastpath: mount bpffs: %w", err)
	}
	return nil
}

// AttachPort makes dev (a port's host-side netdev) a port with tunnel key
// key: frames it receives are looked up in the flow map, and outputs to
// key are sent to it (into the peer's namespace when dev is a veth whose
// peer is in another one).
func (d *Datapath) AttachPort(dev string, key uint32) error {
	if err := d.AttachPortIngress(dev, key); err != nil {
		return err
	}
	return d.DeliverPort(dev, key)
}

// AttachPortIngress is AttachPort's first half: the program takes the
// device's frames (as the port with tunnel key key), but nothing is sent
// to it yet: DeliverPort does that, once the device can take frames (its
// link up: a guest whose first ARP went out of a link without carrier
// retries it only after a second).
func (d *Datapath) AttachPortIngress(dev string, key uint32) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("fastpath: port %s: %w", dev, err)
	}
	ifindex := l.Attrs().Index
	if err := d.objs.Devs.Put(uint32(ifindex), fastpathDevVal{Key: key, Kind: devPort}); err != nil {
		return fmt.Errorf("fastpath: port %s: %w", dev, err)
	}
	return d.attach(dev, ifindex)
}

// DeliverPort makes the port with tunnel key key on dev a destination of
// the program's flows and tunnelled frames.
func (d *Datapath) DeliverPort(dev string, key uint32) error {
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("fastpath: port %s: %w", dev, err)
	}
	var flags uint32
	// bpf_redirect_peer only crosses into another namespace: a veth whose
	// peer is in this one (the link to the host's own stack that canopy up
	// makes for the edge's uplink) takes bpf_redirect, as a TAP does.
	if l.Type() == "veth" && l.Attrs().NetNsID >= 0 {
		flags = portPeer
	}
	if err := d.objs.Ports.Put(key, fastpathPortVal{Ifindex: uint32(l.Attrs().Index), Flags: flags}); err != nil {
		return fmt.Errorf("fastpath: port %s: %w", dev, err)
	}
	return nil
}

// DetachPort undoes AttachPort. The device may be gone already.
func (d *Datapath) DetachPort(dev string, key uint32) {
	d.detach(dev)
	if l, err := netlink.LinkByName(dev); err == nil {
		// Attached but never delivered to (AttachPortIngress alone).
		var dv fastpathDevVal
		if d.objs.Devs.Lookup(uint32(l.Attrs().Index), &dv) == nil && dv.Key == key && dv.Kind == devPort {
			_ = d.objs.Devs.Delete(uint32(l.Attrs().Index))
		}
	}
	var pv fastpathPortVal
	if d.objs.Ports.Lookup(key, &pv) == nil {
		_ = d.objs.Devs.Delete(pv.Ifindex)
		_ = d.objs.Ports.Delete(key)
	}
}

// PortIfindex is the device index of the port with tunnel key key (0: none).
func (d *Datapath) PortIfindex(key uint32) int {
	var pv fastpathPortVal
	if d.objs.Ports.Lookup(key, &pv) != nil {
		return 0
	}
	return int(pv.Ifindex)
}

// DetachPortKey detaches the port with tunnel key key, whatever its device
// is called now (a previous agent's port that is no longer bound here).
func (d *Datapath) DetachPortKey(key uint32) {
	var pv fastpathPortVal
	if d.objs.Ports.Lookup(key, &pv) != nil {
		return
	}
	if l, err := netlink.LinkByIndex(int(pv.Ifindex)); err == nil {
		d.detach(l.Attrs().Name)
	}
	_ = d.objs.Devs.Delete(pv.Ifindex)
	_ = d.objs.Ports.Delete(key)
}

// PortKeys lists the tunnel keys of the ports in the kernel's port map
// (what a previous agent attached), for reconciliation.
func (d *Datapath) PortKeys() []uint32 {
	var out []uint32
	var k uint32
	var v fastpathPortVal
	it := d.objs.Ports.Iterate()
	for it.Next(&k, &v) {
		out = append(out, k)
	}
	return out
}

// PutFlow writes (or replaces) the flow for k now. Its last-used time
// starts now, so a new flow is not mistaken for an idle one.
func (d *Datapath) PutFlow(k *Key, f *Flow) error {
	d.QueueFlow(k, f)
	return d.FlushFlows()
}

// QueueFlow queues the flow for k: FlushFlows writes the queue in one
// system call. Whatever is queued is written before the Injector sends a
// frame and before a flow is deleted, so a re-injected frame finds its flow
// and the map changes in the order they were asked for.
func (d *Datapath) QueueFlow(k *Key, f *Flow) {
	d.qmu.Lock()
	d.qkeys = append(d.qkeys, *k)
	d.qvals = append(d.qvals, *f)
	d.qmu.Unlock()
}

// FlushFlows writes the queued flows (BPF_MAP_UPDATE_BATCH where the kernel
// has it). A flow the map refuses (full) is dropped from the queue with the
// others: its packets keep missing, and the agent keeps forwarding them.
func (d *Datapath) FlushFlows() error {
	d.qmu.Lock()
	defer d.qmu.Unlock()
	if len(d.qkeys) == 0 {
		return nil
	}
	now := monotonicNow()
	for i := range d.qvals {
		d.qvals[i].UsedNs = now
	}
	var err error
	if !d.noBatch {
		_, err = d.objs.Flows.BatchUpdate(d.qkeys, d.qvals, nil)
		if errors.Is(err, ebpf.ErrNotSupported) {
			d.noBatch = true
		}
	}
	if d.noBatch {
		err = nil
		for i := range d.qkeys {
			if perr := d.objs.Flows.Put(&d.qkeys[i], &d.qvals[i]); perr != nil && err == nil {
				err = perr
			}
		}
	}
	d.qkeys, d.qvals = d.qkeys[:0], d.qvals[:0]
	if err != nil {
		return fmt.Errorf("fastpath: put flows: %w", err)
	}
	return nil
}

// DeleteFlow removes the flow for k; a flow that is not there is no error.
func (d *Datapath) DeleteFlow(k *Key) error {
	if err := d.FlushFlows(); err != nil {
		return err
	}
	if err := d.objs.Flows.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("fastpath: delete flow: %w", err)
	}
	return nil
}

// DeleteFlows removes the flows for keys, in one BPF_MAP_DELETE_BATCH
// where the kernel has it (one delete each where not); a key that is not
// there is skipped. The queued flows are written first, as for DeleteFlow.
// A topology change or new connection state removes many flows at once,
// under the agent's flow-table lock: one system call each held every
// lookup for as long.
func (d *Datapath) DeleteFlows(keys []Key) error {
	if err := d.FlushFlows(); err != nil {
		return err
	}
	for len(keys) > 0 && !d.noBatchDel.Load() {
		n, err := d.objs.Flows.BatchDelete(keys, nil)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ebpf.ErrKeyNotExist):
			// The kernel stops at a key it does not have: n went before it.
			keys = keys[min(n+1, len(keys)):]
		case errors.Is(err, ebpf.ErrNotSupported):
			d.noBatchDel.Store(true)
		default:
			return fmt.Errorf("fastpath: delete flows: %w", err)
		}
	}
	var err error
	for i := range keys {
		if derr := d.objs.Flows.Delete(&keys[i]); derr != nil && !errors.Is(derr, ebpf.ErrKeyNotExist) && err == nil {
			err = fmt.Errorf("fastpath: delete flow: %w", derr)
		}
	}
	return err
}

// LookupFlow reads the flow for k: its actions, counters and last use.
func (d *Datapath) LookupFlow(k *Key, f *Flow) bool {
	return d.objs.Flows.Lookup(k, f) == nil
}

// IdleFor reports how long ago (ns) the flow for k last forwarded a
// packet, and false when the kernel has no such flow.
func (d *Datapath) IdleFor(k *Key) (int64, bool) {
	var f Flow
	if d.objs.Flows.Lookup(k, &f) != nil {
		return 0, false
	}
	return int64(monotonicNow() - min(f.UsedNs, monotonicNow())), true
}

// FlowKeys lists the keys of every kernel flow (reconciliation after an
// agent restart).
func (d *Datapath) FlowKeys() []Key {
	var out []Key
	var k Key
	var f Flow
	it := d.objs.Flows.Iterate()
	for it.Next(&k, &f) {
		out = append(out, k)
	}
	return out
}

// Stats are the program's counters summed over CPUs.
type Stats struct {
	Hits, Misses, MissesLost, Drops, TunnelTx, TunnelRx, TunnelUnknown, Injected, NoPort, Errors uint64
}

// Stats reads the program's counters.
func (d *Datapath) Stats() Stats {
	var s [10]uint64
	for i := range s {
		var per []uint64
		if d.objs.Stats.Lookup(uint32(i), &per) == nil {
			for _, v := range per {
				s[i] += v
			}
		}
	}
	return Stats{s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9]}
}

// Close releases this process's handles. What is pinned stays: the program
// keeps forwarding with the maps as they are until an agent adopts them.
func (d *Datapath) Close() error {
	d.mu.Lock()
	for _, l := range d.links {
		_ = l.Close()
	}
	d.links = map[string]link.Link{}
	clear(d.tc)
	d.mu.Unlock()
	return d.objs.Close()
}

// Remove detaches the program from every device it was attached to and
// deletes the pins: the host goes back to no kernel fast path.
func (d *Datapath) Remove() error {
	d.detachAll()
	err := d.Close()
	if rerr := os.RemoveAll(d.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func monotonicNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
