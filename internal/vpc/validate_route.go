package vpc

import "net/netip"

// CheckRoute checks a CreateRoute (replace false) or ReplaceRoute (replace
// true) of r in table t: exactly one target, which exists in t's VPC; the
// destination is not the local route's or inside the VPC; no duplicate on
// create, an existing route on replace; and the quota.
func CheckRoute(s *State, t *RouteTable, r Route, replace bool, l Limits) error {
	vpc, err := s.Vpc("", t.VpcID)
	if err != nil {
		return err
	}
	kind, id, n := r.Target()
	switch {
	case n == 0:
		return errorf(CodeInvalidParameterCombination, "No route target specified.")
	case n > 1:
		return errorf(CodeInvalidParameterCombination, "More than one route target specified.")
	case kind == TargetLocal:
		return errorf(CodeInvalidParameterValue, "The local route cannot be created or replaced.")
	}
	d := r.DestinationCidrBlock
	if !d.IsValid() || !d.Addr().Is4() {
		return errorf(CodeMissingParameter, "The request must contain the parameter destinationCidrBlock.")
	}
	if d.Overlaps(vpc.CidrBlock) && d.Bits() >= vpc.CidrBlock.Bits() {
		return errorf(CodeInvalidParameterValue, "The destination CIDR block %s is equal to or more specific than one of this VPC's CIDR blocks (%s). This route can target only an interface or an instance.", d, vpc.CidrBlock)
	}
	idx := routeIndex(t, d)
	switch {
	case replace && idx < 0:
		return errorf(CodeInvalidRouteNotFound, "There is no route defined for '%s' in the route table.", d)
	case !replace && idx >= 0:
		return errorf(CodeRouteAlreadyExists, "The route identified by %s already exists.", d)
	case !replace && len(t.Routes) >= l.RoutesPerTable:
		return errorf(CodeRouteLimitExceeded, "The maximum number of routes (%d) has been reached for %s.", l.RoutesPerTable, t.ID)
	}
	return checkTarget(s, t, kind, id)
}

func checkTarget(s *State, t *RouteTable, kind TargetKind, id string) error {
	switch kind {
	case TargetIGW:
		g, err := s.InternetGateway(t.OwnerID, id)
		if err != nil {
			return errorf(CodeInvalidGatewayIDNotFound, "The gateway ID '%s' does not exist", id)
		}
		if !g.AttachedTo(t.VpcID) {
			return errorf(CodeInvalidParameterValue, "route table %s and network gateway %s belong to different networks", t.ID, id)
		}
	case TargetNat:
		n, err := s.NatGateway(t.OwnerID, id)
		if err != nil {
			return err
		}
		if n.VpcID != t.VpcID {
			return errorf(CodeInvalidParameterValue, "route table %s and NAT gateway %s belong to different networks", t.ID, id)
		}
	case TargetInterface:
		e, err := s.NetworkInterface(t.OwnerID, id)
		if err != nil {
			return err
		}
		if e.VpcID != t.VpcID {
			return errorf(CodeInvalidParameterValue, "route table %s and network interface %s belong to different networks", t.ID, id)
		}
	case TargetInstance:
		inst, err := s.Instance(t.OwnerID, id)
		if err != nil {
			return err
		}
		if n := len(s.InstanceInterfaces(inst.ID)); n != 1 {
			return errorf(CodeInvalidInstanceID, "Instance %s has %d network interfaces; a route to an instance needs exactly one (name the interface instead).", id, n)
		}
		if inst.VpcID != t.VpcID {
			return errorf(CodeInvalidParameterValue, "route table %s and instance %s belong to different networks", t.ID, id)
		}
	}
	return nil
}

func routeIndex(t *RouteTable, d netip.Prefix) int {
	for i, r := range t.Routes {
		if r.DestinationCidrBlock == d {
			return i
		}
	}
	return -1
}

// CheckDeleteRoute checks a DeleteRoute: the route exists and is not local.
func CheckDeleteRoute(t *RouteTable, d netip.Prefix) error {
	i := routeIndex(t, d)
	if i < 0 {
		return errorf(CodeInvalidRouteNotFound, "There is no route defined for '%s' in the route table.", d)
	}
	if t.Routes[i].GatewayID == LocalGateway {
		return errorf(CodeInvalidParameterValue, "cannot remove local route %s in route table %s", d, t.ID)
	}
	return nil
}

// CheckAssociateRouteTable checks associating t with sub: same VPC, and the
// subnet not already explicitly associated.
func CheckAssociateRouteTable(s *State, t *RouteTable, sub *Subnet) error {
	if sub.VpcID != t.VpcID {
		return errorf(CodeInvalidParameterValue, "Route table %s and subnet %s belong to different networks.", t.ID, sub.ID)
	}
	for _, o := range s.RouteTablesOf(t.VpcID) {
		for _, a := range o.Associations {
			if a.SubnetID == sub.ID {
				return errorf(CodeResourceAlreadyAssociated, "the specified association for route table %s conflicts with an existing association (%s)", o.ID, a.ID)
			}
		}
	}
	return nil
}

