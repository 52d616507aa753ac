package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"

	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// svcLab is a subnet behind a router with two VMs on in-memory ports:
//
//	vm1 10.0.1.5 (eni-1, i-1) ─┐
//	                           b ─ (10.0.1.1 gwMAC) r
//	vm2 10.0.1.6 (eni-2, i-2) ─┘
type svcLab struct {
	s          *nsdb.Store
	agent      *Agent
	vm1, vm2   *datapathfake.Port
	rx1, rx2   chan []byte
	gwMAC      topology.MAC
	mac1, mac2 topology.MAC
}

func newSvcLab(t *testing.T) *svcLab {
	t.Helper()
	s, cfg := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	w := newWire()
	ag, id, _, _ := runAgent(t, []string{cfg.ClientURL}, "a", netip.MustParseAddr("127.0.0.1"), w, nil)
	waitFor(t, "the host registered", func() bool {
		_, err := s.Get(ctx, topology.KindHost, id)
		return err == nil
	})
	l := &svcLab{s: s, agent: ag, gwMAC: topology.MAC{2, 0xaa, 0, 0, 0, 1}, mac1: topology.MAC{2, 0, 0, 0, 1, 5}, mac2: topology.MAC{2, 0, 0, 0, 1, 6}}
	create := func(o topology.Object) topology.Object {
		t.Helper()
		o, err := s.Create(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	r := create(&topology.Router{Meta: topology.Meta{Name: "r"}})
	rp := create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.GetMeta().ID, MAC: l.gwMAC,
		Address: netip.MustParsePrefix("10.0.1.1/24")})
	br := create(&topology.Bridge{Meta: topology.Meta{Name: "b"}})
	bp := create(&topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID})
	if err := s.Link(ctx, bp.GetMeta().ID, rp.GetMeta().ID); err != nil {
		t.Fatal(err)
	}
	create(&topology.DHCPSubnet{BridgeID: br.GetMeta().ID, Subnet: netip.MustParsePrefix("10.0.1.0/24"),
		Gateway: netip.MustParseAddr("10.0.1.1"), DNSServers: []netip.Addr{netip.MustParseAddr("10.0.0.2")},
		DomainName: "ec2.internal", MTU: 9000,
		Hosts: []topology.DHCPHost{{MAC: l.mac2, IP: netip.MustParseAddr("10.0.1.6"), Name: "vm-two"}}})
	vmPort := func(eni string, mac topology.MAC, ip, iface string) {
		create(&topology.Port{Meta: topology.Meta{Name: eni, Labels: map[string]string{translate.LabelObject: eni, topology.LabelVPC: "vpc-1"}},
			DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID, MAC: mac,
			IPs: []netip.Addr{netip.MustParseAddr(ip)}, HostID: id, Interface: iface})
	}
	vmPort("eni-1", l.mac1, "10.0.1.5", "vm1")
	vmPort("eni-2", l.mac2, "10.0.1.6", "vm2")
	l.vm1, l.rx1 = w.vm(t, "vm1")
	l.vm2, l.rx2 = w.vm(t, "vm2")
	// Plugged is not yet published: frames to a port go out once it is.
	waitFor(t, "both ports published", func() bool { return len(ag.ports.Load().list) == 2 })
	return l
}

// putVPC writes a VPC object the way the EC2 server does (nsdb.VPCStore:
// with its copy in its VPC's partition).
func putVPC(t *testing.T, s *nsdb.Store, coll, id string, obj any) {
	t.Helper()
	ctx := context.Background()
	vs, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	if _, err := vs.Update(ctx, func(_ *vpc.State, tx *nsdb.VPCTx) error { return tx.Put(id, obj) }); err != nil {
		t.Fatalf("put %s/%s: %v", coll, id, err)
	}
}

func dhcpFrame(t *testing.T, mac topology.MAC, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) []byte {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(net.HardwareAddr(mac[:])), dhcpv4.WithMessageType(mt),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{9, 8, 7, 6})}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	sp := packet.Spec{EthSrc: mac, EthDst: topology.Broadcast, Src: 0, Dst: 0xffffffff, Proto: packet.ProtoUDP,
		SrcPort: 68, DstPort: 67, Payload: m.ToBytes()}
	return sp.Build()
}

