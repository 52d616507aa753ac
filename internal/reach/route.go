package reach

import (
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// linkLocal is never routed: the metadata service is answered at the
// interface, and the rest is the cloud's own plumbing.
var linkLocal = netip.MustParsePrefix("169.254.0.0/16")

// fromSubnet is a packet the VPC router receives from subnet sub: it
// leaves the subnet (its ACL's egress entries), then goes by destination:
// a subnet of the VPC, nowhere for the rest of the VPC's range, else the
// subnet's route table.
//
// A packet the router sends back into the subnet it came from crosses that
// subnet's ACL out and in. AWS does not evaluate the ACL for traffic that
// stays in a subnet; Canopy is stricter here, never more permissive.
func (m *Model) fromSubnet(v *vpc.Vpc, sub *vpc.Subnet, ip *IPv4) {
	if !m.aclAllows(sub, true, ip) {
		return
	}
	m.vpcRoute(v, sub, ip)
}

// vpcRoute routes a packet at the VPC router; sub is the subnet it came
// from (nil: from the internet gateway).
func (m *Model) vpcRoute(v *vpc.Vpc, sub *vpc.Subnet, ip *IPv4) {
	if m.routerAddr(v, ip.Dst) || linkLocal.Contains(ip.Dst) {
		return // to the router itself (an echo is answered, not delivered)
	}
	if s := m.subnetOf(v, ip.Dst); s != nil {
		m.toSubnet(s, ip)
		return
	}
	if v.CidrBlock.Contains(ip.Dst) || sub == nil {
		return
	}
	t := m.st.RouteTableFor(sub)
	if t == nil {
		return
	}
	var best *vpc.Route
	for i := range t.Routes {
		r := &t.Routes[i]
		if k, _, _ := r.Target(); k == vpc.TargetLocal || !r.DestinationCidrBlock.Contains(ip.Dst) {
			continue
		}
		if best == nil || r.DestinationCidrBlock.Bits() > best.DestinationCidrBlock.Bits() {
			best = r
		}
	}
	if best == nil || best.State == vpc.RouteBlackhole {
		return
	}
	kind, id, _ := best.Target()
	switch kind {
	case vpc.TargetIGW:
		if g := m.st.InternetGateways[id]; g != nil && g.AttachedTo(v.ID) {
			m.igwOut(v, ip)
		}
	case vpc.TargetNat:
		n := m.st.NatGateways[id]
		if n == nil || n.VpcID != v.ID || !natActive(n) {
			return
		}
		if s := m.st.Subnets[n.SubnetID]; s != nil && m.aclAllows(s, false, ip) {
			m.natOut(v, n, ip)
		}
	case vpc.TargetInterface, vpc.TargetInstance:
		e := m.st.NetworkInterfaces[id]
		if kind == vpc.TargetInstance {
			e = m.st.PrimaryInterface(id)
		}
		if e == nil || e.VpcID != v.ID || !e.PrimaryIP().IsValid() {
			return
		}
		if s := m.st.Subnets[e.SubnetID]; s != nil && m.aclAllows(s, false, ip) {
			if n := m.natOfENI(e); n != nil {
				m.natOut(v, n, ip)
			} else {
				m.toENI(e, ip)
			}
		}
	}
}

// routerAddr reports whether a is one of the VPC router's own addresses
// (its subnets' gateways).
func (m *Model) routerAddr(v *vpc.Vpc, a netip.Addr) bool {
	for _, s := range m.st.SubnetsOf(v.ID) {
		if gw, ok := s.Gateway(); ok && gw == a {
			return true
		}
	}
	return false
}

func (m *Model) subnetOf(v *vpc.Vpc, a netip.Addr) *vpc.Subnet {
	for _, s := range m.st.SubnetsOf(v.ID) {
		if s.CidrBlock.Contains(a) {
			return s
		}
	}
	return nil
}

// toSubnet is the VPC router sending into subnet sub (its ACL's ingress
// entries) to whoever holds the destination.
func (m *Model) toSubnet(sub *vpc.Subnet, ip *IPv4) {
	h, ok := m.holderOf(sub, ip.Dst)
	if !ok || h.gateway || h.nat != nil {
		return // nobody, the router, or a NAT gateway's own address
	}
	if m.aclAllows(sub, false, ip) {
		m.toENI(h.eni, ip)
	}
}

// elasticIP returns the public address associated with private address a
// of VPC v.
func (m *Model) elasticIP(v *vpc.Vpc, a netip.Addr) (netip.Addr, bool) {
	for _, e := range m.st.InterfacesOf(v.ID) {
		if e.InterfaceType == vpc.InterfaceTypeNatGateway {
			continue
		}
		for _, addr := range m.st.AddressesOfInterface(e.ID) {
			priv := addr.PrivateIPAddress
			if !priv.IsValid() {
				priv = e.PrimaryIP()
			}
			if priv == a && addr.PublicIP.Is4() {
				return addr.PublicIP, true
			}
		}
	}
	return netip.Addr{}, false
}

// byPublic finds who holds public address a: a VPC (and the private
// address behind it) or a NAT gateway.
func (m *Model) byPublic(a netip.Addr) (*vpc.Vpc, netip.Addr, *vpc.NatGateway) {
	for _, v := range m.st.SortedVpcs() {
		for _, e := range m.st.InterfacesOf(v.ID) {
			if e.InterfaceType == vpc.InterfaceTypeNatGateway {
				continue
			}
			for _, addr := range m.st.AddressesOfInterface(e.ID) {
				if addr.PublicIP == a {
					priv := addr.PrivateIPAddress
					if !priv.IsValid() {
						priv = e.PrimaryIP()
					}
					return v, priv, nil
				}
			}
		}
		for _, n := range m.st.NatGatewaysOf(v.ID) {
			if natActive(n) && n.PublicIP == a {
				return v, netip.Addr{}, n
			}
		}
	}
	return nil, netip.Addr{}, nil
}

// igwOut: the internet gateway lets out only addresses with an elastic IP,
// translated to it.
func (m *Model) igwOut(v *vpc.Vpc, ip *IPv4) {
	pub, ok := m.elasticIP(v, ip.Src)
	if !ok {
		return
	}
	q := *ip
	q.Src = pub
	m.edge(&q)
}

// edge is a packet on the internet (from outside, or leaving a VPC): to an
// elastic IP or a NAT gateway of the cloud, back in; to the rest of the
// public pools, nowhere; else out.
func (m *Model) edge(ip *IPv4) {
	if linkLocal.Contains(ip.Dst) {
		return
	}
	if v, priv, n := m.byPublic(ip.Dst); v != nil {
		if n != nil {
			m.natIn(v, n, ip)
			return
		}
		q := *ip
		q.Dst = priv
		m.vpcRoute(v, nil, &q)
		return
	}
	for _, p := range m.cloud.PublicPools {
		if p.Contains(ip.Dst) {
			return
		}
	}
	m.deliver(deliveryOf(Outside, ip))
}

// natOut is a NAT gateway receiving a packet from its subnet: the VPC's
// own addresses go back to the VPC router; the rest, if it comes from the
// VPC, leaves (through the subnet's ACL) from the gateway's public address
// and a port of its choosing.
func (m *Model) natOut(v *vpc.Vpc, n *vpc.NatGateway, ip *IPv4) {
	sub := m.st.Subnets[n.SubnetID]
	if ip.Dst == n.PrivateIP || linkLocal.Contains(ip.Dst) {
		return
	}
	if v.CidrBlock.Contains(ip.Dst) {
		m.natToVPC(v, sub, ip)
		return
	}
	if !v.CidrBlock.Contains(ip.Src) || ip.Later() || !natProto(ip.Proto) || !m.aclAllows(sub, true, ip) {
		return
	}
	q := *ip
	q.Src = n.PublicIP
	inside := tupleOf(ip)
	if !ip.ported() {
		m.natBind(n, inside, &q, 0)
		m.edge(&q)
		return
	}
	if port, ok := m.natFwd[connKey{n.ID, inside}]; ok {
		setNATPort(&q, port)
		m.edge(&q)
		return
	}
	// The port is the gateway's choice, learnt with Bind: until then the
	// packet goes on with port 0, which no rule looks at (rules match
	// destination ports), and so do the connections it opens downstream.
	setNATPort(&q, 0)
	before := len(m.out)
	m.edge(&q)
	for i := before; i < len(m.out); i++ {
		d := &m.out[i]
		d.AnySrcPort = true
		d.bind = func(port uint16) {
			m.natBind(n, inside, &q, port)
			m.rebindConns(q, port)
		}
	}
}

// rebindConns gives the connections a NAT'd packet opened with port 0 the
// port the gateway chose.
func (m *Model) rebindConns(q IPv4, port uint16) {
	t := tupleOf(&q) // the destination may have been translated since (an elastic IP)
	for k := range m.conns {
		if k.t.src == t.src && k.t.sport == t.sport && k.t.dport == t.dport && k.t.proto == t.proto {
			delete(m.conns, k)
			k.t.sport = port
			if q.echo() {
				k.t.dport = port
			}
			m.conns[k] = true
		}
	}
}

// natProto: a NAT gateway translates TCP, UDP and ICMP, nothing else.
func natProto(p uint8) bool { return p == ProtoTCP || p == ProtoUDP || p == ProtoICMP }

func setNATPort(q *IPv4, port uint16) {
	q.SrcPort = port
	if q.echo() {
		q.DstPort = port
	}
}

// natBind records that inside connection t leaves NAT gateway n as q from
// port (0: a protocol without ports).
func (m *Model) natBind(n *vpc.NatGateway, t tuple, q *IPv4, port uint16) {
	m.natFwd[connKey{n.ID, t}] = port
	remotePort := t.dport
	if q.echo() {
		remotePort = port
	}
	m.natRev[natRev{nat: n.ID, proto: t.proto, remote: t.dst, remotePort: remotePort, publicPort: port}] = t
}

// natIn is a packet from the internet to NAT gateway n: through the
// subnet's ACL, only replies to its connections, translated back.
func (m *Model) natIn(v *vpc.Vpc, n *vpc.NatGateway, ip *IPv4) {
	sub := m.st.Subnets[n.SubnetID]
	if !m.aclAllows(sub, false, ip) {
		return
	}
	k := natRev{nat: n.ID, proto: ip.Proto, remote: ip.Src}
	if ip.ported() {
		k.remotePort, k.publicPort = ip.SrcPort, ip.DstPort
	}
	t, ok := m.natRev[k]
	if !ok {
		return
	}
	q := *ip
	q.Dst = t.src
	if q.ported() {
		q.DstPort = t.sport
		if q.echo() {
			q.SrcPort = t.sport
		}
	}
	m.natToVPC(v, sub, &q)
}

// natToVPC: a NAT gateway reaches its own subnet directly (no border to
// cross), the rest of its VPC through the VPC router.
func (m *Model) natToVPC(v *vpc.Vpc, sub *vpc.Subnet, ip *IPv4) {
	if !sub.CidrBlock.Contains(ip.Dst) {
		m.fromSubnet(v, sub, ip)
		return
	}
	if h, ok := m.holderOf(sub, ip.Dst); ok && h.nat == nil && !h.gateway {
		m.toENI(h.eni, ip)
	}
}
