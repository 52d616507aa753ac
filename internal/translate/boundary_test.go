package translate_test

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/reach"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The tenant boundary as a property (issue 10): random VPC states and
// random packets — ordinary, spoofed, DHCP, ARP, fragmented, VLAN-tagged,
// IPv6, and replies to what was delivered before — go through Translate
// and sim.Simulate, and must be delivered exactly where, and as what, the
// independent model internal/reach says AWS would deliver them.
//
// A failure prints the seed, the packet, both answers and the simulator's
// trace; `go test -run TestBoundary -boundary.seed=N -v` replays one state.

var (
	boundaryStates = flag.Int("boundary.states", 2000, "random VPC states TestBoundary checks")
	boundarySeed   = flag.Uint64("boundary.seed", 0, "check only the state of this seed (0: seeds 1..boundary.states)")
)

const packetsPerState = 24

func TestBoundary(t *testing.T) {
	if *boundarySeed != 0 {
		if err := checkBoundary(*boundarySeed, true); err != nil {
			t.Fatal(err)
		}
		return
	}
	failed := 0
	for seed := uint64(1); seed <= uint64(*boundaryStates); seed++ {
		if err := checkBoundary(seed, false); err != nil {
			t.Error(err)
			if failed++; failed == 3 {
				t.Fatal("stopping after 3 failing states")
			}
		}
	}
	s := &boundaryStats
	t.Logf("%d packets in %d states: %d delivered, %d answered by the VPC", s.packets, *boundaryStates, s.delivered, s.answered)
	for _, k := range slices.Sorted(maps.Keys(s.kinds)) {
		t.Logf("  %-50s %5d checked, %5d delivered or answered", k, s.kinds[k][0], s.kinds[k][1])
	}
	// Every kind of packet must both get through and be stopped somewhere
	// in the run, or the comparison says little about it.
	for _, k := range []string{"ipv4", "reply", "from outside", "reply from outside", "arp", "arp unicast", "arp reply unicast", "rogue dhcp reply, unicast"} {
		if c := s.kinds[k]; c[0] < 20 || (c[1] == 0 && !strings.HasPrefix(k, "rogue")) || c[1] == c[0] {
			t.Errorf("%q: %d checked, %d delivered: the generator no longer exercises it", k, c[0], c[1])
		}
	}
}

// FuzzBoundary runs the same check on states and packets drawn from the
// fuzzer's seeds: `go test -fuzz FuzzBoundary ./internal/translate/`.
func FuzzBoundary(f *testing.F) {
	for s := range uint64(8) {
		f.Add(s, uint64(0))
	}
	f.Fuzz(func(t *testing.T, a, b uint64) {
		if err := checkBoundary(a^b<<32^b>>32|1<<63, false); err != nil {
			t.Fatal(err)
		}
	})
}

var (
	cloudGW   = translate.Gateway{HostID: "gw", Interface: "eth1", Address: netip.MustParsePrefix("192.0.2.2/24"), NextHop: netip.MustParseAddr("192.0.2.1")}
	publicNet = netip.MustParsePrefix("203.0.113.0/24")
	upstream  = topology.MAC{0x02, 0xee, 0, 0, 0, 1}
)

// world is one random VPC state and what the packet generator needs of it.
type world struct {
	r      *rand.Rand
	st     *vpc.State
	enis   []*vpc.NetworkInterface // instances' interfaces, running or not
	public []netip.Addr            // elastic IPs, NAT gateways' and unused pool addresses

	snap   *sim.Snapshot
	flows  *flow.State
	opts   sim.Options
	byPort map[string]string // topology port id → ENI id or reach.Outside
	gwMACs map[[6]byte]bool  // the VPC routers' subnet port MACs
	subGW  map[string][6]byte
	natMAC map[string][6]byte // NAT gateway id → its subnet port MAC
	uplink *topology.Port
	model  *reach.Model

	delivered []delivery // so far, to answer
}

// delivery is a packet delivered by both, as the simulator delivered it.
type delivery struct {
	to  string
	pkt packet.Packet
}

// stats counts what the checks covered, so a generator that stops
// producing deliveries (a test passing for the wrong reason) shows.
type stats struct {
	packets, delivered, answered int
	kinds                        map[string][2]int // what → checked, delivered
}

var boundaryStats = stats{kinds: map[string][2]int{}}

func checkBoundary(seed uint64, trace bool) error {
	w := newWorld(seed)
	for i := range packetsPerState {
		p := w.randomPacket()
		if err := w.check(p, trace); err != nil {
			st, _ := json.MarshalIndent(w.st, "", " ")
			return fmt.Errorf("seed %d, packet %d: %w\nstate:\n%s", seed, i, err, st)
		}
	}
	return nil
}

