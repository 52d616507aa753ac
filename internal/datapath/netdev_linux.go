package datapath

import (
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Netdev is a port attached to the host side of a network device with an
// AF_PACKET socket: a VM's TAP whose descriptor its hypervisor holds, the
// host end of a veth whose peer is in a container or a netns instance, or
// a gateway's uplink. Frames the device receives (what the VM, the
// namespace or the physical network sent) are read in batches with
// recvmmsg; frames written are transmitted out of the device (towards the
// VM) with sendmmsg. The agent never opens a TAP's own descriptor: that is
// the VM's side of the wire, and a hypervisor holds it exclusively.
//
// The socket carries the virtio-net header (PACKET_VNET_HDR), so TSO/GSO
// super-frames and partial checksums pass whole in both directions, as
// through a TAP opened with the offloads. Frames the host itself transmits
// on the device are not read back (PACKET_IGNORE_OUTGOING), and the device
// is put in promiscuous mode for the socket's life (a physical uplink must
// hand over frames for the edge's MAC, not only its own).
type Netdev struct {
	p       *pollFD
	name    string
	ifindex int
	Stats   PortStats

	rx batchIO
	tx batchIO
}

var _ Port = (*Netdev)(nil)

const netdevBatch = 64

type batchIO struct {
	msgs [netdevBatch]unix.Mmsghdr
	iov  [netdevBatch][2]unix.Iovec
	hdr  [netdevBatch][VnetHdrLen]byte
}

const packetIgnoreOutgoing = 23 // PACKET_IGNORE_OUTGOING, Linux ≥ 4.20

// ErrGone is returned by ReadBatch once the device has been deleted (a VM
// stopped, its TAP went): the socket can never carry frames again; open
// the device anew when it reappears.
var ErrGone = errors.New("datapath: device gone")

// ErrDown is returned by WriteBatch while the device is down (or gone).
var ErrDown = errors.New("datapath: device down")

// OpenNetdev binds a packet socket to the named device in the calling
// thread's network namespace. The device may be down: frames flow once it
// is up.
func OpenNetdev(name string) (*Netdev, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("netdev %s: %w", name, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("netdev %s: socket: %w", name, err)
	}
	fail := func(what string, err error) (*Netdev, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("netdev %s: %s: %w", name, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, packetIgnoreOutgoing, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	// 64 KB super-frames: a small buffer drops a burst of them.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	mr := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
		return fail("promiscuous mode", err)
	}
	d := &Netdev{name: name, ifindex: ifi.Index}
	if d.p, err = newPollFD(fd); err != nil {
		return fail("eventfd", err)
	}
	for _, b := range []*batchIO{&d.rx, &d.tx} {
		for k := range b.msgs {
			b.iov[k][0] = unix.Iovec{Base: &b.hdr[k][0], Len: VnetHdrLen}
		}
	}
	return d, nil
}

// downRecheck is how often a reader of a down device checks that it still
// exists.
var downRecheck = unix.NsecToTimespec(int64(200 * time.Millisecond))

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Name is the device's name.
func (d *Netdev) Name() string { return d.name }

// Ifindex is the device's interface index (what a TC program or a
// bpf_redirect names it by).
func (d *Netdev) Ifindex() int { return d.ifindex }

// Close closes the socket; a blocked ReadBatch returns ErrClosed.
func (d *Netdev) Close() error { return d.p.close() }

// exists reports whether the device the socket was bound to is still
// there: the kernel unbinds a packet socket from a deleted device for good
// (its bound index becomes -1). The socket answers in any namespace.
func (d *Netdev) exists() bool {
	sa, err := unix.Getsockname(d.p.fd)
	ll, ok := sa.(*unix.SockaddrLinklayer)
	return err == nil && ok && ll.Ifindex == d.ifindex
}

// ReadBatch receives up to len(pkts) (at most 64) frames with one
// recvmmsg, blocking until there is at least one. Truncated frames (a
// buffer shorter than the frame) are dropped and counted. While the device
// is down it waits; once the device is deleted it returns ErrGone.
func (d *Netdev) ReadBatch(pkts []Packet) (int, error) {
	if !d.p.enter() {
		return 0, ErrClosed
	}
	defer d.p.exit()
	b := &d.rx
	want := min(len(pkts), netdevBatch)
	for k := 0; k < want; k++ {
		if len(pkts[k].Buf) == 0 {
			return 0, ErrShortBuf
		}
		b.iov[k][1] = unix.Iovec{Base: &pkts[k].Buf[0]}
		b.iov[k][1].SetLen(len(pkts[k].Buf))
		b.msgs[k] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &b.iov[k][0]}}
		b.msgs[k].Hdr.SetIovlen(2)
	}
	down := false
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(d.p.fd), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(want), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			if !down {
				if err := d.p.wait(false); err != nil {
					return 0, err
				}
				continue
			}
			// A deleted device reports nothing more once it has gone
			// down: look again now and then while it is down.
			if !d.exists() {
				return 0, ErrGone
			}
			if err := d.p.waitFor(false, &downRecheck); err != nil {
				return 0, err
			}
			continue
		case unix.EINTR:
			continue
		case unix.ENETDOWN:
			// Reported once when the device goes down (or was down at bind)
			// or is deleted. Down: the kernel re-attaches the socket when it
			// comes up again. Deleted: never.
			if !d.exists() {
				return 0, ErrGone
			}
			down = true
			continue
		case unix.EINVAL:
			// A frame whose offload metadata has no virtio-net form; the
			// kernel dropped it.
			d.Stats.RxDropped.Add(1)
			continue
		default:
			return 0, fmt.Errorf("netdev %s: recvmmsg: %w", d.name, errno)
		}
		down = false
		n := 0
		for k := 0; k < int(r); k++ {
			m := int(b.msgs[k].Len) - VnetHdrLen
			if m < 0 || m > len(pkts[k].Buf) || b.msgs[k].Hdr.Flags&unix.MSG_TRUNC != 0 {
				d.Stats.RxDropped.Add(1)
				continue
			}
			// Compact: a dropped frame leaves no hole in pkts.
			if n != k {
				copy(pkts[n].Buf, pkts[k].Buf[:m])
			}
			_ = pkts[n].Hdr.Decode(b.hdr[k][:])
			pkts[n].N = m
			n++
		}
		if n == 0 {
			continue
		}
		d.Stats.RxFrames.Add(uint64(n))
		return n, nil
	}
}

