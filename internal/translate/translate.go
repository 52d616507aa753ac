package translate

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Desired is the topology that realizes a VPC state.
type Desired struct {
	// Objects in topology.Kinds order (the order to create them in), then
	// by id.
	Objects []topology.Object
	// Skipped lists VPC objects that could not be realized and why (a
	// bad MAC, a VPC without a transit index…), for the controller to log
	// and surface; the rest of the state is still translated.
	Skipped []Skip
	// Gateways is how each gateway of the cloud config resolved to a host,
	// in config order (the cloud partition only).
	Gateways []GatewayStatus
}

// Skip is a VPC object the translator left out.
type Skip struct {
	Object string
	Reason string
}

// Weights of the routes a route table produces, so that for equal prefixes
// an internet gateway wins over a NAT gateway over an interface (as in
// Eucalyptus); a route table has one route per destination anyway.
const (
	weightIGW = 10
	weightNAT = 20
	weightENI = 30
	// weightFallback is the weight of the catch-all blackholes (a public
	// pool at the edge, a VPC's CIDR at its router): they drop what no
	// other route takes and must lose to any route of the same prefix (the
	// store's default weight is 100). A pool given as a range splits into
	// prefixes down to /32, so an elastic IP's /32 route can tie with one
	// of them, and a subnet may be as large as its VPC; with equal weights
	// they were ECMP next hops and some flows were blackholed, by hash.
	weightFallback = 1000
)

// EtherTypes the chains match on.
const (
	etherIPv4 = 0x0800
	etherARP  = 0x0806
)

type builder struct {
	st    *vpc.State
	cfg   CloudConfig
	objs  map[topology.ObjectKey]topology.Object
	skips []Skip
	// hosts are what gateways resolve against when resolve is set.
	hosts    []*topology.Host
	resolve  bool
	gwStatus []GatewayStatus

	edgeTransitAddr netip.Addr
	edgeTransitPort string
	transitBridge   string
	vmMTU           int
	// joins: VPC id → the VPCs up gateways join it with (joinedVPCs).
	joins map[string][]string
}

// Translate computes the desired topology of a VPC state. It takes every
// gateway's host to exist under the id its config names (for tools and
// tests without Host objects); the controller translates the cloud
// partition with TranslateCloud, which resolves gateways against the
// store's hosts.
func Translate(st *vpc.State, cloud CloudConfig) *Desired {
	cfg := cloud.withDefaults()
	b := &builder{st: st, cfg: cfg, objs: map[topology.ObjectKey]topology.Object{}, vmMTU: cfg.UnderlayMTU - VXLANOverhead}
	b.edge()
	for _, v := range st.SortedVpcs() {
		b.vpc(v)
	}
	return b.result()
}

func (b *builder) result() *Desired {
	d := &Desired{Objects: make([]topology.Object, 0, len(b.objs)), Skipped: b.skips, Gateways: b.gwStatus}
	for _, o := range b.objs {
		d.Objects = append(d.Objects, o)
	}
	order := map[topology.Kind]int{}
	for i, k := range topology.Kinds {
		order[k] = i
	}
	slices.SortFunc(d.Objects, func(x, y topology.Object) int {
		if c := cmp.Compare(order[x.Kind()], order[y.Kind()]); c != 0 {
			return c
		}
		return cmp.Compare(x.GetMeta().ID, y.GetMeta().ID)
	})
	slices.SortFunc(d.Skipped, func(x, y Skip) int {
		return cmp.Or(cmp.Compare(x.Object, y.Object), cmp.Compare(x.Reason, y.Reason))
	})
	return d
}

func (b *builder) skip(obj, format string, args ...any) {
	b.skips = append(b.skips, Skip{obj, fmt.Sprintf(format, args...)})
}

// meta makes the metadata of the object playing role for vpcObject.
func meta(vpcObject, vpcID, role, name string) topology.Meta {
	l := map[string]string{LabelOwner: OwnerValue, LabelObject: vpcObject}
	if vpcID != "" {
		l[LabelVPC] = vpcID
	}
	return topology.Meta{ID: ObjectID(vpcObject, role), Name: name, Labels: l}
}

func (b *builder) add(o topology.Object) {
	k := topology.Key(o)
	if _, dup := b.objs[k]; dup {
		panic("translate: object produced twice: " + k.String() + " " + o.GetMeta().Name) // a bug in the roles
	}
	b.objs[k] = o
}

func (b *builder) transitAddr(index int) netip.Addr { return vpc.Nth(b.cfg.TransitCIDR, index) }

