package datapath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TunnelConfig says where the tunnel socket listens.
type TunnelConfig struct {
	// Local is the underlay address to bind (its family is the tunnel's);
	// port 0 means DefaultTunnelPort.
	Local netip.AddrPort
	// NoGSO and NoGRO force the one-datagram-per-frame fallbacks, as on a
	// kernel without UDP_SEGMENT / UDP_GRO. For tests and comparisons.
	NoGSO, NoGRO bool
}

// TunnelPacket is one inner frame and its tunnel endpoint.
//
// On write, Addr is the remote host, VNI the key to carry and Frame/Hdr
// the inner frame as a TAP returned it: a GSO super-frame is split here
// into MSS-sized frames. On read, Addr is the sender, VNI the key it
// carried, Frame a view of one inner frame (valid until the next ReadBatch)
// and Hdr is zero: every frame arrives segmented with complete checksums.
type TunnelPacket struct {
	Addr  netip.AddrPort
	VNI   uint32
	Frame []byte
	Hdr   VnetHdr
}

// Tunnel is the VXLAN socket: one UDP socket per host carrying every
// tunnelled frame, sent with sendmmsg and UDP GSO and received with
// recvmmsg and UDP GRO where the kernel allows.
//
// Large segments: a TCP super-frame read from a TAP is split into
// MSS-sized inner frames with complete checksums (software GSO), each
// VXLAN-encapsulated, laid back to back and sent as one UDP GSO send of at
// most 64 segments and 65,507 bytes (pitfall 2: a 64 KB segment usually
// takes two). The kernel segments the UDP datagrams; the receiver gets
// them coalesced by GRO and ReadBatch splits them back into inner frames,
// which the agent writes to the destination TAP one by one, each with a
// complete checksum. Re-merging them into one GSO write (userspace GRO,
// worth ~2× on the receiving host per datapath-notes) is not built yet.
type Tunnel struct {
	p     *pollFD
	local netip.AddrPort
	v6    bool
	gso   atomic.Bool
	gro   bool

	Stats PortStats
	// RxCoalesced counts received messages that carried more than one
	// datagram (GRO at work).
	RxCoalesced atomic.Uint64

	tx tunnelTx
	rx tunnelRx
}

const (
	tunMsgs    = 64      // mmsghdrs per sendmmsg/recvmmsg
	tunMaxSegs = 512     // inner frames one super-frame may split into
	tunArena   = 1 << 19 // bytes of segmented frames per sendmmsg
	gsoMaxSegs = 64      // UDP_MAX_SEGMENTS
	gsoMaxLen  = 65507   // largest UDP payload of one send
	rxBufLen   = 65535 + 1
	rxMsgs     = 16
)

type tunnelTx struct {
	msgs  [tunMsgs]unix.Mmsghdr
	iov   [tunMsgs][2]unix.Iovec
	name  [tunMsgs]unix.RawSockaddrInet6
	ctl   [tunMsgs][24]byte // CmsgSpace(2): one UDP_SEGMENT
	vx    [tunMsgs][VXLANHdrLen]byte
	n     int
	arena []byte
	used  int
	out   [tunMaxSegs][]byte
	sizes [tunMaxSegs]int
}

type tunnelRx struct {
	msgs [rxMsgs]unix.Mmsghdr
	iov  [rxMsgs]unix.Iovec
	name [rxMsgs]unix.RawSockaddrInet6
	ctl  [rxMsgs][64]byte
	buf  [rxMsgs][]byte
	seg  [rxMsgs]int // GRO segment size of each message, 0 = one datagram
	cnt  int         // messages received by the last recvmmsg
	cur  int         // message being split
	off  int         // offset in it
}

// OpenTunnel binds the tunnel socket.
func OpenTunnel(cfg TunnelConfig) (*Tunnel, error) {
	local := cfg.Local
	if !local.Addr().IsValid() {
		return nil, fmt.Errorf("tunnel: no local address")
	}
	if local.Port() == 0 {
		local = netip.AddrPortFrom(local.Addr(), DefaultTunnelPort)
	}
	t := &Tunnel{local: local, v6: local.Addr().Is6() && !local.Addr().Is4In6()}
	family := unix.AF_INET
	if t.v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tunnel: socket: %w", err)
	}
	fail := func(what string, err error) (*Tunnel, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("tunnel %s: %s: %w", local, what, err)
	}
	// Big buffers: a GRO burst of a few 64 KB messages must not overflow.
	for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], 8<<20) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], 8<<20)
		}
	}
	var sa unix.Sockaddr
	if t.v6 {
		sa = &unix.SockaddrInet6{Port: int(local.Port()), Addr: local.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(local.Port()), Addr: local.Addr().Unmap().As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if !cfg.NoGSO {
		if _, err := unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT); err == nil {
			t.gso.Store(true)
		}
	}
	if !cfg.NoGRO {
		t.gro = unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	}
	if t.p, err = newPollFD(fd); err != nil {
		return fail("eventfd", err)
	}
	t.tx.arena = make([]byte, tunArena)
	for i := range t.rx.buf {
		t.rx.buf[i] = make([]byte, rxBufLen)
	}
	return t, nil
}

