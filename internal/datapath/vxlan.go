package datapath

import (
	"encoding/binary"
	"errors"
)

// VXLAN (RFC 7348).
const (
	// VXLANHdrLen is the VXLAN header that precedes the inner Ethernet
	// frame in the UDP payload.
	VXLANHdrLen = 8
	// DefaultTunnelPort is Canopy's VXLAN UDP port. It is deliberately not
	// IANA's 4789: a host may run kernel VXLAN devices bound to 4789 (for
	// containers, say), and two receivers on one port would steal each
	// other's packets. 6677 is the port MidoNet used for its overlay.
	DefaultTunnelPort = 6677
	// MaxVNI is the largest 24-bit VXLAN network identifier.
	MaxVNI = 1<<24 - 1
	// TunnelOverhead is what VXLAN over IPv4 adds to an inner frame on
	// the underlay: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner
	// Ethernet (14). A VM MTU must be at most underlay MTU - this.
	TunnelOverhead = 20 + 8 + VXLANHdrLen + 14
	// TunnelOverhead6 is the same over an IPv6 underlay.
	TunnelOverhead6 = 40 + 8 + VXLANHdrLen + 14

	vxlanFlagVNI = 0x08
)

// ErrBadVXLAN is returned for a datagram that is not a valid VXLAN packet.
var ErrBadVXLAN = errors.New("datapath: bad VXLAN header")

// PutVXLAN writes a VXLAN header carrying vni into b[:8].
func PutVXLAN(b []byte, vni uint32) {
	_ = b[7]
	binary.BigEndian.PutUint32(b, vxlanFlagVNI<<24)
	binary.BigEndian.PutUint32(b[4:], vni<<8)
}

// ParseVXLAN checks the VXLAN header at the start of a UDP payload and
// returns its VNI and the inner frame. Reserved bits are ignored, as RFC
// 7348 asks of receivers; the I flag must be set and the inner frame must
// hold at least an Ethernet header.
func ParseVXLAN(b []byte) (vni uint32, inner []byte, err error) {
	if len(b) < VXLANHdrLen+ethHdrLen {
		return 0, nil, ErrBadVXLAN
	}
	if b[0]&vxlanFlagVNI == 0 {
		return 0, nil, ErrBadVXLAN
	}
	return binary.BigEndian.Uint32(b[4:]) >> 8, b[VXLANHdrLen:], nil
}