// WriteBatch transmits frames out of the device with one sendmmsg per 64
// frames. A frame the kernel refuses is dropped and counted; an error
// means the device is down or gone.
func (d *Netdev) WriteBatch(pkts []Packet) (int, error) {
	if !d.p.enter() {
		return 0, ErrClosed
	}
	defer d.p.exit()
	b := &d.tx
	for done := 0; done < len(pkts); {
		cnt := min(len(pkts)-done, netdevBatch)
		for k := 0; k < cnt; k++ {
			p := &pkts[done+k]
			_ = p.Hdr.Encode(b.hdr[k][:])
			b.iov[k][1] = unix.Iovec{}
			if p.N > 0 && p.N <= len(p.Buf) {
				b.iov[k][1].Base = &p.Buf[0]
				b.iov[k][1].SetLen(p.N)
			}
			b.msgs[k] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &b.iov[k][0]}}
			b.msgs[k].Hdr.SetIovlen(2)
		}
		for sent := 0; sent < cnt; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(d.p.fd), uintptr(unsafe.Pointer(&b.msgs[sent])), uintptr(cnt-sent), 0, 0, 0)
			switch errno {
			case 0:
				sent += int(r)
				d.Stats.TxFrames.Add(uint64(r))
				continue
			case unix.EAGAIN, unix.ENOBUFS:
				if err := d.p.wait(true); err != nil {
					return done + sent, err
				}
				continue
			case unix.EINTR:
				continue
			case unix.EINVAL, unix.EMSGSIZE, unix.EFAULT:
			case unix.ENETDOWN, unix.ENXIO:
				d.Stats.TxDropped.Add(uint64(cnt - sent))
				return done + sent, ErrDown
			default:
				return done + sent, fmt.Errorf("netdev %s: sendmmsg: %w", d.name, errno)
			}
			d.Stats.TxDropped.Add(1)
			sent++
		}
		done += cnt
	}
	return len(pkts), nil
}

// Plug binds a Netdev to the existing device name and brings the device
// up: the agent's way to attach a port to the host side of its device.
// It binds before bringing the device up, so the first frame is seen.
func Plug(name string) (*Netdev, error) {
	d, err := OpenNetdev(name)
	if err != nil {
		return nil, err
	}
	if err := SetLink(0, name, LinkConfig{Up: true}); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}