func mac(b ...byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

func newWorld(seed uint64) *world {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &world{r: r, st: vpc.NewState()}
	st := w.st
	chance := func(p float64) bool { return r.Float64() < p }
	const owner = "111122223333"
	st.Accounts[owner] = &vpc.Account{ID: owner}
	pub := 0 // the first is 203.0.113.1, a /32 block of the pools (poolBlocks)
	nextPublic := func() netip.Addr { pub++; return vpc.Nth(publicNet, pub) }
	nVPC := 1 + r.IntN(2)
	for vi := range nVPC {
		v := &vpc.Vpc{ID: fmt.Sprintf("vpc-%017d", vi+1), OwnerID: owner, State: vpc.StateAvailable, TransitIndex: 2 + vi,
			CidrBlock: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(1 + vi*r.IntN(2)), 0, 0}), 16), DhcpOptionsID: vpc.DefaultDhcpOptions}
		st.Vpcs[v.ID] = v
		id := func(kind string, n int) string { return fmt.Sprintf("%s-%02d%015d", kind, vi+1, n) }
		if chance(0.85) {
			g := &vpc.InternetGateway{ID: id("igw", 1), OwnerID: owner, Attachments: []vpc.IGWAttachment{{VpcID: v.ID, State: vpc.StateAvailable}}}
			st.InternetGateways[g.ID] = g
		}
		igw := ""
		if g := st.InternetGatewayOf(v.ID); g != nil {
			igw = g.ID
		}
		var subs []*vpc.Subnet
		for si := range 1 + r.IntN(3) {
			s := &vpc.Subnet{ID: id("subnet", si+1), OwnerID: owner, VpcID: v.ID, State: vpc.StateAvailable,
				CidrBlock: netip.PrefixFrom(vpc.Nth(v.CidrBlock, (si+1)<<8), 24)}
			st.Subnets[s.ID] = s
			subs = append(subs, s)
		}
		// Security groups: the default one as AWS makes it, and others.
		var groups []*vpc.SecurityGroup
		for gi := range 1 + r.IntN(3) {
			g := &vpc.SecurityGroup{ID: id("sg", gi+1), OwnerID: owner, VpcID: v.ID, GroupName: fmt.Sprint("g", gi)}
			st.SecurityGroups[g.ID] = g
			groups = append(groups, g)
		}
		var ifaces []*vpc.NetworkInterface
		for si, s := range subs {
			for ei := range 1 + r.IntN(3) {
				e := &vpc.NetworkInterface{ID: id("eni", si*10+ei+1), OwnerID: owner, VpcID: v.ID, SubnetID: s.ID,
					MacAddress: mac(0x02, byte(vi+1), byte(si+1), byte(ei+1), 0, 1), SourceDestCheck: chance(0.75),
					InterfaceType: vpc.InterfaceTypeInterface, Status: vpc.StateInUse,
					PrivateIPs: []vpc.PrivateIP{{Address: vpc.Nth(s.CidrBlock, 10+ei), Primary: true}}}
				if chance(0.2) {
					e.PrivateIPs = append(e.PrivateIPs, vpc.PrivateIP{Address: vpc.Nth(s.CidrBlock, 100+ei)})
				}
				for _, g := range groups {
					if len(e.Groups) == 0 || chance(0.3) {
						e.Groups = append(e.Groups, g.ID)
					}
				}
				if chance(0.92) {
					inst := &vpc.Instance{ID: fmt.Sprintf("i-%02d%015d", vi+1, si*10+ei+1), OwnerID: owner, VpcID: v.ID, SubnetID: s.ID, State: vpc.InstanceRunning, HostID: "h1"}
					if chance(0.05) {
						inst.State = vpc.InstanceStopped
					}
					st.Instances[inst.ID] = inst
					e.Attachment = &vpc.ENIAttachment{ID: "eni-attach-" + e.ID[4:], InstanceID: inst.ID, Status: vpc.StateAttached}
				}
				st.NetworkInterfaces[e.ID] = e
				ifaces = append(ifaces, e)
				w.enis = append(w.enis, e)
				if chance(0.4) {
					a := &vpc.Address{AllocationID: "eipalloc-" + e.ID[4:], OwnerID: owner, Domain: "vpc", PublicIP: nextPublic(), NetworkInterfaceID: e.ID, AssociationID: "eipassoc-" + e.ID[4:]}
					if len(e.PrivateIPs) > 1 && chance(0.5) {
						a.PrivateIPAddress = e.PrivateIPs[1].Address
					}
					st.Addresses[a.AllocationID] = a
					w.public = append(w.public, a.PublicIP)
				}
			}
		}
		// Group rules, once the members are known.
		for gi, g := range groups {
			if gi == 0 { // the default group, as AWS makes it
				g.Ingress = append(g.Ingress, vpc.SecurityGroupRule{ID: "sgr-" + g.ID[3:] + "i0", IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: g.ID})
			}
			for _, egress := range []bool{false, true} {
				n := r.IntN(4)
				all := vpc.SecurityGroupRule{ID: fmt.Sprintf("sgr-%s%va", g.ID[3:], egress), IsEgress: egress, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: netip.MustParsePrefix("0.0.0.0/0")}
				switch {
				case egress && chance(0.7):
					g.Egress = append(g.Egress, all)
				case !egress && chance(0.25):
					g.Ingress = append(g.Ingress, all)
				}
				for k := range n {
					rule := w.sgRule(groups, subs, v, ifaces)
					rule.IsEgress = egress
					rule.ID = fmt.Sprintf("sgr-%s%v%d", g.ID[3:], egress, k+1)
					if egress {
						g.Egress = append(g.Egress, rule)
					} else {
						g.Ingress = append(g.Ingress, rule)
					}
				}
			}
		}
		// Network ACLs: the default one, and sometimes one for some subnets.
		def := &vpc.NetworkACL{ID: id("acl", 1), OwnerID: owner, VpcID: v.ID, IsDefault: true}
		if chance(0.6) {
			def.Entries = append(def.Entries,
				vpc.NetworkACLEntry{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: netip.MustParsePrefix("0.0.0.0/0")},
				vpc.NetworkACLEntry{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: netip.MustParsePrefix("0.0.0.0/0")})
		} else {
			def.Entries = w.aclEntries(v)
		}
		st.NetworkACLs[def.ID] = def
		if chance(0.3) {
			a := &vpc.NetworkACL{ID: id("acl", 2), OwnerID: owner, VpcID: v.ID, Entries: w.aclEntries(v)}
			for _, s := range subs {
				if chance(0.5) {
					a.Associations = append(a.Associations, vpc.NetworkACLAssociation{ID: "aclassoc-" + s.ID[7:], SubnetID: s.ID})
				}
			}
			st.NetworkACLs[a.ID] = a
		}
		// A NAT gateway, in a random subnet.
		var nat *vpc.NatGateway
		if chance(0.5) {
			s := subs[r.IntN(len(subs))]
			ne := &vpc.NetworkInterface{ID: id("eni", 99), OwnerID: owner, VpcID: v.ID, SubnetID: s.ID, MacAddress: mac(0x02, byte(vi+1), 0xaa, 0, 0, 1),
				InterfaceType: vpc.InterfaceTypeNatGateway, Status: vpc.StateInUse, RequesterManaged: true,
				PrivateIPs: []vpc.PrivateIP{{Address: vpc.Nth(s.CidrBlock, 200), Primary: true}}}
			st.NetworkInterfaces[ne.ID] = ne
			nat = &vpc.NatGateway{ID: id("nat", 1), OwnerID: owner, VpcID: v.ID, SubnetID: s.ID, State: vpc.StateAvailable,
				PublicIP: nextPublic(), PrivateIP: ne.PrivateIPs[0].Address, NetworkInterfaceID: ne.ID, TransitIndex: 10 + vi}
			if chance(0.1) {
				nat.State = vpc.StateDeleted
			}
			st.NatGateways[nat.ID] = nat
			w.public = append(w.public, nat.PublicIP)
		}
		// Route tables: the main one, and sometimes one for some subnets.
		mainRT := &vpc.RouteTable{ID: id("rtb", 1), OwnerID: owner, VpcID: v.ID, Associations: []vpc.RouteTableAssociation{{ID: "rtbassoc-" + v.ID[4:], Main: true}},
			Routes: []vpc.Route{{DestinationCidrBlock: v.CidrBlock, GatewayID: vpc.LocalGateway, State: vpc.RouteActive}}}
		st.RouteTables[mainRT.ID] = mainRT
		w.routes(mainRT, igw, nat, ifaces)
		if len(subs) > 1 && chance(0.6) {
			t := &vpc.RouteTable{ID: id("rtb", 2), OwnerID: owner, VpcID: v.ID,
				Routes: []vpc.Route{{DestinationCidrBlock: v.CidrBlock, GatewayID: vpc.LocalGateway, State: vpc.RouteActive}}}
			for _, s := range subs[1:] {
				if chance(0.7) {
					t.Associations = append(t.Associations, vpc.RouteTableAssociation{ID: "rtbassoc-" + s.ID[7:], SubnetID: s.ID})
				}
			}
			st.RouteTables[t.ID] = t
			w.routes(t, igw, nat, ifaces)
		}
	}
	for range 2 {
		w.public = append(w.public, vpc.Nth(publicNet, 200+r.IntN(50))) // nobody's
	}
	w.build()
	return w
}

