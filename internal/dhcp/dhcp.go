package dhcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// UDP ports of the protocol (RFC 2131 §4.1).
const (
	ServerPort = 67
	ClientPort = 68
)

// DefaultLeaseTime is the lease handed out when the subnet sets none; the
// same hour AWS's VPC DHCP servers use.
const DefaultLeaseTime = 3600 * time.Second

// minMTU is the smallest value option 26 may carry (RFC 2132 §5.1).
const minMTU = 68

// DefaultServerMAC is the source MAC of replies when the caller does not know
// the subnet router's MAC. It is locally administered, so it cannot collide
// with a real NIC; clients do not learn ARP entries from DHCP replies, so it
// is never used as a destination.
var DefaultServerMAC = topology.MAC{0x02, 0x00, 0x00, 0x00, 0x00, 0x67}

// Port is what the server knows about the port a request came in on. The
// agent fills it from its topology snapshot.
type Port struct {
	// MAC is the MAC of the VM behind the port. A request whose client
	// hardware address differs is not answered: a port configures only its
	// own VM. Zero accepts any client (static host entries still decide).
	MAC topology.MAC
	// IPs are the port's addresses; the first one inside a DHCP subnet is
	// handed out when no static host entry names the client's MAC.
	IPs []netip.Addr
	// Subnets are the DHCP subnets of the port's bridge.
	Subnets []*topology.DHCPSubnet
	// ServerMAC is the source MAC of replies: the MAC of the router port
	// that owns the subnet's gateway address. Zero means DefaultServerMAC.
	ServerMAC topology.MAC
	// OverlayMTU is the largest MTU the overlay carries for this port (the
	// underlay MTU minus the tunnel overhead); 0 = no limit. Option 26 is
	// min(subnet MTU, OverlayMTU).
	OverlayMTU int
}

// Verdict says what Respond did with a frame, for the caller's counters.
type Verdict uint8

const (
	NotDHCP       Verdict = iota // not a UDP datagram to port 67 (the caller should not have asked)
	Malformed                    // to port 67 but not a parseable DHCP request
	ForeignClient                // client hardware address is not the port's MAC
	NoConfig                     // no enabled DHCP subnet, address or server id for this client
	Offer                        // DISCOVER answered with an OFFER
	Ack                          // REQUEST or INFORM answered with an ACK
	Nak                          // REQUEST refused with a NAK
	Released                     // RELEASE: nothing to answer
	Declined                     // DECLINE: nothing to answer (the address is fixed by the VPC)
	Ignored                      // relayed, or a message type a server does not answer
)

var verdictNames = [...]string{"not_dhcp", "malformed", "foreign_client", "no_config", "offer", "ack", "nak", "released", "declined", "ignored"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// IsRequest reports whether a decoded frame is for the DHCP server: an
// unfragmented, untagged IPv4 UDP datagram to port 67. The agent intercepts
// these at a VM port before simulation.
func IsRequest(p *packet.Packet) bool {
	return p.Has(packet.FlagIPv4|packet.FlagL4) && p.Flags&(packet.FlagVLAN|packet.FlagFragment) == 0 &&
		p.Proto == packet.ProtoUDP && p.DstPort == ServerPort
}

// Respond answers the DHCP request in frame (decoded into p) received on
// port. It returns the reply frame to send back out of the same port, or nil
// with the reason in the verdict. A reply addressed to ff:ff:ff:ff:ff:ff (a
// NAK, or when the client set the broadcast flag) is still for that port
// only: it must not be flooded on the bridge. It never panics, whatever the
// frame.
func Respond(frame []byte, p *packet.Packet, port *Port) ([]byte, Verdict) {
	if !IsRequest(p) {
		return nil, NotDHCP
	}
	payload, ok := udpPayload(frame, p)
	if !ok {
		return nil, Malformed
	}
	req, err := dhcpv4.FromBytes(payload)
	if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest || req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return nil, Malformed
	}
	// A relay agent between the VM and its own port would be another VM
	// forwarding for a third party; the VPC configures only its own ports.
	if !ip4(req.GatewayIPAddr).IsUnspecified() {
		return nil, Ignored
	}
	chaddr := topology.MAC(req.ClientHWAddr)
	if !port.MAC.IsZero() && chaddr != port.MAC {
		return nil, ForeignClient
	}
	l, ok := port.lease(chaddr)
	if !ok {
		return nil, NoConfig
	}
	s := server{port: port, lease: l, req: req}

	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return s.reply(dhcpv4.MessageTypeOffer), Offer
	case dhcpv4.MessageTypeRequest:
		return s.request(p)
	case dhcpv4.MessageTypeInform:
		return s.inform(p)
	case dhcpv4.MessageTypeRelease:
		return nil, Released
	case dhcpv4.MessageTypeDecline:
		// RFC 2131 §4.3.3 wants the address marked unusable, but it is the
		// port's own address: there is no other one to offer. The counter
		// shows an operator that a VM sees an address conflict.
		return nil, Declined
	}
	return nil, Ignored
}

