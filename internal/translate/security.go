package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func u8(v int) *uint8 { x := uint8(v); return &x }

func portRange(from, to int) *topology.PortRange {
	return &topology.PortRange{Start: uint16(from), End: uint16(to)}
}

// l4 fills a condition's protocol, ports and ICMP fields from an EC2
// protocol ("-1", "tcp", "udp", "icmp" or a number) and its FromPort/ToPort
// (ports, or ICMP type/code; -1 = any).
func l4(c *topology.Condition, proto string, from, to int) {
	n := vpc.ProtocolNumber(proto)
	if n < 0 {
		return
	}
	c.NwProto = u8(n)
	switch n {
	case 6, 17:
		if from >= 0 && to >= 0 && !(from == 0 && to == 65535) {
			c.TpDst = portRange(from, to)
		}
	case 1:
		if from >= 0 {
			c.ICMPType = u8(from)
			if to >= 0 {
				c.ICMPCode = u8(to)
			}
		}
	}
}

// sgRule renders one security group rule: accept what it allows. Ingress
// rules match the source, egress rules the destination; a group reference
// matches the private addresses of the group's members (an IP address
// group), as AWS does.
func (b *builder) sgRule(r *vpc.SecurityGroupRule) (topology.Rule, bool) {
	rule := topology.Rule{ID: r.ID, Action: topology.ActionAccept}
	rule.EtherType = etherIPv4
	l4(&rule.Condition, r.IPProtocol, r.FromPort, r.ToPort)
	switch {
	case r.ReferencedGroupID != "":
		if b.st.SecurityGroups[r.ReferencedGroupID] == nil {
			return rule, false
		}
		g := ObjectID(r.ReferencedGroupID, "members")
		if r.IsEgress {
			rule.IPGroupDst = g
		} else {
			rule.IPGroupSrc = g
		}
	case r.CidrIPv4.IsValid():
		if r.CidrIPv4.Bits() > 0 {
			if r.IsEgress {
				rule.NwDst = r.CidrIPv4.Masked()
			} else {
				rule.NwSrc = r.CidrIPv4.Masked()
			}
		}
	default:
		return rule, false
	}
	return rule, true
}

// securityGroups produces, per group, an ingress and an egress chain and
// the IP address group of its members' private addresses (and allowed
// address pairs).
func (b *builder) securityGroups(v *vpc.Vpc) {
	for _, g := range b.st.SecurityGroupsOf(v.ID) {
		members := &topology.IPAddrGroup{Meta: meta(g.ID, v.ID, "members", g.ID+"/members")}
		for _, e := range b.st.GroupMembers(g.ID) {
			for _, p := range e.PrivateIPs {
				if p.Address.Is4() {
					members.Addresses = append(members.Addresses, p.Address)
				}
			}
			// A member's allowed address pairs are members too, as in
			// Neutron; a pair wider than pairARPMax addresses is not (an
			// address group lists addresses).
			if e.PortSecurityOff {
				continue
			}
			for _, a := range e.AddressPairs {
				if p, err := a.Prefix(); err == nil && p.Addr().Is4() && p.Bits() >= 32-8 {
					for a, k := p.Addr(), 0; k < 1<<(32-p.Bits()); a, k = a.Next(), k+1 {
						members.Addresses = append(members.Addresses, a)
					}
				}
			}
		}
		slices.SortFunc(members.Addresses, netip.Addr.Compare)
		members.Addresses = slices.Compact(members.Addresses)
		b.add(members)
		for _, dir := range []struct {
			role  string
			rules []vpc.SecurityGroupRule
		}{{"ingress", g.Ingress}, {"egress", g.Egress}} {
			ch := &topology.Chain{Meta: meta(g.ID, v.ID, dir.role, g.ID+"/"+dir.role)}
			// Every rule accepts, so their order does not matter: sort them
			// by id, so the order they were stored in does not either.
			rules := slices.Clone(dir.rules)
			slices.SortFunc(rules, func(p, q vpc.SecurityGroupRule) int { return strings.Compare(p.ID, q.ID) })
			for i := range rules {
				if rule, ok := b.sgRule(&rules[i]); ok && !slices.ContainsFunc(ch.Rules, func(x topology.Rule) bool { return x.ID == rule.ID }) {
					ch.Rules = append(ch.Rules, rule)
				} else {
					b.skip(g.ID, "rule %q: no valid source or destination, or a duplicate id", rules[i].ID)
				}
			}
			b.add(ch)
		}
	}
}