// outsideNets are internet destinations route tables and packets use.
var outsideNets = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("100.64.0.0/10")}

func (w *world) routes(t *vpc.RouteTable, igw string, nat *vpc.NatGateway, ifaces []*vpc.NetworkInterface) {
	r := w.r
	dsts := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), outsideNets[0], netip.MustParsePrefix("198.19.0.0/16")}
	for _, v := range w.st.SortedVpcs() {
		if v.ID != t.VpcID && v.CidrBlock != w.st.Vpcs[t.VpcID].CidrBlock {
			dsts = append(dsts, v.CidrBlock) // another VPC's range: isolation
		}
	}
	for _, d := range dsts {
		if r.IntN(3) == 0 {
			continue
		}
		rt := vpc.Route{DestinationCidrBlock: d, State: vpc.RouteActive, Origin: vpc.OriginCreateRoute}
		switch k := r.IntN(10); {
		case k < 5 && igw != "":
			rt.GatewayID = igw
		case k < 8 && nat != nil:
			rt.NatGatewayID = nat.ID
		case k < 9 && len(ifaces) > 0:
			e := ifaces[r.IntN(len(ifaces))]
			rt.NetworkInterfaceID = e.ID
			if e.Attachment != nil && r.IntN(2) == 0 {
				rt.NetworkInterfaceID, rt.InstanceID = "", e.Attachment.InstanceID
			}
		default:
			rt.GatewayID = "igw-gone0000000000"
			rt.State = vpc.RouteBlackhole
		}
		t.Routes = append(t.Routes, rt)
	}
}