// dhcpReply waits for a DHCP reply on ch.
func dhcpReply(t *testing.T, ch chan []byte, what string) (*dhcpv4.DHCPv4, packet.Packet) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-ch:
			var p packet.Packet
			p.Decode(f)
			if p.Proto != packet.ProtoUDP || p.SrcPort != 67 || p.DstPort != 68 {
				continue
			}
			if !packet.VerifyIPv4(f, &p) {
				t.Fatalf("%s: bad checksums", what)
			}
			m, err := dhcpv4.FromBytes(f[p.L4Off+8:])
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return m, p
		case <-timeout:
			t.Fatalf("no %s", what)
		}
	}
}

// quietUntil asserts that nothing but the marker's answer arrives on ch:
// it sends marker on from, then reads ch until isMarker accepts a frame, and
// fails on any frame before it. A port's frames are handled in order, so
// whatever the frames sent before the marker caused on ch is written there
// before the marker's answer: no waiting for something not to happen.
func quietUntil(t *testing.T, ch chan []byte, what string, from *datapathfake.Port, marker []byte, isMarker func(*packet.Packet) bool) {
	t.Helper()
	quietOfUntil(t, ch, what, nil, from, marker, isMarker)
}

// quietOfUntil is quietUntil counting only the frames bad accepts (nil:
// every frame) as a failure; others (left over from earlier steps) are
// skipped.
func quietOfUntil(t *testing.T, ch chan []byte, what string, bad func(*packet.Packet) bool, from *datapathfake.Port, marker []byte, isMarker func(*packet.Packet) bool) {
	t.Helper()
	send(t, from, marker)
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f := <-ch:
			var p packet.Packet
			p.Decode(f)
			if isMarker(&p) {
				return
			}
			if bad == nil || bad(&p) {
				t.Fatalf("%s: got %s", what, p.String())
			}
		case <-timeout:
			t.Fatalf("%s: the marker never came back", what)
		}
	}
}

// toVM2 is a marker from vm1 that reaches vm2 (unicast UDP on the bridge).
func (l *svcLab) toVM2(t *testing.T, what string) {
	t.Helper()
	f := (&packet.Spec{EthSrc: l.mac1, EthDst: l.mac2, Src: packet.U32(netip.MustParseAddr("10.0.1.5")), Dst: packet.U32(netip.MustParseAddr("10.0.1.6")),
		Proto: packet.ProtoUDP, SrcPort: 4242, DstPort: 4242, Payload: []byte("marker")}).Build()
	quietUntil(t, l.rx2, what, l.vm1, f, func(p *packet.Packet) bool { return p.Proto == packet.ProtoUDP && p.SrcPort == 4242 })
}

// atVM1 is a marker answered at vm1's own port (ARP for vm2's address,
// from the bridge's table).
func (l *svcLab) atVM1(t *testing.T, what string) {
	t.Helper()
	f := packet.BuildARP(packet.ARPRequest, l.mac1, packet.U32(netip.MustParseAddr("10.0.1.5")), [6]byte{}, packet.U32(netip.MustParseAddr("10.0.1.6")))
	quietUntil(t, l.rx1, what, l.vm1, f, func(p *packet.Packet) bool { return p.Has(packet.FlagARP) && p.ARPOp == packet.ARPReply })
}

