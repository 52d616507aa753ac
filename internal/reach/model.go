package reach

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Outside is Delivery.To for a packet that leaves for the internet.
const Outside = "outside"

// GatewayMAC is Delivery.ARPSender when the subnet's router answered: its
// MAC is the implementation's choice, not an EC2 object's.
const GatewayMAC = "gateway"

// EtherTypes and protocols the model knows.
const (
	EtherIPv4 = 0x0800
	EtherARP  = 0x0806
	EtherIPv6 = 0x86dd

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	ARPRequest = 1
	ARPReply   = 2
)

// MAC is an Ethernet address.
type MAC [6]byte

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Multicast reports whether m is a group address (broadcast included).
func (m MAC) Multicast() bool { return m[0]&1 == 1 }

// ParseMAC reads an EC2 MAC address (six colon-separated hex bytes).
func ParseMAC(s string) (MAC, bool) {
	var m MAC
	f := strings.Split(s, ":")
	if len(f) != 6 {
		return m, false
	}
	for i, x := range f {
		b, err := strconv.ParseUint(x, 16, 8)
		if err != nil || len(x) != 2 {
			return m, false
		}
		m[i] = byte(b)
	}
	return m, true
}

// Packet is a frame an interface sends (From = its ENI id) or an IPv4
// packet arriving from the internet (From = "").
type Packet struct {
	From   string
	EthSrc MAC
	// EthDst is where the frame goes on the subnet; ToGateway says it is
	// the subnet router's MAC (which the model does not know).
	EthDst    MAC
	ToGateway bool
	VLAN      bool // an 802.1Q tag
	EtherType uint16
	ARP       ARP
	IP        IPv4
}

// ARP is an Ethernet/IPv4 ARP packet.
type ARP struct {
	Op                 uint16
	SenderMAC          MAC
	SenderIP, TargetIP netip.Addr
}

// IPv4 is the header fields the VPC looks at.
type IPv4 struct {
	Src, Dst           netip.Addr
	Proto              uint8
	SrcPort, DstPort   uint16 // TCP/UDP; for ICMP echo both are the id
	ICMPType, ICMPCode uint8
	MF                 bool
	FragOff            uint16 // in 8-byte units: non-zero = a later fragment
}

// Later reports whether p is a fragment after the first: it carries no
// transport header.
func (p *IPv4) Later() bool { return p.FragOff != 0 }

// echo reports whether p is an ICMP echo request or reply.
func (p *IPv4) echo() bool {
	return p.Proto == ProtoICMP && !p.Later() && (p.ICMPType == 0 || p.ICMPType == 8)
}

// ported reports whether p's ports (or echo id) identify its connection.
func (p *IPv4) ported() bool {
	return !p.Later() && (p.Proto == ProtoTCP || p.Proto == ProtoUDP) || p.echo()
}

// Delivery is one packet the VPC hands to an interface or to the internet.
type Delivery struct {
	To string // ENI id, or Outside
	// ARP deliveries: Op, ARPSender (a MAC, or GatewayMAC), Src = sender
	// address, Dst = target address. Answer: the VPC answered an ARP
	// request itself (the reply goes back to the sender).
	ARP       bool
	Op        uint16
	ARPSender string
	Answer    bool
	// IPv4 deliveries: the packet as it arrives, after any translation.
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	// AnySrcPort: a NAT gateway chose the source port (and for ICMP echo
	// the id); the caller tells the model which with Bind.
	AnySrcPort bool
	bind       func(port uint16)
}

// Bind tells the model the port a NAT gateway chose for this delivery
// (AnySrcPort), so it recognises the replies.
func (d *Delivery) Bind(port uint16) {
	if d.bind != nil {
		d.bind(port)
	}
}

func (d Delivery) String() string {
	if d.ARP {
		return fmt.Sprintf("%s: arp op %d %s (%s) → %s answer=%v", d.To, d.Op, d.Src, d.ARPSender, d.Dst, d.Answer)
	}
	sp := strconv.Itoa(int(d.SrcPort))
	if d.AnySrcPort {
		sp = "*"
	}
	return fmt.Sprintf("%s: proto %d %s:%s → %s:%d", d.To, d.Proto, d.Src, sp, d.Dst, d.DstPort)
}

// Cloud is what the model needs of the operator's configuration.
type Cloud struct {
	// PublicPools are the ranges elastic IPs come from: an address of
	// theirs that no elastic IP or NAT gateway holds goes nowhere.
	PublicPools []netip.Prefix
}

// tuple is a connection as one interface sees it.
type tuple struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
}

func (t tuple) reverse() tuple { return tuple{t.dst, t.src, t.dport, t.sport, t.proto} }

func tupleOf(p *IPv4) tuple {
	t := tuple{src: p.Src, dst: p.Dst, proto: p.Proto}
	if p.ported() {
		t.sport, t.dport = p.SrcPort, p.DstPort
	}
	return t
}