var ports = []int{22, 53, 67, 68, 80, 443, 1024, 5201, 33000, 65535}

func (w *world) pick(xs []int) int { return xs[w.r.IntN(len(xs))] }

// remote picks an address block a rule can name.
func (w *world) remote(v *vpc.Vpc, subs []*vpc.Subnet, ifaces []*vpc.NetworkInterface) netip.Prefix {
	r := w.r
	switch r.IntN(6) {
	case 0:
		return netip.MustParsePrefix("0.0.0.0/0")
	case 1:
		return v.CidrBlock
	case 2:
		return subs[r.IntN(len(subs))].CidrBlock
	case 3:
		return netip.PrefixFrom(ifaces[r.IntN(len(ifaces))].PrimaryIP(), 32)
	case 4:
		return outsideNets[r.IntN(len(outsideNets))]
	}
	return publicNet
}

func (w *world) sgRule(groups []*vpc.SecurityGroup, subs []*vpc.Subnet, v *vpc.Vpc, ifaces []*vpc.NetworkInterface) vpc.SecurityGroupRule {
	r := w.r
	rule := vpc.SecurityGroupRule{FromPort: -1, ToPort: -1}
	switch r.IntN(6) {
	case 0:
		rule.IPProtocol = "-1"
	case 1, 2:
		rule.IPProtocol = "tcp"
	case 3:
		rule.IPProtocol = "udp"
	case 4:
		rule.IPProtocol = "icmp"
	default:
		rule.IPProtocol = "50"
	}
	switch rule.IPProtocol {
	case "tcp", "udp":
		switch r.IntN(4) {
		case 0:
			rule.FromPort, rule.ToPort = 0, 65535
		case 1:
			rule.FromPort, rule.ToPort = 1024, 65535
		default:
			p := w.pick(ports)
			rule.FromPort, rule.ToPort = p, p
		}
	case "icmp":
		if r.IntN(2) == 0 {
			rule.FromPort = 8
			if r.IntN(2) == 0 {
				rule.ToPort = 0
			}
		}
	}
	if r.IntN(4) == 0 {
		rule.ReferencedGroupID = groups[r.IntN(len(groups))].ID
	} else {
		rule.CidrIPv4 = w.remote(v, subs, ifaces)
	}
	return rule
}

func (w *world) aclEntries(v *vpc.Vpc) []vpc.NetworkACLEntry {
	r := w.r
	var out []vpc.NetworkACLEntry
	subs := w.st.SubnetsOf(v.ID)
	for _, egress := range []bool{false, true} {
		used := map[int]bool{}
		for range 1 + r.IntN(4) {
			n := 10 * (1 + r.IntN(20))
			if used[n] {
				continue
			}
			used[n] = true
			e := vpc.NetworkACLEntry{RuleNumber: n, Egress: egress, RuleAction: vpc.ACLAllow, ICMPType: -1, ICMPCode: -1}
			if r.IntN(3) == 0 {
				e.RuleAction = vpc.ACLDeny
			}
			e.CidrBlock = w.remote(v, subs, w.enis)
			if e.CidrBlock.Bits() == 32 || !e.CidrBlock.IsValid() {
				e.CidrBlock = v.CidrBlock
			}
			switch r.IntN(5) {
			case 0, 1:
				e.Protocol = "-1"
			case 2:
				e.Protocol = "6"
				e.PortFrom, e.PortTo = 1024, 65535
				if r.IntN(2) == 0 {
					p := w.pick(ports)
					e.PortFrom, e.PortTo = p, p
				}
			case 3:
				e.Protocol = "17"
				p := w.pick(ports)
				e.PortFrom, e.PortTo = p, p
				if r.IntN(2) == 0 {
					e.PortFrom, e.PortTo = 0, 65535
				}
			default:
				e.Protocol = "1"
				if r.IntN(2) == 0 {
					e.ICMPType = 8
				}
			}
			out = append(out, e)
		}
	}
	return out
}

// poolBlocks are the public pools as the server makes them from an EC2
// pool range (its usable addresses, .1 to .254, in CIDR blocks): an
// elastic IP can be a block of its own, as long as its route.
var poolBlocks = func() []netip.Prefix {
	var out []netip.Prefix
	for a := 1; a <= 254; {
		bits := 32
		for bits > 24 && a%(1<<(33-bits)) == 0 && a+(1<<(33-bits))-1 <= 254 {
			bits--
		}
		out = append(out, netip.PrefixFrom(vpc.Nth(publicNet, a), bits))
		a += 1 << (32 - bits)
	}
	return out
}()

