package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Devices names a host's fast-path devices (one of each per host).
type Devices struct {
	Tunnel   string // the kernel VXLAN device, external (collect_md)
	Inject   string // where the agent's frames enter the program
	InjectTx string // its veth peer, where the agent writes them
}

// DefaultDevices are the names an agent uses; tests sharing a namespace
// with others pick their own.
var DefaultDevices = Devices{Tunnel: "canopy-vx", Inject: "canopy-inj", InjectTx: "canopy-injtx"}

const (
	injectMTU   = 65535
	injectSlots = 4096
	injectMark  = 0x40000000
)

// MissCap is the most of a missed frame the program copies to the agent.
const MissCap = len(fastpathMiss{}.Data)

// SetupTunnel creates (or adopts) the host's VXLAN device name in external
// mode on UDP port port and makes the program deliver what it receives by
// VNI and send tunnel outputs through it. mtu is the underlay's MTU (0:
// unknown): large TCP sends into the tunnel are cut to segments that fit it
// with the encapsulation.
func (d *Datapath) SetupTunnel(name string, port uint16, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err == nil {
		if vx, ok := l.(*netlink.Vxlan); !ok || !vx.FlowBased || vx.Port != int(port) {
			// Another configuration (an old port, a foreign device): replace it.
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("fastpath: replace %s: %w", name, err)
			}
			l = nil
		}
	}
	if l == nil {
		vx := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: name}, FlowBased: true, Port: int(port), Learning: false}
		if err := netlink.LinkAdd(vx); err != nil {
			return fmt.Errorf("fastpath: create %s (kernel VXLAN): %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("fastpath: %w", err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("fastpath: %s up: %w", name, err)
	}
	ifindex := l.Attrs().Index
	if err := d.objs.Devs.Put(uint32(ifindex), fastpathDevVal{Kind: devTunnel}); err != nil {
		return fmt.Errorf("fastpath: %w", err)
	}
	if err := d.objs.Cfg.Put(uint32(0), fastpathConfig{TunnelIfindex: uint32(ifindex), TunnelMtu: uint32(mtu)}); err != nil {
		return fmt.Errorf("fastpath: %w", err)
	}
	d.tunIfindex = ifindex
	return d.attach(name, ifindex)
}

// TunnelIfindex is the VXLAN device's index: misses with it are tunnelled
// frames for a key no kernel port has (Miss.InKey is the VNI).
func (d *Datapath) TunnelIfindex() int { return d.tunIfindex }

// StateSender is the underlay address of the host that sent a state
// message or heartbeat read by a StateReader (the program wrote it into
// the inner source MAC).
func StateSender(frame []byte) netip.Addr {
	if len(frame) < 10 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(frame[6:10]))
}

// Injector sends the agent's frames into the program: re-injected misses
// (after their flow is in the map), generated answers and state messages.
// A frame enters through the inject veth pair with a mark naming an action
// list (an output or a tunnel), so the kernel forwards it exactly as it
// forwards a flow's frames. Frames go in batches, one sendmmsg each.
type Injector struct {
	d  *Datapath
	fd int

	mu    sync.Mutex // the slots and the send buffers
	slots map[target]uint32
	msgs  [injectBatch]unix.Mmsghdr
	iov   [injectBatch][2]unix.Iovec
	vh    [injectBatch][datapath.VnetHdrLen]byte
	oob   [injectBatch][cmsgMarkLen]byte
}

const (
	injectBatch = 64
	cmsgMarkLen = 24 // unix.CmsgSpace(4) on 64-bit Linux
)

// Outgoing is a frame for Send: out of the local port with tunnel key Key,
// or, when Remote is valid, to that VXLAN endpoint with VNI Key.
type Outgoing struct {
	Frame  []byte
	Hdr    datapath.VnetHdr
	Key    uint32
	Remote netip.Addr
}

type target struct {
	kind   flow.ActionKind
	key    uint32
	remote uint32
}

