package topology

import (
	"net/netip"
)

// Validate methods check one object on its own: every field, nothing that
// needs another object (that is Check's job). Each returns a *FieldError whose
// Field is the JSON path of the first bad field ("rules[2].tp_dst") and whose
// Reason says what is wrong with the value, so an operator can fix the request
// without reading the code. The topology speaks IPv4 only (the overlay, the
// simulator and the EC2 VPC shapes Canopy implements are IPv4), except for the
// addresses a host reports on its own interfaces.

// Limits.
const (
	maxNameLen     = 255   // Meta.Name
	maxLabelKeyLen = 63    // Meta.Labels keys
	maxLabelValLen = 255   // Meta.Labels values
	maxIDLen       = 128   // ids are etcd key segments and URL path segments
	maxIfNameLen   = 15    // Linux IFNAMSIZ - 1
	minMTU         = 576   // the minimum IPv4 datagram every link must carry
	maxMTU         = 9000  // jumbo frames
	maxBGPPassword = 80    // TCP_MD5SIG_MAXKEYLEN
	minHoldTime    = 3     // RFC 4271 §4.2: 0 or at least 3 seconds
	asTrans        = 23456 // RFC 6793 AS_TRANS, a placeholder, never a real AS
	minLeaseTime   = 60
	maxLeaseTime   = 365 * 24 * 3600

	// defaultHoldTime is the hold time a BGP peer with HoldTime 0 gets
	// (GoBGP's and RFC 4271's suggested default).
	defaultHoldTime = 90
)

func (r *Router) Validate() error {
	if err := validateMeta(&r.Meta); err != nil {
		return err
	}
	if err := validateFilters(r.InFilter, r.OutFilter); err != nil {
		return err
	}
	seen := map[netip.Addr]int{}
	for i, e := range r.ARPEntries {
		f := index("arp_entries", i)
		if err := validateUnicast4(at(f, "ip"), e.IP, true); err != nil {
			return err
		}
		if j, dup := seen[e.IP]; dup {
			return fieldErr(at(f, "ip"), "%s is already in arp_entries[%d]", e.IP, j)
		}
		seen[e.IP] = i
		if err := validateHostMAC(at(f, "mac"), e.MAC, true); err != nil {
			return err
		}
	}
	if r.BGP != nil {
		return r.BGP.validate("bgp")
	}
	return nil
}

func (b *BGP) validate(f string) error {
	if err := validateASN(at(f, "asn"), b.ASN); err != nil {
		return err
	}
	if b.RouterID.IsValid() {
		if err := validateUnicast4(at(f, "router_id"), b.RouterID, true); err != nil {
			return err
		}
	}
	peers := map[netip.Addr]int{}
	for i := range b.Peers {
		p := &b.Peers[i]
		pf := index(at(f, "peers"), i)
		if err := p.validate(pf); err != nil {
			return err
		}
		if j, dup := peers[p.Address]; dup {
			return fieldErr(at(pf, "address"), "%s is already peer %d", p.Address, j)
		}
		peers[p.Address] = i
	}
	nets := map[netip.Prefix]int{}
	for i, n := range b.Networks {
		nf := index(at(f, "networks"), i)
		if err := validatePrefix4(nf, n, true); err != nil {
			return err
		}
		if j, dup := nets[n]; dup {
			return fieldErr(nf, "%s is already networks[%d]", n, j)
		}
		nets[n] = i
	}
	return nil
}

func (p *BGPPeer) validate(f string) error {
	if err := validateUnicast4(at(f, "address"), p.Address, true); err != nil {
		return err
	}
	if err := validateASN(at(f, "asn"), p.ASN); err != nil {
		return err
	}
	if p.HoldTime != 0 && p.HoldTime < minHoldTime {
		return fieldErr(at(f, "hold_time"), "%d s is too short: 0 (the default, %d s) or at least %d s (RFC 4271)", p.HoldTime, defaultHoldTime, minHoldTime)
	}
	hold := p.HoldTime
	if hold == 0 {
		hold = defaultHoldTime
	}
	if p.KeepAlive != 0 && p.KeepAlive >= hold {
		return fieldErr(at(f, "keepalive"), "%d s must be shorter than the hold time (%d s)", p.KeepAlive, hold)
	}
	if n := len(p.Password); n > maxBGPPassword {
		return fieldErr(at(f, "password"), "is %d bytes long; TCP MD5 keys are at most %d", n, maxBGPPassword)
	}
	if b := p.BFD; b != nil {
		for _, iv := range []struct {
			name string
			ms   uint32
		}{{"min_tx_ms", b.MinTxMS}, {"min_rx_ms", b.MinRxMS}} {
			if iv.ms != 0 && (iv.ms < 10 || iv.ms > 60000) {
				return fieldErr(at(at(f, "bfd"), iv.name), "%d ms: 0 (the default, %d ms) or 10..60000", iv.ms, DefaultBFDInterval)
			}
		}
	}
	return nil
}