// build translates the state and compiles it for the simulator.
func (w *world) build() {
	cloud := translate.CloudConfig{Gateways: []translate.Gateway{cloudGW}, PublicPools: poolBlocks}
	d := translate.Translate(w.st, cloud)
	if len(d.Skipped) > 0 {
		panic(fmt.Sprintf("the generator made a state the translator skips parts of: %+v", d.Skipped))
	}
	x := topology.NewIndex()
	for _, o := range d.Objects {
		x.Put(o)
	}
	w.snap = sim.NewSnapshot(x)
	w.flows = flow.NewState()
	tables := sim.NewTables()
	edge := translate.ObjectID(translate.CloudObject, "edge-router")
	tables.ARP[sim.ARPKey{Router: flow.TagOf(string(topology.KindRouter), edge), IP: packet.U32(cloudGW.NextHop)}] = sim.ARPEntry{MAC: upstream, Refresh: 1e9}
	w.opts = sim.Options{Now: 1e9, Tables: tables}
	w.byPort, w.gwMACs, w.subGW, w.natMAC = map[string]string{}, map[[6]byte]bool{}, map[string][6]byte{}, map[string][6]byte{}
	for _, e := range w.enis {
		w.byPort[translate.ObjectID(e.ID, "port")] = e.ID
	}
	role := fmt.Sprintf("uplink/%s/%s", cloudGW.HostID, cloudGW.Interface)
	w.uplink = x.Get(topology.KindPort, translate.ObjectID(translate.CloudObject, role)).(*topology.Port)
	w.byPort[w.uplink.ID] = reach.Outside
	for _, s := range w.st.Subnets {
		p := x.Get(topology.KindPort, translate.ObjectID(s.ID, "gateway/router-port")).(*topology.Port)
		w.gwMACs[p.MAC] = true
		w.subGW[s.ID] = p.MAC
	}
	for _, n := range w.st.NatGateways {
		if p, ok := x.Get(topology.KindPort, translate.ObjectID(n.ID, "subnet/router-port")).(*topology.Port); ok {
			w.natMAC[n.ID] = p.MAC
		}
	}
	w.model = reach.New(w.st, reach.Cloud{PublicPools: poolBlocks})
}

// sendable are the interfaces a packet can come from: bound to a host.
func (w *world) sendable() []*vpc.NetworkInterface {
	var out []*vpc.NetworkInterface
	for _, e := range w.enis {
		if a := e.Attachment; a != nil && w.st.Instances[a.InstanceID].Placed() {
			out = append(out, e)
		}
	}
	return out
}

// test is one packet: the model's view and the frame the simulator gets.
type test struct {
	p       reach.Packet
	frame   []byte
	ingress string
	what    string
}

func a4(a netip.Addr) uint32 { return packet.U32(a) }

func macOf(s string) [6]byte {
	m, ok := reach.ParseMAC(s)
	if !ok {
		panic(s)
	}
	return m
}

func (w *world) randomPacket() test {
	r := w.r
	senders := w.sendable()
	if len(w.delivered) > 0 && r.IntN(3) == 0 {
		if t, ok := w.reply(w.delivered[r.IntN(len(w.delivered))]); ok {
			return t
		}
	}
	if len(senders) == 0 || r.IntN(6) == 0 {
		return w.fromOutside()
	}
	e := senders[r.IntN(len(senders))]
	switch k := r.IntN(20); {
	case k < 4:
		return w.arp(e)
	case k < 6:
		return w.dhcp(e)
	case k == 6:
		return w.ipv6(e)
	default:
		return w.ipPacket(e)
	}
}

// peerOf picks another interface, often in e's subnet.
func (w *world) peerOf(e *vpc.NetworkInterface) *vpc.NetworkInterface {
	var same []*vpc.NetworkInterface
	for _, x := range w.enis {
		if x.SubnetID == e.SubnetID && x != e {
			same = append(same, x)
		}
	}
	if len(same) > 0 && w.r.IntN(3) > 0 {
		return same[w.r.IntN(len(same))]
	}
	for {
		if x := w.enis[w.r.IntN(len(w.enis))]; x != e || len(w.enis) == 1 {
			return x
		}
	}
}

// l2 fills in the Ethernet destination a host would use for dst (a
// neighbour's MAC, a NAT gateway's, else the gateway's), or a wrong one.
func (w *world) l2(t *test, e *vpc.NetworkInterface, dst netip.Addr) {
	sub := w.st.Subnets[e.SubnetID]
	t.p.EthDst, t.p.ToGateway = w.subGW[sub.ID], true
	if sub.CidrBlock.Contains(dst) && dst != vpc.Nth(sub.CidrBlock, 1) {
		for _, x := range w.st.InterfacesInSubnet(sub.ID) {
			if slices.ContainsFunc(x.PrivateIPs, func(p vpc.PrivateIP) bool { return p.Address == dst }) {
				t.p.EthDst, t.p.ToGateway = macOf(x.MacAddress), false
			}
		}
	}
	switch w.r.IntN(25) {
	case 0:
		t.p.EthDst, t.p.ToGateway = reach.Broadcast, false
	case 1:
		t.p.EthDst, t.p.ToGateway = reach.MAC{0x02, 0xde, 0xad, 0, 0, 1}, false
	case 2:
		t.p.EthDst, t.p.ToGateway = macOf(e.MacAddress), false
	case 3:
		t.p.EthDst, t.p.ToGateway = macOf(w.peerOf(e).MacAddress), false
	}
}

