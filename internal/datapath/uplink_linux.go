package datapath

import (
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Uplink is an AF_PACKET socket bound to one interface of a gateway host:
// it sees every frame arriving on the interface and transmits frames out of
// it, batched with recvmmsg/sendmmsg. The socket carries the virtio-net
// header (PACKET_VNET_HDR) so GRO-merged frames arrive whole with their
// offload metadata, exactly like a TAP's, and GSO frames can be sent.
// Frames this host itself sends on the interface are not read back
// (PACKET_IGNORE_OUTGOING).
type Uplink struct {
	p     *pollFD
	name  string
	Stats PortStats

	rx batchIO
	tx batchIO
}

var _ Port = (*Uplink)(nil)

const uplinkBatch = 64

type batchIO struct {
	msgs [uplinkBatch]unix.Mmsghdr
	iov  [uplinkBatch][2]unix.Iovec
	hdr  [uplinkBatch][VnetHdrLen]byte
}

const packetIgnoreOutgoing = 23 // PACKET_IGNORE_OUTGOING, Linux ≥ 4.20

// OpenUplink binds a packet socket to the named interface (in the calling
// thread's network namespace).
func OpenUplink(name string) (*Uplink, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("uplink %s: %w", name, err)
	}
	proto := htons(unix.ETH_P_ALL)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
	if err != nil {
		return nil, fmt.Errorf("uplink %s: socket: %w", name, err)
	}
	fail := func(what string, err error) (*Uplink, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("uplink %s: %s: %w", name, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, packetIgnoreOutgoing, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	u := &Uplink{name: name}
	if u.p, err = newPollFD(fd); err != nil {
		return fail("eventfd", err)
	}
	for _, b := range []*batchIO{&u.rx, &u.tx} {
		for k := range b.msgs {
			b.iov[k][0] = unix.Iovec{Base: &b.hdr[k][0], Len: VnetHdrLen}
		}
	}
	return u, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Name is the interface name.
func (u *Uplink) Name() string { return u.name }

// Close closes the socket; a blocked ReadBatch returns ErrClosed.
func (u *Uplink) Close() error { return u.p.close() }

// ReadBatch receives up to len(pkts) (at most 64) frames with one
// recvmmsg, blocking until there is at least one. Truncated frames (a
// buffer shorter than the frame) are dropped and counted.
func (u *Uplink) ReadBatch(pkts []Packet) (int, error) {
	if !u.p.enter() {
		return 0, ErrClosed
	}
	defer u.p.exit()
	b := &u.rx
	want := min(len(pkts), uplinkBatch)
	for k := 0; k < want; k++ {
		if len(pkts[k].Buf) == 0 {
			return 0, ErrShortBuf
		}
		b.iov[k][1] = unix.Iovec{Base: &pkts[k].Buf[0]}
		b.iov[k][1].SetLen(len(pkts[k].Buf))
		b.msgs[k] = unix.Mmsghdr{Hdr: unix.Msghdr{Iov: &b.iov[k][0]}}
		b.msgs[k].Hdr.SetIovlen(2)
	}
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(u.p.fd), uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(want), unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			if err := u.p.wait(false); err != nil {
				return 0, err
			}
			continue
		case unix.EINTR:
			continue
		default:
			return 0, fmt.Errorf("uplink %s: recvmmsg: %w", u.name, errno)
		}
		n := 0
		for k := 0; k < int(r); k++ {
			m := int(b.msgs[k].Len) - VnetHdrLen
			if m < 0 || m > len(pkts[k].Buf) || b.msgs[k].Hdr.Flags&unix.MSG_TRUNC != 0 {
				u.Stats.RxDropped.Add(1)
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
		u.Stats.RxFrames.Add(uint64(n))
		return n, nil
	}
}

// WriteBatch transmits frames out of the interface with one sendmmsg per
// 64 frames. A frame the kernel refuses is dropped and counted.
func (u *Uplink) WriteBatch(pkts []Packet) (int, error) {
	if !u.p.enter() {
		return 0, ErrClosed
	}
	defer u.p.exit()
	b := &u.tx
	for done := 0; done < len(pkts); {
		cnt := min(len(pkts)-done, uplinkBatch)
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
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(u.p.fd), uintptr(unsafe.Pointer(&b.msgs[sent])), uintptr(cnt-sent), 0, 0, 0)
			switch errno {
			case 0:
				sent += int(r)
				u.Stats.TxFrames.Add(uint64(r))
				continue
			case unix.EAGAIN, unix.ENOBUFS:
				if err := u.p.wait(true); err != nil {
					return done + sent, err
				}
				continue
			case unix.EINTR:
				continue
			case unix.EINVAL, unix.EMSGSIZE, unix.EFAULT:
			case unix.ENETDOWN, unix.ENXIO:
				return done + sent, fmt.Errorf("uplink %s: %w", u.name, errno)
			default:
				return done + sent, fmt.Errorf("uplink %s: sendmmsg: %w", u.name, errno)
			}
			u.Stats.TxDropped.Add(1)
			sent++
		}
		done += cnt
	}
	return len(pkts), nil
}