// TestDHCPAtThePort: a DISCOVER on a VM port is answered there with the
// port's address, the subnet's mask, router, DNS and MTU (bounded by the
// overlay), from the router's MAC; a static host entry names the host; the
// other VM sees none of it.
func TestDHCPAtThePort(t *testing.T) {
	l := newSvcLab(t)
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	wantMTU := min(9000, lo.Attrs().MTU-50) // the tunnel is on lo here

	var offer *dhcpv4.DHCPv4
	var op packet.Packet
	waitFor(t, "an offer", func() bool {
		send(t, l.vm1, dhcpFrame(t, l.mac1, dhcpv4.MessageTypeDiscover))
		select {
		case f := <-l.rx1:
			op.Decode(f)
			if m, err := dhcpv4.FromBytes(f[op.L4Off+8:]); err == nil && op.SrcPort == 67 {
				offer = m
				return packet.VerifyIPv4(f, &op)
			}
		case <-time.After(200 * time.Millisecond):
		}
		return false
	})
	if offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("reply is a %v", offer.MessageType())
	}
	if got := offer.YourIPAddr.String(); got != "10.0.1.5" {
		t.Errorf("offered %s, want 10.0.1.5", got)
	}
	if got := net.IP(offer.SubnetMask()).String(); got != "255.255.255.0" {
		t.Errorf("mask %s", got)
	}
	if r := offer.Router(); len(r) != 1 || r[0].String() != "10.0.1.1" {
		t.Errorf("router %v", r)
	}
	if d := offer.DNS(); len(d) != 1 || d[0].String() != "10.0.0.2" {
		t.Errorf("dns %v", d)
	}
	if mtu := offer.GetOneOption(dhcpv4.OptionInterfaceMTU); len(mtu) != 2 || int(binary.BigEndian.Uint16(mtu)) != wantMTU {
		t.Errorf("mtu option %v, want %d", mtu, wantMTU)
	}
	if op.EthSrc != l.gwMAC || op.EthDst != l.mac1 {
		t.Errorf("offer %v → %v, want from the router %v to the VM %v", topology.MAC(op.EthSrc), topology.MAC(op.EthDst), l.gwMAC, l.mac1)
	}
	l.toVM2(t, "vm2 saw vm1's DHCP")

	// REQUEST → ACK, broadcast flag set: the broadcast reply still goes to
	// vm1 only.
	send(t, l.vm1, dhcpFrame(t, l.mac1, dhcpv4.MessageTypeRequest, dhcpv4.WithBroadcast(true),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 1, 5))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 1, 1)))))
	ack, ap := dhcpReply(t, l.rx1, "ack")
	if ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != "10.0.1.5" || ap.EthDst != topology.Broadcast {
		t.Errorf("ack: %v %v to %v", ack.MessageType(), ack.YourIPAddr, topology.MAC(ap.EthDst))
	}
	l.toVM2(t, "vm2 saw vm1's broadcast ACK")

	// A wrong address is refused.
	send(t, l.vm1, dhcpFrame(t, l.mac1, dhcpv4.MessageTypeRequest,
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 1, 77)))))
	if nak, _ := dhcpReply(t, l.rx1, "nak"); nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("request for a wrong address: %v", nak.MessageType())
	}

	// vm2's static host entry gives its host name.
	send(t, l.vm2, dhcpFrame(t, l.mac2, dhcpv4.MessageTypeDiscover))
	o2, _ := dhcpReply(t, l.rx2, "vm2's offer")
	if o2.YourIPAddr.String() != "10.0.1.6" || o2.HostName() != "vm-two" {
		t.Errorf("vm2 offered %v host name %q", o2.YourIPAddr, o2.HostName())
	}
	// A client hardware address other than the port's gets nothing.
	send(t, l.vm1, dhcpFrame(t, l.mac2, dhcpv4.MessageTypeDiscover))
	l.atVM1(t, "a DISCOVER for a foreign MAC")
	l.toVM2(t, "vm2 saw a DISCOVER sent at vm1")
}