// edge produces the edge router, its uplinks and the transit bridge.
func (b *builder) edge() {
	c := b.cfg
	r := &topology.Router{Meta: meta(CloudObject, "", "edge-router", "canopy-edge")}
	r.BGP = edgeBGP(c)
	b.add(r)

	// The transit bridge drops IPv4 addressed to the transit network
	// itself, so a tenant cannot reach the edge or another VPC's router
	// by its link-local address (ARP still passes).
	tin := &topology.Chain{Meta: meta(CloudObject, "", "transit-in", "canopy-transit-in"), Rules: []topology.Rule{{
		ID: "no-transit-dst", Action: topology.ActionDrop,
		Condition: topology.Condition{EtherType: etherIPv4, NwDst: c.TransitCIDR},
	}}}
	b.add(tin)
	br := &topology.Bridge{Meta: meta(CloudObject, "", "transit-bridge", "canopy-transit"), InFilter: tin.ID}
	b.add(br)
	b.transitBridge = br.ID

	b.edgeTransitAddr = b.transitAddr(1)
	tp := b.link(CloudObject, "", "edge-transit", "edge/transit", r.ID, br.ID, netip.PrefixFrom(b.edgeTransitAddr, c.TransitCIDR.Bits()), b.vmMTU)
	b.edgeTransitPort = tp.ID
	b.connected(CloudObject, "", "edge-transit", r.ID, tp)

	var uplinks []string
	b.gwStatus = b.gateways()
	for i, g := range c.Gateways {
		// The port's id follows the config, not the host it resolves to:
		// the host registering, or a rename, only rebinds it.
		role := fmt.Sprintf("uplink/%s/%s", g.ref(), g.Interface)
		p := &topology.Port{
			Meta:       meta(CloudObject, "", role, fmt.Sprintf("edge/uplink%d", i)),
			DeviceKind: topology.KindRouter, DeviceID: r.ID,
			Address: g.Address, MTU: g.MTU, ProxyARP: g.ProxyARP,
		}
		if st := b.gwStatus[i]; st.State == GatewayBound {
			p.HostID, p.Interface = st.HostID, g.Interface
		}
		p.MAC = routerMAC(p.ID)
		b.add(p)
		uplinks = append(uplinks, p.ID)
		b.connected(CloudObject, "", role, r.ID, p)
		if g.NextHop.IsValid() {
			b.route(CloudObject, "", role+"/default", r.ID, topology.RouteNormal, netip.Prefix{}, netip.MustParsePrefix("0.0.0.0/0"), p.ID, g.NextHop, 0)
		}
	}
	if len(uplinks) > 0 {
		// Stateful: the gateways share connection state, so return traffic
		// may come back through any uplink.
		b.add(&topology.PortGroup{Meta: meta(CloudObject, "", "uplinks", "edge/uplinks"), Stateful: true, Ports: uplinks})
	}
	for _, pool := range c.PublicPools {
		// weightFallback: an elastic IP can be a block of the pools by itself
		// (the server splits its EC2 pool range into CIDR blocks), and its
		// /32 route must win over the blackhole, never share flows with it.
		b.route(CloudObject, "", "pool/"+pool.String(), r.ID, topology.RouteBlackhole, netip.Prefix{}, pool, "", netip.Addr{}, weightFallback)
	}
}

// link makes a router port on routerID linked to a new port on bridgeID;
// it returns the router port. The links are symmetric (PeerID on both
// sides), as the store keeps them.
func (b *builder) link(obj, vpcID, role, name, routerID, bridgeID string, addr netip.Prefix, mtu int) *topology.Port {
	rp := &topology.Port{
		Meta:       meta(obj, vpcID, role+"/router-port", name),
		DeviceKind: topology.KindRouter, DeviceID: routerID, Address: addr, MTU: mtu,
	}
	rp.MAC = routerMAC(rp.ID)
	bp := &topology.Port{
		Meta:       meta(obj, vpcID, role+"/bridge-port", name),
		DeviceKind: topology.KindBridge, DeviceID: bridgeID,
		// Seed the bridge's MAC and ARP tables with the router port.
		MAC: rp.MAC, IPs: []netip.Addr{addr.Addr()}, MTU: mtu,
	}
	bp.Name = name + "/peer"
	rp.PeerID, bp.PeerID = bp.ID, rp.ID
	b.add(rp)
	b.add(bp)
	return rp
}