// lease is what a client is given: its address and the subnet it is in.
type lease struct {
	sub      *topology.DHCPSubnet
	addr     netip.Addr
	serverID netip.Addr
	hostname string
}

// lease finds the client's address: the static host entry for its MAC, else
// the port's first IPv4 address inside an enabled DHCP subnet.
func (pt *Port) lease(chaddr topology.MAC) (lease, bool) {
	var l lease
	for _, sub := range pt.Subnets {
		if sub == nil || sub.Disabled {
			continue
		}
		for i := range sub.Hosts {
			h := &sub.Hosts[i]
			if h.MAC == chaddr && h.IP.Is4() && sub.Subnet.Contains(h.IP) {
				l = lease{sub: sub, addr: h.IP, hostname: h.Name}
				break
			}
		}
		if l.sub != nil {
			break
		}
	}
	if l.sub == nil {
	ips:
		for _, ip := range pt.IPs {
			if !ip.Is4() {
				continue
			}
			for _, sub := range pt.Subnets {
				if sub != nil && !sub.Disabled && sub.Subnet.Contains(ip) {
					l = lease{sub: sub, addr: ip}
					break ips
				}
			}
		}
	}
	if l.sub == nil {
		return l, false
	}
	l.serverID = l.sub.ServerAddr
	if !l.serverID.Is4() {
		l.serverID = l.sub.Gateway
	}
	return l, l.serverID.Is4()
}

type server struct {
	port  *Port
	lease lease
	req   *dhcpv4.DHCPv4
}

// request handles the three kinds of REQUEST of RFC 2131 §4.3.2. The agent is
// the only DHCP server a port can reach (requests are never flooded), so it is
// authoritative: a REQUEST naming another server or another address is a
// stale one and gets a NAK, which sends the client back to DISCOVER at once
// instead of after its timeouts.
func (s *server) request(p *packet.Packet) ([]byte, Verdict) {
	sid := ip4(s.req.ServerIdentifier())
	requested := ip4(s.req.RequestedIPAddress())
	ciaddr := ip4(s.req.ClientIPAddr)
	// ciaddr must be zero except when renewing, but whatever the state, a
	// client claiming an address that is not its own is told so (and the
	// ACK, which goes to ciaddr, can only go to the client's address).
	if !ciaddr.IsUnspecified() && ciaddr != s.lease.addr {
		return s.nak("client address is not this client's"), Nak
	}
	switch {
	case sid.IsValid(): // SELECTING: answering our OFFER
		if sid != s.lease.serverID || requested != s.lease.addr {
			return s.nak("requested address or server is not this client's"), Nak
		}
	case requested.IsValid(): // INIT-REBOOT: checking a remembered address
		if requested != s.lease.addr {
			return s.nak("requested address is not this client's"), Nak
		}
	case !ciaddr.IsUnspecified(): // RENEWING / REBINDING, checked above
	default:
		return s.nak("request names no address"), Nak
	}
	return s.reply(dhcpv4.MessageTypeAck), Ack
}