type connKey struct {
	eni string
	t   tuple
}

// natRev finds a NAT gateway's binding from a reply's view.
type natRev struct {
	nat        string
	proto      uint8
	remote     netip.Addr
	remotePort uint16
	publicPort uint16
}

// Model evaluates packets against one VPC state, remembering the
// connections security groups and NAT gateways track.
type Model struct {
	st    *vpc.State
	cloud Cloud

	conns  map[connKey]bool
	natFwd map[connKey]uint16 // (nat id, inside tuple) → public port
	natRev map[natRev]tuple

	// of the packet being evaluated
	out     []Delivery
	pending []connKey
}

// New returns a model of st. The caller must not change st afterwards.
func New(st *vpc.State, cloud Cloud) *Model {
	return &Model{st: st, cloud: cloud, conns: map[connKey]bool{}, natFwd: map[connKey]uint16{}, natRev: map[natRev]tuple{}}
}

// Send evaluates one packet and returns where it is delivered (nothing:
// dropped), remembering the connections it opens.
func (m *Model) Send(p Packet) []Delivery {
	m.out, m.pending = nil, nil
	if p.From == "" {
		if p.EtherType == EtherIPv4 && !p.VLAN {
			ip := p.IP
			m.edge(&ip)
		}
	} else if e := m.st.NetworkInterfaces[p.From]; e != nil {
		m.fromENI(e, &p)
	}
	delivered := slices.ContainsFunc(m.out, func(d Delivery) bool { return !d.Answer })
	if delivered {
		for _, k := range m.pending {
			m.conns[k] = true
		}
	}
	return m.out
}

func (m *Model) deliver(d Delivery) { m.out = append(m.out, d) }

func deliveryOf(to string, ip *IPv4) Delivery {
	d := Delivery{To: to, Src: ip.Src, Dst: ip.Dst, Proto: ip.Proto}
	if ip.ported() {
		d.SrcPort, d.DstPort = ip.SrcPort, ip.DstPort
	}
	return d
}

// isReturn reports whether p answers a connection interface eni tracks,
// and otherwise notes p's connection for eni, kept if p is delivered.
func (m *Model) isReturn(eni string, p *IPv4) bool {
	t := tupleOf(p)
	if m.conns[connKey{eni, t.reverse()}] {
		return true
	}
	m.pending = append(m.pending, connKey{eni, t})
	return false
}

// Interfaces.

func macOf(e *vpc.NetworkInterface) MAC {
	mac, _ := ParseMAC(e.MacAddress)
	return mac
}

func hasIP(e *vpc.NetworkInterface, a netip.Addr) bool {
	return slices.ContainsFunc(e.PrivateIPs, func(p vpc.PrivateIP) bool { return p.Address == a })
}

// running reports whether an instance is behind the interface: only then
// does anything reach it.
func (m *Model) running(e *vpc.NetworkInterface) bool {
	if e.InterfaceType == vpc.InterfaceTypeNatGateway || e.Attachment == nil {
		return false
	}
	i := m.st.Instances[e.Attachment.InstanceID]
	return i != nil && i.Placed()
}

// natOfENI returns the active NAT gateway an interface belongs to.
func (m *Model) natOfENI(e *vpc.NetworkInterface) *vpc.NatGateway {
	if e.InterfaceType != vpc.InterfaceTypeNatGateway {
		return nil
	}
	for _, n := range m.st.NatGatewaysOf(e.VpcID) {
		if n.NetworkInterfaceID == e.ID && natActive(n) {
			return n
		}
	}
	return nil
}

func natActive(n *vpc.NatGateway) bool {
	return n.State == vpc.StateAvailable || n.State == vpc.StatePending
}

// fromENI handles a frame interface e sends.
func (m *Model) fromENI(e *vpc.NetworkInterface, p *Packet) {
	sub := m.st.Subnets[e.SubnetID]
	if sub == nil || e.InterfaceType == vpc.InterfaceTypeNatGateway || p.EthSrc != macOf(e) || p.VLAN {
		return
	}
	switch p.EtherType {
	case EtherARP:
		m.arpFrom(e, sub, p)
	case EtherIPv4:
		m.ipFrom(e, sub, p)
	}
}

// holder is who answers for an address on a subnet: an interface, a NAT
// gateway or the subnet's router.
type holder struct {
	eni     *vpc.NetworkInterface // an instance's or a NAT gateway's
	nat     *vpc.NatGateway
	gateway bool
}

func (h holder) mac() string {
	if h.gateway {
		return GatewayMAC
	}
	return macOf(h.eni).String()
}