// SetupInject creates (or adopts) the inject veth pair (inject, injectTx) and opens the agent's socket on it.
func (d *Datapath) SetupInject(inject, injectTx string) (*Injector, error) {
	l, err := netlink.LinkByName(inject)
	if err != nil {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: inject, MTU: injectMTU}, PeerName: injectTx}
		if err := netlink.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("fastpath: create %s: %w", inject, err)
		}
		if l, err = netlink.LinkByName(inject); err != nil {
			return nil, fmt.Errorf("fastpath: %w", err)
		}
	}
	tx, err := netlink.LinkByName(injectTx)
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	for _, x := range []netlink.Link{l, tx} {
		if err := netlink.LinkSetMTU(x, injectMTU); err != nil {
			return nil, fmt.Errorf("fastpath: %w", err)
		}
		if err := netlink.LinkSetUp(x); err != nil {
			return nil, fmt.Errorf("fastpath: %w", err)
		}
	}
	if err := d.objs.Devs.Put(uint32(l.Attrs().Index), fastpathDevVal{Kind: devInject}); err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	if err := d.attach(inject, l.Attrs().Index); err != nil {
		return nil, err
	}
	// Protocol 0: the socket sends only, it receives nothing.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fastpath: inject socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: tx.Attrs().Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fastpath: bind inject socket: %w", err)
	}
	// Frames carry a virtio-net header: a large send from a userspace port
	// (a GSO super-frame with a partial checksum) goes in whole and the
	// kernel segments it where it leaves.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fastpath: inject socket: %w", err)
	}
	return &Injector{d: d, fd: fd, slots: map[target]uint32{}}, nil
}

// Output sends frame (with its offload metadata hdr) out of the local port
// with tunnel key key.
func (in *Injector) Output(frame []byte, hdr *datapath.VnetHdr, key uint32) error {
	return in.one(Outgoing{Frame: frame, Hdr: *hdr, Key: key})
}

// Tunnel sends frame to remote's VXLAN endpoint with VNI vni.
func (in *Injector) Tunnel(frame []byte, hdr *datapath.VnetHdr, remote netip.Addr, vni uint32) error {
	return in.one(Outgoing{Frame: frame, Hdr: *hdr, Key: vni, Remote: remote})
}

func (in *Injector) one(o Outgoing) error {
	n, err := in.Send([]Outgoing{o})
	if err == nil && n == 0 {
		// The first bytes of a large send that missed: its flow is in
		// now, the sender's retransmission takes it.
		return datapath.ErrTruncated
	}
	return err
}

// slot returns the inject slot holding t's action list, writing it the
// first time; false when every slot is taken (see Send). A slot's content
// never changes while frames may name it: they are forwarded before the
// send returns, in the sender's softirq, and the slots are rewritten only
// between sends.
func (in *Injector) slot(t target) (uint32, bool, error) {
	if s, ok := in.slots[t]; ok {
		return s, true, nil
	}
	if len(in.slots) == injectSlots {
		return 0, false, nil
	}
	s := uint32(len(in.slots))
	var f Flow
	f.N_acts = 1
	f.Acts[0] = fastpathAction{Kind: uint8(t.kind), Flags: actLastOut, Key: t.key, Remote: t.remote}
	if err := in.d.objs.Inject.Put(s, &f); err != nil {
		return 0, false, fmt.Errorf("fastpath: inject slot: %w", err)
	}
	in.slots[t] = s
	return s, true, nil
}

// Send injects the frames, after the queued flows are in the map
// (Datapath.QueueFlow), and returns how many it sent. The first bytes of a
// large send that missed (Miss.Truncated) are not sent: their flow is in,
// and the sender's retransmission goes through the kernel. A frame to a
// tunnel endpoint that is not IPv4 is not sent either.
func (in *Injector) Send(fs []Outgoing) (int, error) {
	if err := in.d.FlushFlows(); err != nil {
		return 0, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	sent := 0
	for len(fs) > 0 {
		n, cnt := 0, 0 // frames taken from fs, messages built
		for n < len(fs) && cnt < injectBatch {
			o := &fs[n]
			t := target{kind: flow.Output, key: o.Key}
			if o.Remote.IsValid() {
				if !o.Remote.Is4() {
					n++
					continue
				}
				t = target{kind: flow.Tunnel, key: o.Key, remote: binary.BigEndian.Uint32(o.Remote.AsSlice())}
			}
			if o.Hdr.IsGSO() && truncated(o.Frame) {
				n++
				continue
			}
			s, ok, err := in.slot(t)
			if err != nil {
				return sent, err
			}
			if !ok {
				if cnt > 0 {
					break // send what names the slots first
				}
				clear(in.slots)
				continue
			}
			if err := o.Hdr.Encode(in.vh[cnt][:]); err != nil {
				n++
				continue
			}
			// SO_MARK as a control message: the mark travels with this
			// frame only.
			oob := in.oob[cnt][:]
			h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			h.Level, h.Type = unix.SOL_SOCKET, unix.SO_MARK
			h.SetLen(unix.CmsgLen(4))
			binary.NativeEndian.PutUint32(oob[unix.CmsgLen(0):], injectMark|s)
			in.iov[cnt][0] = unix.Iovec{Base: &in.vh[cnt][0]}
			in.iov[cnt][0].SetLen(datapath.VnetHdrLen)
			in.iov[cnt][1] = unix.Iovec{}
			if len(o.Frame) > 0 {
				in.iov[cnt][1].Base = &o.Frame[0]
				in.iov[cnt][1].SetLen(len(o.Frame))
			}
			in.msgs[cnt] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &in.iov[cnt][0], Control: &oob[0]}}
			in.msgs[cnt].Hdr.SetIovlen(2)
			in.msgs[cnt].Hdr.SetControllen(unix.CmsgSpace(4))
			cnt++
			n++
		}
		for done := 0; done < cnt; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(in.fd), uintptr(unsafe.Pointer(&in.msgs[done])), uintptr(cnt-done), 0, 0, 0)
			switch errno {
			case 0:
				done += int(r)
				sent += int(r)
				continue
			case unix.EINTR, unix.EAGAIN, unix.ENOBUFS:
				continue
			case unix.EINVAL, unix.EMSGSIZE:
				done++ // this frame is refused, the others go on
				continue
			}
			return sent, fmt.Errorf("fastpath: inject: %w", errno)
		}
		fs = fs[n:]
	}
	return sent, nil
}

