package vpc

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
)

// Validation for the EC2 actions. Each function checks one request against
// the state and returns an *Error with AWS's code, before anything changes:
// a rejected call changes nothing.

// CIDR sizes AWS allows for VPCs and subnets.
const (
	MinPrefixBits = 16
	MaxPrefixBits = 28
)

// reservedVpcRanges cannot be used as (or inside) a VPC: "this network",
// loopback, link-local (the transit and metadata networks live there) and
// multicast/reserved.
var reservedVpcRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/3"),
}

// ParseCIDR parses an IPv4 CIDR block given as request parameter param. A
// block with host bits set is refused, as AWS does.
func ParseCIDR(param, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, errorf(CodeInvalidParameterValue, "Value (%s) for parameter %s is invalid. This is not a valid CIDR block.", s, param)
	}
	if p.Masked() != p {
		return netip.Prefix{}, errorf(CodeInvalidParameterValue, "Value (%s) for parameter %s is invalid. This is not a valid CIDR block (the network is %s).", s, param, p.Masked())
	}
	return p, nil
}

// ParseCIDR6 parses an IPv6 block given as request parameter param (a
// security group rule's CidrIpv6).
func ParseCIDR6(param, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return netip.Prefix{}, errorf(CodeInvalidParameterValue, "Value (%s) for parameter %s is invalid. This is not a valid IPv6 CIDR block.", s, param)
	}
	if p.Masked() != p {
		return netip.Prefix{}, errorf(CodeInvalidParameterValue, "Value (%s) for parameter %s is invalid. This is not a valid IPv6 CIDR block (the network is %s).", s, param, p.Masked())
	}
	return p, nil
}

// ParseIP parses an IPv4 address given as request parameter param.
func ParseIP(param, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, errorf(CodeInvalidParameterValue, "Value (%s) for parameter %s is invalid. This is not a valid IPv4 address.", s, param)
	}
	return a, nil
}

// CheckCreateVpc checks a CreateVpc: the account's VPC quota and the block.
func CheckCreateVpc(s *State, owner string, cidr netip.Prefix, l Limits) error {
	if err := CheckVpcCIDR(cidr); err != nil {
		return err
	}
	n := 0
	for _, v := range s.Vpcs {
		if v.OwnerID == owner {
			n++
		}
	}
	if n >= l.VpcsPerAccount {
		return errorf(CodeVpcLimitExceeded, "The maximum number of VPCs has been reached.")
	}
	return nil
}

// CheckVpcCIDR checks a VPC block's size (/16../28) and that it avoids the
// reserved ranges.
func CheckVpcCIDR(cidr netip.Prefix) error {
	if b := cidr.Bits(); b < MinPrefixBits || b > MaxPrefixBits {
		return errorf(CodeInvalidVpcRange, "The CIDR '%s' is invalid: a VPC is /%d to /%d.", cidr, MinPrefixBits, MaxPrefixBits)
	}
	for _, r := range reservedVpcRanges {
		if r.Overlaps(cidr) {
			return errorf(CodeInvalidVpcRange, "The CIDR '%s' is invalid: it overlaps the reserved range %s.", cidr, r)
		}
	}
	return nil
}

// CheckCreateSubnet checks a CreateSubnet in vpc: size, inside the VPC, no
// overlap with another subnet of the VPC, and the subnet quota.
func CheckCreateSubnet(s *State, vpc *Vpc, cidr netip.Prefix, l Limits) error {
	if b := cidr.Bits(); b < MinPrefixBits || b > MaxPrefixBits {
		return errorf(CodeInvalidSubnetRange, "The CIDR '%s' is invalid: a subnet is /%d to /%d.", cidr, MinPrefixBits, MaxPrefixBits)
	}
	if !vpc.CidrBlock.Contains(cidr.Addr()) || cidr.Bits() < vpc.CidrBlock.Bits() {
		return errorf(CodeInvalidSubnetRange, "The CIDR '%s' is invalid: it is not within the VPC's CIDR %s.", cidr, vpc.CidrBlock)
	}
	subs := s.SubnetsOf(vpc.ID)
	for _, o := range subs {
		if o.CidrBlock.Overlaps(cidr) {
			return errorf(CodeInvalidSubnetConflict, "The CIDR '%s' conflicts with another subnet (%s, %s).", cidr, o.ID, o.CidrBlock)
		}
	}
	if len(subs) >= l.SubnetsPerVpc {
		return errorf(CodeSubnetLimitExceeded, "The maximum number of subnets (%d) has been reached for %s.", l.SubnetsPerVpc, vpc.ID)
	}
	return nil
}

