package gateway

import "github.com/canopy-sdn/canopy/internal/packet"

// Well-known ports of the speaker's protocols.
const (
	bgpPort        = 179
	bfdControlPort = 3784 // RFC 5881 single hop
	bfdEchoPort    = 3785
	bfdMultihop    = 4784 // RFC 5883
)

// Claim says where a frame that arrived on an uplink whose address is addr
// goes: to the speaker (its BGP and BFD traffic, and the ARP replies to its
// own requests), to the simulation (everything else), or both (an ARP
// reply: the edge router may learn it too). The speaker's traffic is never
// simulated: the edge router is not a TCP endpoint.
func Claim(p *packet.Packet, addr uint32) (speaker, simulate bool) {
	switch {
	case p.Flags&packet.FlagARP != 0:
		if p.ARPOp == packet.ARPReply && p.ARPTPA == addr {
			return true, true
		}
		return false, true
	case p.Flags&packet.FlagIPv4 == 0 || p.Dst != addr || p.Flags&packet.FlagL4 == 0:
		return false, true
	case p.Proto == packet.ProtoTCP && (p.DstPort == bgpPort || p.SrcPort == bgpPort):
		return true, false
	case p.Proto == packet.ProtoUDP && (p.DstPort == bfdControlPort || p.DstPort == bfdEchoPort || p.DstPort == bfdMultihop):
		return true, false
	}
	return false, true
}

// Relayed says whether a frame the speaker's stack sent goes out of the
// uplink: IPv4 and ARP only (not the IPv6 chatter a Linux interface makes).
func Relayed(p *packet.Packet) bool {
	return p.EtherType == packet.EtherTypeIPv4 || p.EtherType == packet.EtherTypeARP
}