// truncated reports whether an IPv4 frame is shorter than its header says.
func truncated(f []byte) bool {
	const eth = 14
	if len(f) < eth+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return false
	}
	return eth+int(binary.BigEndian.Uint16(f[eth+2:])) > len(f)
}

// Close closes the socket (the devices stay for the next agent).
func (in *Injector) Close() error { return unix.Close(in.fd) }

// Miss is a frame the program handed to the agent.
type Miss struct {
	Key      Key    // as the program computed it (meaningful when LookedUp)
	LookedUp bool   // false: the program could not key it (a VLAN tag, a malformed header)
	Ifindex  int    // device it arrived on
	InKey    uint32 // tunnel key of that port
	Len      int    // the frame's length in the kernel
	GSOSize  uint16
	// Frame is the frame, or its first bytes when Truncated (a segment of
	// a large send whose flow just went: its flow is installed from the
	// headers and the sender retransmits through the kernel). Valid until
	// the second Read after the one that returned it. L4 checksums are complete (the kernel may have left
	// them to the device).
	Frame     []byte
	Truncated bool
}

// MissReader reads misses from the ring buffer.
type MissReader struct {
	r *ringbuf.Reader
	// One per Miss of a batch: its frame's buffer. Batches alternate
	// between two sets, so a batch's frames stay valid while the next one
	// is read and handled (the agent re-injects one batch while it
	// simulates the next).
	recs [2][]ringbuf.Record
	cur  int
}

// NewMissReader opens the misses ring buffer.
func (d *Datapath) NewMissReader() (*MissReader, error) {
	r, err := ringbuf.NewReader(d.objs.Misses)
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	return &MissReader{r: r}, nil
}