// ReservedAddressCount is how many addresses of every subnet AWS reserves:
// the network, .1 (router), .2 (DNS), .3 (future use) and the broadcast.
const ReservedAddressCount = 5

// IsReserved reports whether a is one of the five reserved addresses of sub.
func IsReserved(sub netip.Prefix, a netip.Addr) bool {
	base := addrU32(sub.Masked().Addr())
	v := addrU32(a)
	return v-base <= 3 || v == base+size(sub)-1
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u32Addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func size(p netip.Prefix) uint32 { return 1 << (32 - p.Bits()) }

// Nth returns the n-th address of a prefix (0 = the network address).
func Nth(p netip.Prefix, n int) netip.Addr {
	return u32Addr(addrU32(p.Masked().Addr()) + uint32(n))
}

// usedIPs returns every private address taken in a subnet: ENI addresses
// and NAT gateways' private addresses.
func (s *State) usedIPs(sub *Subnet) map[netip.Addr]string {
	used := map[netip.Addr]string{}
	for _, e := range s.InterfacesInSubnet(sub.ID) {
		for _, p := range e.PrivateIPs {
			used[p.Address] = e.ID
		}
	}
	for _, n := range s.NatGatewaysOf(sub.VpcID) {
		if n.SubnetID == sub.ID && n.PrivateIP.IsValid() {
			if _, ok := used[n.PrivateIP]; !ok {
				used[n.PrivateIP] = n.ID
			}
		}
	}
	return used
}

// CheckPrivateIP checks an address asked for explicitly in sub: inside it,
// not reserved, not taken.
func CheckPrivateIP(s *State, sub *Subnet, a netip.Addr) error {
	if !sub.CidrBlock.Contains(a) {
		return errorf(CodeInvalidParameterValue, "Address %s does not fall within the subnet's address range %s.", a, sub.CidrBlock)
	}
	if sub.Reserved(a) {
		return errorf(CodeInvalidParameterValue, "Address %s is in subnet's reserved address range.", a)
	}
	if by, ok := s.usedIPs(sub)[a]; ok {
		return errorf(CodeInvalidIPAddressInUse, "The specified address %s is already in use (by %s).", a, by)
	}
	return nil
}

// AvailableIPAddressCount is the subnet's count of free addresses, as
// DescribeSubnets reports it.
func (s *State) AvailableIPAddressCount(sub *Subnet) int {
	return int(size(sub.CidrBlock)) - ReservedAddressCount - len(s.usedIPs(sub))
}

// AllocPrivateIPs picks n free addresses of sub, lowest first (so the same
// state always gives the same addresses), skipping those in also.
func (s *State) AllocPrivateIPs(sub *Subnet, n int, also ...netip.Addr) ([]netip.Addr, error) {
	used := s.usedIPs(sub)
	for _, a := range also {
		used[a] = ""
	}
	var out []netip.Addr
	for _, r := range sub.AllocationPools() {
		for v := addrU32(r.Start); v <= addrU32(r.End) && len(out) < n; v++ {
			a := u32Addr(v)
			if _, ok := used[a]; !ok && sub.CidrBlock.Contains(a) && !sub.Reserved(a) {
				out = append(out, a)
			}
			if v == ^uint32(0) {
				break
			}
		}
	}
	if len(out) < n {
		return nil, errorf(CodeInsufficientFreeAddresses, "Insufficient free IP addresses in subnet %s.", sub.ID)
	}
	return out, nil
}

// CheckPrivateIPCount checks an interface's address count against the quota.
func CheckPrivateIPCount(n int, l Limits) error {
	if n > l.PrivateIPsPerInterface {
		return errorf(CodePrivateIPLimitExceeded, "Number of private addresses (%d) exceeds the limit of %d per interface.", n, l.PrivateIPsPerInterface)
	}
	return nil
}

// Protocol numbers the EC2 API names.
var protocolNames = map[string]string{"tcp": "6", "udp": "17", "icmp": "1", "all": "-1"}

// NormalizeProtocol turns an IpProtocol/Protocol parameter ("tcp", "TCP",
// "6", "-1", "all", "47") into the canonical form stored: "tcp", "udp",
// "icmp", "-1", or a decimal protocol number for the others.
func NormalizeProtocol(s string) (string, error) {
	l := strings.ToLower(s)
	if _, ok := protocolNames[l]; ok {
		if l == "all" {
			return "-1", nil
		}
		return l, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < -1 || n > 255 {
		return "", errorf(CodeInvalidParameterValue, "Invalid value '%s' for IP protocol. Unknown protocol.", s)
	}
	for name, num := range protocolNames {
		if num == strconv.Itoa(n) && name != "all" {
			return name, nil
		}
	}
	return strconv.Itoa(n), nil
}

// ProtocolNumber returns the IP protocol number of a normalized protocol,
// or -1 for all.
func ProtocolNumber(p string) int {
	if num, ok := protocolNames[p]; ok {
		p = num
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return -1
	}
	return n
}

// checkPorts checks a rule's port range (tcp/udp) or ICMP type/code.
func checkPorts(proto string, from, to int) error {
	switch proto {
	case "tcp", "udp":
		if from < 0 || to < 0 || from > 65535 || to > 65535 || from > to {
			return errorf(CodeInvalidParameterValue, "Invalid port range %d-%d for protocol %s (0-65535, from <= to).", from, to, proto)
		}
	case "icmp":
		if from < -1 || from > 255 || to < -1 || to > 255 {
			return errorf(CodeInvalidParameterValue, "Invalid ICMP type %d / code %d (-1 for all, or 0-255).", from, to)
		}
		if from == -1 && to != -1 {
			return errorf(CodeInvalidParameterValue, "An ICMP code (%d) needs an ICMP type.", to)
		}
	}
	return nil
}

// sameTarget reports whether two rules are the same permission (AWS's
// duplicate test ignores the description and the rule id).
func sameTarget(a, b *SecurityGroupRule) bool {
	norm := func(r *SecurityGroupRule) (int, int) {
		if r.IPProtocol == "-1" {
			return -1, -1
		}
		return r.FromPort, r.ToPort
	}
	af, at := norm(a)
	bf, bt := norm(b)
	return a.IsEgress == b.IsEgress && a.IPProtocol == b.IPProtocol && af == bf && at == bt &&
		a.CidrIPv4 == b.CidrIPv4 && a.CidrIPv6 == b.CidrIPv6 && a.ReferencedGroupID == b.ReferencedGroupID
}

// CheckAddRules checks an Authorize call adding rules to sg: each rule well
// formed, referenced groups existing in the same VPC and visible to sg's
// owner, no duplicate of an existing or another new rule, and the quota.
// Rules must already have a normalized IPProtocol.
func CheckAddRules(s *State, sg *SecurityGroup, add []SecurityGroupRule, l Limits) error {
	for i := range add {
		r := &add[i]
		if _, err := NormalizeProtocol(r.IPProtocol); err != nil {
			return err
		}
		if err := checkPorts(r.IPProtocol, r.FromPort, r.ToPort); err != nil {
			return err
		}
		sources := 0
		for _, has := range []bool{r.CidrIPv4.IsValid(), r.CidrIPv6.IsValid(), r.ReferencedGroupID != ""} {
			if has {
				sources++
			}
		}
		if sources != 1 {
			return errorf(CodeInvalidParameterCombination, "A rule names exactly one CIDR or security group, not %d.", sources)
		}
		if r.CidrIPv4.IsValid() && (!r.CidrIPv4.Addr().Is4() || r.CidrIPv4.Masked() != r.CidrIPv4) {
			return errorf(CodeInvalidParameterValue, "Value (%s) for parameter cidrIp is invalid. This is not a valid CIDR block.", r.CidrIPv4)
		}
		if r.CidrIPv6.IsValid() && (!r.CidrIPv6.Addr().Is6() || r.CidrIPv6.Addr().Is4In6() || r.CidrIPv6.Masked() != r.CidrIPv6) {
			return errorf(CodeInvalidParameterValue, "Value (%s) for parameter cidrIpv6 is invalid. This is not a valid IPv6 CIDR block.", r.CidrIPv6)
		}
		hasGroup := r.ReferencedGroupID != ""
		if hasGroup {
			ref, err := s.SecurityGroup(sg.OwnerID, r.ReferencedGroupID)
			if err != nil {
				return err
			}
			if ref.VpcID != sg.VpcID {
				return errorf(CodeInvalidParameterValue, "Security group %s is in VPC %s, not in %s.", ref.ID, ref.VpcID, sg.VpcID)
			}
		}
		existing := sg.Ingress
		if r.IsEgress {
			existing = sg.Egress
		}
		for j := range existing {
			if sameTarget(r, &existing[j]) {
				return errorf(CodeInvalidPermissionDuplicate, "the specified rule \"peer: %s, %s, ALLOW\" already exists", ruleSource(r), r.IPProtocol)
			}
		}
		for j := range i {
			if sameTarget(r, &add[j]) {
				return errorf(CodeInvalidPermissionDuplicate, "the specified rule \"peer: %s, %s, ALLOW\" is given twice", ruleSource(r), r.IPProtocol)
			}
		}
	}
	in, eg := len(sg.Ingress), len(sg.Egress)
	for _, r := range add {
		if r.IsEgress {
			eg++
		} else {
			in++
		}
	}
	if in > l.RulesPerSecurityGroup || eg > l.RulesPerSecurityGroup {
		return errorf(CodeRulesPerSecurityGroupLimitExceeded, "The maximum number of rules per security group (%d) has been reached.", l.RulesPerSecurityGroup)
	}
	return nil
}

func ruleSource(r *SecurityGroupRule) string {
	if r.ReferencedGroupID != "" {
		return r.ReferencedGroupID
	}
	if r.CidrIPv6.IsValid() {
		return r.CidrIPv6.String()
	}
	return r.CidrIPv4.String()
}

// CheckInterfaceGroups checks the groups given to an ENI in vpcID: each
// exists, belongs to owner and to the VPC, and the quota per interface.
func CheckInterfaceGroups(s *State, owner, vpcID string, groups []string, l Limits) error {
	if len(groups) > l.SecurityGroupsPerInterface {
		return errorf(CodeSecurityGroupsPerInterfaceLimitExceeded, "You have exceeded the maximum number of security groups (%d) per network interface.", l.SecurityGroupsPerInterface)
	}
	seen := map[string]bool{}
	for _, id := range groups {
		if err := ParseID(KindSecurityGroup, id); err != nil {
			return err
		}
		sg, err := s.SecurityGroup(owner, id)
		if err != nil {
			return err
		}
		if sg.VpcID != vpcID {
			return errorf(CodeInvalidParameterValue, "Security group %s and subnet belong to different networks.", id)
		}
		if seen[id] {
			return errorf(CodeInvalidParameterValue, "Security group %s is given twice.", id)
		}
		seen[id] = true
	}
	return nil
}
