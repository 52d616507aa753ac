package netns

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Pinger sends ICMP echo requests from a raw socket of this process opened
// inside a namespace, and times the arrival of the matching replies to the
// microsecond, with no ping process in between (for the benchmarks).
type Pinger struct {
	fd       int
	dst      [4]byte
	id, seq  uint16
	sentLast time.Time
	// Interval between requests while waiting for a reply.
	Interval time.Duration
}

// NewPinger opens a pinger to dst inside namespace ns.
func NewPinger(ns, dst string) (*Pinger, error) {
	a, err := netip.ParseAddr(dst)
	if err != nil || !a.Is4() {
		return nil, errors.New("pinger: " + dst + " is not an IPv4 address")
	}
	p := &Pinger{dst: a.As4(), id: uint16(os.Getpid()), Interval: 2 * time.Millisecond}
	if err := InNamespace(ns, func() (err error) {
		p.fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	}); err != nil {
		return nil, err
	}
	// A receive waits at most 1 ms, so the stream keeps its pace.
	tv := unix.NsecToTimeval(int64(time.Millisecond))
	if err := unix.SetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(p.fd)
		return nil, err
	}
	return p, nil
}

// Close closes the socket.
func (p *Pinger) Close() { unix.Close(p.fd) }

// NewStream switches to a new echo identifier: a new flow for the agents
// and for connection tracking.
func (p *Pinger) NewStream() { p.id++; p.seq = 0 }

func (p *Pinger) send() error {
	var pkt [16]byte
	pkt[0] = 8 // echo request
	binary.BigEndian.PutUint16(pkt[4:], p.id)
	binary.BigEndian.PutUint16(pkt[6:], p.seq)
	binary.BigEndian.PutUint64(pkt[8:], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint16(pkt[2:], icmpChecksum(pkt[:]))
	p.seq++
	p.sentLast = time.Now()
	return unix.Sendto(p.fd, pkt[:], 0, &unix.SockaddrInet4{Addr: p.dst})
}

// FirstReply sends a request every Interval until a reply of the current
// stream arrives (its arrival time) or timeout passes.
func (p *Pinger) FirstReply(timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		if time.Since(p.sentLast) >= p.Interval {
			// Errors (no route yet, unreachable) are the state being
			// measured: keep sending.
			_ = p.send()
		}
		n, from, err := unix.Recvfrom(p.fd, buf, 0)
		now := time.Now()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return time.Time{}, false
		}
		sa, ok := from.(*unix.SockaddrInet4)
		if !ok || sa.Addr != p.dst || n < 20 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+8 {
			continue
		}
		if icmp := buf[ihl:n]; icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == p.id {
			return now, true
		}
	}
	return time.Time{}, false
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