// Local is the bound address.
func (t *Tunnel) Local() netip.AddrPort { return t.local }

// GSO reports whether sends use UDP GSO; it turns off by itself if the
// kernel refuses a GSO send (EIO: the egress cannot checksum).
func (t *Tunnel) GSO() bool { return t.gso.Load() }

// GRO reports whether receives are GRO-coalesced.
func (t *Tunnel) GRO() bool { return t.gro }

// Close closes the socket; a blocked ReadBatch returns ErrClosed.
func (t *Tunnel) Close() error { return t.p.close() }

// WriteBatch encapsulates and sends pkts. Super-frames are segmented in
// software (see Tunnel); partial checksums of plain frames are finished in
// place in the caller's buffer. Packets that cannot be sent (bad VNI,
// address family, malformed GSO metadata, refused by the kernel) are
// dropped and counted in Stats.TxDropped; an error means the socket failed.
func (t *Tunnel) WriteBatch(pkts []TunnelPacket) (int, error) {
	if !t.p.enter() {
		return 0, ErrClosed
	}
	defer t.p.exit()
	tx := &t.tx
	tx.n, tx.used = 0, 0
	for i := range pkts {
		p := &pkts[i]
		if p.VNI > MaxVNI || p.Addr.Addr().Is6() != t.v6 || len(p.Frame) < ethHdrLen {
			t.Stats.TxDropped.Add(1)
			continue
		}
		if !p.Hdr.IsGSO() {
			if FinishChecksum(p.Frame, &p.Hdr) != nil {
				t.Stats.TxDropped.Add(1)
				continue
			}
			if tx.n == tunMsgs {
				if err := t.flush(); err != nil {
					return i, err
				}
			}
			k := tx.n
			PutVXLAN(tx.vx[k][:], p.VNI)
			tx.iov[k][0] = unix.Iovec{Base: &tx.vx[k][0], Len: VXLANHdrLen}
			tx.iov[k][1] = unix.Iovec{Base: &p.Frame[0]}
			tx.iov[k][1].SetLen(len(p.Frame))
			t.addMsg(p.Addr, 2, 0)
			continue
		}
		if err := t.writeGSO(p); err != nil {
			return i, err
		}
	}
	if err := t.flush(); err != nil {
		return len(pkts), err
	}
	return len(pkts), nil
}

// writeGSO segments one super-frame into the arena and queues it as UDP
// GSO sends (or one message per segment without GSO).
func (t *Tunnel) writeGSO(p *TunnelPacket) error {
	tx := &t.tx
	g, err := parseGSO(p.Frame, &p.Hdr)
	if err != nil {
		t.Stats.TxDropped.Add(1)
		return nil
	}
	pl := len(p.Frame) - g.hdrLen
	n := max(1, (pl+g.mss-1)/g.mss)
	stride := VXLANHdrLen + g.hdrLen + g.mss
	if n > tunMaxSegs || n*stride > len(tx.arena) {
		t.Stats.TxDropped.Add(1)
		return nil
	}
	if tx.used+n*stride > len(tx.arena) {
		if err := t.flush(); err != nil {
			return err
		}
		tx.used = 0
	}
	base := tx.arena[tx.used:]
	for j := 0; j < n; j++ {
		tx.out[j] = base[j*stride : (j+1)*stride]
	}
	if _, err := Segment(p.Frame, &p.Hdr, tx.out[:n], VXLANHdrLen, tx.sizes[:n]); err != nil {
		t.Stats.TxDropped.Add(1)
		return nil
	}
	for j := 0; j < n; j++ {
		PutVXLAN(tx.out[j], p.VNI)
	}
	total := (n-1)*stride + VXLANHdrLen + tx.sizes[n-1]
	tx.used += total
	per := 1
	if t.gso.Load() && stride <= gsoMaxLen {
		per = min(gsoMaxSegs, gsoMaxLen/stride)
	}
	for off := 0; off < total; off += per * stride {
		if tx.n == tunMsgs {
			// The arena stays: the segments not yet queued live in it.
			if err := t.flush(); err != nil {
				return err
			}
		}
		end := min(off+per*stride, total)
		k := tx.n
		tx.iov[k][0] = unix.Iovec{Base: &base[off]}
		tx.iov[k][0].SetLen(end - off)
		segSize := 0
		if end-off > stride {
			segSize = stride
		}
		t.addMsg(p.Addr, 1, segSize)
	}
	return nil
}