// connected adds a router port's subnet route and its local /32 route;
// role names the port among obj's objects.
func (b *builder) connected(obj, vpcID, role, routerID string, p *topology.Port) {
	if p.Address.Bits() < 32 {
		b.route(obj, vpcID, role+"/subnet", routerID, topology.RouteNormal, netip.Prefix{}, p.Address.Masked(), p.ID, netip.Addr{}, 0)
	}
	b.route(obj, vpcID, role+"/local", routerID, topology.RouteLocal, netip.Prefix{}, netip.PrefixFrom(p.Address.Addr(), 32), p.ID, netip.Addr{}, 0)
}

func (b *builder) route(obj, vpcID, role, routerID string, typ topology.RouteType, src, dst netip.Prefix, port string, gw netip.Addr, weight int) {
	b.add(&topology.Route{
		Meta:     meta(obj, vpcID, "route/"+role, obj+" "+role),
		RouterID: routerID, Type: typ, SrcPrefix: src, DstPrefix: dst,
		NextHopPort: port, NextHopGateway: gw, Weight: weight,
	})
}

// subnetRoute is a route of a subnet's route table: it applies to what
// enters the VPC router from that subnet (its router port), whatever the
// source address, as AWS picks the table by the sender's subnet.
func (b *builder) subnetRoute(obj, vpcID, role, routerID, in string, typ topology.RouteType, dst netip.Prefix, port string, gw netip.Addr, weight int) {
	b.add(&topology.Route{
		Meta:     meta(obj, vpcID, "route/"+role, obj+" "+role),
		RouterID: routerID, Type: typ, InPort: in, DstPrefix: dst,
		NextHopPort: port, NextHopGateway: gw, Weight: weight,
	})
}

// vpcCtx is what a VPC's pieces need to know about each other.
type vpcCtx struct {
	v           *vpc.Vpc
	router      string
	uplink      string
	transitAddr netip.Addr
	subnetPorts map[string]*topology.Port // subnet id → VPC router port
	bridges     map[string]string         // subnet id → bridge id
	pairs       map[netip.Addr][]string   // /32 allowed address pair → ports holding it (nil: not listed yet)
}

func (b *builder) vpc(v *vpc.Vpc) {
	if v.TransitIndex < 2 || v.TransitIndex > vpc.MaxTransitIndex {
		b.skip(v.ID, "transit index %d is outside 2..%d", v.TransitIndex, vpc.MaxTransitIndex)
		return
	}
	x := &vpcCtx{v: v, transitAddr: b.transitAddr(v.TransitIndex), subnetPorts: map[string]*topology.Port{}, bridges: map[string]string{}}
	r := &topology.Router{Meta: meta(v.ID, v.ID, "router", v.ID)}
	b.add(r)
	x.router = r.ID

	up := b.link(v.ID, v.ID, "uplink", v.ID+"/uplink", r.ID, b.transitBridge, netip.PrefixFrom(x.transitAddr, b.cfg.TransitCIDR.Bits()), b.vmMTU)
	x.uplink = up.ID
	b.connected(v.ID, v.ID, "uplink", r.ID, up)
	up.InFilter, up.OutFilter = b.elasticIPs(x)

	// The VPC's local route: addresses of the VPC no subnet holds go
	// nowhere (never out through a default route). A Neutron network has
	// no block of its own until its subnet gives it one.
	if v.CidrBlock.IsValid() {
		b.route(v.ID, v.ID, "local", r.ID, topology.RouteBlackhole, netip.Prefix{}, v.CidrBlock, "", netip.Addr{}, weightFallback)
	}

	acls := b.networkACLs(v)
	dhcp := b.dhcpSettings(v)
	for _, s := range b.st.SubnetsOf(v.ID) {
		b.subnet(x, s, acls, dhcp)
	}
	b.securityGroups(v)
	for _, e := range b.st.InterfacesOf(v.ID) {
		b.eni(x, e)
	}
	for _, n := range b.st.NatGatewaysOf(v.ID) {
		b.natGateway(x, n)
	}
	for _, s := range b.st.SubnetsOf(v.ID) {
		b.routeTable(x, s)
	}
}

