package fastpath

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// Key is a flow's exact-match key as the kernel program computes it from a
// frame (the agent's flow key, packed; host byte order).
type Key = fastpathFlowKey

// Flow is a flow's entry in the kernel: its actions, and the hit time and
// counters the program keeps.
type Flow = fastpathFlowVal

// MaxActions is how many actions a kernel flow holds; a longer list (a
// flood to many ports) stays in userspace.
const MaxActions = len(Flow{}.Acts)

// Flags of a Flow, a port and an action (the C program's).
const (
	flowDrop   = 1
	portPeer   = 1
	actLastOut = 1
)

// Device kinds in the devs map.
const (
	devPort   = 0
	devTunnel = 1
	devInject = 2
)

// ErrNotExpressible is returned for a flow the kernel cannot execute; the
// agent keeps it in userspace only.
var ErrNotExpressible = errors.New("fastpath: flow not expressible in the kernel")

// Encode packs acts into a kernel flow. remote resolves a tunnel action's
// host to its IPv4 underlay address.
func Encode(acts []flow.Action, drop bool, remote func(host string) (netip.Addr, bool)) (Flow, error) {
	var f Flow
	if drop {
		f.Flags = flowDrop
		return f, nil
	}
	if len(acts) > MaxActions {
		return f, fmt.Errorf("%w: %d actions", ErrNotExpressible, len(acts))
	}
	last := -1
	for i, a := range acts {
		e := &f.Acts[i]
		e.Kind = uint8(a.Kind)
		switch a.Kind {
		case flow.SetEthSrc, flow.SetEthDst:
			e.Mac = a.MAC
		case flow.SetIPSrc, flow.SetIPDst:
			e.Ip = a.IP
		case flow.SetSrcPort, flow.SetDstPort, flow.DecTTL:
			e.Port = a.Port
		case flow.Output:
			e.Key = a.Key
			last = i
		case flow.Tunnel:
			addr, ok := remote(a.Host)
			if !ok || !addr.Is4() {
				return f, fmt.Errorf("%w: no IPv4 tunnel endpoint for host %q", ErrNotExpressible, a.Host)
			}
			b := addr.As4()
			e.Key = a.Key
			e.Remote = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			last = i
		case flow.Drop:
		default:
			return f, fmt.Errorf("%w: action %s", ErrNotExpressible, a.Kind)
		}
	}
	if last >= 0 {
		f.Acts[last].Flags = actLastOut
	}
	f.N_acts = uint32(len(acts))
	return f, nil
}

// sizeClasses are the boundaries of Key.Size (the agent's flow key has the
// same): a decision can differ only where a port's MTU falls.
var sizeClasses = [...]int{576, 1280, 1400, 1450, 1500, 9000}

// SizeClass is the length class of an IP packet of ipLen bytes.
func SizeClass(ipLen int) uint8 {
	for i, b := range sizeClasses {
		if ipLen <= b {
			return uint8(i)
		}
	}
	return uint8(len(sizeClasses))
}

// KeyFrom is the key the program computes for a frame decoded into p that
// arrived on the port with tunnel key in (ipLen: the IP length the
// decision saw, a segment's for a large send). ok is false for a frame the
// program never looks up (VLAN-tagged).
func KeyFrom(in uint32, p *packet.Packet, ipLen int) (k Key, ok bool) {
	if p.Flags&packet.FlagVLAN != 0 {
		return k, false
	}
	k = Key{InKey: in, Ethertype: p.EtherType, EthSrc: p.EthSrc, EthDst: p.EthDst,
		Src: p.Src, Dst: p.Dst, Proto: p.Proto, Ttl: p.TTL, Tos: p.TOS}
	if p.Flags&packet.FlagIPv4 != 0 {
		k.Size = SizeClass(ipLen)
	}
	if p.IsFragment() {
		k.Frag = 1
	}
	pk := packet.KeyOf(p, 0)
	k.Sport, k.Dport = pk.SrcPort, pk.DstPort
	if p.Proto == packet.ProtoICMP {
		k.IcmpType, k.IcmpCode = p.ICMPType, p.ICMPCode
	}
	return k, true
}