// dstFor picks a destination for a packet from e.
func (w *world) dstFor(e *vpc.NetworkInterface) netip.Addr {
	r := w.r
	switch r.IntN(8) {
	case 0, 1, 2:
		p := w.peerOf(e)
		return p.PrivateIPs[r.IntN(len(p.PrivateIPs))].Address
	case 3:
		if len(w.public) > 0 {
			return w.public[r.IntN(len(w.public))]
		}
	case 4:
		for _, n := range w.st.NatGateways {
			if r.IntN(2) == 0 {
				return n.PrivateIP
			}
		}
		return vpc.Nth(w.st.Subnets[e.SubnetID].CidrBlock, 1+r.IntN(60))
	case 5:
		return vpc.Nth(w.st.Vpcs[e.VpcID].CidrBlock, r.IntN(1<<12))
	}
	return vpc.Nth(outsideNets[r.IntN(len(outsideNets))], 1+r.IntN(1000))
}

func (w *world) srcFor(e *vpc.NetworkInterface) netip.Addr {
	if w.r.IntN(6) == 0 {
		return w.peerOf(e).PrimaryIP() // spoofed (or, without source/dest check, forwarded)
	}
	return e.PrivateIPs[w.r.IntN(len(e.PrivateIPs))].Address
}

// ipPacket makes a random IPv4 packet from e.
func (w *world) ipPacket(e *vpc.NetworkInterface) test {
	r := w.r
	ip := reach.IPv4{Src: w.srcFor(e), Dst: w.dstFor(e)}
	switch k := r.IntN(10); {
	case k < 4:
		ip.Proto, ip.SrcPort, ip.DstPort = reach.ProtoTCP, uint16(30000+r.IntN(20)), uint16(w.pick(ports))
	case k < 7:
		ip.Proto, ip.SrcPort, ip.DstPort = reach.ProtoUDP, uint16(w.pick(ports)), uint16(w.pick(ports))
	case k < 9:
		ip.Proto, ip.ICMPType = reach.ProtoICMP, 8
		ip.SrcPort = uint16(1 + r.IntN(5))
		ip.DstPort = ip.SrcPort
	default:
		ip.Proto = 50
	}
	switch r.IntN(10) {
	case 0:
		ip.MF = true
	case 1:
		ip.FragOff = uint16(1 + r.IntN(100))
	}
	t := test{ingress: e.ID, what: "ipv4", p: reach.Packet{From: e.ID, EthSrc: macOf(e.MacAddress), EtherType: reach.EtherIPv4, IP: ip}}
	if r.IntN(20) == 0 {
		t.p.EthSrc = macOf(w.peerOf(e).MacAddress)
		t.what += " forged-mac"
	}
	if r.IntN(20) == 0 {
		t.p.VLAN = true
		t.what += " vlan"
	}
	w.l2(&t, e, ip.Dst)
	return t
}

// dhcp makes DHCP traffic: a client's broadcast, a rogue server's reply,
// a spoofed first fragment of a client request.
func (w *world) dhcp(e *vpc.NetworkInterface) test {
	r := w.r
	t := test{ingress: e.ID, p: reach.Packet{From: e.ID, EthSrc: macOf(e.MacAddress), EtherType: reach.EtherIPv4}}
	peer := w.peerOf(e)
	switch r.IntN(4) {
	case 0:
		t.what = "dhcp discover"
		t.p.IP = reach.IPv4{Src: netip.IPv4Unspecified(), Dst: netip.AddrFrom4([4]byte{255, 255, 255, 255}), Proto: reach.ProtoUDP, SrcPort: 68, DstPort: 67}
		t.p.EthDst = reach.Broadcast
	case 1:
		t.what = "rogue dhcp reply, broadcast"
		t.p.IP = reach.IPv4{Src: e.PrimaryIP(), Dst: netip.AddrFrom4([4]byte{255, 255, 255, 255}), Proto: reach.ProtoUDP, SrcPort: 67, DstPort: 68}
		t.p.EthDst = reach.Broadcast
	case 2:
		t.what = "rogue dhcp reply, unicast"
		t.p.IP = reach.IPv4{Src: e.PrimaryIP(), Dst: peer.PrimaryIP(), Proto: reach.ProtoUDP, SrcPort: 67, DstPort: 68}
		w.l2(&t, e, t.p.IP.Dst)
	default:
		t.what = "dhcp request, spoofed first fragment"
		t.p.IP = reach.IPv4{Src: peer.PrimaryIP(), Dst: peer.PrimaryIP(), Proto: reach.ProtoUDP, SrcPort: 68, DstPort: 67, MF: true}
		if r.IntN(2) == 0 {
			t.p.IP.Dst = netip.AddrFrom4([4]byte{255, 255, 255, 255})
		}
		w.l2(&t, e, t.p.IP.Dst)
	}
	return t
}