// networkACLs produces, per ACL, an ingress and an egress chain of its
// entries in rule-number order, each accept (allow) or drop (deny), ending
// in a drop of IPv4 (AWS's "*" rule). It returns ACL id → [ingress, egress] chain.
func (b *builder) networkACLs(v *vpc.Vpc) map[string][2]string {
	out := map[string][2]string{}
	for _, a := range b.st.NetworkACLsOf(v.ID) {
		var ids [2]string
		for i, egress := range []bool{false, true} {
			ch := b.aclChain(a, v.ID, egress, "", topology.ActionAccept)
			b.add(ch)
			ids[i] = ch.ID
		}
		out[a.ID] = ids
	}
	return out
}

// aclChain renders one direction of an ACL; allow is what an allow entry
// does: accept at a subnet's border, return where the ACL is one step of
// a longer chain (a NAT gateway's uplink, which translates after it).
func (b *builder) aclChain(a *vpc.NetworkACL, vpcID string, egress bool, suffix string, allow topology.Action) *topology.Chain {
	role := map[bool]string{false: "ingress", true: "egress"}[egress] + suffix
	ch := &topology.Chain{Meta: meta(a.ID, vpcID, role, a.ID+"/"+role)}
	entries := slices.Clone(a.Entries)
	slices.SortStableFunc(entries, func(p, q vpc.NetworkACLEntry) int { return p.RuleNumber - q.RuleNumber })
	for _, e := range entries {
		if e.Egress != egress {
			continue
		}
		r := topology.Rule{ID: fmt.Sprintf("rule-%d", e.RuleNumber), Action: topology.ActionDrop}
		if e.RuleAction == vpc.ACLAllow {
			r.Action = allow
		}
		r.EtherType = etherIPv4
		if e.CidrBlock.IsValid() && e.CidrBlock.Bits() > 0 {
			if egress {
				r.NwDst = e.CidrBlock.Masked()
			} else {
				r.NwSrc = e.CidrBlock.Masked()
			}
		}
		if vpc.ProtocolNumber(e.Protocol) == 1 {
			l4(&r.Condition, e.Protocol, e.ICMPType, e.ICMPCode)
		} else {
			from, to := e.PortFrom, e.PortTo
			if from == 0 && to == 0 {
				from, to = -1, -1
			}
			l4(&r.Condition, e.Protocol, from, to)
		}
		if slices.ContainsFunc(ch.Rules, func(x topology.Rule) bool { return x.ID == r.ID }) {
			if suffix == "" {
				b.skip(a.ID, "%s entry %d is given twice", role, e.RuleNumber)
			}
			continue
		}
		ch.Rules = append(ch.Rules, r)
	}
	// The "*" rule denies IP traffic only: an ACL filters IP, and ARP
	// between a subnet's hosts and its router (a unicast refresh of the
	// gateway's entry, the router resolving a host) must cross it.
	ch.Rules = append(ch.Rules, topology.Rule{ID: "default-deny", Action: topology.ActionDrop, Condition: topology.Condition{EtherType: etherIPv4}})
	return ch
}

// natACL returns the chains (ingress, egress) that apply subnet sub's ACL
// to a NAT gateway's internet side, as AWS does: a NAT gateway's traffic to
// and from the internet crosses its subnet's border too. Allow entries
// return, so the translation after them still runs. Empty ids: no ACL.
func (b *builder) natACL(vpcID string, sub *vpc.Subnet) (string, string) {
	a := b.st.NetworkACLFor(sub)
	if a == nil {
		return "", ""
	}
	var ids [2]string
	for i, egress := range []bool{false, true} {
		ch := b.aclChain(a, vpcID, egress, "/nat", topology.ActionReturn)
		if _, done := b.objs[topology.Key(ch)]; !done {
			b.add(ch)
		}
		ids[i] = ch.ID
	}
	return ids[0], ids[1]
}