// holderOf returns who holds address a in subnet sub.
func (m *Model) holderOf(sub *vpc.Subnet, a netip.Addr) (holder, bool) {
	if gw, ok := sub.Gateway(); ok && a == gw {
		return holder{gateway: true}, true
	}
	for _, e := range m.st.InterfacesInSubnet(sub.ID) {
		if e.InterfaceType == vpc.InterfaceTypeNatGateway {
			if n := m.natOfENI(e); n != nil && n.PrivateIP == a {
				return holder{eni: e, nat: n}, true
			}
			continue
		}
		if hasIP(e, a) {
			return holder{eni: e}, true
		}
	}
	return holder{}, false
}

// holderByMAC returns who on subnet sub has MAC mac.
func (m *Model) holderByMAC(sub *vpc.Subnet, mac MAC) (holder, bool) {
	for _, e := range m.st.InterfacesInSubnet(sub.ID) {
		if macOf(e) != mac {
			continue
		}
		if e.InterfaceType == vpc.InterfaceTypeNatGateway {
			if n := m.natOfENI(e); n != nil {
				return holder{eni: e, nat: n}, true
			}
			continue
		}
		return holder{eni: e}, true
	}
	return holder{}, false
}

// arpFrom: ARP must name the interface itself as sender. Requests for an
// address of the subnet are answered by the VPC; an instance receives
// only ARP addressed to its MAC and for one of its addresses.
func (m *Model) arpFrom(e *vpc.NetworkInterface, sub *vpc.Subnet, p *Packet) {
	a := p.ARP
	own := macOf(e)
	if a.SenderMAC != own || !hasIP(e, a.SenderIP) {
		return
	}
	answer := func(h holder) {
		m.deliver(Delivery{To: e.ID, ARP: true, Op: ARPReply, ARPSender: h.mac(), Src: a.TargetIP, Dst: a.SenderIP, Answer: true})
	}
	// Routers (the subnet's, a NAT gateway's) answer requests for their
	// own address that reach them: addressed to them, or to nobody in
	// particular.
	routerAnswers := func() {
		if h, ok := m.holderOf(sub, a.TargetIP); ok && a.Op == ARPRequest && (h.gateway || h.nat != nil) {
			answer(h)
		}
	}
	switch {
	case p.EthDst.Multicast():
		if a.Op != ARPRequest {
			return
		}
		if h, ok := m.holderOf(sub, a.TargetIP); ok && h.mac() != own.String() {
			answer(h)
		}
	case p.ToGateway:
		if gw, ok := sub.Gateway(); ok && a.Op == ARPRequest && a.TargetIP == gw {
			answer(holder{gateway: true})
		}
	case p.EthDst == own:
	default:
		h, ok := m.holderByMAC(sub, p.EthDst)
		switch {
		case !ok:
			routerAnswers()
		case h.nat != nil:
			if a.Op == ARPRequest && a.TargetIP == h.nat.PrivateIP {
				answer(h)
			}
		case m.running(h.eni) && hasIP(h.eni, a.TargetIP):
			m.deliver(Delivery{To: h.eni.ID, ARP: true, Op: a.Op, ARPSender: a.SenderMAC.String(), Src: a.SenderIP, Dst: a.TargetIP})
		}
	}
}

// ipFrom: anti-spoofing, no rogue DHCP, the interface's egress rules, then
// the subnet.
func (m *Model) ipFrom(e *vpc.NetworkInterface, sub *vpc.Subnet, p *Packet) {
	ip := p.IP
	if ip.Proto == ProtoUDP && !ip.Later() && (ip.SrcPort == 67 || ip.DstPort == 67) {
		return // DHCP: the VPC's service takes every request, and is the only server
	}
	if e.SourceDestCheck && !hasIP(e, ip.Src) {
		return
	}
	if !m.isReturn(e.ID, &ip) && !m.sgAllows(e, true, &ip) {
		return
	}
	v := m.st.Vpcs[e.VpcID]
	switch {
	case p.EthDst.Multicast():
		// Neither broadcast nor multicast: nobody receives it.
	case p.ToGateway:
		m.fromSubnet(v, sub, &ip)
	case p.EthDst == macOf(e):
	default:
		h, ok := m.holderByMAC(sub, p.EthDst)
		switch {
		case !ok:
		case h.nat != nil:
			m.natOut(v, h.nat, &ip)
		default:
			m.toENI(h.eni, &ip)
		}
	}
}

// toENI is a packet arriving at interface e: destination check, then the
// interface's ingress rules.
func (m *Model) toENI(e *vpc.NetworkInterface, ip *IPv4) {
	if !m.running(e) {
		return
	}
	if e.SourceDestCheck && !hasIP(e, ip.Dst) {
		return
	}
	if !m.isReturn(e.ID, ip) && !m.sgAllows(e, false, ip) {
		return
	}
	m.deliver(deliveryOf(e.ID, ip))
}