// addMsg fills mmsghdr tx.n (its iovecs already set) for addr, with a
// UDP_SEGMENT control message when segSize > 0.
func (t *Tunnel) addMsg(addr netip.AddrPort, niov int, segSize int) {
	tx := &t.tx
	k := tx.n
	m := &tx.msgs[k].Hdr
	*m = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&tx.name[k])), Iov: &tx.iov[k][0]}
	m.SetIovlen(niov)
	if t.v6 {
		sa := &tx.name[k]
		sa.Family = unix.AF_INET6
		sa.Addr = addr.Addr().As16()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], addr.Port())
		m.Namelen = unix.SizeofSockaddrInet6
	} else {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&tx.name[k]))
		sa.Family = unix.AF_INET
		sa.Addr = addr.Addr().Unmap().As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], addr.Port())
		m.Namelen = unix.SizeofSockaddrInet4
	}
	if segSize > 0 {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&tx.ctl[k][0]))
		c.Level = unix.IPPROTO_UDP
		c.Type = unix.UDP_SEGMENT
		c.SetLen(unix.CmsgLen(2))
		binary.NativeEndian.PutUint16(tx.ctl[k][unix.CmsgLen(0):], uint16(segSize))
		m.Control = &tx.ctl[k][0]
		m.SetControllen(unix.CmsgSpace(2))
	}
	tx.n++
}

// flush sends the queued messages. A message the kernel refuses is
// dropped and counted, and the rest are still sent.
func (t *Tunnel) flush() error {
	tx := &t.tx
	for sent := 0; sent < tx.n; {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(t.p.fd), uintptr(unsafe.Pointer(&tx.msgs[sent])), uintptr(tx.n-sent), 0, 0, 0)
		switch errno {
		case 0:
			sent += int(r)
			t.Stats.TxFrames.Add(uint64(r))
			continue
		case unix.EAGAIN:
			if err := t.p.wait(true); err != nil {
				return err
			}
			continue
		case unix.EINTR:
			continue
		case unix.EIO, unix.EINVAL, unix.EMSGSIZE:
			if tx.msgs[sent].Hdr.Controllen != 0 {
				// A GSO send the kernel refused: EIO when the egress cannot
				// checksum (then GSO is off from now on), EINVAL or EMSGSIZE when a
				// segment exceeds the path MTU. Send its datagrams one by
				// one instead, which the kernel may fragment: an overlay
				// frame is never silently lost to the MTU.
				if errno == unix.EIO {
					t.gso.Store(false)
				}
				if err := t.sendSplit(&tx.msgs[sent].Hdr); err != nil {
					return err
				}
				sent++
				continue
			}
		case unix.ECONNREFUSED, unix.ENETUNREACH, unix.EHOSTUNREACH, unix.ENOBUFS, unix.EPERM:
			// Pitfall 3: ICMP errors of earlier sends surface here; others
			// are per-destination. Drop this message, keep going.
		default:
			return fmt.Errorf("tunnel %s: sendmmsg: %w", t.local, errno)
		}
		t.Stats.TxDropped.Add(1)
		sent++
	}
	tx.n = 0
	return nil
}

// sendSplit sends the datagrams of a refused GSO message one at a time.
func (t *Tunnel) sendSplit(m *unix.Msghdr) error {
	seg := int(binary.NativeEndian.Uint16(unsafe.Slice(m.Control, unix.CmsgSpace(2))[unix.CmsgLen(0):]))
	base, total := m.Iov.Base, int(m.Iov.Len)
	one := *m
	one.Control, one.Controllen = nil, 0
	var iov unix.Iovec
	one.Iov = &iov
	one.SetIovlen(1)
	for off := 0; off < total; {
		l := min(seg, total-off)
		iov.Base = (*byte)(unsafe.Add(unsafe.Pointer(base), off))
		iov.SetLen(l)
		_, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(t.p.fd), uintptr(unsafe.Pointer(&one)), 0)
		switch errno {
		case 0:
			t.Stats.TxFrames.Add(1)
		case unix.EAGAIN:
			if err := t.p.wait(true); err != nil {
				return err
			}
			continue
		case unix.EINTR:
			continue
		default:
			t.Stats.TxDropped.Add(1)
		}
		off += l
	}
	return nil
}