// eni produces an interface's bridge port, bound to its instance's host
// when the instance is placed, with anti-spoofing and security group
// chains on both sides:
//
//	from the VM: drop a foreign source MAC, VLAN-tagged frames, ARP whose
//	  sender MAC or address is not the port's, DHCP server replies (UDP
//	  from port 67: rogue DHCP), UDP to port 67 (the VPC's DHCP service
//	  answers all of it at the port; what reaches the chain is what it
//	  refused, a fragment say) and, with source/dest check, IPv4 from a
//	  foreign address; accept return flows; jump to each group's egress
//	  chain; accept ARP; drop the rest.
//	to the VM: drop ARP for a foreign address, any frame not addressed
//	  to the port's MAC (broadcast, multicast, flooded unknown unicast: a
//	  VPC delivers none; the bridge answers ARP requests for the addresses
//	  it knows, which are all of the subnet's) and, with source/dest
//	  check, IPv4 to a foreign address; accept return flows; jump to each
//	  group's ingress chain; accept ARP; drop the rest.
//
// There is no DHCP exception: the agent answers DHCP requests at the port
// before any flow exists (DESIGN.md §5.6), so these chains only keep DHCP
// from passing between instances, and a kernel fast path running their
// flows enforces the same boundary. A Neutron port with port security off
// (PortSecurityOff) has neither chain. ARP rules match the
// sender/target protocol address with nw_src/nw_dst, the MidoNet
// convention the simulator follows. docs/security.md says why each rule is
// there.
func (b *builder) eni(x *vpcCtx, e *vpc.NetworkInterface) {
	if e.InterfaceType == vpc.InterfaceTypeNatGateway {
		return // realized by its NAT gateway's router
	}
	if e.SubnetID == "" {
		// A Neutron port on a network without a subnet: no address, no
		// bridge (each subnet is its own): nothing to realize, it carries
		// nothing until it gets a fixed IP.
		return
	}
	bridge := x.bridges[e.SubnetID]
	if bridge == "" {
		b.skip(e.ID, "subnet %s is not realized", e.SubnetID)
		return
	}
	sub := b.st.Subnets[e.SubnetID]
	mac, err := topology.ParseMAC(e.MacAddress)
	if err != nil || mac.IsMulticast() || mac.IsZero() {
		b.skip(e.ID, "MAC %q is not a unicast MAC", e.MacAddress)
		return
	}
	var ips []netip.Addr
	for _, p := range e.PrivateIPs {
		if !sub.CidrBlock.Contains(p.Address) || sub.Reserved(p.Address) {
			b.skip(e.ID, "address %s is not a usable address of %s", p.Address, sub.CidrBlock)
			return
		}
		ips = append(ips, p.Address)
	}
	if len(ips) == 0 {
		b.skip(e.ID, "no private address")
		return
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	if e.PortSecurityOff {
		// A Neutron port with port security off: no chains, so no
		// anti-spoofing and no groups; the bridge still answers ARP for its
		// addresses (IPs) and delivers to its MAC.
		b.add(b.vmPort(e, x.v.ID, bridge, mac, b.answered(x, e, slices.Compact(ips)), "", ""))
		return
	}
	own := &topology.IPAddrGroup{Meta: meta(e.ID, x.v.ID, "addresses", e.ID+"/addresses"), Addresses: slices.Compact(ips)}
	b.add(own)

	var groups []string
	// Jumps to groups only accept, so their order does not matter: sorted.
	for _, g := range slices.Compact(slices.Sorted(slices.Values(e.Groups))) {
		if sg := b.st.SecurityGroups[g]; sg != nil && sg.VpcID == x.v.ID {
			groups = append(groups, g)
		} else {
			b.skip(e.ID, "security group %s is not in %s", g, x.v.ID)
		}
	}

	from := &topology.Chain{Meta: meta(e.ID, x.v.ID, "from-vm", e.ID+"/from-vm")}
	to := &topology.Chain{Meta: meta(e.ID, x.v.ID, "to-vm", e.ID+"/to-vm")}
	if pairs := b.addressPairs(x, e, mac); len(pairs) > 0 {
		src, dst := b.pairChains(x, e, mac, own, pairs)
		from.Rules = append(from.Rules,
			topology.Rule{ID: "vlan", Action: topology.ActionDrop, Condition: topology.Condition{VLANTagged: true}},
			topology.Rule{ID: "rogue-dhcp", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{NwProto: u8(17), TpSrc: portRange(67, 67)})},
			topology.Rule{ID: "dhcp-server", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{NwProto: u8(17), TpDst: portRange(67, 67)})},
			topology.Rule{ID: "source", Action: topology.ActionJump, JumpChain: src.ID})
		to.Rules = append(to.Rules, topology.Rule{ID: "destination", Action: topology.ActionJump, JumpChain: dst.ID})
	} else {
		b.antiSpoofing(e, mac, own, from, to)
	}
	from.Rules = append(from.Rules, topology.Rule{ID: "return-flow", Action: topology.ActionAccept, Condition: topology.Condition{MatchReturnFlow: true}})
	for _, g := range groups {
		from.Rules = append(from.Rules, topology.Rule{ID: g, Action: topology.ActionJump, JumpChain: ObjectID(g, "egress")})
	}
	from.Rules = append(from.Rules,
		topology.Rule{ID: "arp", Action: topology.ActionAccept, Condition: arp(topology.Condition{})},
		topology.Rule{ID: "default-drop", Action: topology.ActionDrop})
	b.add(from)

	to.Rules = append(to.Rules, topology.Rule{ID: "return-flow", Action: topology.ActionAccept, Condition: topology.Condition{MatchReturnFlow: true}})
	for _, g := range groups {
		to.Rules = append(to.Rules, topology.Rule{ID: g, Action: topology.ActionJump, JumpChain: ObjectID(g, "ingress")})
	}
	to.Rules = append(to.Rules,
		topology.Rule{ID: "arp", Action: topology.ActionAccept, Condition: arp(topology.Condition{})},
		topology.Rule{ID: "default-drop", Action: topology.ActionDrop})
	b.add(to)

	b.add(b.vmPort(e, x.v.ID, bridge, mac, b.answered(x, e, own.Addresses), from.ID, to.ID))
}