func validateASN(f string, asn uint32) error {
	switch asn {
	case 0:
		return fieldErr(f, "is required (1..4294967295; 0 is reserved)")
	case asTrans:
		return fieldErr(f, "%d is AS_TRANS (RFC 6793), not a real AS number", asn)
	}
	return nil
}

func (b *Bridge) Validate() error {
	if err := validateMeta(&b.Meta); err != nil {
		return err
	}
	return validateFilters(b.InFilter, b.OutFilter)
}

func (p *Port) Validate() error {
	if err := validateMeta(&p.Meta); err != nil {
		return err
	}
	switch p.DeviceKind {
	case KindRouter, KindBridge:
	case "":
		return fieldErr("device_kind", "is required (router or bridge)")
	default:
		return fieldErr("device_kind", "%q is not a device kind (router or bridge)", p.DeviceKind)
	}
	if err := validateRefID("device_id", p.DeviceID, true); err != nil {
		return err
	}
	if p.DeviceKind == KindRouter {
		if err := p.validateRouterSide(); err != nil {
			return err
		}
	} else if err := p.validateBridgeSide(); err != nil {
		return err
	}
	if p.MTU != 0 && (p.MTU < minMTU || p.MTU > maxMTU) {
		return fieldErr("mtu", "%d is out of range (0 for the default %d, or %d..%d)", p.MTU, DefaultMTU, minMTU, maxMTU)
	}
	if err := validateRefID("peer_id", p.PeerID, false); err != nil {
		return err
	}
	if p.PeerID != "" && p.PeerID == p.ID {
		return fieldErr("peer_id", "a port cannot be linked to itself")
	}
	if err := validateRefID("host_id", p.HostID, false); err != nil {
		return err
	}
	if p.PeerID != "" && p.HostID != "" {
		return fieldErr("host_id", "a port is either linked to a peer (peer_id %s) or bound to a host interface, not both", p.PeerID)
	}
	switch {
	case p.HostID != "" && p.Interface == "":
		return fieldErr("interface", "is required when host_id is set")
	case p.HostID == "" && p.Interface != "":
		return fieldErr("host_id", "is required when interface is set")
	}
	if p.Interface != "" {
		if err := validateIfName("interface", p.Interface); err != nil {
			return err
		}
	}
	if err := validateFilters(p.InFilter, p.OutFilter); err != nil {
		return err
	}
	if p.TunnelKey > MaxTunnelKey {
		return fieldErr("tunnel_key", "%d is out of range (at most %d: keys are 24-bit VNIs and %d is reserved for agents' state messages)", p.TunnelKey, MaxTunnelKey, StateTunnelKey)
	}
	return nil
}

func (p *Port) validateRouterSide() error {
	if err := validateHostMAC("mac", p.MAC, true); err != nil {
		return err
	}
	if p.Address == (netip.Prefix{}) {
		return fieldErr("address", "is required on a router port (e.g. 192.0.2.1/24)")
	}
	if err := validatePrefixShape("address", p.Address); err != nil {
		return err
	}
	a, bits := p.Address.Addr(), p.Address.Bits()
	if bits < 8 {
		return fieldErr("address", "/%d is too short for a port's subnet (/8../32)", bits)
	}
	if err := validateUnicast4("address", a, true); err != nil {
		return err
	}
	if err := validateNotNetOrBcast("address", a, p.Address.Masked()); err != nil {
		return err
	}
	if len(p.IPs) > 0 {
		return fieldErr("ips", "only bridge ports have ips; a router port's address is in address")
	}
	return nil
}

func (p *Port) validateBridgeSide() error {
	if err := validateHostMAC("mac", p.MAC, false); err != nil {
		return err
	}
	if p.ProxyARP {
		return fieldErr("proxy_arp", "only router ports answer ARP for others; a bridge answers for the addresses in ips")
	}
	if p.Address != (netip.Prefix{}) {
		return fieldErr("address", "only router ports have an address; list the addresses behind a bridge port in ips")
	}
	seen := map[netip.Addr]int{}
	for i, a := range p.IPs {
		f := index("ips", i)
		if err := validateUnicast4(f, a, true); err != nil {
			return err
		}
		if j, dup := seen[a]; dup {
			return fieldErr(f, "%s is already ips[%d]", a, j)
		}
		seen[a] = i
	}
	return nil
}