// inform answers DHCPINFORM (RFC 2131 §4.3.5): configuration only, no
// address and no lease time, unicast to the client's address.
func (s *server) inform(p *packet.Packet) ([]byte, Verdict) {
	to := ip4(s.req.ClientIPAddr)
	if to.IsUnspecified() {
		to = packet.AddrFrom(p.Src)
	}
	// The answer goes to an address of this port only, so a VM cannot aim
	// it at another host by putting that host's address in ciaddr.
	if to != s.lease.addr && !slices.Contains(s.port.IPs, to) {
		return nil, Ignored
	}
	opts := s.options(dhcpv4.MessageTypeAck, false)
	r := s.base(opts)
	r.YourIPAddr = net.IPv4zero
	return s.frame(r, to, topology.MAC(s.req.ClientHWAddr)), Ack
}

// reply builds an OFFER or ACK carrying the lease.
func (s *server) reply(mt dhcpv4.MessageType) []byte {
	r := s.base(s.options(mt, true))
	r.YourIPAddr = s.lease.addr.AsSlice()
	dst, mac := s.destination(s.lease.addr)
	return s.frame(r, dst, mac)
}

func (s *server) nak(msg string) []byte {
	opts := dhcpv4.Options{}
	opts.Update(dhcpv4.OptMessageType(dhcpv4.MessageTypeNak))
	opts.Update(dhcpv4.OptServerIdentifier(s.lease.serverID.AsSlice()))
	opts.Update(dhcpv4.OptMessage(msg))
	s.copyClientID(opts)
	r := s.base(opts)
	r.ClientIPAddr = net.IPv4zero
	r.YourIPAddr = net.IPv4zero
	// RFC 2131 §4.1: with giaddr zero a NAK is always broadcast (the client
	// may no longer own ciaddr). It still only leaves through this port.
	return s.frame(r, netip.AddrFrom4([4]byte{255, 255, 255, 255}), topology.Broadcast)
}

func (s *server) base(opts dhcpv4.Options) *dhcpv4.DHCPv4 {
	return &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        s.req.HWType,
		TransactionID: s.req.TransactionID,
		Flags:         s.req.Flags,
		ClientIPAddr:  s.req.ClientIPAddr,
		YourIPAddr:    net.IPv4zero,
		ServerIPAddr:  net.IPv4zero,
		GatewayIPAddr: net.IPv4zero,
		ClientHWAddr:  s.req.ClientHWAddr,
		Options:       opts,
	}
}

// destination picks where a reply goes (RFC 2131 §4.1, giaddr being zero):
// to ciaddr when the client has its address, broadcast when it asked for it, else
// unicast to the address being offered at the client's MAC.
func (s *server) destination(yiaddr netip.Addr) (netip.Addr, topology.MAC) {
	chaddr := topology.MAC(s.req.ClientHWAddr)
	// ciaddr is trusted only when it is the client's own address, so a
	// VM cannot aim a reply at another host.
	if ci := ip4(s.req.ClientIPAddr); ci == s.lease.addr {
		return ci, chaddr
	}
	if s.req.IsBroadcast() {
		return netip.AddrFrom4([4]byte{255, 255, 255, 255}), topology.Broadcast
	}
	return yiaddr, chaddr
}

// options is the configuration handed to the client. withLease is false for
// INFORM, which must not carry lease times.
func (s *server) options(mt dhcpv4.MessageType, withLease bool) dhcpv4.Options {
	sub, l := s.lease.sub, s.lease
	opts := dhcpv4.Options{}
	opts.Update(dhcpv4.OptMessageType(mt))
	opts.Update(dhcpv4.OptServerIdentifier(l.serverID.AsSlice()))
	if withLease {
		lt := DefaultLeaseTime
		if sub.LeaseTime > 0 {
			lt = time.Duration(sub.LeaseTime) * time.Second
		}
		opts.Update(dhcpv4.OptIPAddressLeaseTime(lt))
		opts.Update(dhcpv4.OptRenewTimeValue(lt / 2))
		opts.Update(dhcpv4.OptRebindingTimeValue(lt * 7 / 8))
	}
	mask := net.CIDRMask(sub.Subnet.Bits(), 32)
	opts.Update(dhcpv4.OptSubnetMask(mask))
	opts.Update(dhcpv4.OptBroadcastAddress(broadcastOf(sub.Subnet).AsSlice()))
	gw := sub.Gateway
	if gw.Is4() {
		opts.Update(dhcpv4.OptRouter(gw.AsSlice()))
	}
	if ips := v4s(sub.DNSServers); len(ips) > 0 {
		opts.Update(dhcpv4.OptDNS(ips...))
	}
	if sub.DomainName != "" {
		opts.Update(dhcpv4.OptDomainName(sub.DomainName))
	}
	if ips := v4s(sub.NTPServers); len(ips) > 0 {
		opts.Update(dhcpv4.OptNTPServers(ips...))
	}
	if l.hostname != "" {
		opts.Update(dhcpv4.OptHostName(l.hostname))
	}
	if mtu := s.mtu(); mtu > 0 {
		opts.Update(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, binary.BigEndian.AppendUint16(nil, uint16(mtu))))
	}
	if routes := classlessRoutes(sub); len(routes) > 0 {
		opts.Update(dhcpv4.OptClasslessStaticRoute(routes...))
	}
	s.copyClientID(opts)
	return opts
}