// arp makes ARP requests and replies, honest or forged.
func (w *world) arp(e *vpc.NetworkInterface) test {
	r := w.r
	own := macOf(e.MacAddress)
	peer := w.peerOf(e)
	sub := w.st.Subnets[e.SubnetID]
	a := reach.ARP{Op: reach.ARPRequest, SenderMAC: own, SenderIP: e.PrivateIPs[r.IntN(len(e.PrivateIPs))].Address}
	targets := []netip.Addr{peer.PrimaryIP(), vpc.Nth(sub.CidrBlock, 1), vpc.Nth(sub.CidrBlock, 50), e.PrimaryIP(), vpc.Nth(sub.CidrBlock, 200)}
	a.TargetIP = targets[r.IntN(len(targets))]
	t := test{ingress: e.ID, what: "arp", p: reach.Packet{From: e.ID, EthSrc: own, EthDst: reach.Broadcast, EtherType: reach.EtherARP}}
	if r.IntN(3) == 0 {
		a.Op = reach.ARPReply
		t.what += " reply"
	}
	switch r.IntN(4) {
	case 0:
		a.SenderMAC = reach.MAC{0x02, 0xba, 0xd0, 0, 0, byte(r.IntN(3))}
		t.what += " forged-sender-mac"
	case 1:
		a.SenderIP = peer.PrimaryIP()
		t.what += " forged-sender-ip"
	}
	if r.IntN(2) == 0 || a.Op == reach.ARPReply {
		t.what += " unicast"
		w.l2(&t, e, a.TargetIP)
	}
	if r.IntN(15) == 0 {
		t.p.VLAN = true
		t.what += " vlan"
	}
	t.p.ARP = a
	return t
}

func (w *world) ipv6(e *vpc.NetworkInterface) test {
	return test{ingress: e.ID, what: "ipv6", p: reach.Packet{From: e.ID, EthSrc: macOf(e.MacAddress), EthDst: macOf(w.peerOf(e).MacAddress), EtherType: reach.EtherIPv6}}
}

// fromOutside makes a packet from the internet to a public address.
func (w *world) fromOutside() test {
	r := w.r
	dst := vpc.Nth(publicNet, 250)
	if len(w.public) > 0 {
		dst = w.public[r.IntN(len(w.public))]
	}
	ip := reach.IPv4{Src: vpc.Nth(outsideNets[r.IntN(len(outsideNets))], 1+r.IntN(1000)), Dst: dst}
	switch r.IntN(4) {
	case 0:
		ip.Proto, ip.SrcPort, ip.DstPort = reach.ProtoUDP, 67, 68 // a DHCP "reply" from anywhere
	case 1:
		ip.Proto, ip.ICMPType, ip.SrcPort, ip.DstPort = reach.ProtoICMP, 8, 7, 7
	default:
		ip.Proto, ip.SrcPort, ip.DstPort = reach.ProtoTCP, uint16(40000+r.IntN(10)), uint16(w.pick(ports))
	}
	return test{ingress: reach.Outside, what: "from outside", p: reach.Packet{EtherType: reach.EtherIPv4, IP: ip}}
}

// reply answers what the simulator delivered before, as its receiver would.
func (w *world) reply(d delivery) (test, bool) {
	q := d.pkt
	if q.Flags&packet.FlagIPv4 == 0 || q.Flags&packet.FlagFragment != 0 {
		return test{}, false
	}
	ip := reach.IPv4{Src: q.DstAddr(), Dst: q.SrcAddr(), Proto: q.Proto, SrcPort: q.DstPort, DstPort: q.SrcPort}
	if q.IsEcho() {
		ip.ICMPType = packet.ICMPEchoReply
		if q.ICMPType == packet.ICMPEchoReply {
			ip.ICMPType = packet.ICMPEchoRequest
		}
	}
	if d.to == reach.Outside {
		return test{ingress: reach.Outside, what: "reply from outside", p: reach.Packet{EtherType: reach.EtherIPv4, IP: ip}}, true
	}
	e := w.st.NetworkInterfaces[d.to]
	t := test{ingress: e.ID, what: "reply", p: reach.Packet{From: e.ID, EthSrc: macOf(e.MacAddress), EtherType: reach.EtherIPv4, IP: ip}}
	w.l2(&t, e, ip.Dst)
	return t, true
}

// frame builds what the simulator receives.
func (w *world) frame(t *test) []byte {
	p := &t.p
	src, dst := p.EthSrc, p.EthDst
	if t.ingress == reach.Outside {
		src, dst = reach.MAC(upstream), reach.MAC(w.uplink.MAC)
	}
	var vlan uint16
	if p.VLAN {
		vlan = 7
	}
	switch p.EtherType {
	case reach.EtherARP:
		a := p.ARP
		var tha [6]byte
		if a.Op == reach.ARPReply {
			tha = dst
		}
		f := packet.BuildARP(a.Op, a.SenderMAC, a4(a.SenderIP), tha, a4(a.TargetIP))
		copy(f[0:6], dst[:])
		copy(f[6:12], src[:])
		return tag(f, vlan)
	case reach.EtherIPv6:
		f := make([]byte, 14+40+8)
		copy(f[0:6], dst[:])
		copy(f[6:12], src[:])
		binary.BigEndian.PutUint16(f[12:], reach.EtherIPv6)
		f[14] = 0x60
		binary.BigEndian.PutUint16(f[18:], 8)
		f[20], f[21] = 17, 64
		return tag(f, vlan)
	}
	ip := p.IP
	s := packet.Spec{EthSrc: src, EthDst: dst, Src: a4(ip.Src), Dst: a4(ip.Dst), Proto: ip.Proto, SrcPort: ip.SrcPort, DstPort: ip.DstPort,
		ICMPType: ip.ICMPType, MF: ip.MF, FragOff: ip.FragOff, IPID: 77, Payload: []byte("boundary"), VLAN: vlan}
	if ip.Proto == reach.ProtoTCP {
		s.TCPFlags = 0x02
	}
	return s.Build()
}