func ipv4(c topology.Condition) topology.Condition { c.EtherType = etherIPv4; return c }
func arp(c topology.Condition) topology.Condition  { c.EtherType = etherARP; return c }

// antiSpoofing puts the anti-spoofing rules of a port without address
// pairs at the head of its chains (eni says which).
func (b *builder) antiSpoofing(e *vpc.NetworkInterface, mac topology.MAC, own *topology.IPAddrGroup, from, to *topology.Chain) {
	from.Rules = append(from.Rules,
		topology.Rule{ID: "spoofed-mac", Action: topology.ActionDrop, Condition: topology.Condition{SrcMAC: mac, InvSrcMAC: true}},
		topology.Rule{ID: "vlan", Action: topology.ActionDrop, Condition: topology.Condition{VLANTagged: true}},
		topology.Rule{ID: "spoofed-arp-mac", Action: topology.ActionDrop, Condition: arp(topology.Condition{ARPSenderMAC: mac, InvARPSenderMAC: true})},
		topology.Rule{ID: "spoofed-arp", Action: topology.ActionDrop, Condition: arp(topology.Condition{IPGroupSrc: own.ID, InvIPGroupSrc: true})},
		topology.Rule{ID: "rogue-dhcp", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{NwProto: u8(17), TpSrc: portRange(67, 67)})},
		topology.Rule{ID: "dhcp-server", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{NwProto: u8(17), TpDst: portRange(67, 67)})},
	)
	if e.SourceDestCheck {
		from.Rules = append(from.Rules, topology.Rule{ID: "spoofed-ip", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{IPGroupSrc: own.ID, InvIPGroupSrc: true})})
	}
	to.Rules = append(to.Rules,
		topology.Rule{ID: "foreign-arp", Action: topology.ActionDrop, Condition: arp(topology.Condition{IPGroupDst: own.ID, InvIPGroupDst: true})},
		topology.Rule{ID: "foreign-mac", Action: topology.ActionDrop, Condition: topology.Condition{DstMAC: mac, InvDstMAC: true}},
	)
	if e.SourceDestCheck {
		to.Rules = append(to.Rules, topology.Rule{ID: "foreign-ip", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{IPGroupDst: own.ID, InvIPGroupDst: true})})
	}
}

