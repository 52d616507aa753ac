package flow

import (
	"fmt"

	"github.com/canopy-sdn/canopy/internal/packet"
)

// ActionKind is one of the fixed flow actions (DESIGN.md §5.8).
type ActionKind uint8

const (
	SetEthSrc  ActionKind = iota + 1 // MAC
	SetEthDst                        // MAC
	SetIPSrc                         // IP
	SetIPDst                         // IP
	SetSrcPort                       // Port (L4 port or ICMP echo id)
	SetDstPort                       // Port
	DecTTL                           // Port holds the amount (1 per router hop)
	Output                           // to the local port whose tunnel key is Key
	Tunnel                           // to host Host, VNI Key (the egress port's tunnel key)
	Drop
	Userspace // hand the packet to the agent (it cannot be expressed as a flow)
)

var kindNames = [...]string{"", "set_eth_src", "set_eth_dst", "set_ip_src", "set_ip_dst", "set_src_port", "set_dst_port", "dec_ttl", "output", "tunnel", "drop", "userspace"}

func (k ActionKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("action(%d)", k)
}

// Action is one flow action. Only the fields its Kind names are used.
type Action struct {
	Kind ActionKind
	MAC  [6]byte
	IP   uint32
	Port uint16
	Key  uint32 // tunnel key of the egress port (Output, Tunnel)
	Host string // host of the egress port (Tunnel)
}

func (a Action) String() string {
	switch a.Kind {
	case SetEthSrc, SetEthDst:
		return fmt.Sprintf("%s(%02x:%02x:%02x:%02x:%02x:%02x)", a.Kind, a.MAC[0], a.MAC[1], a.MAC[2], a.MAC[3], a.MAC[4], a.MAC[5])
	case SetIPSrc, SetIPDst:
		return fmt.Sprintf("%s(%s)", a.Kind, packet.AddrFrom(a.IP))
	case SetSrcPort, SetDstPort, DecTTL:
		return fmt.Sprintf("%s(%d)", a.Kind, a.Port)
	case Output:
		return fmt.Sprintf("output(key=%d)", a.Key)
	case Tunnel:
		return fmt.Sprintf("tunnel(host=%s,key=%d)", a.Host, a.Key)
	}
	return a.Kind.String()
}

// Apply executes acts on frame (decoded into p) in order, calling emit for
// every Output and Tunnel with the frame as it is at that point. emit must
// copy the frame if it keeps it. Apply is what a datapath does with a cached
// flow; tests use it to check a simulation result end to end.
func Apply(frame []byte, p *packet.Packet, acts []Action, emit func(a Action, frame []byte)) {
	for _, a := range acts {
		switch a.Kind {
		case SetEthSrc:
			packet.SetEthSrc(frame, p, a.MAC)
		case SetEthDst:
			packet.SetEthDst(frame, p, a.MAC)
		case SetIPSrc:
			packet.SetIPSrc(frame, p, a.IP)
		case SetIPDst:
			packet.SetIPDst(frame, p, a.IP)
		case SetSrcPort:
			packet.SetSrcPort(frame, p, a.Port)
		case SetDstPort:
			packet.SetDstPort(frame, p, a.Port)
		case DecTTL:
			packet.DecTTL(frame, p, uint8(a.Port))
		case Output, Tunnel:
			emit(a, frame)
		case Drop:
			return
		}
	}
}
