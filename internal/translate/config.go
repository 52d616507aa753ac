package translate

import (
	"fmt"
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// CloudConfig is the operator's description of the cloud's edge: gateway
// uplinks, the public address pool and what DHCP hands out by default.
type CloudConfig struct {
	Gateways []Gateway `json:"gateways"`
	// PublicPools are the ranges elastic IPs come from. The edge blackholes
	// them, so traffic to an unassigned public address stops at the edge.
	PublicPools []netip.Prefix `json:"public_pools,omitempty"`
	// TransitCIDR is the link-local network joining the edge router (its
	// first host address) and every VPC and NAT router. Default
	// 169.254.0.0/17.
	TransitCIDR netip.Prefix `json:"transit_cidr,omitzero"`
	// UnderlayMTU is the MTU of the hosts' underlay network. VM-facing
	// ports and DHCP get UnderlayMTU - VXLANOverhead. Default 1500.
	UnderlayMTU int `json:"underlay_mtu,omitempty"`
	// DNSServers answer for AmazonProvidedDNS.
	DNSServers []netip.Addr `json:"dns_servers,omitempty"`
	// DomainName is the default DHCP domain (AWS: <region>.compute.internal).
	DomainName string `json:"domain_name,omitempty"`
	// BGP, when set, makes the edge router speak BGP: it advertises the
	// public pools to the peers.
	BGP *BGPConfig `json:"bgp,omitempty"`
}

// Gateway is one uplink of the edge router: an interface on a gateway host.
type Gateway struct {
	// Host names the gateway host by the name its agent registers with
	// (canopy agent --host-name) or by its id. The host need not exist
	// yet: the uplink is bound when it registers (see ResolveGateway).
	Host string `json:"host,omitempty"`
	// HostID is the older form of Host: the host's id only.
	HostID    string       `json:"host_id,omitempty"`
	Interface string       `json:"interface"`
	Address   netip.Prefix `json:"address"`            // the edge's address on the physical network, e.g. 192.0.2.2/24
	NextHop   netip.Addr   `json:"next_hop,omitzero"`  // upstream router for the default route (static routing)
	MTU       int          `json:"mtu,omitempty"`      // of the physical link; default 1500
	BGPPeer   *BGPPeer     `json:"bgp_peer,omitempty"` // with CloudConfig.BGP
	// ProxyARP meets a flat L2 segment: the uplink answers ARP for every
	// assigned public address (elastic IPs, NAT gateways, instances'
	// public IPs), so the upstream router reaches them as on-link hosts
	// with no route to the pools.
	ProxyARP bool `json:"proxy_arp,omitempty"`
}

// BGPConfig is the edge router's BGP speaker: one per gateway host, each
// peering with the bgp_peer of its gateways and advertising the public
// pools (docs/gateways.md).
type BGPConfig struct {
	ASN uint32 `json:"asn"`
	// Advertise is what the speakers advertise: "pools" (the default, each
	// public pool as it is) or "addresses" (each assigned elastic IP and
	// NAT gateway address as a /32).
	Advertise string `json:"advertise,omitempty"`
}

// Values of BGPConfig.Advertise.
const (
	AdvertisePools     = "pools"
	AdvertiseAddresses = "addresses"
)

// BGPPeer is the upstream router a gateway peers with: a router on the
// gateway's network (single-hop eBGP). Several gateways on one network may
// name the same peer. Timers are in seconds, 0 for the defaults.
type BGPPeer struct {
	Address   netip.Addr `json:"address"`
	ASN       uint32     `json:"asn"`
	HoldTime  uint16     `json:"hold_time,omitempty"`
	KeepAlive uint16     `json:"keepalive,omitempty"`
	Password  string     `json:"password,omitempty"` // TCP MD5 (RFC 2385)
	// BFD, when set ({} for the defaults: 300 ms × 3), runs BFD on the
	// session, so the peer drops a dead gateway in under a second.
	BFD *topology.BFD `json:"bfd,omitempty"`
}

// VXLANOverhead is what VXLAN over IPv4 adds to a frame: outer Ethernet is
// not counted against the underlay MTU, so IPv4 20 + UDP 8 + VXLAN 8 +
// inner Ethernet 14.
const VXLANOverhead = 50

// Defaults.
var (
	DefaultTransitCIDR = netip.MustParsePrefix("169.254.0.0/17")
	DefaultDomainName  = "canopy.internal"
)

const defaultUnderlayMTU = 1500

func (c CloudConfig) withDefaults() CloudConfig {
	if !c.TransitCIDR.IsValid() {
		c.TransitCIDR = DefaultTransitCIDR
	}
	if c.UnderlayMTU == 0 {
		c.UnderlayMTU = defaultUnderlayMTU
	}
	if c.DomainName == "" {
		c.DomainName = DefaultDomainName
	}
	return c
}

// VMMTU is the MTU of VM-facing links: the underlay's minus VXLAN.
func (c CloudConfig) VMMTU() int { return c.withDefaults().UnderlayMTU - VXLANOverhead }

// Validate checks the configuration an operator wrote.
func (c CloudConfig) Validate() error {
	c = c.withDefaults()
	if c.TransitCIDR.Bits() != 17 || !c.TransitCIDR.Addr().Is4() || c.TransitCIDR.Masked() != c.TransitCIDR {
		return fmt.Errorf("transit_cidr %s: must be an IPv4 /17 network (one address per VPC and NAT router)", c.TransitCIDR)
	}
	if m := c.UnderlayMTU - VXLANOverhead; m < 576 {
		return fmt.Errorf("underlay_mtu %d: leaves %d for VMs after VXLAN, below 576", c.UnderlayMTU, m)
	}
	seen := map[string]int{}
	for i, g := range c.Gateways {
		switch {
		case g.Host == "" && g.HostID == "":
			return fmt.Errorf("gateways[%d]: host (a host's name or id) is required", i)
		case g.Host != "" && g.HostID != "":
			return fmt.Errorf("gateways[%d]: give host or host_id, not both", i)
		case g.Interface == "":
			return fmt.Errorf("gateways[%d]: interface is required", i)
		}
		if j, dup := seen[g.ref()+"/"+g.Interface]; dup {
			return fmt.Errorf("gateways[%d]: host %s interface %s is already gateways[%d]", i, g.ref(), g.Interface, j)
		}
		seen[g.ref()+"/"+g.Interface] = i
		if !g.Address.IsValid() || !g.Address.Addr().Is4() {
			return fmt.Errorf("gateways[%d].address: an IPv4 address with its prefix length is required", i)
		}
		if g.NextHop.IsValid() && !g.Address.Masked().Contains(g.NextHop) {
			return fmt.Errorf("gateways[%d].next_hop %s: not in %s", i, g.NextHop, g.Address.Masked())
		}
		// Every gateway is a port of the edge router, as the transit
		// network is: a router's ports need disjoint subnets (the store
		// refuses overlapping ones, so the edge would never be written).
		if g.Address.Masked().Overlaps(c.TransitCIDR) {
			return fmt.Errorf("gateways[%d].address %s overlaps transit_cidr %s", i, g.Address, c.TransitCIDR)
		}
		for j, h := range c.Gateways[:i] {
			if h.Address.IsValid() && g.Address.Masked().Overlaps(h.Address.Masked()) {
				return fmt.Errorf("gateways[%d].address %s overlaps gateways[%d].address %s: the edge router's ports need disjoint subnets (give each uplink its own link network)", i, g.Address, j, h.Address)
			}
		}
		if g.BGPPeer != nil {
			if err := c.validatePeer(i, g); err != nil {
				return err
			}
		}
	}
	if c.BGP != nil && c.BGP.Advertise != "" && c.BGP.Advertise != AdvertisePools && c.BGP.Advertise != AdvertiseAddresses {
		return fmt.Errorf("bgp.advertise %q: %q (the default) or %q", c.BGP.Advertise, AdvertisePools, AdvertiseAddresses)
	}
	if c.BGP != nil {
		// The edge router's settings as the store will check them.
		if err := (&topology.Router{Meta: topology.Meta{ID: "edge"}, BGP: edgeBGP(c)}).Validate(); err != nil {
			return fmt.Errorf("bgp: %w", err)
		}
	}
	for i, p := range c.PublicPools {
		if !p.Addr().Is4() || p.Masked() != p {
			return fmt.Errorf("public_pools[%d] %s: not an IPv4 network", i, p)
		}
		// An address in two pools, or in the transit network, would be
		// handed out twice or collide with a VPC router's transit address.
		for j, q := range c.PublicPools[:i] {
			if p.Overlaps(q) {
				return fmt.Errorf("public_pools[%d] %s overlaps public_pools[%d] %s", i, p, j, q)
			}
		}
		if p.Overlaps(c.TransitCIDR) {
			return fmt.Errorf("public_pools[%d] %s overlaps transit_cidr %s", i, p, c.TransitCIDR)
		}
		// The edge's own address on a flat segment may share its network
		// with a pool (proxy-ARP), but it must not be one of the pool's
		// addresses: it could be handed out as an elastic IP.
		for j, g := range c.Gateways {
			if p.Contains(g.Address.Addr()) {
				return fmt.Errorf("gateways[%d].address %s is inside public_pools[%d] %s", j, g.Address.Addr(), i, p)
			}
		}
	}
	return nil
}

// validatePeer checks gateway i's BGP peer.
func (c CloudConfig) validatePeer(i int, g Gateway) error {
	p := g.BGPPeer
	switch {
	case c.BGP == nil:
		return fmt.Errorf("gateways[%d].bgp_peer: needs bgp.asn", i)
	case !p.Address.Is4():
		return fmt.Errorf("gateways[%d].bgp_peer.address: an IPv4 address is required", i)
	case !g.Address.Masked().Contains(p.Address) || p.Address == g.Address.Addr():
		return fmt.Errorf("gateways[%d].bgp_peer.address %s: must be another address of the gateway's network %s (single-hop eBGP)", i, p.Address, g.Address.Masked())
	case p.ASN == 0:
		return fmt.Errorf("gateways[%d].bgp_peer.asn: is required", i)
	}
	return nil
}