// vmPort is interface e's bridge port with its filters, bound to its
// instance's host when the instance is placed, else to its binding's.
func (b *builder) vmPort(e *vpc.NetworkInterface, vpcID, bridge string, mac topology.MAC, ips []netip.Addr, in, out string) *topology.Port {
	p := &topology.Port{
		Meta:       meta(e.ID, vpcID, "port", e.ID),
		DeviceKind: topology.KindBridge, DeviceID: bridge,
		MAC: mac, IPs: ips, MTU: b.vmMTU,
		InFilter: in, OutFilter: out, AdminDown: e.AdminDown,
	}
	if a := e.Attachment; a != nil {
		if inst := b.st.Instances[a.InstanceID]; inst != nil && inst.Placed() {
			p.HostID, p.Interface = inst.HostID, vpc.HostInterfaceName(e.ID)
		}
	}
	if p.HostID == "" && e.Binding != nil {
		p.HostID, p.Interface = e.Binding.HostID, e.Binding.Interface
	}
	return p
}

// addressPair is an allowed address pair as the translator realizes it.
type addressPair struct {
	mac    topology.MAC
	prefix netip.Prefix
}

// addressPairs are e's allowed address pairs (none without port
// security); a pair that does not parse is skipped, with a note.
func (b *builder) addressPairs(x *vpcCtx, e *vpc.NetworkInterface, own topology.MAC) []addressPair {
	if e.PortSecurityOff {
		return nil
	}
	var out []addressPair
	for _, a := range e.AddressPairs {
		p, err := a.Prefix()
		m, merr := topology.ParseMAC(a.MAC)
		if a.MAC == "" {
			m, merr = own, nil
		}
		if err != nil || !p.Addr().Is4() || merr != nil || m.IsMulticast() || m.IsZero() {
			b.skip(e.ID, "address pair %s/%s is not an IPv4 prefix and a unicast MAC", a.IPAddress, a.MAC)
			continue
		}
		out = append(out, addressPair{m, p})
	}
	return out
}

// pairARPMax is the widest pair whose addresses an ARP rule lists (an ARP's
// sender and target addresses match address groups, not prefixes).
const pairARPMax = 256