// copyClientID echoes option 61 as RFC 6842 requires.
func (s *server) copyClientID(opts dhcpv4.Options) {
	if id := s.req.GetOneOption(dhcpv4.OptionClientIdentifier); len(id) > 0 {
		opts.Update(dhcpv4.OptClientIdentifier(id))
	}
}

// mtu is min(subnet MTU, overlay MTU), 0 when neither is known or the
// result is below what option 26 allows.
func (s *server) mtu() int {
	m := s.lease.sub.MTU
	if o := s.port.OverlayMTU; o > 0 && (m <= 0 || o < m) {
		m = o
	}
	if m < minMTU || m > 0xffff {
		return 0
	}
	return m
}

// classlessRoutes is option 121. A client that receives it ignores the
// router option (RFC 3442 §3), so the default route via the gateway is added
// to the list unless the configuration already has one.
func classlessRoutes(sub *topology.DHCPSubnet) []*dhcpv4.Route {
	if len(sub.Routes) == 0 {
		return nil
	}
	var out []*dhcpv4.Route
	hasDefault := false
	for _, r := range sub.Routes {
		if !r.Dest.Addr().Is4() {
			continue
		}
		d := r.Dest.Masked()
		hasDefault = hasDefault || d.Bits() == 0
		gw := net.IPv4zero // 0.0.0.0: the destination is on-link
		if r.Gateway.Is4() {
			gw = r.Gateway.AsSlice()
		}
		out = append(out, &dhcpv4.Route{
			Dest:   &net.IPNet{IP: d.Addr().AsSlice(), Mask: net.CIDRMask(d.Bits(), 32)},
			Router: gw,
		})
	}
	if !hasDefault && sub.Gateway.Is4() {
		out = append(out, &dhcpv4.Route{
			Dest:   &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
			Router: sub.Gateway.AsSlice(),
		})
	}
	return out
}

// frame wraps a reply in Ethernet/IPv4/UDP from the server to dst.
func (s *server) frame(r *dhcpv4.DHCPv4, dst netip.Addr, dstMAC topology.MAC) []byte {
	src := s.port.ServerMAC
	if src.IsZero() {
		src = DefaultServerMAC
	}
	return buildUDP(src, dstMAC, s.lease.serverID, dst, ServerPort, ClientPort, r.ToBytes())
}

// buildUDP builds an Ethernet/IPv4/UDP frame with both checksums set.
func buildUDP(srcMAC, dstMAC topology.MAC, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	return packet.BuildUDP(srcMAC, dstMAC, src, dst, sport, dport, payload)
}

func udpPayload(frame []byte, p *packet.Packet) ([]byte, bool) { return packet.UDPPayload(frame, p) }

// ip4 converts a dhcpv4 address field or option to netip; absent or
// malformed becomes the zero Addr, 0.0.0.0 stays 0.0.0.0.
func ip4(ip net.IP) netip.Addr {
	v4 := ip.To4()
	if v4 == nil {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(v4))
}

func v4s(in []netip.Addr) []net.IP {
	var out []net.IP
	for _, a := range in {
		if a.Is4() {
			out = append(out, a.AsSlice())
		}
	}
	return out
}

func broadcastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | uint32(0xffffffff)>>p.Bits()
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}
