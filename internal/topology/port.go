package topology

import "net/netip"

// StateTunnelKey is the one 24-bit VXLAN VNI no port has: agents carry
// connection-state messages and liveness heartbeats on it (MidoNet's
// flow-state key).
const StateTunnelKey = 1<<24 - 1

// MaxTunnelKey is the largest tunnel key a port can have: a port's key is
// the VXLAN VNI of traffic tunnelled to it, 24 bits, below StateTunnelKey.
const MaxTunnelKey = StateTunnelKey - 1

// DefaultMTU is the MTU of a port that does not set one.
const DefaultMTU = 1500

// Port is a port on a router or a bridge. An exterior port is bound to an
// interface on a host (HostID + Interface); an interior port is linked to a
// peer port on another device (PeerID). A port is at most one of the two.
type Port struct {
	Meta
	DeviceKind Kind   `json:"device_kind"` // KindRouter or KindBridge
	DeviceID   string `json:"device_id"`
	AdminDown  bool   `json:"admin_down,omitempty"`

	// MAC is required on router ports; on bridge ports it is the MAC of the
	// host behind the port and seeds the bridge's MAC table.
	MAC MAC `json:"mac,omitzero"`
	// Address is a router port's address and its subnet (e.g. 192.0.2.1/24).
	Address netip.Prefix `json:"address,omitzero"`
	// IPs are the addresses of the host behind a bridge port; they seed the
	// bridge's IP→MAC table so ARP is answered without flooding.
	IPs []netip.Addr `json:"ips,omitempty"`
	// MTU of the link; a router emits fragmentation-needed above it.
	MTU int `json:"mtu,omitempty"`
	// ProxyARP makes a router port answer ARP requests for any address the
	// router routes elsewhere (not back out of this port and not to a
	// blackhole), with its own MAC: the edge's uplink on a flat L2 segment
	// claims the assigned public addresses, so the upstream router needs
	// no route to them (Linux's proxy_arp; router ports only).
	ProxyARP bool `json:"proxy_arp,omitempty"`

	PeerID    string `json:"peer_id,omitempty"`
	HostID    string `json:"host_id,omitempty"`
	Interface string `json:"interface,omitempty"`

	InFilter  string `json:"in_filter,omitempty"`
	OutFilter string `json:"out_filter,omitempty"`

	// TunnelKey is assigned by the store on create, unique among ports.
	TunnelKey uint32 `json:"tunnel_key,omitempty"`
}

func (*Port) Kind() Kind { return KindPort }

// Exterior reports whether the port is bound to a host interface.
func (p *Port) Exterior() bool { return p.HostID != "" }

// Interior reports whether the port is linked to a peer port.
func (p *Port) Interior() bool { return p.PeerID != "" }

// EffectiveMTU is the port's MTU, or DefaultMTU when unset.
func (p *Port) EffectiveMTU() int {
	if p.MTU == 0 {
		return DefaultMTU
	}
	return p.MTU
}

func (p *Port) Refs() []Ref {
	refs := []Ref{{Field: "device_id", Kind: p.DeviceKind, ID: p.DeviceID, OnDelete: Cascade}}
	if p.PeerID != "" {
		refs = append(refs, Ref{Field: "peer_id", Kind: KindPort, ID: p.PeerID, OnDelete: Clear})
	}
	if p.HostID != "" {
		refs = append(refs, Ref{Field: "host_id", Kind: KindHost, ID: p.HostID})
	}
	return append(refs, filterRefs(p.InFilter, p.OutFilter)...)
}

func (p *Port) Unref(field, id string) {
	if field == "peer_id" && p.PeerID == id {
		p.PeerID = ""
	}
}

// RouteType says what a route does with matching packets.
type RouteType string

const (
	RouteNormal    RouteType = "normal"    // forward out NextHopPort
	RouteBlackhole RouteType = "blackhole" // drop silently
	RouteReject    RouteType = "reject"    // drop with ICMP administratively prohibited
	RouteLocal     RouteType = "local"     // addressed to the router itself
)

// Route is one entry of a router's routing table.
type Route struct {
	Meta
	RouterID       string       `json:"router_id"`
	Type           RouteType    `json:"type"`
	SrcPrefix      netip.Prefix `json:"src_prefix,omitzero"` // zero = 0.0.0.0/0
	DstPrefix      netip.Prefix `json:"dst_prefix"`
	NextHopPort    string       `json:"next_hop_port,omitempty"`
	NextHopGateway netip.Addr   `json:"next_hop_gateway,omitzero"`
	// InPort restricts the route to packets that entered the router
	// through this port of it (Linux policy routing's iif): a VPC subnet's
	// route table applies to what the subnet sends, whatever its source
	// address (a NAT instance forwards others' packets).
	InPort string `json:"in_port,omitempty"`
	// Weight orders routes of equal prefix length: the lowest wins, equal
	// weights share load (ECMP). 0 means the default, 100.
	Weight int `json:"weight,omitempty"`
	// Learned marks a route learned from BGP (written by a gateway agent).
	Learned bool `json:"learned,omitempty"`
}

// DefaultRouteWeight is the weight of a route that does not set one.
const DefaultRouteWeight = 100

func (*Route) Kind() Kind { return KindRoute }

// EffectiveWeight is the route's weight, DefaultRouteWeight when unset.
func (r *Route) EffectiveWeight() int {
	if r.Weight == 0 {
		return DefaultRouteWeight
	}
	return r.Weight
}

// EffectiveSrc is the source prefix, 0.0.0.0/0 when unset.
func (r *Route) EffectiveSrc() netip.Prefix {
	if !r.SrcPrefix.IsValid() {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	return r.SrcPrefix
}

func (r *Route) Refs() []Ref {
	refs := []Ref{{Field: "router_id", Kind: KindRouter, ID: r.RouterID, OnDelete: Cascade}}
	if r.NextHopPort != "" {
		refs = append(refs, Ref{Field: "next_hop_port", Kind: KindPort, ID: r.NextHopPort, OnDelete: Cascade})
	}
	if r.InPort != "" {
		refs = append(refs, Ref{Field: "in_port", Kind: KindPort, ID: r.InPort, OnDelete: Cascade})
	}
	return refs
}

func (*Route) Unref(string, string) {}