// pairChains are the anti-spoofing chains of a port with allowed address
// pairs, jumped to first by its from-vm and to-vm chains: each returns
// (the caller goes on) for what the port may send or receive and drops the
// rest.
//
//	source: ARP whose Ethernet and sender MAC are the port's and sender
//	  address its own, or a pair's MAC and an address of the pair; IPv4
//	  from the port's MAC and own address (any address without
//	  source/dest check), or a pair's MAC and an address in its prefix;
//	  other frames from the port's MAC.
//	destination: ARP for an own address to the port's MAC, ARP for a pair's
//	  address to its MAC or broadcast (requests for a pair's address are
//	  not answered by the bridge, which floods them: the port holding the
//	  address answers, as a VRRP router does); IPv4 to the port's MAC and
//	  own address (any without the check) or to a pair's MAC and prefix;
//	  other frames to the port's MAC.
//
// A pair wider than pairARPMax addresses matches ARP by MAC only (any
// sender or target address): docs/neutron-api.md says so.
func (b *builder) pairChains(x *vpcCtx, e *vpc.NetworkInterface, mac topology.MAC, own *topology.IPAddrGroup, pairs []addressPair) (src, dst *topology.Chain) {
	src = &topology.Chain{Meta: meta(e.ID, x.v.ID, "from-vm/source", e.ID+"/from-vm/source")}
	dst = &topology.Chain{Meta: meta(e.ID, x.v.ID, "to-vm/destination", e.ID+"/to-vm/destination")}
	ret := topology.ActionReturn
	src.Rules = append(src.Rules, topology.Rule{ID: "arp", Action: ret, Condition: arp(topology.Condition{SrcMAC: mac, ARPSenderMAC: mac, IPGroupSrc: own.ID})})
	dst.Rules = append(dst.Rules, topology.Rule{ID: "arp", Action: ret, Condition: arp(topology.Condition{DstMAC: mac, IPGroupDst: own.ID})})
	if e.SourceDestCheck {
		src.Rules = append(src.Rules, topology.Rule{ID: "ip", Action: ret, Condition: ipv4(topology.Condition{SrcMAC: mac, IPGroupSrc: own.ID})})
		dst.Rules = append(dst.Rules, topology.Rule{ID: "ip", Action: ret, Condition: ipv4(topology.Condition{DstMAC: mac, IPGroupDst: own.ID})})
	} else {
		src.Rules = append(src.Rules, topology.Rule{ID: "ip", Action: ret, Condition: ipv4(topology.Condition{SrcMAC: mac})})
		dst.Rules = append(dst.Rules, topology.Rule{ID: "ip", Action: ret, Condition: ipv4(topology.Condition{DstMAC: mac})})
	}
	broadcast := topology.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for i, p := range pairs {
		id := fmt.Sprintf("pair-%d", i)
		var arpSrc, arpDst topology.Condition
		if n := 1 << (32 - p.prefix.Bits()); n <= pairARPMax {
			g := &topology.IPAddrGroup{Meta: meta(e.ID, x.v.ID, "pair-addresses/"+id, e.ID+"/"+id)}
			for a, k := p.prefix.Addr(), 0; k < n; a, k = a.Next(), k+1 {
				g.Addresses = append(g.Addresses, a)
			}
			b.add(g)
			arpSrc, arpDst = topology.Condition{IPGroupSrc: g.ID}, topology.Condition{IPGroupDst: g.ID}
		}
		arpSrc.SrcMAC, arpSrc.ARPSenderMAC = p.mac, p.mac
		src.Rules = append(src.Rules,
			topology.Rule{ID: id + "-arp", Action: ret, Condition: arp(arpSrc)},
			topology.Rule{ID: id + "-ip", Action: ret, Condition: ipv4(topology.Condition{SrcMAC: p.mac, NwSrc: p.prefix})})
		unicast, flooded := arpDst, arpDst
		unicast.DstMAC, flooded.DstMAC = p.mac, broadcast
		dst.Rules = append(dst.Rules,
			topology.Rule{ID: id + "-arp", Action: ret, Condition: arp(unicast)},
			topology.Rule{ID: id + "-arp-broadcast", Action: ret, Condition: arp(flooded)},
			topology.Rule{ID: id + "-ip", Action: ret, Condition: ipv4(topology.Condition{DstMAC: p.mac, NwDst: p.prefix})})
	}
	src.Rules = append(src.Rules,
		topology.Rule{ID: "spoofed-arp", Action: topology.ActionDrop, Condition: arp(topology.Condition{})},
		topology.Rule{ID: "spoofed-ip", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{})},
		topology.Rule{ID: "own-mac", Action: ret, Condition: topology.Condition{SrcMAC: mac}},
		topology.Rule{ID: "spoofed-mac", Action: topology.ActionDrop})
	dst.Rules = append(dst.Rules,
		topology.Rule{ID: "foreign-arp", Action: topology.ActionDrop, Condition: arp(topology.Condition{})},
		topology.Rule{ID: "foreign-ip", Action: topology.ActionDrop, Condition: ipv4(topology.Condition{})},
		topology.Rule{ID: "own-mac", Action: ret, Condition: topology.Condition{DstMAC: mac}},
		topology.Rule{ID: "foreign-mac", Action: topology.ActionDrop})
	b.add(src)
	b.add(dst)
	return src, dst
}

// answered are the addresses of e the bridge answers ARP for: its own,
// but one that is another port's allowed address pair (a /32: a VRRP
// address reserved with a port of its own, say), whose ARP the bridge
// floods to the ports holding the pair. A wider pair takes no port's
// address from the bridge.
func (b *builder) answered(x *vpcCtx, e *vpc.NetworkInterface, ips []netip.Addr) []netip.Addr {
	if x.pairs == nil {
		x.pairs = map[netip.Addr][]string{}
		for _, o := range b.st.InterfacesOf(x.v.ID) {
			if o.PortSecurityOff {
				continue
			}
			for _, a := range o.AddressPairs {
				if p, err := a.Prefix(); err == nil && p.IsSingleIP() {
					x.pairs[p.Addr()] = append(x.pairs[p.Addr()], o.ID)
				}
			}
		}
	}
	if len(x.pairs) == 0 {
		return ips
	}
	var out []netip.Addr
	for _, ip := range ips {
		if !slices.ContainsFunc(x.pairs[ip], func(id string) bool { return id != e.ID }) {
			out = append(out, ip)
		}
	}
	return out
}
