package sim

import (
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
)

// Verdict is the outcome of a simulation.
type Verdict uint8

const (
	VerdictDrop     Verdict = iota // nothing leaves (install a short drop flow)
	VerdictForward                 // Outputs/Actions say where the packet goes
	VerdictConsumed                // answered by a device (ARP, echo); see Generated
	VerdictNotYet                  // missing state (ARP); send Generated, park, re-simulate
)

var verdictNames = [...]string{"drop", "forward", "consumed", "not-yet"}

func (v Verdict) String() string { return verdictNames[v] }

// Fields is a set of header fields: those that decided a simulation's
// outcome. A cached flow matches on these and wildcards the rest.
type Fields uint32

const (
	FieldInPort Fields = 1 << iota
	FieldEthSrc
	FieldEthDst
	FieldEtherType
	FieldVLAN
	FieldIPSrc
	FieldIPDst
	FieldProto
	FieldTOS
	FieldTTL
	FieldFrag
	FieldSrcPort
	FieldDstPort
	FieldICMPType
	FieldICMPCode
	FieldARP // ARP opcode and addresses
)

var fieldNames = []string{"in_port", "eth_src", "eth_dst", "eth_type", "vlan", "ip_src", "ip_dst", "proto", "tos", "ttl", "frag", "src_port", "dst_port", "icmp_type", "icmp_code", "arp"}

// Names lists the fields in f.
func (f Fields) Names() []string {
	var out []string
	for i, n := range fieldNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Output is a port the packet leaves the virtual network through.
type Output struct {
	PortID    string
	Host      string
	TunnelKey uint32
}

// Generated is a packet the simulation produced (an ARP reply or request, an
// ICMP error or echo reply, or a rewritten ICMP error), already walked to the
// exterior port it leaves through. Frame is final: send it as is.
type Generated struct {
	PortID    string
	Host      string
	TunnelKey uint32
	Frame     []byte
	Reason    string
}

// Learned is a table entry the simulation observed: a bridge learned that a
// MAC lives behind a port, or a router learned an IP's MAC from an ARP packet
// from inside the port's subnet. The caller applies it (Tables.Learn) and
// publishes it.
type Learned struct {
	ARP      bool
	Device   flow.Tag
	DeviceID string
	MAC      [6]byte
	IP       uint32   // ARP entries
	Port     flow.Tag // MAC entries
	PortID   string
}

// NATEntry is a NAT translation the simulation created.
type NATEntry struct {
	Kind    flow.NATKind
	Key     packet.Key // forward key of the connection
	Binding flow.Binding
}

// Result is everything a simulation decided. The caller owns it and reuses it
// across simulations (Simulate resets it), so the hot path allocates nothing.
type Result struct {
	Verdict Verdict
	// Reason says briefly why (a constant string), for drops in particular.
	Reason  string
	Outputs []Output
	// Actions is the flow: header rewrites and outputs, executed in order.
	Actions   []flow.Action
	Generated []Generated
	Fields    Fields
	// Tags of every port, device, chain, rule, route and table entry
	// consulted, without duplicates.
	Tags  []flow.Tag
	Conns []packet.Key // connections created (forward keys)
	NATs  []NATEntry
	// Refs are the connection and NAT entries the decision relied on (made
	// or found): a cached flow's traffic keeps them alive (flow.State.Touch).
	Refs    []flow.Ref
	Learned []Learned
	// Uncacheable is set when the result must not become a cached flow (its
	// output was a rewritten frame in Generated, or it needs userspace).
	Uncacheable bool
	// Need names the part of the topology the packet went on into, which
	// the snapshot does not hold (WithElsewhere); the verdict is then
	// VerdictNotYet.
	Need  string
	Trace []Step // only with Options.Trace
}

// Reset empties r, keeping its slices' capacity.
func (r *Result) Reset() {
	*r = Result{
		Outputs:   r.Outputs[:0],
		Actions:   r.Actions[:0],
		Generated: r.Generated[:0],
		Tags:      r.Tags[:0],
		Conns:     r.Conns[:0],
		NATs:      r.NATs[:0],
		Refs:      r.Refs[:0],
		Learned:   r.Learned[:0],
		Trace:     r.Trace[:0],
	}
}

// MACKey names a learned MAC entry of a bridge.
type MACKey struct {
	Bridge flow.Tag
	MAC    [6]byte
}

// ARPKey names an ARP entry of a router.
type ARPKey struct {
	Router flow.Tag
	IP     uint32
}

// MACEntry is a learned MAC: the port (by tag) the MAC lives behind.
// Refresh is when a simulation that sees the MAC again should report it
// (a Learned equal to the entry), so the owner keeps it alive while it is
// in use; before that, seeing it again reports nothing.
type MACEntry struct {
	Port    flow.Tag
	Refresh int64 // Unix nanoseconds
}

// ARPEntry is a learned IP → MAC entry of a router. A zero MAC records a
// failed resolution: the router answers host unreachable instead of asking
// again. Past Refresh, a simulation that uses the entry still uses it but
// also sends an ARP request for it (the entry is stale), so an entry in use
// is confirmed before it expires.
type ARPEntry struct {
	MAC     [6]byte
	Refresh int64 // Unix nanoseconds
}

// Tables are learned entries, kept by the caller across topology snapshots
// (the agent replicates them through the store: every host sees what any
// host learned). The simulation only reads them; what it observes comes
// back as Result.Learned.
type Tables struct {
	MACs map[MACKey]MACEntry
	ARP  map[ARPKey]ARPEntry
}

// NewTables returns empty tables.
func NewTables() *Tables {
	return &Tables{MACs: map[MACKey]MACEntry{}, ARP: map[ARPKey]ARPEntry{}}
}

// Learn applies learned entries, to be refreshed after refresh (Unix
// nanoseconds).
func (t *Tables) Learn(ls []Learned, refresh int64) {
	for _, l := range ls {
		if l.ARP {
			t.ARP[ARPKey{l.Device, l.IP}] = ARPEntry{MAC: l.MAC, Refresh: refresh}
		} else {
			t.MACs[MACKey{l.Device, l.MAC}] = MACEntry{Port: l.Port, Refresh: refresh}
		}
	}
}

// MACTag is the tag of a bridge's MAC-table entry (or its absence): every
// flow whose simulation looked the MAC up carries it, so learning, moving
// or forgetting the entry invalidates exactly those flows.
func MACTag(bridge flow.Tag, m [6]byte) flow.Tag { return bridge.Sub(subMAC, macU64(m)) }

// ARPTag is the tag of a router's ARP entry for ip (or its absence).
func ARPTag(router flow.Tag, ip uint32) flow.Tag { return router.Sub(subARP, uint64(ip)) }

// Tag is the tag of the entry l names.
func (l *Learned) Tag() flow.Tag {
	if l.ARP {
		return ARPTag(l.Device, l.IP)
	}
	return MACTag(l.Device, l.MAC)
}

// Options are the inputs of a simulation besides topology and packet.
type Options struct {
	Now       int64  // Unix nanoseconds; entries expiring at or before Now are gone
	LocalHost string // outputs to ports on this host become Output, others Tunnel
	Tables    *Tables
	Trace     bool
	ConnTTL   int64 // life of new conntrack entries; 0 = DefaultStateTTL
	NATTTL    int64 // life of new NAT entries; 0 = DefaultStateTTL
}

// DefaultStateTTL is the life of conntrack and NAT entries created by a
// simulation; the agent refreshes the entries its cached flows still use
// (Result.Refs).
const DefaultStateTTL = int64(60e9)