func (b *builder) subnet(x *vpcCtx, s *vpc.Subnet, acls map[string][2]string, dhcp dhcpOpts) {
	if !s.CidrBlock.IsValid() || !x.v.CidrBlock.Contains(s.CidrBlock.Addr()) || s.CidrBlock.Bits() > 30 {
		b.skip(s.ID, "CIDR %s is not a usable subnet of %s", s.CidrBlock, x.v.CidrBlock)
		return
	}
	br := &topology.Bridge{Meta: meta(s.ID, x.v.ID, "bridge", s.ID)}
	b.add(br)
	x.bridges[s.ID] = br.ID
	// A subnet without a gateway (Neutron's gateway_ip null) has no port
	// on the network's router: it is not routed, its ports reach each
	// other only. DHCP then answers from the first address outside the
	// allocation pools (none: no DHCP).
	gw, routed := s.Gateway()
	server := gw
	if routed {
		rp := b.link(s.ID, x.v.ID, "gateway", s.ID+"/gateway", x.router, br.ID, netip.PrefixFrom(gw, s.CidrBlock.Bits()), b.vmMTU)
		x.subnetPorts[s.ID] = rp
		b.connected(s.ID, x.v.ID, "gateway", x.router, rp)
		// The ACL sits on the subnet's border, the router port: what enters
		// the router from the subnet leaves the subnet (egress entries), what
		// the router sends into the subnet enters it (ingress entries).
		if a := b.st.NetworkACLFor(s); a != nil {
			if ch, ok := acls[a.ID]; ok {
				rp.OutFilter, rp.InFilter = ch[0], ch[1]
			}
		}
	} else {
		server = serviceAddr(s)
	}

	d := &topology.DHCPSubnet{
		Meta:     meta(s.ID, x.v.ID, "dhcp", s.ID),
		BridgeID: br.ID, Subnet: s.CidrBlock, Gateway: gw, ServerAddr: server,
		DNSServers: dhcp.dns, DomainName: dhcp.domain, NTPServers: dhcp.ntp, MTU: b.vmMTU,
		Disabled: s.DHCPDisabled || !server.IsValid(),
	}
	if len(s.DNSServers) > 0 {
		d.DNSServers = slices.Clone(s.DNSServers)
	}
	for _, r := range s.HostRoutes {
		d.Routes = append(d.Routes, topology.DHCPRoute{Dest: r.Destination, Gateway: r.NextHop})
	}
	if dhcp.provided {
		region := regionOf(s.AvailabilityZone)
		d.DNS = &topology.ProvidedDNS{Address: vpc.Nth(x.v.CidrBlock, 2), VPC: x.v.CidrBlock,
			PrivateDomain: vpc.PrivateDNSDomain(region), Upstreams: b.cfg.DNSServers}
		if x.v.EnableDNSHostnames {
			d.DNS.PublicDomain = vpc.PublicDNSDomain(region)
			d.DNS.PublicToPrivate = b.publicToPrivate(x.v.ID)
		}
	}
	for _, e := range b.st.InterfacesInSubnet(s.ID) {
		mac, err := topology.ParseMAC(e.MacAddress)
		ip := e.PrimaryIP()
		if err != nil || !s.CidrBlock.Contains(ip) || ip == server || s.Reserved(ip) {
			continue // eni() reports it
		}
		d.Hosts = append(d.Hosts, topology.DHCPHost{MAC: mac, IP: ip, Name: hostName(ip)})
	}
	slices.SortFunc(d.Hosts, func(p, q topology.DHCPHost) int { return p.IP.Compare(q.IP) })
	d.Hosts = slices.CompactFunc(d.Hosts, func(p, q topology.DHCPHost) bool { return p.IP == q.IP || p.MAC == q.MAC })
	b.add(d)
}

// serviceAddr is the DHCP server's address on a subnet without a
// gateway: its first host address outside the allocation pools, none when
// the pools hold them all.
func serviceAddr(s *vpc.Subnet) netip.Addr {
	n := 1 << (32 - s.CidrBlock.Bits())
	for i := 1; i < n-1; i++ {
		a := vpc.Nth(s.CidrBlock, i)
		if !slices.ContainsFunc(s.AllocationPools(), func(r vpc.AddrRange) bool { return r.Contains(a) }) {
			return a
		}
	}
	return netip.Addr{}
}

// hostName is the AWS-style private host name of an address, ip-10-0-1-5.
func hostName(a netip.Addr) string {
	b := a.As4()
	return fmt.Sprintf("ip-%d-%d-%d-%d", b[0], b[1], b[2], b[3])
}

type dhcpOpts struct {
	dns, ntp []netip.Addr
	domain   string
	// provided: the VPC's resolver is handed out (AmazonProvidedDNS with
	// DNS support on).
	provided bool
}

