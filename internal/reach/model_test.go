package reach

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// A small VPC, written out: subnet A (10.0.1.0/24) with web (10.0.1.10,
// elastic IP 203.0.113.5) and peer (10.0.1.11), subnet B (10.0.2.0/24)
// with db (10.0.2.10, no source/dest check), an internet gateway, a NAT
// gateway in A for B.
func lab() *vpc.State {
	st := vpc.NewState()
	v := &vpc.Vpc{ID: "vpc-1", CidrBlock: pfx("10.0.0.0/16")}
	st.Vpcs[v.ID] = v
	st.Subnets["subnet-a"] = &vpc.Subnet{ID: "subnet-a", VpcID: v.ID, CidrBlock: pfx("10.0.1.0/24")}
	st.Subnets["subnet-b"] = &vpc.Subnet{ID: "subnet-b", VpcID: v.ID, CidrBlock: pfx("10.0.2.0/24")}
	st.InternetGateways["igw-1"] = &vpc.InternetGateway{ID: "igw-1", Attachments: []vpc.IGWAttachment{{VpcID: v.ID, State: vpc.StateAvailable}}}
	all := pfx("0.0.0.0/0")
	st.SecurityGroups["sg-web"] = &vpc.SecurityGroup{ID: "sg-web", VpcID: v.ID,
		Ingress: []vpc.SecurityGroupRule{{IPProtocol: "tcp", FromPort: 443, ToPort: 443, CidrIPv4: all}, {IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: "sg-web"}},
		Egress:  []vpc.SecurityGroupRule{{IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: all, IsEgress: true}}}
	st.SecurityGroups["sg-db"] = &vpc.SecurityGroup{ID: "sg-db", VpcID: v.ID,
		Ingress: []vpc.SecurityGroupRule{{IPProtocol: "tcp", FromPort: 5432, ToPort: 5432, ReferencedGroupID: "sg-web"}},
		Egress:  []vpc.SecurityGroupRule{{IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: all, IsEgress: true}}}
	st.NetworkACLs["acl-1"] = &vpc.NetworkACL{ID: "acl-1", VpcID: v.ID, IsDefault: true, Entries: []vpc.NetworkACLEntry{
		{RuleNumber: 50, Protocol: "6", PortFrom: 22, PortTo: 22, RuleAction: vpc.ACLDeny, CidrBlock: all},
		{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: all},
		{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: all}}}
	st.NetworkInterfaces["eni-nat"] = &vpc.NetworkInterface{ID: "eni-nat", VpcID: v.ID, SubnetID: "subnet-a", MacAddress: "02:00:00:00:00:99",
		InterfaceType: vpc.InterfaceTypeNatGateway, PrivateIPs: []vpc.PrivateIP{{Address: ip("10.0.1.200"), Primary: true}}}
	st.NatGateways["nat-1"] = &vpc.NatGateway{ID: "nat-1", VpcID: v.ID, SubnetID: "subnet-a", State: vpc.StateAvailable,
		PublicIP: ip("203.0.113.9"), PrivateIP: ip("10.0.1.200"), NetworkInterfaceID: "eni-nat"}
	st.RouteTables["rtb-main"] = &vpc.RouteTable{ID: "rtb-main", VpcID: v.ID, Associations: []vpc.RouteTableAssociation{{Main: true}},
		Routes: []vpc.Route{{DestinationCidrBlock: v.CidrBlock, GatewayID: "local"}, {DestinationCidrBlock: all, GatewayID: "igw-1"}}}
	st.RouteTables["rtb-b"] = &vpc.RouteTable{ID: "rtb-b", VpcID: v.ID, Associations: []vpc.RouteTableAssociation{{SubnetID: "subnet-b"}},
		Routes: []vpc.Route{{DestinationCidrBlock: v.CidrBlock, GatewayID: "local"}, {DestinationCidrBlock: all, NatGatewayID: "nat-1"}}}
	eni := func(id, sub, mac, addr string, check bool, groups ...string) {
		st.Instances["i-"+id] = &vpc.Instance{ID: "i-" + id, State: vpc.InstanceRunning, HostID: "h1"}
		st.NetworkInterfaces["eni-"+id] = &vpc.NetworkInterface{ID: "eni-" + id, VpcID: v.ID, SubnetID: sub, MacAddress: mac, SourceDestCheck: check,
			InterfaceType: vpc.InterfaceTypeInterface, Groups: groups, PrivateIPs: []vpc.PrivateIP{{Address: ip(addr), Primary: true}},
			Attachment: &vpc.ENIAttachment{InstanceID: "i-" + id}}
	}
	eni("web", "subnet-a", "02:00:00:00:00:10", "10.0.1.10", true, "sg-web")
	eni("peer", "subnet-a", "02:00:00:00:00:11", "10.0.1.11", true, "sg-web")
	eni("db", "subnet-b", "02:00:00:00:00:20", "10.0.2.10", false, "sg-db")
	st.Addresses["eipalloc-1"] = &vpc.Address{AllocationID: "eipalloc-1", PublicIP: ip("203.0.113.5"), NetworkInterfaceID: "eni-web"}
	return st
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func mac(s string) MAC {
	m, ok := ParseMAC(s)
	if !ok {
		panic(s)
	}
	return m
}

var (
	webMAC  = mac("02:00:00:00:00:10")
	peerMAC = mac("02:00:00:00:00:11")
	dbMAC   = mac("02:00:00:00:00:20")
)

func tcp(from string, src MAC, dst MAC, toGW bool, s, d string, sport, dport uint16) Packet {
	return Packet{From: from, EthSrc: src, EthDst: dst, ToGateway: toGW, EtherType: EtherIPv4,
		IP: IPv4{Src: ip(s), Dst: ip(d), Proto: ProtoTCP, SrcPort: sport, DstPort: dport}}
}

func outside(s, d string, proto uint8, sport, dport uint16) Packet {
	return Packet{EtherType: EtherIPv4, IP: IPv4{Src: ip(s), Dst: ip(d), Proto: proto, SrcPort: sport, DstPort: dport}}
}

func to(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func expect(t *testing.T, name string, got []Delivery, want ...string) {
	t.Helper()
	if g := to(got); !slices.Equal(g, want) {
		t.Errorf("%s: delivered %q, want %q", name, g, want)
	}
}

func TestModel(t *testing.T) {
	m := New(lab(), Cloud{PublicPools: []netip.Prefix{pfx("203.0.113.0/24")}})
	gw := MAC{0x02, 0xff} // the router's, whatever it is

	// Group references: web reaches db's 5432 (db's group names web's),
	// peer does not reach db on 22 (no rule), and the ACL denies 22 anyway.
	expect(t, "web → db 5432", m.Send(tcp("eni-web", webMAC, gw, true, "10.0.1.10", "10.0.2.10", 40000, 5432)),
		"eni-db: proto 6 10.0.1.10:40000 → 10.0.2.10:5432")
	expect(t, "peer → db 22", m.Send(tcp("eni-peer", peerMAC, gw, true, "10.0.1.11", "10.0.2.10", 40000, 22)))
	// Stateful: db's reply needs no rule; an unsolicited packet from db to
	// web on a port web does not open is dropped.
	expect(t, "db → web, reply", m.Send(tcp("eni-db", dbMAC, gw, true, "10.0.2.10", "10.0.1.10", 5432, 40000)),
		"eni-web: proto 6 10.0.2.10:5432 → 10.0.1.10:40000")
	expect(t, "db → web, new", m.Send(tcp("eni-db", dbMAC, gw, true, "10.0.2.10", "10.0.1.10", 5432, 40001)))

	// Anti-spoofing: web (check on) cannot use peer's address; a forged
	// source MAC goes nowhere; db (check off) may send from any address.
	expect(t, "web spoofs peer", m.Send(tcp("eni-web", webMAC, peerMAC, false, "10.0.1.11", "10.0.1.11", 1, 443)))
	expect(t, "forged MAC", m.Send(tcp("eni-web", peerMAC, peerMAC, false, "10.0.1.10", "10.0.1.11", 1, 443)))
	expect(t, "db forwards", m.Send(tcp("eni-db", dbMAC, gw, true, "10.0.2.99", "10.0.1.10", 1, 443)),
		"eni-web: proto 6 10.0.2.99:1 → 10.0.1.10:443")

	// The elastic IP: in by its rule, out as itself; without one, no way out.
	expect(t, "outside → web 443", m.Send(outside("198.51.100.7", "203.0.113.5", ProtoTCP, 50000, 443)),
		"eni-web: proto 6 198.51.100.7:50000 → 10.0.1.10:443")
	expect(t, "outside → web 67→68", m.Send(outside("198.51.100.7", "203.0.113.5", ProtoUDP, 67, 68)))
	expect(t, "web → outside", m.Send(tcp("eni-web", webMAC, gw, true, "10.0.1.10", "198.51.100.7", 443, 50000)),
		"outside: proto 6 203.0.113.5:443 → 198.51.100.7:50000")
	expect(t, "peer → outside", m.Send(tcp("eni-peer", peerMAC, gw, true, "10.0.1.11", "198.51.100.7", 1, 80)))

	// NAT: db out through the gateway on a port it chooses, the reply back.
	out := m.Send(tcp("eni-db", dbMAC, gw, true, "10.0.2.10", "198.51.100.7", 41000, 80))
	expect(t, "db → outside via NAT", out, "outside: proto 6 203.0.113.9:* → 198.51.100.7:80")
	if len(out) == 1 {
		out[0].Bind(2000)
	}
	expect(t, "reply to NAT", m.Send(outside("198.51.100.7", "203.0.113.9", ProtoTCP, 80, 2000)),
		"eni-db: proto 6 198.51.100.7:80 → 10.0.2.10:41000")
	expect(t, "unsolicited to NAT", m.Send(outside("198.51.100.7", "203.0.113.9", ProtoTCP, 80, 2001)))

	// DHCP is the VPC's: no rogue server reply, no client request to a
	// neighbour.
	rogue := tcp("eni-db", dbMAC, gw, true, "10.0.2.10", "10.0.1.10", 67, 68)
	rogue.IP.Proto = ProtoUDP
	expect(t, "rogue dhcp", m.Send(rogue))

	// ARP: the VPC answers a request for a known address; a forged sender
	// MAC goes nowhere, even unicast to the neighbour.
	req := Packet{From: "eni-web", EthSrc: webMAC, EthDst: Broadcast, EtherType: EtherARP,
		ARP: ARP{Op: ARPRequest, SenderMAC: webMAC, SenderIP: ip("10.0.1.10"), TargetIP: ip("10.0.1.11")}}
	expect(t, "arp request", m.Send(req), "eni-web: arp op 2 10.0.1.11 (02:00:00:00:00:11) → 10.0.1.10 answer=true")
	req.EthDst = peerMAC
	expect(t, "arp unicast request", m.Send(req), "eni-peer: arp op 1 10.0.1.10 (02:00:00:00:00:10) → 10.0.1.11 answer=false")
	req.ARP.SenderMAC = mac("02:66:66:66:66:66")
	expect(t, "arp forged sender MAC", m.Send(req))

	// Broadcast, VLAN and IPv6 reach nobody.
	b := tcp("eni-web", webMAC, Broadcast, false, "10.0.1.10", "10.0.1.255", 1, 443)
	expect(t, "broadcast", m.Send(b))
	v := tcp("eni-web", webMAC, peerMAC, false, "10.0.1.10", "10.0.1.11", 1, 443)
	v.VLAN = true
	expect(t, "vlan", m.Send(v))
	v.VLAN, v.EtherType = false, EtherIPv6
	expect(t, "ipv6", m.Send(v))
}
