package datapath

import (
	"encoding/binary"
	"errors"
)

// VnetHdrLen is the size of the virtio-net header that precedes every frame
// on a TAP opened with IFF_VNET_HDR (struct virtio_net_hdr, no num_buffers).
const VnetHdrLen = 10

// Virtio-net header flags (include/uapi/linux/virtio_net.h).
const (
	// VnetFlagNeedsCsum: the L4 checksum is partial (pseudo-header only);
	// whoever emits the frame must finish it over [CsumStart:].
	VnetFlagNeedsCsum = 1
	// VnetFlagDataValid: the checksum has been verified (receive side).
	VnetFlagDataValid = 2
)

// GSO types of the virtio-net header.
const (
	GSONone  = 0
	GSOTCPv4 = 1
	GSOUDP   = 3 // UFO (IP fragmentation); never produced with our offload set
	GSOTCPv6 = 4
	GSOUDPL4 = 5 // USO: UDP segmentation, one datagram per segment
	GSOECN   = 0x80
)

// VnetHdr is the parsed virtio-net header. Legacy virtio (which TAP speaks
// unless TUNSETVNETLE/BE is used) is in host byte order.
type VnetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16 // length of the headers up to the L4 payload (a hint)
	GSOSize    uint16 // payload bytes per segment (the MSS for TCP)
	CsumStart  uint16 // offset of the L4 header
	CsumOffset uint16 // offset of the checksum field from CsumStart
}

// ErrShortVnetHdr is returned for a buffer shorter than the header.
var ErrShortVnetHdr = errors.New("datapath: short virtio-net header")

// Decode parses b[:VnetHdrLen].
func (h *VnetHdr) Decode(b []byte) error {
	if len(b) < VnetHdrLen {
		return ErrShortVnetHdr
	}
	h.Flags = b[0]
	h.GSOType = b[1]
	h.HdrLen = binary.NativeEndian.Uint16(b[2:])
	h.GSOSize = binary.NativeEndian.Uint16(b[4:])
	h.CsumStart = binary.NativeEndian.Uint16(b[6:])
	h.CsumOffset = binary.NativeEndian.Uint16(b[8:])
	return nil
}

// Encode writes the header into b[:VnetHdrLen].
func (h *VnetHdr) Encode(b []byte) error {
	if len(b) < VnetHdrLen {
		return ErrShortVnetHdr
	}
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
	return nil
}

// IsGSO reports whether the frame is a super-frame the receiver must
// segment (or hand on as GSO).
func (h *VnetHdr) IsGSO() bool { return h.GSOType&^GSOECN != GSONone }

// NeedsCsum reports whether the L4 checksum is partial.
func (h *VnetHdr) NeedsCsum() bool { return h.Flags&VnetFlagNeedsCsum != 0 }