// tag inserts an 802.1Q tag (Spec does it for IPv4).
func tag(f []byte, vlan uint16) []byte {
	if vlan == 0 {
		return f
	}
	out := make([]byte, 0, len(f)+4)
	out = append(out, f[:12]...)
	out = binary.BigEndian.AppendUint16(out, packet.EtherTypeVLAN)
	out = binary.BigEndian.AppendUint16(out, vlan)
	return append(out, f[12:]...)
}

// simulate runs the frame through the topology and returns what reaches
// interfaces and the internet, and the generated ARP answers.
func (w *world) simulate(t *test, trace bool) ([]reach.Delivery, []delivery, *sim.Result) {
	frame := w.frame(t)
	var p packet.Packet
	p.Decode(frame)
	port := w.uplink.ID
	if t.ingress != reach.Outside {
		port = translate.ObjectID(t.ingress, "port")
	}
	var res sim.Result
	opts := w.opts
	opts.Trace = true
	sim.Simulate(w.snap, w.flows, port, frame, &p, &opts, &res)
	w.opts.Tables.Learn(res.Learned, w.opts.Now)
	var got []reach.Delivery
	var raw []delivery
	add := func(portID string, f []byte, answer bool) {
		to, ok := w.byPort[portID]
		if !ok {
			return
		}
		var q packet.Packet
		q.Decode(f)
		d := reach.Delivery{To: to, Answer: answer}
		switch {
		case q.Flags&packet.FlagARP != 0:
			d.ARP, d.Op, d.Src, d.Dst = true, q.ARPOp, q.SrcAddr(), q.DstAddr()
			d.Src, d.Dst = packet.AddrFrom(q.ARPSPA), packet.AddrFrom(q.ARPTPA)
			d.ARPSender = reach.MAC(q.ARPSHA).String()
			if w.gwMACs[q.ARPSHA] {
				d.ARPSender = reach.GatewayMAC
			}
		case q.Flags&packet.FlagIPv4 != 0:
			d.Src, d.Dst, d.Proto = q.SrcAddr(), q.DstAddr(), q.Proto
			if q.Flags&packet.FlagL4 != 0 && (q.Proto == packet.ProtoTCP || q.Proto == packet.ProtoUDP || q.IsEcho()) {
				d.SrcPort, d.DstPort = q.SrcPort, q.DstPort
			}
			raw = append(raw, delivery{to: to, pkt: q})
		default:
			d.Proto = 255 // neither: shows as a mismatch
		}
		got = append(got, d)
	}
	if res.Verdict == sim.VerdictForward {
		f := append([]byte(nil), frame...)
		var q packet.Packet
		q.Decode(f)
		i := 0
		flow.Apply(f, &q, res.Actions, func(a flow.Action, out []byte) {
			add(res.Outputs[i].PortID, out, false)
			i++
		})
	}
	for _, g := range res.Generated {
		switch {
		case g.Reason == "rewritten":
			add(g.PortID, g.Frame, false)
		case strings.HasPrefix(g.Reason, "arp reply"):
			add(g.PortID, g.Frame, true)
		}
	}
	return got, raw, &res
}

// check sends one packet to both and compares.
func (w *world) check(t test, trace bool) error {
	want := w.model.Send(t.p)
	got, raw, res := w.simulate(&t, trace)
	if trace {
		fmt.Printf("%s %+v\n  model: %v\n  sim:   %v\n%s\n", t.what, t.p, want, got, sim.FormatTrace(res.Trace))
	}
	if !matchDeliveries(want, got) {
		return fmt.Errorf("%s packet %+v (frame %s):\n  model delivers %v\n  simulator delivers %v (%s: %s)\ntrace:\n%s",
			t.what, t.p, pktString(w.frame(&t)), want, got, res.Verdict, res.Reason, sim.FormatTrace(res.Trace))
	}
	w.delivered = append(w.delivered, raw...)
	s := &boundaryStats
	s.packets++
	c := s.kinds[t.what]
	c[0]++
	for _, d := range want {
		c[1]++
		if d.Answer {
			s.answered++
		} else {
			s.delivered++
		}
		break
	}
	s.kinds[t.what] = c
	return nil
}

func pktString(f []byte) string {
	var p packet.Packet
	p.Decode(f)
	return p.String()
}

// matchDeliveries pairs the model's deliveries with the simulator's; a
// NAT gateway's port choice (AnySrcPort) matches any port, which the model
// then learns.
func matchDeliveries(want, got []reach.Delivery) bool {
	if len(want) != len(got) {
		return false
	}
	used := make([]bool, len(got))
	for i := range want {
		wd := &want[i]
		found := false
		for j, gd := range got {
			if used[j] {
				continue
			}
			x := gd
			if wd.AnySrcPort {
				x.SrcPort = wd.SrcPort
				if wd.Proto == reach.ProtoICMP {
					x.DstPort = wd.DstPort
				}
			}
			x.AnySrcPort = wd.AnySrcPort
			if x.String() == wd.String() {
				used[j], found = true, true
				if wd.AnySrcPort {
					wd.Bind(gd.SrcPort)
				}
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
