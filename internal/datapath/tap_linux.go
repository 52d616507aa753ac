package datapath

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TUNSETOFFLOAD flags (include/uapi/linux/if_tun.h); x/sys does not name them.
const (
	tunFCsum = 0x01
	tunFTSO4 = 0x02
	tunFTSO6 = 0x04
	tunFUSO4 = 0x20
	tunFUSO6 = 0x40
)

// TapConfig says which TAP to open.
type TapConfig struct {
	// Name of the device. If it exists (a hypervisor created it) this
	// attaches to it; otherwise the device is created and lives until the
	// last descriptor is closed.
	Name string
	// MultiQueue opens one queue of a multi-queue TAP; open the same name
	// again for more queues. It must match how an existing device was made.
	MultiQueue bool
}

// Tap is one queue of a TAP device opened with the virtio-net header and
// checksum/TSO/USO offloads, so the kernel hands whole 64 KB segments to
// the reader and accepts them from the writer.
type Tap struct {
	p    *pollFD
	name string
	// USO reports whether the kernel took the UDP segmentation offload
	// (TUN_F_USO4/6, Linux ≥ 6.2): without it UDP arrives pre-segmented.
	USO bool

	rdHdr [VnetHdrLen]byte
	rdIov [2]unix.Iovec
	wrHdr [VnetHdrLen]byte
	wrIov [2]unix.Iovec

	Stats PortStats
}

var _ Port = (*Tap)(nil)

// OpenTap creates or attaches to a TAP device. The device is left down;
// use SetLink to set its MTU and bring it up.
func OpenTap(cfg TapConfig) (*Tap, error) {
	if len(cfg.Name) == 0 || len(cfg.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("tap %q: invalid name", cfg.Name)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap %s: open /dev/net/tun: %w", cfg.Name, err)
	}
	ifr, err := unix.NewIfreq(cfg.Name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", cfg.Name, err)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if cfg.MultiQueue {
		flags |= unix.IFF_MULTI_QUEUE
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: TUNSETIFF: %w", cfg.Name, err)
	}
	// TUNSETVNETHDRSZ takes a pointer to an int; TUNSETOFFLOAD takes its
	// value directly (datapath-notes pitfall 1).
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VnetHdrLen); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: TUNSETVNETHDRSZ: %w", cfg.Name, err)
	}
	t := &Tap{name: ifr.Name()}
	base := tunFCsum | tunFTSO4 | tunFTSO6
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base|tunFUSO4|tunFUSO6); err == nil {
		t.USO = true
	} else if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, base); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: TUNSETOFFLOAD: %w", cfg.Name, err)
	}
	if t.p, err = newPollFD(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", cfg.Name, err)
	}
	t.rdIov[0] = unix.Iovec{Base: &t.rdHdr[0], Len: VnetHdrLen}
	t.wrIov[0] = unix.Iovec{Base: &t.wrHdr[0], Len: VnetHdrLen}
	return t, nil
}

// Name is the device name.
func (t *Tap) Name() string { return t.name }

// Close closes this queue (and removes a device this process created, once
// its last queue is closed). A blocked ReadBatch returns ErrClosed.
func (t *Tap) Close() error { return t.p.close() }

// ReadBatch reads frames the kernel sends out of the TAP (towards the VM
// side, which is us). It blocks for the first one, then takes whatever else
// is queued without blocking, up to len(pkts). Every buffer should be
// MaxFrame long: a frame longer than its buffer is dropped by the kernel
// (and counted here), never returned truncated.
func (t *Tap) ReadBatch(pkts []Packet) (int, error) {
	if !t.p.enter() {
		return 0, ErrClosed
	}
	defer t.p.exit()
	n := 0
	for n < len(pkts) {
		p := &pkts[n]
		if len(p.Buf) == 0 {
			return n, ErrShortBuf
		}
		t.rdIov[1] = unix.Iovec{Base: &p.Buf[0]}
		t.rdIov[1].SetLen(len(p.Buf))
		r, _, errno := unix.Syscall(unix.SYS_READV, uintptr(t.p.fd), uintptr(unsafe.Pointer(&t.rdIov[0])), 2)
		switch errno {
		case 0:
		case unix.EAGAIN:
			if n > 0 {
				return n, nil
			}
			if err := t.p.wait(false); err != nil {
				return 0, err
			}
			continue
		case unix.EINTR:
			continue
		case unix.EFAULT:
			// The frame did not fit the buffer; the kernel consumed it.
			t.Stats.RxDropped.Add(1)
			continue
		default:
			return n, errno
		}
		m := int(r) - VnetHdrLen
		if m < 0 {
			t.Stats.RxDropped.Add(1)
			continue
		}
		_ = p.Hdr.Decode(t.rdHdr[:])
		p.N = m
		n++
	}
	t.Stats.RxFrames.Add(uint64(n))
	return n, nil
}

// WriteBatch writes frames into the TAP (as if they came from the VM),
// each with its virtio-net header: a GSO super-frame goes in as one write
// and the receiving stack sees one large segment. Frames the kernel
// rejects as malformed are dropped and counted; an error means the device
// itself failed.
func (t *Tap) WriteBatch(pkts []Packet) (int, error) {
	if !t.p.enter() {
		return 0, ErrClosed
	}
	defer t.p.exit()
	for i := 0; i < len(pkts); {
		p := &pkts[i]
		if p.N <= 0 || p.N > len(p.Buf) {
			t.Stats.TxDropped.Add(1)
			i++
			continue
		}
		_ = p.Hdr.Encode(t.wrHdr[:])
		t.wrIov[1] = unix.Iovec{Base: &p.Buf[0]}
		t.wrIov[1].SetLen(p.N)
		_, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(t.p.fd), uintptr(unsafe.Pointer(&t.wrIov[0])), 2)
		switch errno {
		case 0:
			t.Stats.TxFrames.Add(1)
		case unix.EAGAIN:
			if err := t.p.wait(true); err != nil {
				return i, err
			}
			continue
		case unix.EINTR:
			continue
		case unix.EINVAL, unix.EFAULT, unix.EMSGSIZE:
			t.Stats.TxDropped.Add(1)
		case unix.EIO, unix.EBADFD:
			// The device is down or gone.
			t.Stats.TxDropped.Add(1)
			return i, errno
		default:
			return i, errno
		}
		i++
	}
	return len(pkts), nil
}