// TestMetadataAtThePort: ARP for 169.254.169.254 is answered with the
// router's MAC, and an HTTP request to it over TCP (a hand-made client on
// the in-memory port) reaches the listener in the metadata namespace and is
// answered with the data of the instance behind that port — each VM its
// own, though both use the same source port.
func TestMetadataAtThePort(t *testing.T) {
	l := newSvcLab(t)
	for i, mac := range []topology.MAC{l.mac1, l.mac2} {
		n := string(rune('1' + i))
		ip := netip.MustParseAddr("10.0.1." + string(rune('5'+i)))
		putVPC(t, l.s, "instances", "i-"+n, &vpc.Instance{ID: "i-" + n, OwnerID: "111122223333", State: "running"})
		putVPC(t, l.s, "network_interfaces", "eni-"+n, &vpc.NetworkInterface{ID: "eni-" + n, MacAddress: mac.String(),
			SubnetID: "subnet-1", VpcID: "vpc-1", PrivateIPs: []vpc.PrivateIP{{Address: ip, Primary: true}},
			Attachment: &vpc.ENIAttachment{InstanceID: "i-" + n}})
	}
	// The agent's VPC mirror follows the store by a watch: wait until it
	// knows both instances before asking.
	waitFor(t, "the agent's VPC mirror has both instances", func() bool {
		_, ok1 := l.agent.vpcs.instance("eni-1", "")
		_, ok2 := l.agent.vpcs.instance("eni-2", "")
		return ok1 && ok2
	})
	md := netip.MustParseAddr("169.254.169.254")
	waitFor(t, "an ARP answer for 169.254.169.254", func() bool {
		send(t, l.vm1, packet.BuildARP(packet.ARPRequest, l.mac1, packet.U32(netip.MustParseAddr("10.0.1.5")), [6]byte{}, packet.U32(md)))
		select {
		case f := <-l.rx1:
			var p packet.Packet
			p.Decode(f)
			return p.Has(packet.FlagARP) && p.ARPOp == packet.ARPReply && p.ARPSHA == [6]byte(l.gwMAC) && p.ARPSPA == packet.U32(md)
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	for _, c := range []struct {
		vm   *datapathfake.Port
		rx   chan []byte
		mac  topology.MAC
		ip   string
		want string
	}{{l.vm1, l.rx1, l.mac1, "10.0.1.5", "i-1"}, {l.vm2, l.rx2, l.mac2, "10.0.1.6", "i-2"}} {
		body := httpGet(t, c.vm, c.rx, c.mac, l.gwMAC, netip.MustParseAddr(c.ip), "/latest/meta-data/instance-id")
		if !strings.HasSuffix(body, "\r\n\r\n"+c.want) {
			t.Errorf("%s read instance-id:\n%s\nwant %s", c.ip, body, c.want)
		}
	}
}

// httpGet speaks just enough TCP on a raw port to send one HTTP/1.0 GET to
// 169.254.169.254 and collect the answer until the server's FIN. Every
// frame back must come from 169.254.169.254:80 and the router's MAC, to
// the VM's own address and MAC, with valid checksums.
func httpGet(t *testing.T, vm *datapathfake.Port, rx chan []byte, mac, gw topology.MAC, ip netip.Addr, path string) string {
	t.Helper()
	const sport, iss = 40000, 1000
	md := netip.MustParseAddr("169.254.169.254")
	seg := func(flags uint8, seq, ack uint32, payload []byte) []byte {
		sp := packet.Spec{EthSrc: mac, EthDst: gw, Src: packet.U32(ip), Dst: packet.U32(md), Proto: packet.ProtoTCP,
			SrcPort: sport, DstPort: 80, TCPFlags: flags, Payload: payload}
		f := sp.Build()
		var p packet.Packet
		p.Decode(f)
		binary.BigEndian.PutUint32(f[p.L4Off+4:], seq)
		binary.BigEndian.PutUint32(f[p.L4Off+8:], ack)
		packet.FixChecksums(f, &p)
		return f
	}
	const syn, fin, ackF, psh = 0x02, 0x01, 0x10, 0x08
	// next returns the next TCP segment, its payload and sequence number.
	next := func(what string) (packet.Packet, []byte, uint32) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case f := <-rx:
				var p packet.Packet
				p.Decode(f)
				if p.Proto != packet.ProtoTCP {
					continue
				}
				if p.SrcAddr() != md || p.SrcPort != 80 || p.DstAddr() != ip || p.DstPort != sport ||
					p.EthSrc != [6]byte(gw) || p.EthDst != [6]byte(mac) || !packet.VerifyIPv4(f, &p) {
					t.Fatalf("%s: unexpected frame %s (eth %v → %v)", what, p.String(), topology.MAC(p.EthSrc), topology.MAC(p.EthDst))
				}
				end := p.L3Off + int(p.TotalLen)
				hl := int(f[p.L4Off+12]>>4) * 4
				return p, f[p.L4Off+hl : end], binary.BigEndian.Uint32(f[p.L4Off+4:])
			case <-timeout:
				t.Fatalf("no %s", what)
			}
		}
	}
	var p packet.Packet
	var seq uint32
	for {
		send(t, vm, seg(syn, iss, 0, nil))
		p, _, seq = next("SYN-ACK")
		if p.TCPFlags&(syn|ackF) == syn|ackF {
			break
		}
	}
	rcv := seq + 1
	req := []byte("GET " + path + " HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n")
	send(t, vm, seg(ackF|psh, iss+1, rcv, req))
	var out bytes.Buffer
	for {
		p, data, seq := next("the answer")
		if seq == rcv && len(data) > 0 {
			out.Write(data)
			rcv += uint32(len(data))
		}
		if p.TCPFlags&fin != 0 && seq+uint32(len(data)) == rcv {
			rcv++
			send(t, vm, seg(ackF|fin, iss+1+uint32(len(req)), rcv, nil))
			return out.String()
		}
		send(t, vm, seg(ackF, iss+1+uint32(len(req)), rcv, nil))
	}
}

