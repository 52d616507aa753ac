package fastpath

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Attach is how the program is attached at TC ingress of a device.
type Attach string

const (
	// AttachAuto is tcx where the kernel has it (Linux 6.6 and later),
	// else classic TC.
	AttachAuto Attach = ""
	// AttachTCX is a tcx link, pinned: it outlives the agent and the next
	// one moves it to its own program.
	AttachTCX Attach = "tcx"
	// AttachTC is a direct-action cls_bpf filter on the device's clsact
	// qdisc (Linux before 6.6, such as Debian 12's 6.1). The filter holds
	// the program: it outlives the agent by itself, and the next agent
	// replaces it with its own program in one netlink request.
	AttachTC Attach = "tc"
)

// ParseAttach reads an attach mode as flags spell it ("auto", "tcx", "tc").
func ParseAttach(s string) (Attach, error) {
	switch s {
	case "", "auto":
		return AttachAuto, nil
	case "tcx":
		return AttachTCX, nil
	case "tc":
		return AttachTC, nil
	}
	return "", fmt.Errorf("attach mode %q: want auto, tcx or tc", s)
}

// tcFilterName names Canopy's classic filters (TCA_BPF_NAME), so that
// only they are replaced or removed, never an operator's.
const tcFilterName = "canopy_ingress"

// Classic filters are at this priority and handle under the ingress hook.
const (
	tcPriority = 1
	tcHandle   = 1
)

// chooseAttach resolves AttachAuto: tcx if the kernel has it. The probe
// attaches to a device index nobody has: a kernel with tcx refuses the
// device, one without refuses the attach type.
func chooseAttach(want Attach, prog *ebpf.Program) (Attach, error) {
	_, err := link.AttachTCX(link.TCXOptions{Interface: math.MaxInt32, Program: prog, Attach: ebpf.AttachTCXIngress})
	haveTCX := !errors.Is(err, link.ErrNotSupported)
	switch {
	case want == AttachAuto && haveTCX:
		return AttachTCX, nil
	case want == AttachAuto:
		return AttachTC, nil
	case want == AttachTCX && !haveTCX:
		return "", fmt.Errorf("fastpath: this kernel has no tcx (Linux 6.6 and later): %w", err)
	}
	return want, nil
}

// Attach is the mode the program is attached with.
func (d *Datapath) Attach() Attach { return d.mode }

// attach puts the program at TC ingress of dev, in a way that outlives the
// agent: a pinned tcx link, or a classic filter. What a previous agent
// attached there is taken over by this agent's program without a gap, and
// what it attached the other way is removed (the mode changed).
func (d *Datapath) attach(dev string, ifindex int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mode == AttachTC {
		if err := d.attachTC(ifindex); err != nil {
			return fmt.Errorf("fastpath: attach to %s (classic TC): %w", dev, err)
		}
		d.unpinLink(dev)
		d.tc[dev] = ifindex
		return nil
	}
	if err := d.attachTCX(dev, ifindex); err != nil {
		return err
	}
	_ = detachTC(ifindex)
	return nil
}

// attachTCX attaches with a pinned tcx link; a link pinned by a previous
// agent is adopted and moved to this agent's program. Caller holds mu.
func (d *Datapath) attachTCX(dev string, ifindex int) error {
	if l := d.links[dev]; l != nil {
		if tcxIfindex(l) == ifindex {
			return nil
		}
		_ = l.Unpin()
		_ = l.Close()
		delete(d.links, dev)
	}
	pin := filepath.Join(d.dir, "link-"+dev)
	if l, err := link.LoadPinnedLink(pin, nil); err == nil {
		if tcxIfindex(l) == ifindex && l.Update(d.objs.CanopyIngress) == nil {
			d.links[dev] = l
			return nil
		}
		// The device was replaced (or the link broke): attach afresh.
		_ = l.Unpin()
		_ = l.Close()
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: d.objs.CanopyIngress, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("fastpath: attach to %s: %w", dev, err)
	}
	if err := l.Pin(pin); err != nil {
		_ = l.Close()
		return fmt.Errorf("fastpath: pin link of %s: %w", dev, err)
	}
	d.links[dev] = l
	return nil
}

func tcxIfindex(l link.Link) int {
	info, err := l.Info()
	if err != nil || info.TCX() == nil {
		return -1
	}
	return int(info.TCX().Ifindex)
}

// attachTC adds the clsact qdisc if the device has none and puts the
// program there as a direct-action filter, replacing a previous agent's.
func (d *Datapath) attachTC(ifindex int) error {
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0),
		Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
	if err := netlink.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("clsact qdisc: %w", err)
	}
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS,
		Handle: tcHandle, Priority: tcPriority, Protocol: unix.ETH_P_ALL},
		Fd: d.objs.CanopyIngress.FD(), Name: tcFilterName, DirectAction: true}
	if err := netlink.FilterReplace(f); err != nil {
		return fmt.Errorf("cls_bpf filter: %w", err)
	}
	return nil
}

// detachTC removes Canopy's classic filter from the device's ingress, if
// it has one. The clsact qdisc stays: other filters may hang on it.
func detachTC(ifindex int) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil // the device is gone, and its filters with it
	}
	fs, err := netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS)
	if err != nil {
		return nil // no clsact qdisc: no filter
	}
	for _, f := range fs {
		if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == tcFilterName {
			if err := netlink.FilterDel(bf); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("fastpath: remove the filter of %s: %w", l.Attrs().Name, err)
			}
		}
	}
	return nil
}

// unpinLink removes dev's pinned tcx link (the program leaves the device
// once nothing holds the link). Caller holds mu.
func (d *Datapath) unpinLink(dev string) {
	l := d.links[dev]
	delete(d.links, dev)
	if l == nil {
		var err error
		if l, err = link.LoadPinnedLink(filepath.Join(d.dir, "link-"+dev), nil); err != nil {
			return
		}
	}
	_ = l.Unpin()
	_ = l.Close()
}

// detach takes the program off dev, however it was attached.
func (d *Datapath) detach(dev string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unpinLink(dev)
	ifindex, ok := d.tc[dev]
	delete(d.tc, dev)
	if !ok {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return
		}
		ifindex = l.Attrs().Index
	}
	_ = detachTC(ifindex)
}

// detachAll takes the program off every device it is attached to: those
// with a pinned link and those in the devs map (a classic filter has no
// pin; the map names every device the program serves).
func (d *Datapath) detachAll() {
	ents, _ := os.ReadDir(d.dir)
	for _, e := range ents {
		if dev, ok := strings.CutPrefix(e.Name(), "link-"); ok {
			d.detach(dev)
		}
	}
	detachTCDevs(d.objs.Devs)
}

// detachTCDevs removes Canopy's classic filter from every device of the
// devs map.
func detachTCDevs(devs *ebpf.Map) {
	var ifindex uint32
	var v fastpathDevVal
	it := devs.Iterate()
	for it.Next(&ifindex, &v) {
		_ = detachTC(int(ifindex))
	}
}
