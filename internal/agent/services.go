package agent

import (
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/dhcp"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// Services answered at a VM's port before any flow lookup (DESIGN.md §5.6):
// everything sent to UDP port 67 (DHCP), ARP for the metadata address and everything sent to the
// metadata address. None of these frames is ever simulated into the virtual
// network or flooded; the answer goes back to the port the request came in
// on, so a VM configures and learns only about itself.

// MetadataIP is the EC2 instance metadata address.
var MetadataIP = netip.AddrFrom4([4]byte{169, 254, 169, 254})

var metadataIP32 = packet.U32(MetadataIP)

// portSvc is what the services need to know about one port bound here,
// computed with every snapshot from the topology.
type portSvc struct {
	dhcp dhcp.Port
	// gwMAC is the MAC of the router port behind the port's bridge (the
	// one holding the DHCP subnet's gateway, else the first one found): the
	// source of metadata replies and ARP answers for 169.254.169.254, which
	// the VM reaches through its default route.
	gwMAC topology.MAC
	// object is the VPC object the port realizes (an ENI id), from the
	// translator's label, else the port's name.
	object string
	// router: the port is a router's (an edge uplink), not a VM's: its
	// frames come from the physical network and no service is answered
	// there (UDP to port 67 from outside is an instance's business).
	router bool
	// dns is the VPC's resolver answered at this port (nil: none, the VPC
	// has DNS support off or another DHCP option set), dns32 its address.
	dns   *topology.ProvidedDNS
	dns32 uint32
}

// bridgeSvc is the part of the services' info that is the same for every
// port of a bridge: its DHCP subnets, the router port's MAC, the resolver.
type bridgeSvc struct {
	subnets []*topology.DHCPSubnet
	gwMAC   topology.MAC
	dns     *topology.ProvidedDNS
	dns32   uint32
}

// servicesOf computes the service info of a bound port. bridges (nil:
// none) keeps each bridge's part across the calls of one snapshot: the
// bridge's referrers are all its ports, so computing it per port made a
// snapshot's cost the bound ports times the ports of their bridges.
func servicesOf(r topology.Reader, p *topology.Port, overlayMTU int, bridges map[string]*bridgeSvc) *portSvc {
	s := &portSvc{dhcp: dhcp.Port{MAC: p.MAC, IPs: p.IPs, OverlayMTU: overlayMTU}, object: p.Labels[translate.LabelObject]}
	if s.object == "" {
		s.object = p.Name
	}
	if p.DeviceKind != topology.KindBridge {
		s.router = true
		return s
	}
	b := bridges[p.DeviceID]
	if b == nil {
		b = bridgeServices(r, p.DeviceID)
		if bridges != nil {
			bridges[p.DeviceID] = b
		}
	}
	s.dhcp.Subnets, s.gwMAC, s.dns, s.dns32 = b.subnets, b.gwMAC, b.dns, b.dns32
	s.dhcp.ServerMAC = s.gwMAC
	return s
}

// bridgeServices computes the services' info common to the ports of a
// bridge. The subnets slice is shared by those ports: read only.
func bridgeServices(r topology.Reader, bridgeID string) *bridgeSvc {
	b := &bridgeSvc{}
	var routerPorts []*topology.Port
	for _, ref := range r.Referrers(topology.KindBridge, bridgeID) {
		switch ref.Kind {
		case topology.KindDHCP:
			if d, ok := r.Get(topology.KindDHCP, ref.ID).(*topology.DHCPSubnet); ok {
				b.subnets = append(b.subnets, d)
			}
		case topology.KindPort:
			bp, ok := r.Get(topology.KindPort, ref.ID).(*topology.Port)
			if !ok || bp.DeviceID != bridgeID || bp.PeerID == "" {
				continue
			}
			if rp, ok := r.Get(topology.KindPort, bp.PeerID).(*topology.Port); ok && rp.DeviceKind == topology.KindRouter {
				routerPorts = append(routerPorts, rp)
			}
		}
	}
	// The server MAC is the router port owning a subnet's gateway (the
	// address the VM will ARP for); otherwise any router port on the bridge.
	for _, rp := range routerPorts {
		for _, d := range b.subnets {
			if !d.Disabled && d.Gateway.IsValid() && rp.Address.Addr() == d.Gateway {
				b.gwMAC = rp.MAC
				break
			}
		}
		if !b.gwMAC.IsZero() {
			break
		}
	}
	if b.gwMAC.IsZero() && len(routerPorts) > 0 {
		b.gwMAC = routerPorts[0].MAC
	}
	for _, d := range b.subnets {
		if d.DNS != nil && !d.Disabled && d.DNS.Address.Is4() {
			b.dns, b.dns32 = d.DNS, packet.U32(d.DNS.Address)
			break
		}
	}
	return b
}

// isService reports whether a decoded frame from a VM port (svc: the
// port's services, nil if not known yet) is for a service rather than the
// virtual network. It is on the hot path: a few compares, nothing else.
func isService(svc *portSvc, pkt *packet.Packet) bool {
	if svc != nil && svc.router {
		return false
	}
	if pkt.EtherType == packet.EtherTypeARP {
		return pkt.ARPTPA == metadataIP32 && pkt.Flags&packet.FlagARP != 0
	}
	return pkt.Flags&packet.FlagIPv4 != 0 && (pkt.Dst == metadataIP32 || toDHCPServer(pkt) || toDNS(svc, pkt))
}

// toDHCPServer reports UDP to port 67, whatever its destination address:
// in a VPC only the VPC answers DHCP, so all of it is the DHCP service's —
// including a first fragment or a VLAN-tagged frame, which a DHCP client
// never sends and the service drops (a forged first fragment must not reach
// anyone; later fragments carry no ports and the chains judge them).
func toDHCPServer(pkt *packet.Packet) bool {
	return pkt.Has(packet.FlagIPv4|packet.FlagL4) && pkt.Proto == packet.ProtoUDP && pkt.DstPort == dhcp.ServerPort
}

// serve answers a service frame from vp (isService said yes). It runs on
// the port's reader.
func (a *Agent) serve(v *view, vp *vport, frame []byte, hdr *datapath.VnetHdr, pkt *packet.Packet) {
	svc := v.svc[vp.id]
	switch {
	case pkt.EtherType == packet.EtherTypeARP:
		if pkt.ARPOp != packet.ARPRequest || svc == nil || svc.gwMAC.IsZero() {
			a.m.metadata.WithLabelValues("arp_ignored").Inc()
			return
		}
		vp.write(packet.BuildARP(packet.ARPReply, svc.gwMAC, metadataIP32, pkt.ARPSHA, pkt.ARPSPA), datapath.VnetHdr{})
		a.m.metadata.WithLabelValues("arp_answered").Inc()
	case pkt.Dst == metadataIP32:
		a.toMetadata(vp, svc, frame, hdr, pkt)
	case toDNS(svc, pkt):
		a.serveDNS(vp, svc, frame, pkt)
	default:
		if !dhcp.IsRequest(pkt) {
			a.m.dhcp.WithLabelValues("fragment_or_tagged").Inc()
			return
		}
		if svc == nil {
			a.m.dhcp.WithLabelValues("no_port").Inc()
			return
		}
		reply, verdict := dhcp.Respond(frame, pkt, &svc.dhcp)
		a.m.dhcp.WithLabelValues(verdict.String()).Inc()
		if reply != nil {
			vp.write(reply, datapath.VnetHdr{})
		}
	}
}

// overlayMTU is the largest MTU a VM may use so that its frames fit the
// underlay with the VXLAN overhead; 0 when the underlay MTU is unknown.
func (a *Agent) overlayMTU() int {
	if a.tunMTU <= 0 {
		return 0
	}
	return a.tunMTU - datapath.TunnelOverhead
}
