package dhcp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

var (
	vmMAC     = topology.MAC{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01}
	otherMAC  = topology.MAC{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02}
	routerMAC = topology.MAC{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}
	vmIP      = netip.MustParseAddr("10.0.1.10")
	hostIP    = netip.MustParseAddr("10.0.1.50")
	gwIP      = netip.MustParseAddr("10.0.1.1")
	bcastIP   = netip.MustParseAddr("255.255.255.255")
	zeroIP    = netip.MustParseAddr("0.0.0.0")
)

func testSubnet() *topology.DHCPSubnet {
	return &topology.DHCPSubnet{
		Subnet:     netip.MustParsePrefix("10.0.1.0/24"),
		Gateway:    gwIP,
		DNSServers: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")},
		DomainName: "ec2.internal",
		NTPServers: []netip.Addr{netip.MustParseAddr("169.254.169.123")},
		MTU:        9001,
		Routes: []topology.DHCPRoute{
			{Dest: netip.MustParsePrefix("169.254.169.254/32"), Gateway: gwIP},
			{Dest: netip.MustParsePrefix("192.168.7.0/24"), Gateway: netip.MustParseAddr("10.0.1.5")},
		},
	}
}

func testPort() *Port {
	return &Port{
		MAC:        vmMAC,
		IPs:        []netip.Addr{netip.MustParseAddr("fd00::1"), vmIP},
		Subnets:    []*topology.DHCPSubnet{testSubnet()},
		ServerMAC:  routerMAC,
		OverlayMTU: 1450,
	}
}

// requestFrame wraps a client message the way a DHCP client sends it: from
// src (0.0.0.0 before it has an address) to dst, UDP 68 → 67.
func requestFrame(m *dhcpv4.DHCPv4, src, dst netip.Addr) []byte {
	dstMAC := topology.Broadcast
	if dst != bcastIP {
		dstMAC = routerMAC
	}
	return buildUDP(topology.MAC(m.ClientHWAddr), dstMAC, src, dst, ClientPort, ServerPort, m.ToBytes())
}

