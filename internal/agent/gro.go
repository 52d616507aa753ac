package agent

import (
	"bytes"
	"encoding/binary"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// merger re-merges consecutive TCP segments of one connection, tunnelled to
// one local port, into one GSO super-frame written to the TAP with a single
// write (userspace GRO): the sending agent had to split the VM's large
// segments for the underlay, and without this the receiving host pays one
// TAP write and one pass of the guest's TCP stack per 1.4 KB.
//
// Segments merge like the kernel's tcp_gro_receive would have them: IPv4
// without options, same addresses, ports, ack, window and options,
// contiguous sequence numbers, every segment but the last full-sized, only
// ACK (and PSH, which closes the merge) among the flags. Anything else is
// written as it came. It is owned by the tunnel reader goroutine.
type merger struct {
	buf     []byte
	n       int // bytes in buf
	vp      *vport
	hl      int // Ethernet + IP + TCP header length
	mss     int // payload of the first segment
	last    int // payload of the last segment added
	segs    int
	nextSeq uint32
	closed  bool // PSH seen: no more segments
}

const (
	ipOff      = packet.EthHeaderLen
	tcpOff     = ipOff + 20
	maxMerge   = 64
	tcpFlagSYN = 0x02
	tcpFlagRST = 0x04
	tcpFlagPSH = 0x08
	tcpFlagACK = 0x10
	tcpFlagURG = 0x20
	tcpFlagCWR = 0x80
	tcpFlagFIN = 0x01
)

func newMerger() *merger { return &merger{buf: make([]byte, datapath.MaxFrame)} }

// tcpLayout returns the header length and payload length of a plain IPv4
// TCP segment that may merge, or ok=false.
func tcpLayout(f []byte) (hl, payload int, ok bool) {
	if len(f) < tcpOff+20 || binary.BigEndian.Uint16(f[12:]) != packet.EtherTypeIPv4 ||
		f[ipOff] != 0x45 || f[ipOff+9] != packet.ProtoTCP || binary.BigEndian.Uint16(f[ipOff+6:])&0x3fff != 0 {
		return 0, 0, false
	}
	total := int(binary.BigEndian.Uint16(f[ipOff+2:]))
	doff := int(f[tcpOff+12]>>4) * 4
	hl = tcpOff + doff
	if doff < 20 || ipOff+total > len(f) || ipOff+total < hl {
		return 0, 0, false
	}
	if f[tcpOff+13]&(tcpFlagSYN|tcpFlagRST|tcpFlagURG|tcpFlagFIN) != 0 || f[tcpOff+13]&tcpFlagACK == 0 {
		return 0, 0, false
	}
	return hl, ipOff + total - hl, true
}

// add takes frame f for port vp. It reports false when f is not for a
// merge; the caller then flushes and writes f itself.
func (m *merger) add(vp *vport, f []byte) bool {
	hl, pl, ok := tcpLayout(f)
	if !ok || pl == 0 {
		return false
	}
	if m.segs > 0 && m.appendable(vp, f, hl, pl) {
		copy(m.buf[m.n:], f[hl:hl+pl])
		m.n += pl
		m.segs++
		m.last = pl
		m.nextSeq += uint32(pl)
		if f[tcpOff+13]&tcpFlagPSH != 0 {
			m.buf[tcpOff+13] |= tcpFlagPSH
			m.closed = true
		}
		return true
	}
	m.flush()
	m.n = copy(m.buf, f[:hl+pl])
	m.vp, m.hl, m.mss, m.last, m.segs = vp, hl, pl, pl, 1
	m.nextSeq = binary.BigEndian.Uint32(f[tcpOff+4:]) + uint32(pl)
	m.closed = f[tcpOff+13]&tcpFlagPSH != 0
	return true
}

func (m *merger) appendable(vp *vport, f []byte, hl, pl int) bool {
	b := m.buf
	return vp == m.vp && !m.closed && hl == m.hl && m.last == m.mss && pl <= m.mss && m.segs < maxMerge &&
		m.n+pl-ipOff <= 0xffff &&
		binary.BigEndian.Uint32(f[tcpOff+4:]) == m.nextSeq &&
		bytes.Equal(f[:ipOff+2], b[:ipOff+2]) && // Ethernet, version/IHL, TOS
		bytes.Equal(f[ipOff+8:ipOff+10], b[ipOff+8:ipOff+10]) && // TTL, protocol
		bytes.Equal(f[ipOff+12:tcpOff+4], b[ipOff+12:tcpOff+4]) && // addresses, ports
		bytes.Equal(f[tcpOff+8:tcpOff+13], b[tcpOff+8:tcpOff+13]) && // ack, data offset
		f[tcpOff+13]&^tcpFlagPSH == b[tcpOff+13]&^tcpFlagPSH &&
		bytes.Equal(f[tcpOff+14:tcpOff+16], b[tcpOff+14:tcpOff+16]) && // window
		bytes.Equal(f[tcpOff+20:hl], b[tcpOff+20:hl]) // options
}

// flush writes what is held: a single segment as it came, several as one
// super-frame with a partial checksum the kernel finishes.
func (m *merger) flush() {
	if m.segs == 0 {
		return
	}
	b := m.buf[:m.n]
	var hdr datapath.VnetHdr
	if m.segs > 1 {
		total := m.n - ipOff
		binary.BigEndian.PutUint16(b[ipOff+2:], uint16(total))
		b[ipOff+10], b[ipOff+11] = 0, 0
		binary.BigEndian.PutUint16(b[ipOff+10:], packet.Checksum(b[ipOff:tcpOff], 0))
		// NEEDS_CSUM: the field holds the pseudo-header sum, folded and not
		// complemented.
		var ps uint32
		for i := ipOff + 12; i < ipOff+20; i += 2 {
			ps += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		ps += packet.ProtoTCP + uint32(m.n-tcpOff)
		for ps > 0xffff {
			ps = ps>>16 + ps&0xffff
		}
		binary.BigEndian.PutUint16(b[tcpOff+16:], uint16(ps))
		hdr = datapath.VnetHdr{Flags: datapath.VnetFlagNeedsCsum, GSOType: datapath.GSOTCPv4, HdrLen: uint16(m.hl),
			GSOSize: uint16(m.mss), CsumStart: tcpOff, CsumOffset: 16}
	}
	m.vp.write(b, hdr)
	m.segs, m.vp = 0, nil
}
