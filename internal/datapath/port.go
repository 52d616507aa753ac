package datapath

import "errors"

// Packet is one frame and its offload metadata, in a caller-owned buffer.
// Reads fill Buf from the start and set N and Hdr; writes send Buf[:N] with
// Hdr. A zero Hdr is a plain frame with a complete checksum.
type Packet struct {
	Buf []byte
	N   int
	Hdr VnetHdr
}

// Frame is the frame's bytes.
func (p *Packet) Frame() []byte { return p.Buf[:p.N] }

// Port is a device frames come in and go out of: a Netdev (the host side
// of a TAP, a veth or an uplink), a TAP the agent owns, or datapathfake's
// in-memory port.
//
// ReadBatch blocks until at least one frame is available, fills up to
// len(pkts) of them and returns how many. A frame longer than its buffer is
// truncated by the kernel; callers size buffers with MaxFrame.
// WriteBatch sends pkts in order and returns how many were sent; the first
// failure stops it. Both return ErrClosed once Close has been called; Close
// wakes a blocked reader. One reader and one writer may run concurrently.
type Port interface {
	Name() string
	ReadBatch(pkts []Packet) (int, error)
	WriteBatch(pkts []Packet) (int, error)
	Close() error
}

// MaxFrame is a buffer size that holds any frame a Port returns: a 64 KB
// GSO super-frame plus its link-layer header.
const MaxFrame = 65535 + 14 + 4

// Errors returned per packet. They are sentinels so the hot path never
// allocates; wrap them with context only off the hot path.
var (
	ErrClosed     = errors.New("datapath: closed")
	ErrTruncated  = errors.New("datapath: truncated frame")
	ErrNotIP      = errors.New("datapath: not an IPv4/IPv6 frame")
	ErrBadGSO     = errors.New("datapath: inconsistent GSO metadata")
	ErrShortBuf   = errors.New("datapath: output buffer too small")
	ErrTooManySeg = errors.New("datapath: too many segments for the output")
)
