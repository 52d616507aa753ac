package reach

import (
	"net/netip"
	"slices"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// sgAllows reports whether one of interface e's security groups has a rule
// of that direction allowing p. Ingress rules name the source, egress
// rules the destination.
func (m *Model) sgAllows(e *vpc.NetworkInterface, egress bool, p *IPv4) bool {
	remote := p.Src
	if egress {
		remote = p.Dst
	}
	for _, id := range e.Groups {
		g := m.st.SecurityGroups[id]
		if g == nil || g.VpcID != e.VpcID {
			continue
		}
		rules := g.Ingress
		if egress {
			rules = g.Egress
		}
		for i := range rules {
			if m.sgRuleMatches(&rules[i], remote, p) {
				return true
			}
		}
	}
	return false
}

func (m *Model) sgRuleMatches(r *vpc.SecurityGroupRule, remote netip.Addr, p *IPv4) bool {
	switch {
	case r.ReferencedGroupID != "":
		if m.st.SecurityGroups[r.ReferencedGroupID] == nil || !m.member(r.ReferencedGroupID, remote) {
			return false
		}
	case r.CidrIPv4.IsValid():
		if !r.CidrIPv4.Masked().Contains(remote) {
			return false
		}
	default:
		return false
	}
	return l4Matches(r.IPProtocol, r.FromPort, r.ToPort, r.FromPort, r.ToPort, p)
}

// member reports whether a is a private address of an interface in group.
func (m *Model) member(group string, a netip.Addr) bool {
	for _, e := range m.st.NetworkInterfaces {
		if slices.Contains(e.Groups, group) && hasIP(e, a) {
			return true
		}
	}
	return false
}

// l4Matches matches protocol proto ("-1": all) and, for TCP and UDP, the
// destination port range from..to (-1, or 0-65535: any), for ICMP type and
// code (-1: any). A packet without a transport header (a later fragment)
// matches only a rule that names no port, type or code.
func l4Matches(proto string, from, to, icmpType, icmpCode int, p *IPv4) bool {
	n := vpc.ProtocolNumber(proto)
	if n < 0 {
		return true
	}
	if int(p.Proto) != n {
		return false
	}
	switch n {
	case ProtoTCP, ProtoUDP:
		if from < 0 || to < 0 || from == 0 && to == 65535 {
			return true
		}
		return !p.Later() && int(p.DstPort) >= from && int(p.DstPort) <= to
	case ProtoICMP:
		if icmpType >= 0 && (p.Later() || int(p.ICMPType) != icmpType) {
			return false
		}
		if icmpType >= 0 && icmpCode >= 0 && int(p.ICMPCode) != icmpCode {
			return false
		}
	}
	return true
}

// aclAllows evaluates subnet sub's network ACL on p crossing its border:
// entries of that direction in rule-number order, the first that matches
// decides, none denies. Ingress entries name the source, egress entries
// the destination. A subnet without an ACL lets everything through.
func (m *Model) aclAllows(sub *vpc.Subnet, egress bool, p *IPv4) bool {
	a := m.st.NetworkACLFor(sub)
	if a == nil {
		return true
	}
	entries := slices.Clone(a.Entries)
	slices.SortStableFunc(entries, func(x, y vpc.NetworkACLEntry) int { return x.RuleNumber - y.RuleNumber })
	remote := p.Src
	if egress {
		remote = p.Dst
	}
	for _, e := range entries {
		if e.Egress != egress || !e.CidrBlock.Masked().Contains(remote) {
			continue
		}
		from, to := e.PortFrom, e.PortTo
		if from == 0 && to == 0 {
			from, to = -1, -1
		}
		if l4Matches(e.Protocol, from, to, e.ICMPType, e.ICMPCode, p) {
			return e.RuleAction == vpc.ACLAllow
		}
	}
	return false
}