// CheckCreateRouteTable checks the route-table quota of a VPC.
func CheckCreateRouteTable(s *State, vpcID string, l Limits) error {
	if len(s.RouteTablesOf(vpcID)) >= l.RouteTablesPerVpc {
		return errorf(CodeRouteTableLimitExceeded, "The maximum number of route tables (%d) has been reached for %s.", l.RouteTablesPerVpc, vpcID)
	}
	return nil
}

// CheckACLEntry checks a Create/ReplaceNetworkAclEntry: rule number,
// action, protocol, block, ports or ICMP type/code, the duplicate (create) or
// missing (replace) entry, and the per-direction quota. e.Protocol must be
// normalized to a number string or "-1" (ACLProtocol).
func CheckACLEntry(a *NetworkACL, e NetworkACLEntry, replace bool, l Limits) error {
	if e.RuleNumber < 1 || e.RuleNumber >= DefaultRuleNumber {
		return errorf(CodeInvalidParameterValue, "Invalid rule number %d: it must be between 1 and %d.", e.RuleNumber, DefaultRuleNumber-1)
	}
	if e.RuleAction != ACLAllow && e.RuleAction != ACLDeny {
		return errorf(CodeInvalidParameterValue, "Invalid rule action '%s' (allow or deny).", e.RuleAction)
	}
	if !e.CidrBlock.IsValid() || !e.CidrBlock.Addr().Is4() || e.CidrBlock.Masked() != e.CidrBlock {
		return errorf(CodeInvalidParameterValue, "Value (%s) for parameter cidrBlock is invalid. This is not a valid CIDR block.", e.CidrBlock)
	}
	switch e.Protocol {
	case "6", "17":
		if err := checkPorts("tcp", e.PortFrom, e.PortTo); err != nil {
			return err
		}
	case "1":
		if err := checkPorts("icmp", e.ICMPType, e.ICMPCode); err != nil {
			return err
		}
	}
	n, found := 0, false
	for _, x := range a.Entries {
		if x.Egress != e.Egress || x.RuleNumber == DefaultRuleNumber {
			continue
		}
		n++
		if x.RuleNumber == e.RuleNumber {
			found = true
		}
	}
	switch {
	case replace && !found:
		return errorf(CodeNetworkACLEntryNotFound, "The specified rule %d does not exist in this network ACL.", e.RuleNumber)
	case !replace && found:
		return errorf(CodeNetworkACLEntryExists, "The network acl entry identified by %d already exists.", e.RuleNumber)
	case !replace && n >= l.ACLEntriesPerDirection:
		return errorf(CodeNetworkACLEntryLimitExceeded, "The maximum number of network ACL entries (%d) has been reached.", l.ACLEntriesPerDirection)
	}
	return nil
}

// ACLProtocol normalizes a network ACL entry's Protocol parameter to what
// is stored: "-1" or a protocol number ("6", not "tcp").
func ACLProtocol(s string) (string, error) {
	p, err := NormalizeProtocol(s)
	if err != nil {
		return "", err
	}
	if num, ok := protocolNames[p]; ok {
		return num, nil
	}
	return p, nil
}

// CheckAttachInternetGateway checks attaching g to vpc.
func CheckAttachInternetGateway(s *State, g *InternetGateway, vpc *Vpc) error {
	if len(g.Attachments) > 0 {
		return errorf(CodeResourceAlreadyAssociated, "resource %s is already attached to network %s", g.ID, g.Attachments[0].VpcID)
	}
	if o := s.InternetGatewayOf(vpc.ID); o != nil {
		return errorf(CodeInvalidParameterValue, "Network %s already has an internet gateway attached (%s)", vpc.ID, o.ID)
	}
	return nil
}

// CheckDetachInternetGateway checks detaching g from vpcID: attached there,
// and no public address mapped in the VPC (AWS refuses, DependencyViolation).
func CheckDetachInternetGateway(s *State, g *InternetGateway, vpcID string) error {
	if !g.AttachedTo(vpcID) {
		return errorf(CodeGatewayNotAttached, "resource %s is not attached to network %s", g.ID, vpcID)
	}
	for _, a := range sorted(s.Addresses, nil) {
		if e := s.NetworkInterfaces[a.NetworkInterfaceID]; e != nil && e.VpcID == vpcID {
			return errorf(CodeDependencyViolation, "Network %s has some mapped public address(es) (%s). Please unmap those public address(es) before detaching the gateway.", vpcID, a.PublicIP)
		}
	}
	return nil
}
