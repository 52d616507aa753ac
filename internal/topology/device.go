package topology

import "net/netip"

// Router is a virtual L3 device: ports with addresses, a routing table
// (Route objects), an ARP table, filter chains around routing and optional BGP.
type Router struct {
	Meta
	AdminDown bool   `json:"admin_down,omitempty"`
	InFilter  string `json:"in_filter,omitempty"`  // chain applied after ingress, before routing
	OutFilter string `json:"out_filter,omitempty"` // chain applied after routing, before egress
	// ARPEntries are static IP→MAC entries (learned ones live in state tables).
	ARPEntries []ARPEntry `json:"arp_entries,omitempty"`
	BGP        *BGP       `json:"bgp,omitempty"`
}

// ARPEntry is a static IP→MAC binding.
type ARPEntry struct {
	IP  netip.Addr `json:"ip"`
	MAC MAC        `json:"mac"`
}

// BGP holds a router's BGP settings; the agent on the host of the router's
// uplink port runs the speaker.
type BGP struct {
	ASN      uint32         `json:"asn"`
	RouterID netip.Addr     `json:"router_id,omitzero"`
	Peers    []BGPPeer      `json:"peers,omitempty"`
	Networks []netip.Prefix `json:"networks,omitempty"` // advertised networks
	// HostRoutes advertises, instead of Networks, each /32 inside them that
	// the router routes somewhere (the assigned elastic IPs and NAT gateway
	// addresses on the edge): unassigned addresses attract no traffic.
	HostRoutes bool `json:"host_routes,omitempty"`
}

// BGPPeer is one BGP neighbour. Timers are in seconds; 0 means the default.
type BGPPeer struct {
	Address      netip.Addr `json:"address"`
	ASN          uint32     `json:"asn"`
	HoldTime     uint16     `json:"hold_time,omitempty"`
	KeepAlive    uint16     `json:"keepalive,omitempty"`
	ConnectRetry uint16     `json:"connect_retry,omitempty"`
	Password     string     `json:"password,omitempty"` // TCP MD5 (RFC 2385)
	// PasswordSet is how the REST API shows a password: it answers this
	// instead of the password itself, which is write-only, and takes it back
	// on a write as "keep the stored password". Never stored.
	PasswordSet bool `json:"password_set,omitempty"`
	// BFD, when set, runs a BFD session (RFC 5880/5881, single hop) beside
	// the BGP session: the session is torn down as soon as BFD says the
	// peer is gone, instead of at the hold time.
	BFD *BFD `json:"bfd,omitempty"`
}

// BFD is a BFD session's timers; zero fields take the defaults
// (DefaultBFDInterval, DefaultBFDMultiplier): a dead peer is noticed
// after Multiplier missed intervals.
type BFD struct {
	MinTxMS    uint32 `json:"min_tx_ms,omitempty"` // desired minimum transmit interval, ms
	MinRxMS    uint32 `json:"min_rx_ms,omitempty"` // required minimum receive interval, ms
	Multiplier uint8  `json:"multiplier,omitempty"`
}

// BFD defaults: 3 × 300 ms, a dead peer noticed in under a second.
const (
	DefaultBFDInterval   = 300
	DefaultBFDMultiplier = 3
)

// Effective returns b with the defaults filled in.
func (b BFD) Effective() BFD {
	if b.MinTxMS == 0 {
		b.MinTxMS = DefaultBFDInterval
	}
	if b.MinRxMS == 0 {
		b.MinRxMS = DefaultBFDInterval
	}
	if b.Multiplier == 0 {
		b.Multiplier = DefaultBFDMultiplier
	}
	return b
}

func (*Router) Kind() Kind { return KindRouter }

func (r *Router) Refs() []Ref {
	return filterRefs(r.InFilter, r.OutFilter)
}

func (*Router) Unref(string, string) {}

// Bridge is a virtual L2 switch: ports, a MAC table seeded from its ports and
// learned for unknown hosts, an IP→MAC table for ARP suppression, DHCP subnets
// (DHCPSubnet objects) and filter chains.
type Bridge struct {
	Meta
	AdminDown bool   `json:"admin_down,omitempty"`
	InFilter  string `json:"in_filter,omitempty"`
	OutFilter string `json:"out_filter,omitempty"`
}

func (*Bridge) Kind() Kind { return KindBridge }

func (b *Bridge) Refs() []Ref { return filterRefs(b.InFilter, b.OutFilter) }

func (*Bridge) Unref(string, string) {}

func filterRefs(in, out string) []Ref {
	var refs []Ref
	if in != "" {
		refs = append(refs, Ref{Field: "in_filter", Kind: KindChain, ID: in})
	}
	if out != "" {
		refs = append(refs, Ref{Field: "out_filter", Kind: KindChain, ID: out})
	}
	return refs
}
