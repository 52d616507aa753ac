package translate

import (
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// publicToPrivate maps each public address associated in VPC vpcID (an
// elastic IP or an auto-assigned public IP, not a NAT gateway's) to its
// private address, for the VPC's resolver; nil when there is none.
func (b *builder) publicToPrivate(vpcID string) map[netip.Addr]netip.Addr {
	var m map[netip.Addr]netip.Addr
	for _, e := range b.st.InterfacesOf(vpcID) {
		if e.InterfaceType == vpc.InterfaceTypeNatGateway {
			continue
		}
		for _, a := range b.st.AddressesOfInterface(e.ID) {
			priv := a.PrivateIPAddress
			if !priv.IsValid() {
				priv = e.PrimaryIP()
			}
			if !a.PublicIP.Is4() || !priv.Is4() {
				continue // elasticIPs reports it
			}
			if m == nil {
				m = map[netip.Addr]netip.Addr{}
			}
			m[a.PublicIP] = priv
		}
	}
	return m
}

// elasticIPs produces the VPC uplink's chains: a stateless 1:1 NAT per
// associated address (DNAT public → private coming in, SNAT private →
// public going out, port range 0..0), and the edge's /32 route for each
// public address to this VPC's router. Anything else crossing the uplink is
// dropped: an instance without a public address does not reach the
// internet, as on AWS. It returns the in and out chain ids.
func (b *builder) elasticIPs(x *vpcCtx) (string, string) {
	v := x.v
	in := &topology.Chain{Meta: meta(v.ID, v.ID, "uplink-in", v.ID+"/uplink-in")}
	out := &topology.Chain{Meta: meta(v.ID, v.ID, "uplink-out", v.ID+"/uplink-out")}
	drop := topology.Rule{ID: "no-public-address", Action: topology.ActionDrop, Condition: topology.Condition{EtherType: etherIPv4}}
	// Traffic between joined VPCs passes untranslated, first.
	in.Rules, out.Rules = b.join(x)
	if g := b.st.InternetGatewayOf(v.ID); g != nil && g.Down {
		// A router set down (Neutron's admin_state_up false): its
		// network's floating IPs and SNAT address are neither translated
		// nor routed to it until it is up again.
		in.Rules, out.Rules = append(in.Rules, drop), append(out.Rules, drop)
		b.add(in)
		b.add(out)
		return in.ID, out.ID
	}
	seen := map[netip.Addr]string{}
	for _, e := range b.st.InterfacesOf(v.ID) {
		if e.InterfaceType == vpc.InterfaceTypeNatGateway {
			continue // its address is the NAT gateway's, translated there
		}
		for _, a := range b.st.AddressesOfInterface(e.ID) {
			priv := a.PrivateIPAddress
			if !priv.IsValid() {
				priv = e.PrimaryIP()
			}
			switch {
			case !a.PublicIP.Is4() || !priv.Is4():
				b.skip(a.AllocationID, "public %s or private %s is not an IPv4 address", a.PublicIP, priv)
				continue
			case seen[a.PublicIP] != "":
				b.skip(a.AllocationID, "public address %s is also %s", a.PublicIP, seen[a.PublicIP])
				continue
			}
			seen[a.PublicIP] = a.AllocationID
			pub := netip.PrefixFrom(a.PublicIP, 32)
			in.Rules = append(in.Rules, topology.Rule{
				ID: a.AllocationID, Action: topology.ActionDNAT,
				Condition:  topology.Condition{EtherType: etherIPv4, NwDst: pub},
				NATTargets: []topology.NATTarget{{AddrFrom: priv, AddrTo: priv}},
			})
			out.Rules = append(out.Rules, topology.Rule{
				ID: a.AllocationID, Action: topology.ActionSNAT,
				Condition:  topology.Condition{EtherType: etherIPv4, NwSrc: netip.PrefixFrom(priv, 32)},
				NATTargets: []topology.NATTarget{{AddrFrom: a.PublicIP, AddrTo: a.PublicIP}},
			})
			b.route(a.AllocationID, v.ID, "edge", ObjectID(CloudObject, "edge-router"), topology.RouteNormal,
				netip.Prefix{}, pub, b.edgeTransitPort, x.transitAddr, 0)
		}
	}
	if s := v.SNATAddress; s.Is4() && v.CidrBlock.IsValid() && seen[s] == "" {
		// A Neutron router's gateway with SNAT: what has no public
		// address of its own leaves as s (stateful PAT, as a NAT
		// gateway), after the 1:1 rules above took the rest.
		pub := netip.PrefixFrom(s, 32)
		in.Rules = append(in.Rules, topology.Rule{ID: "unsnat", Action: topology.ActionRevSNAT, Condition: topology.Condition{EtherType: etherIPv4, NwDst: pub}})
		for _, proto := range []int{6, 17, 1} {
			out.Rules = append(out.Rules, topology.Rule{
				ID: map[int]string{6: "snat-tcp", 17: "snat-udp", 1: "snat-icmp"}[proto], Action: topology.ActionSNAT,
				Condition:  topology.Condition{EtherType: etherIPv4, NwSrc: v.CidrBlock, NwProto: u8(proto)},
				NATTargets: []topology.NATTarget{{AddrFrom: s, AddrTo: s, PortFrom: natPortFrom, PortTo: natPortTo}}})
		}
		b.route(v.ID, v.ID, "edge-snat", ObjectID(CloudObject, "edge-router"), topology.RouteNormal,
			netip.Prefix{}, pub, b.edgeTransitPort, x.transitAddr, 0)
	} else if s.IsValid() {
		b.skip(v.ID, "SNAT address %s is not an IPv4 address of its own, or the VPC has no block", s)
	}
	in.Rules = append(in.Rules, drop)
	out.Rules = append(out.Rules, drop)
	b.add(in)
	b.add(out)
	return in.ID, out.ID
}

func natActive(n *vpc.NatGateway) bool {
	return n.State == vpc.StateAvailable || n.State == vpc.StatePending
}

// NAT gateway port range for PAT.
const natPortFrom, natPortTo = 1024, 65535

// natGateway produces a NAT gateway's router: one port in its subnet at its
// private address, one on the transit bridge; the uplink SNATs TCP, UDP
// and ICMP from the VPC to the gateway's public address (stateful PAT) and
// undoes it on the way back, both behind the subnet's network ACL; the edge routes the public /32 to it.
func (b *builder) natGateway(x *vpcCtx, n *vpc.NatGateway) {
	if !natActive(n) {
		return
	}
	switch {
	case n.TransitIndex < 2 || n.TransitIndex > vpc.MaxTransitIndex:
		b.skip(n.ID, "transit index %d is outside 2..%d", n.TransitIndex, vpc.MaxTransitIndex)
		return
	case !n.PublicIP.Is4() || !n.PrivateIP.Is4():
		b.skip(n.ID, "needs an IPv4 public and private address")
		return
	case x.bridges[n.SubnetID] == "":
		b.skip(n.ID, "subnet %s is not realized", n.SubnetID)
		return
	}
	sub := b.st.Subnets[n.SubnetID]
	if !sub.CidrBlock.Contains(n.PrivateIP) || sub.Reserved(n.PrivateIP) {
		b.skip(n.ID, "private address %s is not a usable address of %s", n.PrivateIP, sub.CidrBlock)
		return
	}
	v := x.v
	r := &topology.Router{Meta: meta(n.ID, v.ID, "router", n.ID)}
	b.add(r)

	sp := b.link(n.ID, v.ID, "subnet", n.ID+"/subnet", r.ID, x.bridges[n.SubnetID], netip.PrefixFrom(n.PrivateIP, sub.CidrBlock.Bits()), b.vmMTU)
	if e := b.st.NetworkInterfaces[n.NetworkInterfaceID]; e != nil {
		// The gateway answers with its interface's MAC, as DescribeNetworkInterfaces shows it.
		if mac, err := topology.ParseMAC(e.MacAddress); err == nil && !mac.IsMulticast() && !mac.IsZero() {
			sp.MAC = mac
			b.objs[topology.ObjectKey{Kind: topology.KindPort, ID: sp.PeerID}].(*topology.Port).MAC = mac
		}
	}
	b.connected(n.ID, v.ID, "subnet", r.ID, sp)

	addr := b.transitAddr(n.TransitIndex)
	up := b.link(n.ID, v.ID, "uplink", n.ID+"/uplink", r.ID, b.transitBridge, netip.PrefixFrom(addr, b.cfg.TransitCIDR.Bits()), b.vmMTU)
	b.connected(n.ID, v.ID, "uplink", r.ID, up)

	pub := netip.PrefixFrom(n.PublicIP, 32)
	in := &topology.Chain{Meta: meta(n.ID, v.ID, "uplink-in", n.ID+"/uplink-in")}
	out := &topology.Chain{Meta: meta(n.ID, v.ID, "uplink-out", n.ID+"/uplink-out")}
	// The subnet's ACL sees the internet side as AWS shows it: the
	// gateway's own port before the translation back, the remote's port
	// after the translation out is decided.
	if aclIn, aclOut := b.natACL(v.ID, sub); aclIn != "" {
		in.Rules = append(in.Rules, topology.Rule{ID: "network-acl", Action: topology.ActionJump, JumpChain: aclIn})
		out.Rules = append(out.Rules, topology.Rule{ID: "network-acl", Action: topology.ActionJump, JumpChain: aclOut})
	}
	in.Rules = append(in.Rules,
		topology.Rule{ID: "unnat", Action: topology.ActionRevSNAT, Condition: topology.Condition{EtherType: etherIPv4, NwDst: pub}},
		topology.Rule{ID: "not-translated", Action: topology.ActionDrop, Condition: topology.Condition{EtherType: etherIPv4}})
	// Nothing goes to the gateway's own public address through it: the
	// packet would come back in looking like its own reply.
	out.Rules = append(out.Rules, topology.Rule{ID: "own-address", Action: topology.ActionDrop, Condition: topology.Condition{EtherType: etherIPv4, NwDst: pub}})
	// TCP, UDP and ICMP only, as an AWS NAT gateway: another protocol has
	// no port to tell its connections apart.
	for _, proto := range []int{6, 17, 1} {
		out.Rules = append(out.Rules, topology.Rule{
			ID: map[int]string{6: "nat-tcp", 17: "nat-udp", 1: "nat-icmp"}[proto], Action: topology.ActionSNAT,
			Condition:  topology.Condition{EtherType: etherIPv4, NwSrc: v.CidrBlock, NwProto: u8(proto)},
			NATTargets: []topology.NATTarget{{AddrFrom: n.PublicIP, AddrTo: n.PublicIP, PortFrom: natPortFrom, PortTo: natPortTo}}})
	}
	out.Rules = append(out.Rules, topology.Rule{ID: "not-translated", Action: topology.ActionDrop, Condition: topology.Condition{EtherType: etherIPv4}})
	b.add(in)
	b.add(out)
	up.InFilter, up.OutFilter = in.ID, out.ID

	b.route(n.ID, v.ID, "default", r.ID, topology.RouteNormal, netip.Prefix{}, netip.MustParsePrefix("0.0.0.0/0"), up.ID, b.edgeTransitAddr, 0)
	if gw, ok := sub.Gateway(); ok {
		b.route(n.ID, v.ID, "vpc", r.ID, topology.RouteNormal, netip.Prefix{}, v.CidrBlock, sp.ID, gw, 0)
	}
	b.route(n.ID, v.ID, "edge", ObjectID(CloudObject, "edge-router"), topology.RouteNormal, netip.Prefix{}, pub, b.edgeTransitPort, addr, 0)
}