var (
	offData     = int(unsafe.Offsetof(fastpathMiss{}.Data))
	offIfindex  = int(unsafe.Offsetof(fastpathMiss{}.Ifindex))
	offInKey    = int(unsafe.Offsetof(fastpathMiss{}.InKey))
	offLen      = int(unsafe.Offsetof(fastpathMiss{}.Len))
	offCap      = int(unsafe.Offsetof(fastpathMiss{}.Cap))
	offGSO      = int(unsafe.Offsetof(fastpathMiss{}.GsoSize))
	offLookedUp = int(unsafe.Offsetof(fastpathMiss{}.LookedUp))
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("fastpath: closed")

// Read waits for the next miss and fills m. Its frame is valid until the
// second Read or ReadBatch after this one.
func (r *MissReader) Read(m *Miss) error {
	_, err := r.ReadBatch(unsafe.Slice(m, 1))
	return err
}

// ReadBatch waits for a miss, then takes the misses already in the ring
// behind it, up to len(ms): reading them costs no system call, and the
// agent handles them as one batch (one map update, one send). Their frames
// are valid until the second ReadBatch after this one (Read counts as one).
func (r *MissReader) ReadBatch(ms []Miss) (int, error) {
	r.cur ^= 1
	recs := r.recs[r.cur]
	if len(recs) < len(ms) {
		recs = append(recs, make([]ringbuf.Record, len(ms)-len(recs))...)
		r.recs[r.cur] = recs
	}
	n := 0
	for n < len(ms) {
		if n > 0 && r.r.AvailableBytes() == 0 {
			break
		}
		rec := &recs[n]
		if err := r.r.ReadInto(rec); err != nil {
			if n > 0 {
				break // the next call returns it
			}
			if errors.Is(err, ringbuf.ErrClosed) {
				return 0, ErrClosed
			}
			return 0, fmt.Errorf("fastpath: %w", err)
		}
		if decodeMiss(rec.RawSample, &ms[n]) {
			n++
		}
	}
	return n, nil
}

// Behind reports whether misses wait in the ring (the reader is behind).
func (r *MissReader) Behind() bool { return r.r.AvailableBytes() > 0 }

// decodeMiss fills m from a ring record; false for a short one.
func decodeMiss(b []byte, m *Miss) bool {
	if len(b) < offData {
		return false
	}
	ne := binary.NativeEndian
	m.Key = *(*Key)(unsafe.Pointer(&b[0]))
	m.Ifindex = int(ne.Uint32(b[offIfindex:]))
	m.InKey = ne.Uint32(b[offInKey:])
	m.Len = int(ne.Uint32(b[offLen:]))
	m.GSOSize = ne.Uint16(b[offGSO:])
	m.LookedUp = ne.Uint16(b[offLookedUp:]) != 0
	n := min(int(ne.Uint32(b[offCap:])), len(b)-offData)
	m.Frame = b[offData : offData+n]
	m.Truncated = n < m.Len
	if !m.Truncated {
		completeChecksum(m.Frame)
	}
	return true
}

// Close ends a blocked Read.
func (r *MissReader) Close() error { return r.r.Close() }

// completeChecksum writes the full L4 checksum of an unfragmented IPv4
// TCP or UDP frame. The program copies frames as the kernel holds them,
// and one from a local stack on a veth carries only the pseudo-header sum
// (the device was to finish it); the agent forwards it through a socket,
// which does not.
func completeChecksum(f []byte) {
	const eth = 14
	if len(f) < eth+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[eth]>>4 != 4 {
		return
	}
	ihl := int(f[eth]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(f[eth+2:]))
	if ihl < 20 || tot < ihl || eth+tot > len(f) || binary.BigEndian.Uint16(f[eth+6:])&0x3fff != 0 {
		return
	}
	l4 := f[eth+ihl : eth+tot]
	var off int
	switch f[eth+9] {
	case 6:
		off = 16
	case 17:
		off = 6
		if len(l4) >= 8 && binary.BigEndian.Uint16(l4[6:]) == 0 {
			return // no checksum: stays so
		}
	default:
		return
	}
	if len(l4) < off+2 {
		return
	}
	var ph [12]byte
	copy(ph[0:8], f[eth+12:eth+20])
	ph[9] = f[eth+9]
	binary.BigEndian.PutUint16(ph[10:], uint16(len(l4)))
	binary.BigEndian.PutUint16(l4[off:], ^datapath.Checksum(ph[:], 0))
	h := datapath.VnetHdr{Flags: datapath.VnetFlagNeedsCsum, CsumStart: uint16(eth + ihl), CsumOffset: uint16(off)}
	_ = datapath.FinishChecksum(f[:eth+tot], &h)
}

// StateReader receives the connection-state messages peers send on the
// reserved VNI: the program passes them to the host stack, where this
// socket (bound to their EtherType on the VXLAN device) takes them.
type StateReader struct{ f *os.File }

// NewStateReader opens it on the VXLAN device tunnelDev for frames of
// EtherType etherType.
func NewStateReader(tunnelDev string, etherType uint16) (*StateReader, error) {
	l, err := netlink.LinkByName(tunnelDev)
	if err != nil {
		return nil, fmt.Errorf("fastpath: %w", err)
	}
	proto := int(htons(etherType))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("fastpath: state socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: l.Attrs().Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fastpath: bind state socket: %w", err)
	}
	// Through the runtime's poller, so that Close ends a blocked Read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fastpath: state socket: %w", err)
	}
	return &StateReader{f: os.NewFile(uintptr(fd), "canopy-state")}, nil
}

// Read reads one state message (the inner Ethernet frame) into b.
func (s *StateReader) Read(b []byte) (int, error) {
	n, err := s.f.Read(b)
	if errors.Is(err, os.ErrClosed) {
		return 0, ErrClosed
	}
	if err != nil {
		return 0, fmt.Errorf("fastpath: state read: %w", err)
	}
	return n, nil
}

// Close ends a blocked Read.
func (s *StateReader) Close() error { return s.f.Close() }

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Purge removes what a kernel fast path left on this host: its classic
// filters (on the devices its devs map names), its pins (the program
// detaches from every device once nothing holds its tcx links) and its
// devices, so that the userspace tunnel can have the VXLAN port. Nothing
// there is no error.
func Purge(host string, devs Devices) error {
	var errs []error
	if m, err := ebpf.LoadPinnedMap(filepath.Join(pinDir(host), "devs"), nil); err == nil {
		detachTCDevs(m)
		m.Close()
	}
	if err := os.RemoveAll(pinDir(host)); err != nil {
		errs = append(errs, err)
	}
	for _, name := range []string{devs.Tunnel, devs.Inject} {
		if l, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("fastpath: delete %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