var routeTypes = "normal, blackhole, reject or local"

func (r *Route) Validate() error {
	if err := validateMeta(&r.Meta); err != nil {
		return err
	}
	if err := validateRefID("router_id", r.RouterID, true); err != nil {
		return err
	}
	switch r.Type {
	case RouteNormal, RouteBlackhole, RouteReject, RouteLocal:
	case "":
		return fieldErr("type", "is required (%s)", routeTypes)
	default:
		return fieldErr("type", "%q is not a route type (%s)", r.Type, routeTypes)
	}
	if err := validatePrefix4("dst_prefix", r.DstPrefix, true); err != nil {
		return err
	}
	if err := validatePrefix4("src_prefix", r.SrcPrefix, false); err != nil {
		return err
	}
	if err := validateRefID("next_hop_port", r.NextHopPort, false); err != nil {
		return err
	}
	if err := validateRefID("in_port", r.InPort, false); err != nil {
		return err
	}
	switch r.Type {
	case RouteNormal:
		if r.NextHopPort == "" {
			return fieldErr("next_hop_port", "is required on a normal route")
		}
	case RouteBlackhole, RouteReject:
		if r.NextHopPort != "" {
			return fieldErr("next_hop_port", "a %s route drops the packet; it has no next hop", r.Type)
		}
	}
	if r.NextHopGateway.IsValid() {
		if r.Type != RouteNormal {
			return fieldErr("next_hop_gateway", "only a normal route has a gateway, not a %s route", r.Type)
		}
		if err := validateUnicast4("next_hop_gateway", r.NextHopGateway, true); err != nil {
			return err
		}
	}
	if r.Weight < 0 || r.Weight > 65535 {
		return fieldErr("weight", "%d is out of range (0 for the default %d, or 1..65535)", r.Weight, DefaultRouteWeight)
	}
	return nil
}

func (g *IPAddrGroup) Validate() error {
	if err := validateMeta(&g.Meta); err != nil {
		return err
	}
	seen := map[netip.Addr]int{}
	for i, a := range g.Addresses {
		f := index("addresses", i)
		if err := validateAddr4(f, a, true); err != nil {
			return err
		}
		if j, dup := seen[a]; dup {
			return fieldErr(f, "%s is already addresses[%d]", a, j)
		}
		seen[a] = i
	}
	return nil
}

func (g *PortGroup) Validate() error {
	if err := validateMeta(&g.Meta); err != nil {
		return err
	}
	return validateIDList("ports", g.Ports)
}

func (h *Host) Validate() error {
	if err := validateMeta(&h.Meta); err != nil {
		return err
	}
	seen := map[string]int{}
	for i := range h.Interfaces {
		in := &h.Interfaces[i]
		f := index("interfaces", i)
		if err := validateIfName(at(f, "name"), in.Name); err != nil {
			return err
		}
		if j, dup := seen[in.Name]; dup {
			return fieldErr(at(f, "name"), "%q is already interfaces[%d]", in.Name, j)
		}
		seen[in.Name] = i
		if err := validateHostMAC(at(f, "mac"), in.MAC, false); err != nil {
			return err
		}
		// A host reports its real interfaces: loopback has a 65536 MTU.
		if in.MTU < 0 || (in.MTU != 0 && in.MTU < 68) || in.MTU > 65536 {
			return fieldErr(at(f, "mtu"), "%d is out of range (0 for unknown, or 68..65536)", in.MTU)
		}
		for j, a := range in.Addresses {
			// Host addresses may be IPv6 and carry host bits (they are
			// interface addresses, not networks).
			if !a.IsValid() {
				return fieldErr(index(at(f, "addresses"), j), "is not a valid prefix")
			}
		}
	}
	return nil
}