// dhcpSettings resolves the VPC's DHCP option set ("default" = the cloud's
// DNS servers and domain). AmazonProvidedDNS is the cloud's DNS servers, and
// nothing when the VPC's enableDnsSupport is off.
func (b *builder) dhcpSettings(v *vpc.Vpc) dhcpOpts {
	o := dhcpOpts{domain: b.cfg.DomainName}
	amazon := func() {
		if v.EnableDNSSupport && !o.provided {
			o.dns = append(o.dns, vpc.Nth(v.CidrBlock, 2))
			o.provided = true
		}
	}
	set := b.st.DhcpOptions[v.DhcpOptionsID]
	if set == nil {
		amazon()
		return o
	}
	o.domain = ""
	if ds := set.Config[vpc.DhcpDomainName]; len(ds) > 0 {
		o.domain = ds[0]
	}
	for _, s := range set.Config[vpc.DhcpDomainNameServers] {
		if s == vpc.AmazonProvidedDNS {
			amazon()
		} else if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			o.dns = append(o.dns, a)
		}
	}
	for _, s := range set.Config[vpc.DhcpNTPServers] {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			o.ntp = append(o.ntp, a)
		}
	}
	return o
}

// routeTable renders the route table of one subnet as routes on the VPC
// router limited to what enters from the subnet's router port.
func (b *builder) routeTable(x *vpcCtx, s *vpc.Subnet) {
	if x.subnetPorts[s.ID] == nil {
		return
	}
	t := b.st.RouteTableFor(s)
	if t == nil {
		return
	}
	for _, rt := range t.Routes {
		kind, id, _ := rt.Target()
		if kind == vpc.TargetLocal {
			continue // the subnet routes and the VPC's blackhole are the local route
		}
		role := s.ID + "/" + rt.DestinationCidrBlock.String()
		in := x.subnetPorts[s.ID].ID
		add := func(port string, gw netip.Addr, w int) {
			b.subnetRoute(t.ID, x.v.ID, role, x.router, in, topology.RouteNormal, rt.DestinationCidrBlock, port, gw, w)
		}
		blackhole := func() {
			b.subnetRoute(t.ID, x.v.ID, role, x.router, in, topology.RouteBlackhole, rt.DestinationCidrBlock, "", netip.Addr{}, 0)
		}
		if rt.State == vpc.RouteBlackhole {
			blackhole()
			continue
		}
		switch kind {
		case vpc.TargetIGW:
			if g := b.st.InternetGateways[id]; g != nil && g.AttachedTo(x.v.ID) && !g.Down {
				add(x.uplink, b.edgeTransitAddr, weightIGW)
				continue
			}
		case vpc.TargetNat:
			if n := b.st.NatGateways[id]; n != nil && n.VpcID == x.v.ID && natActive(n) && x.subnetPorts[n.SubnetID] != nil {
				add(x.subnetPorts[n.SubnetID].ID, n.PrivateIP, weightNAT)
				continue
			}
		case vpc.TargetInterface, vpc.TargetInstance:
			e := b.st.NetworkInterfaces[id]
			if kind == vpc.TargetInstance {
				e = b.st.PrimaryInterface(id)
			}
			if e != nil && e.VpcID == x.v.ID && x.subnetPorts[e.SubnetID] != nil && e.PrimaryIP().IsValid() {
				add(x.subnetPorts[e.SubnetID].ID, e.PrimaryIP(), weightENI)
				continue
			}
		case vpc.TargetAddress:
			// An address on one of the VPC's subnets (a Neutron static
			// route's next hop): sent there, resolved by ARP.
			if sub := b.subnetHolding(x, rt.NextHop); sub != "" {
				add(x.subnetPorts[sub].ID, rt.NextHop, weightENI)
				continue
			}
		}
		// A target that is gone, detached or elsewhere drops the traffic,
		// as AWS shows such a route: state blackhole.
		blackhole()
	}
}

// regionOf is the region of an availability zone: us-east-1a → us-east-1.
func regionOf(zone string) string {
	if n := len(zone); n > 1 && zone[n-1] >= 'a' && zone[n-1] <= 'z' && zone[n-2] >= '0' && zone[n-2] <= '9' {
		return zone[:n-1]
	}
	return zone
}

// subnetHolding is the realized subnet of x's VPC whose block holds a ("" if none).
func (b *builder) subnetHolding(x *vpcCtx, a netip.Addr) string {
	for _, s := range b.st.SubnetsOf(x.v.ID) {
		if x.subnetPorts[s.ID] != nil && s.CidrBlock.Contains(a) {
			return s.ID
		}
	}
	return ""
}