// ReadBatch receives tunnelled frames: it blocks until there is at least
// one, splits GRO-coalesced messages into datagrams, checks their VXLAN
// headers (bad ones are dropped and counted) and fills up to len(pkts).
// Frames are views of the tunnel's buffers, valid until the next ReadBatch.
func (t *Tunnel) ReadBatch(pkts []TunnelPacket) (int, error) {
	if !t.p.enter() {
		return 0, ErrClosed
	}
	defer t.p.exit()
	rx := &t.rx
	n := 0
	for n < len(pkts) {
		if rx.cur >= rx.cnt {
			if n > 0 {
				break
			}
			if err := t.recv(); err != nil {
				return 0, err
			}
			continue
		}
		k := rx.cur
		total := int(rx.msgs[k].Len)
		seg := rx.seg[k]
		if seg <= 0 {
			seg = total
		}
		end := min(rx.off+seg, total)
		d := rx.buf[k][rx.off:end]
		if end >= total {
			rx.cur++
			rx.off = 0
		} else {
			rx.off = end
		}
		vni, inner, err := ParseVXLAN(d)
		if err != nil {
			t.Stats.RxDropped.Add(1)
			continue
		}
		pkts[n] = TunnelPacket{Addr: rx.addr(k, t.v6), VNI: vni, Frame: inner}
		n++
	}
	t.Stats.RxFrames.Add(uint64(n))
	return n, nil
}

func (rx *tunnelRx) addr(k int, v6 bool) netip.AddrPort {
	sa := &rx.name[k]
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if v6 {
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port)
	}
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
}

// recv fills the receive messages with one recvmmsg, waiting if none.
func (t *Tunnel) recv() error {
	rx := &t.rx
	for k := range rx.msgs {
		rx.iov[k] = unix.Iovec{Base: &rx.buf[k][0]}
		rx.iov[k].SetLen(len(rx.buf[k]))
		m := &rx.msgs[k].Hdr
		*m = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&rx.name[k])),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &rx.iov[k],
			Control: &rx.ctl[k][0],
		}
		m.SetIovlen(1)
		m.SetControllen(len(rx.ctl[k]))
		rx.msgs[k].Len = 0
	}
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(t.p.fd), uintptr(unsafe.Pointer(&rx.msgs[0])), rxMsgs, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			if err := t.p.wait(false); err != nil {
				return err
			}
			continue
		case unix.EINTR, unix.ECONNREFUSED:
			continue
		default:
			return fmt.Errorf("tunnel %s: recvmmsg: %w", t.local, errno)
		}
		rx.cnt, rx.cur, rx.off = int(r), 0, 0
		for k := 0; k < rx.cnt; k++ {
			m := &rx.msgs[k].Hdr
			rx.seg[k] = 0
			if m.Flags&unix.MSG_TRUNC != 0 {
				// Cannot happen with 64 KB buffers; never hand on a cut frame.
				rx.msgs[k].Len = 0
				t.Stats.RxDropped.Add(1)
				continue
			}
			rx.seg[k] = groSize(rx.ctl[k][:m.Controllen])
			if rx.seg[k] > 0 && int(rx.msgs[k].Len) > rx.seg[k] {
				t.RxCoalesced.Add(1)
			}
		}
		return nil
	}
}

// groSize finds the UDP_GRO control message (the segment size of a
// coalesced message) without allocating.
func groSize(b []byte) int {
	hl := unix.CmsgLen(0)
	for len(b) >= hl {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(c.Len)
		if l < hl || l > len(b) {
			return 0
		}
		if c.Level == unix.IPPROTO_UDP && c.Type == unix.UDP_GRO && l >= hl+2 {
			if l >= hl+4 {
				return int(binary.NativeEndian.Uint32(b[hl:]))
			}
			return int(binary.NativeEndian.Uint16(b[hl:]))
		}
		sp := unix.CmsgSpace(l - hl)
		if sp > len(b) {
			return 0
		}
		b = b[sp:]
	}
	return 0
}