func (z *TunnelZone) Validate() error {
	if err := validateMeta(&z.Meta); err != nil {
		return err
	}
	switch z.Type {
	case TunnelVXLAN:
	case "":
		return fieldErr("type", "is required (vxlan)")
	default:
		return fieldErr("type", "%q is not a tunnel type Canopy speaks (vxlan)", z.Type)
	}
	hosts := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i, m := range z.Members {
		f := index("members", i)
		if err := validateRefID(at(f, "host_id"), m.HostID, true); err != nil {
			return err
		}
		if j, dup := hosts[m.HostID]; dup {
			return fieldErr(at(f, "host_id"), "host %s is already members[%d]", m.HostID, j)
		}
		hosts[m.HostID] = i
		if err := validateUnicast4(at(f, "address"), m.Address, true); err != nil {
			return err
		}
		if j, dup := addrs[m.Address]; dup {
			return fieldErr(at(f, "address"), "%s is already the address of members[%d]", m.Address, j)
		}
		addrs[m.Address] = i
	}
	return nil
}

func (d *DHCPSubnet) Validate() error {
	if err := validateMeta(&d.Meta); err != nil {
		return err
	}
	if err := validateRefID("bridge_id", d.BridgeID, true); err != nil {
		return err
	}
	if err := validatePrefix4("subnet", d.Subnet, true); err != nil {
		return err
	}
	if b := d.Subnet.Bits(); b < 1 || b > 30 {
		return fieldErr("subnet", "/%d is out of range: a DHCP subnet is /1../30 (it needs room for a network, a broadcast and hosts)", b)
	}
	if d.Gateway.IsValid() {
		if err := d.validateHostAddr("gateway", d.Gateway); err != nil {
			return err
		}
	}
	if d.ServerAddr.IsValid() {
		if err := d.validateHostAddr("server_address", d.ServerAddr); err != nil {
			return err
		}
	}
	for i, a := range d.DNSServers {
		if err := validateUnicast4(index("dns_servers", i), a, true); err != nil {
			return err
		}
	}
	if d.DomainName != "" {
		if err := validateDNSName("domain_name", d.DomainName); err != nil {
			return err
		}
	}
	for i, a := range d.NTPServers {
		if err := validateUnicast4(index("ntp_servers", i), a, true); err != nil {
			return err
		}
	}
	if d.MTU != 0 && (d.MTU < minMTU || d.MTU > maxMTU) {
		return fieldErr("mtu", "%d is out of range (0 for the default, or %d..%d)", d.MTU, minMTU, maxMTU)
	}
	if d.LeaseTime != 0 && (d.LeaseTime < minLeaseTime || d.LeaseTime > maxLeaseTime) {
		return fieldErr("lease_time", "%d s is out of range (0 for the default, or %d..%d s)", d.LeaseTime, minLeaseTime, maxLeaseTime)
	}
	for i, rt := range d.Routes {
		f := index("routes", i)
		if err := validatePrefix4(at(f, "dest"), rt.Dest, true); err != nil {
			return err
		}
		// 0.0.0.0 is allowed: RFC 3442 clients treat it as "on link".
		if err := validateAddr4(at(f, "gateway"), rt.Gateway, true); err != nil {
			return err
		}
	}
	return d.validateHosts()
}

// validateHostAddr checks an address that must be a usable host address of
// the subnet.
func (d *DHCPSubnet) validateHostAddr(f string, a netip.Addr) error {
	if err := validateAddr4(f, a, true); err != nil {
		return err
	}
	if !d.Subnet.Contains(a) {
		return fieldErr(f, "%s is not in the subnet %s", a, d.Subnet)
	}
	return validateNotNetOrBcast(f, a, d.Subnet)
}

func (d *DHCPSubnet) validateHosts() error {
	macs := map[MAC]int{}
	ips := map[netip.Addr]int{}
	for i, h := range d.Hosts {
		f := index("hosts", i)
		if err := validateHostMAC(at(f, "mac"), h.MAC, true); err != nil {
			return err
		}
		if j, dup := macs[h.MAC]; dup {
			return fieldErr(at(f, "mac"), "%s is already hosts[%d]", h.MAC, j)
		}
		macs[h.MAC] = i
		if err := d.validateHostAddr(at(f, "ip"), h.IP); err != nil {
			return err
		}
		switch h.IP {
		case d.Gateway:
			return fieldErr(at(f, "ip"), "%s is the subnet's gateway", h.IP)
		case d.ServerAddr:
			return fieldErr(at(f, "ip"), "%s is the DHCP server's address", h.IP)
		}
		if j, dup := ips[h.IP]; dup {
			return fieldErr(at(f, "ip"), "%s is already assigned to hosts[%d]", h.IP, j)
		}
		ips[h.IP] = i
		if h.Name != "" {
			if err := validateDNSName(at(f, "name"), h.Name); err != nil {
				return err
			}
		}
	}
	return nil
}