func newMsg(t *testing.T, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(net.HardwareAddr(vmMAC[:])),
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type reply struct {
	frame []byte
	pkt   packet.Packet
	msg   *dhcpv4.DHCPv4
}

func respond(t *testing.T, frame []byte, port *Port) (*reply, Verdict) {
	t.Helper()
	var p packet.Packet
	p.Decode(frame)
	out, v := Respond(frame, &p, port)
	if out == nil {
		return nil, v
	}
	r := &reply{frame: out}
	r.pkt.Decode(out)
	if !r.pkt.Has(packet.FlagIPv4|packet.FlagL4) || r.pkt.Proto != packet.ProtoUDP {
		t.Fatalf("reply is not IPv4/UDP: %s", r.pkt.String())
	}
	if !packet.VerifyIPv4(out, &r.pkt) {
		t.Fatalf("reply has bad checksums")
	}
	if r.pkt.SrcPort != ServerPort || r.pkt.DstPort != ClientPort {
		t.Fatalf("reply ports %d→%d, want 67→68", r.pkt.SrcPort, r.pkt.DstPort)
	}
	msg, err := dhcpv4.FromBytes(out[r.pkt.L4Off+8:])
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if msg.OpCode != dhcpv4.OpcodeBootReply || msg.TransactionID != (dhcpv4.TransactionID{1, 2, 3, 4}) {
		t.Fatalf("reply op %v xid %v", msg.OpCode, msg.TransactionID)
	}
	r.msg = msg
	return r, v
}

// to asserts the reply's L2/L3 destination.
func (r *reply) to(t *testing.T, ip netip.Addr, mac topology.MAC) {
	t.Helper()
	if got := r.pkt.DstAddr(); got != ip {
		t.Errorf("reply to IP %v, want %v", got, ip)
	}
	if r.pkt.EthDst != mac {
		t.Errorf("reply to MAC %v, want %v", topology.MAC(r.pkt.EthDst), mac)
	}
}

// leaseOpts asserts the whole configuration of an OFFER/ACK for testPort.
func (r *reply) leaseOpts(t *testing.T, addr netip.Addr) {
	t.Helper()
	m := r.msg
	if got := ip4(m.YourIPAddr); got != addr {
		t.Errorf("yiaddr %v, want %v", got, addr)
	}
	if got := ip4(m.ServerIdentifier()); got != gwIP {
		t.Errorf("server id %v, want %v", got, gwIP)
	}
	if r.pkt.SrcAddr() != gwIP || r.pkt.EthSrc != routerMAC {
		t.Errorf("reply from %v/%v, want %v/%v", r.pkt.SrcAddr(), topology.MAC(r.pkt.EthSrc), gwIP, routerMAC)
	}
	if got := net.IP(m.SubnetMask()).String(); got != "255.255.255.0" {
		t.Errorf("mask %s", got)
	}
	if got := ip4(m.BroadcastAddress()); got != netip.MustParseAddr("10.0.1.255") {
		t.Errorf("broadcast %v", got)
	}
	if got := m.Router(); len(got) != 1 || ip4(got[0]) != gwIP {
		t.Errorf("router %v", got)
	}
	if got := m.DNS(); len(got) != 2 || got[0].String() != "10.0.0.2" || got[1].String() != "10.0.0.3" {
		t.Errorf("dns %v", got)
	}
	if got := m.DomainName(); got != "ec2.internal" {
		t.Errorf("domain %q", got)
	}
	if got := m.NTPServers(); len(got) != 1 || got[0].String() != "169.254.169.123" {
		t.Errorf("ntp %v", got)
	}
	if got := binary.BigEndian.Uint16(m.GetOneOption(dhcpv4.OptionInterfaceMTU)); got != 1450 {
		t.Errorf("mtu %d, want min(9001, 1450)", got)
	}
	if got, want := routeStrings(m), []string{"169.254.169.254/32 via 10.0.1.1", "192.168.7.0/24 via 10.0.1.5", "0.0.0.0/0 via 10.0.1.1"}; !slices.Equal(got, want) {
		t.Errorf("option 121 %v, want %v", got, want)
	}
	if lt := m.IPAddressLeaseTime(0); lt != time.Hour {
		t.Errorf("lease %v", lt)
	}
	if t1, t2 := m.IPAddressRenewalTime(0), m.IPAddressRebindingTime(0); t1 != 30*time.Minute || t2 != 52*time.Minute+30*time.Second {
		t.Errorf("T1 %v T2 %v", t1, t2)
	}
}

func routeStrings(m *dhcpv4.DHCPv4) []string {
	var out []string
	for _, r := range m.ClasslessStaticRoute() {
		out = append(out, r.Dest.String()+" via "+r.Router.String())
	}
	return out
}

func TestRespond(t *testing.T) {
	reqIP := func(a netip.Addr) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(a.AsSlice()))
	}
	sid := func(a netip.Addr) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(a.AsSlice())) }
	ciaddr := func(a netip.Addr) dhcpv4.Modifier { return dhcpv4.WithClientIP(a.AsSlice()) }

	tests := []struct {
		name  string
		msg   func(t *testing.T) *dhcpv4.DHCPv4
		src   netip.Addr // IP source; default 0.0.0.0
		dst   netip.Addr // IP destination; default broadcast
		port  func(p *Port)
		want  Verdict
		check func(t *testing.T, r *reply)
	}{
		{
			name: "discover gets an offer unicast to the offered address",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeDiscover) },
			want: Offer,
			check: func(t *testing.T, r *reply) {
				r.to(t, vmIP, vmMAC)
				r.leaseOpts(t, vmIP)
				if r.msg.MessageType() != dhcpv4.MessageTypeOffer {
					t.Errorf("type %v", r.msg.MessageType())
				}
			},
		},
		{
			name: "broadcast flag honoured",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeDiscover, dhcpv4.WithBroadcast(true))
			},
			want: Offer,
			check: func(t *testing.T, r *reply) {
				r.to(t, bcastIP, topology.Broadcast)
				if !r.msg.IsBroadcast() {
					t.Error("broadcast flag not copied")
				}
			},
		},
		{
			name: "static host entry wins over the port IP and names the host",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeDiscover) },
			port: func(p *Port) {
				p.Subnets[0].Hosts = []topology.DHCPHost{{MAC: otherMAC, IP: netip.MustParseAddr("10.0.1.99")}, {MAC: vmMAC, IP: hostIP, Name: "web-1"}}
			},
			want: Offer,
			check: func(t *testing.T, r *reply) {
				r.leaseOpts(t, hostIP)
				if r.msg.HostName() != "web-1" {
					t.Errorf("hostname %q", r.msg.HostName())
				}
			},
		},
		{
			name: "selecting request acked",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeRequest, reqIP(vmIP), sid(gwIP))
			},
			want: Ack,
			check: func(t *testing.T, r *reply) {
				r.to(t, vmIP, vmMAC)
				r.leaseOpts(t, vmIP)
				if r.msg.MessageType() != dhcpv4.MessageTypeAck {
					t.Errorf("type %v", r.msg.MessageType())
				}
			},
		},
		{
			name: "selecting request for a wrong address gets a broadcast nak",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeRequest, reqIP(netip.MustParseAddr("10.0.1.11")), sid(gwIP))
			},
			want: Nak,
			check: func(t *testing.T, r *reply) {
				r.to(t, bcastIP, topology.Broadcast)
				if r.msg.MessageType() != dhcpv4.MessageTypeNak || ip4(r.msg.YourIPAddr) != zeroIP || ip4(r.msg.ServerIdentifier()) != gwIP {
					t.Errorf("nak: %s", r.msg.Summary())
				}
				if r.msg.IPAddressLeaseTime(0) != 0 || r.msg.Router() != nil {
					t.Error("nak carries configuration")
				}
			},
		},
		{
			name: "selecting request naming another server gets a nak",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeRequest, reqIP(vmIP), sid(netip.MustParseAddr("10.0.1.2")))
			},
			want: Nak,
		},
		{
			name: "init-reboot with the right address acked",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeRequest, reqIP(vmIP)) },
			want: Ack,
			check: func(t *testing.T, r *reply) {
				r.to(t, vmIP, vmMAC)
				r.leaseOpts(t, vmIP)
			},
		},
		{
			name: "init-reboot with an address from another network gets a nak",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeRequest, reqIP(netip.MustParseAddr("192.168.1.20")))
			},
			want: Nak,
		},
		{
			name: "renewal unicast from ciaddr acked to ciaddr",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeRequest, ciaddr(vmIP)) },
			src:  vmIP,
			dst:  gwIP,
			want: Ack,
			check: func(t *testing.T, r *reply) {
				r.to(t, vmIP, vmMAC)
				r.leaseOpts(t, vmIP)
				if ip4(r.msg.ClientIPAddr) != vmIP {
					t.Errorf("ciaddr %v", r.msg.ClientIPAddr)
				}
			},
		},
		{
			name: "rebinding (broadcast) with ciaddr acked to ciaddr",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeRequest, ciaddr(vmIP)) },
			src:  vmIP,
			want: Ack,
			check: func(t *testing.T, r *reply) {
				r.to(t, vmIP, vmMAC)
			},
		},
		{
			name: "renewal of an address the port no longer has gets a nak",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeRequest, ciaddr(netip.MustParseAddr("10.0.1.11")))
			},
			src:  netip.MustParseAddr("10.0.1.11"),
			dst:  gwIP,
			want: Nak,
			check: func(t *testing.T, r *reply) {
				r.to(t, bcastIP, topology.Broadcast)
			},
		},
		{
			name: "request naming no address gets a nak",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeRequest) },
			want: Nak,
		},
		{
			name: "inform gets configuration without address or lease",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeInform, ciaddr(vmIP)) },
			src:  vmIP,
			dst:  gwIP,
			want: Ack,
			check: func(t *testing.T, r *reply) {
				r.to(t, vmIP, vmMAC)
				if ip4(r.msg.YourIPAddr) != zeroIP {
					t.Errorf("yiaddr %v in an INFORM ack", r.msg.YourIPAddr)
				}
				if r.msg.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
					t.Error("INFORM ack carries a lease time")
				}
				if len(r.msg.DNS()) != 2 || len(r.msg.Router()) != 1 {
					t.Errorf("INFORM ack lacks configuration: %s", r.msg.Summary())
				}
			},
		},
		{
			name: "release is not answered",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeRelease, ciaddr(vmIP), sid(gwIP))
			},
			src:  vmIP,
			dst:  gwIP,
			want: Released,
		},
		{
			name: "decline is not answered",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeDecline, reqIP(vmIP), sid(gwIP))
			},
			want: Declined,
		},
		{
			name: "another client's MAC behind the port is not configured",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeDiscover, dhcpv4.WithHwAddr(net.HardwareAddr(otherMAC[:])))
			},
			want: ForeignClient,
		},
		{
			name: "disabled subnet",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeDiscover) },
			port: func(p *Port) { p.Subnets[0].Disabled = true },
			want: NoConfig,
		},
		{
			name: "port address outside every DHCP subnet",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeDiscover) },
			port: func(p *Port) { p.IPs = []netip.Addr{netip.MustParseAddr("10.0.2.10")} },
			want: NoConfig,
		},
		{
			name: "subnet without gateway or server address",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeDiscover) },
			port: func(p *Port) { p.Subnets[0].Gateway = netip.Addr{} },
			want: NoConfig,
		},
		{
			name: "relayed request ignored",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeDiscover, dhcpv4.WithRelay(net.IPv4(10, 0, 1, 7)))
			},
			want: Ignored,
		},
		{
			name: "a server message sent to port 67 is ignored",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeAck) },
			want: Ignored,
		},
		{
			name: "BOOTREPLY op is malformed",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				m := newMsg(t, dhcpv4.MessageTypeDiscover)
				m.OpCode = dhcpv4.OpcodeBootReply
				return m
			},
			want: Malformed,
		},
		{
			name: "server address, its own subnet and the client id",
			msg: func(t *testing.T) *dhcpv4.DHCPv4 {
				return newMsg(t, dhcpv4.MessageTypeDiscover, dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0x01})))
			},
			port: func(p *Port) {
				p.Subnets = append([]*topology.DHCPSubnet{{Subnet: netip.MustParsePrefix("10.9.0.0/16"), Gateway: netip.MustParseAddr("10.9.0.1")}}, p.Subnets...)
				p.Subnets[1].ServerAddr = netip.MustParseAddr("10.0.1.2")
				p.ServerMAC = topology.MAC{}
			},
			want: Offer,
			check: func(t *testing.T, r *reply) {
				if got := ip4(r.msg.ServerIdentifier()); got != netip.MustParseAddr("10.0.1.2") || r.pkt.SrcAddr() != got {
					t.Errorf("server id %v from %v, want 10.0.1.2", got, r.pkt.SrcAddr())
				}
				if r.pkt.EthSrc != DefaultServerMAC {
					t.Errorf("source MAC %v, want the default", topology.MAC(r.pkt.EthSrc))
				}
				if !bytes.Equal(r.msg.GetOneOption(dhcpv4.OptionClientIdentifier), []byte{1, 2, 0xaa, 0xbb, 0xcc, 0xdd, 0x01}) {
					t.Error("client identifier not echoed")
				}
				if ip4(r.msg.YourIPAddr) != vmIP {
					t.Errorf("yiaddr %v", r.msg.YourIPAddr)
				}
			},
		},
		{
			name: "zero port MAC accepts the client",
			msg:  func(t *testing.T) *dhcpv4.DHCPv4 { return newMsg(t, dhcpv4.MessageTypeDiscover) },
			port: func(p *Port) { p.MAC = topology.MAC{} },
			want: Offer,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port := testPort()
			if tc.port != nil {
				tc.port(port)
			}
			src, dst := tc.src, tc.dst
			if !src.IsValid() {
				src = zeroIP
			}
			if !dst.IsValid() {
				dst = bcastIP
			}
			r, v := respond(t, requestFrame(tc.msg(t), src, dst), port)
			if v != tc.want {
				t.Fatalf("verdict %v, want %v", v, tc.want)
			}
			answered := tc.want == Offer || tc.want == Ack || tc.want == Nak
			if (r != nil) != answered {
				t.Fatalf("reply present = %v, want %v", r != nil, answered)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestOptionsVariants(t *testing.T) {
	discover := func(t *testing.T, port *Port) *dhcpv4.DHCPv4 {
		t.Helper()
		r, v := respond(t, requestFrame(newMsg(t, dhcpv4.MessageTypeDiscover), zeroIP, bcastIP), port)
		if v != Offer {
			t.Fatalf("verdict %v", v)
		}
		return r.msg
	}
	mtu := func(m *dhcpv4.DHCPv4) int {
		b := m.GetOneOption(dhcpv4.OptionInterfaceMTU)
		if len(b) != 2 {
			return -1
		}
		return int(binary.BigEndian.Uint16(b))
	}
	for _, tc := range []struct{ subnet, overlay, want int }{
		{9001, 1450, 1450},
		{1400, 1450, 1400},
		{0, 1450, 1450},
		{1500, 0, 1500},
		{0, 0, -1},
		{40, 0, -1}, // below the minimum option 26 allows
	} {
		port := testPort()
		port.Subnets[0].MTU, port.OverlayMTU = tc.subnet, tc.overlay
		if got := mtu(discover(t, port)); got != tc.want {
			t.Errorf("subnet MTU %d overlay %d: option 26 = %d, want %d", tc.subnet, tc.overlay, got, tc.want)
		}
	}

	t.Run("no routes configured: no option 121", func(t *testing.T) {
		port := testPort()
		port.Subnets[0].Routes = nil
		if m := discover(t, port); m.Options.Has(dhcpv4.OptionClasslessStaticRoute) {
			t.Errorf("option 121 sent: %v", routeStrings(m))
		}
	})
	t.Run("configured default route not duplicated; on-link route", func(t *testing.T) {
		port := testPort()
		port.Subnets[0].Routes = []topology.DHCPRoute{
			{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.1.3")},
			{Dest: netip.MustParsePrefix("10.20.30.40/16")}, // unmasked on purpose
		}
		want := []string{"0.0.0.0/0 via 10.0.1.3", "10.20.0.0/16 via 0.0.0.0"}
		if got := routeStrings(discover(t, port)); !slices.Equal(got, want) {
			t.Errorf("option 121 %v, want %v", got, want)
		}
	})
	t.Run("custom lease time", func(t *testing.T) {
		port := testPort()
		port.Subnets[0].LeaseTime = 600
		m := discover(t, port)
		if m.IPAddressLeaseTime(0) != 10*time.Minute || m.IPAddressRenewalTime(0) != 5*time.Minute || m.IPAddressRebindingTime(0) != 525*time.Second {
			t.Errorf("lease %v T1 %v T2 %v", m.IPAddressLeaseTime(0), m.IPAddressRenewalTime(0), m.IPAddressRebindingTime(0))
		}
	})
	t.Run("no DNS, domain or NTP configured: options absent", func(t *testing.T) {
		port := testPort()
		s := port.Subnets[0]
		s.DNSServers, s.DomainName, s.NTPServers = nil, "", nil
		m := discover(t, port)
		for _, o := range []dhcpv4.OptionCode{dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName, dhcpv4.OptionNTPServers} {
			if m.Options.Has(o) {
				t.Errorf("option %v sent", o)
			}
		}
	})
}

func TestNotDHCP(t *testing.T) {
	m := newMsg(t, dhcpv4.MessageTypeDiscover)
	for name, frame := range map[string][]byte{
		"wrong port":     buildUDP(vmMAC, topology.Broadcast, zeroIP, bcastIP, ClientPort, 53, m.ToBytes()),
		"arp":            packet.BuildARP(packet.ARPRequest, vmMAC, packet.U32(vmIP), topology.MAC{}, packet.U32(gwIP)),
		"truncated":      requestFrame(m, zeroIP, bcastIP)[:30],
		"empty":          nil,
		"short payload":  buildUDP(vmMAC, topology.Broadcast, zeroIP, bcastIP, ClientPort, ServerPort, []byte{1, 1, 6}),
		"bad udp length": badUDPLength(requestFrame(m, zeroIP, bcastIP)),
	} {
		var p packet.Packet
		p.Decode(frame)
		out, v := Respond(frame, &p, testPort())
		if out != nil || (v != NotDHCP && v != Malformed) {
			t.Errorf("%s: verdict %v, reply %d bytes", name, v, len(out))
		}
	}
}

func badUDPLength(f []byte) []byte {
	binary.BigEndian.PutUint16(f[packet.EthHeaderLen+packet.IPv4MinHeader+4:], 4000)
	return f
}

func TestVerdictString(t *testing.T) {
	seen := map[string]bool{}
	for v := NotDHCP; v <= Ignored; v++ {
		s := v.String()
		if s == "unknown" || seen[s] {
			t.Errorf("verdict %d has name %q", v, s)
		}
		seen[s] = true
	}
	if Verdict(200).String() != "unknown" {
		t.Error("out-of-range verdict")
	}
}

func BenchmarkRespondDiscover(b *testing.B) {
	m, _ := dhcpv4.NewDiscovery(net.HardwareAddr(vmMAC[:]))
	frame := requestFrame(m, zeroIP, bcastIP)
	port := testPort()
	var p packet.Packet
	b.ReportAllocs()
	for b.Loop() {
		p.Decode(frame)
		if _, v := Respond(frame, &p, port); v != Offer {
			b.Fatal(v)
		}
	}
}