// TestIsService: which frames from a VM port the services take.
func TestIsService(t *testing.T) {
	vmMAC, gw := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 0xaa}
	vm, md, other := packet.U32(netip.MustParseAddr("10.0.1.5")), packet.U32(MetadataIP), packet.U32(netip.MustParseAddr("10.0.1.6"))
	udp := func(dst uint32, dport uint16, frag bool) []byte {
		sp := packet.Spec{EthSrc: vmMAC, EthDst: gw, Src: vm, Dst: dst, Proto: packet.ProtoUDP, SrcPort: 68, DstPort: dport, MF: frag}
		return sp.Build()
	}
	tcp := func(dst uint32, dport uint16) []byte {
		sp := packet.Spec{EthSrc: vmMAC, EthDst: gw, Src: vm, Dst: dst, Proto: packet.ProtoTCP, SrcPort: 40000, DstPort: dport}
		return sp.Build()
	}
	for _, c := range []struct {
		name  string
		frame []byte
		want  bool
	}{
		{"dhcp request", udp(0xffffffff, 67, false), true},
		// Taken and dropped by the DHCP service: a client never fragments
		// nor tags a request, and only the VPC answers DHCP.
		{"udp to 67, first fragment", udp(0xffffffff, 67, true), true},
		{"udp to 67 of a VM, first fragment", udp(other, 67, true), true},
		{"udp to 67, vlan-tagged", (&packet.Spec{EthSrc: vmMAC, EthDst: gw, VLAN: 5, Src: vm, Dst: 0xffffffff, Proto: packet.ProtoUDP, SrcPort: 68, DstPort: 67}).Build(), true},
		// No ports: the chains judge it like any other packet.
		{"udp, later fragment", (&packet.Spec{EthSrc: vmMAC, EthDst: gw, Src: vm, Dst: other, Proto: packet.ProtoUDP, FragOff: 3}).Build(), false},
		{"dns to a VM", udp(other, 53, false), false},
		{"metadata http", tcp(md, 80), true},
		{"metadata other port", tcp(md, 443), true}, // taken, then dropped: never simulated
		{"tcp to a VM", tcp(other, 80), false},
		{"arp for metadata", packet.BuildARP(packet.ARPRequest, vmMAC, vm, [6]byte{}, md), true},
		{"arp for a VM", packet.BuildARP(packet.ARPRequest, vmMAC, vm, [6]byte{}, other), false},
	} {
		var p packet.Packet
		p.Decode(c.frame)
		if got := isService(nil, &p); got != c.want {
			t.Errorf("%s: isService = %v, want %v", c.name, got, c.want)
		}
		// From the physical network (an edge uplink), nothing is a
		// service: UDP to port 67 of an elastic IP is an instance's.
		if isService(&portSvc{router: true}, &p) {
			t.Errorf("%s from an uplink taken as a service", c.name)
		}
	}
}

// BenchmarkIsService is the cost the services add to every frame.
func BenchmarkIsService(b *testing.B) {
	sp := packet.Spec{Src: 0x0a000105, Dst: 0x0a000106, Proto: packet.ProtoTCP, SrcPort: 40000, DstPort: 5201}
	f := sp.Build()
	var p packet.Packet
	p.Decode(f)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if isService(nil, &p) {
			n++
		}
	}
	if n != 0 {
		b.Fatal("a TCP frame between VMs taken as a service")
	}
}

func TestHostname(t *testing.T) {
	ip := netip.MustParseAddr("10.0.1.5")
	for domain, want := range map[string]string{
		"":                           "ip-10-0-1-5",
		"   ":                        "ip-10-0-1-5",
		"ec2.internal":               "ip-10-0-1-5.ec2.internal",
		"ec2.internal. corp.example": "ip-10-0-1-5.ec2.internal",
	} {
		if got := hostname(ip, domain); got != want {
			t.Errorf("hostname(%q) = %q, want %q", domain, got, want)
		}
	}
}
