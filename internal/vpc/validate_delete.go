package vpc

// Checks before a delete: AWS refuses to delete what is still used, with
// DependencyViolation naming the dependency, and never cascades.

func dependency(what, id, by string) *Error {
	return errorf(CodeDependencyViolation, "The %s '%s' has dependencies and cannot be deleted (%s).", what, id, by)
}

// CheckDeleteVpc refuses while the VPC has subnets, an internet gateway,
// interfaces, NAT gateways, or objects other than its defaults (main route
// table, default ACL, default security group), which go with it.
func CheckDeleteVpc(s *State, v *Vpc) error {
	if subs := s.SubnetsOf(v.ID); len(subs) > 0 {
		return dependency("vpc", v.ID, "subnet "+subs[0].ID)
	}
	if g := s.InternetGatewayOf(v.ID); g != nil {
		return dependency("vpc", v.ID, "internet gateway "+g.ID)
	}
	if es := s.InterfacesOf(v.ID); len(es) > 0 {
		return dependency("vpc", v.ID, "network interface "+es[0].ID)
	}
	for _, n := range s.NatGatewaysOf(v.ID) {
		if n.State != StateDeleted {
			return dependency("vpc", v.ID, "NAT gateway "+n.ID)
		}
	}
	for _, t := range s.RouteTablesOf(v.ID) {
		if !t.IsMain() {
			return dependency("vpc", v.ID, "route table "+t.ID)
		}
	}
	for _, a := range s.NetworkACLsOf(v.ID) {
		if !a.IsDefault {
			return dependency("vpc", v.ID, "network ACL "+a.ID)
		}
	}
	for _, g := range s.SecurityGroupsOf(v.ID) {
		if g.GroupName != DefaultGroupName {
			return dependency("vpc", v.ID, "security group "+g.ID)
		}
	}
	return nil
}

// CheckDeleteSubnet refuses while interfaces or NAT gateways are in it.
func CheckDeleteSubnet(s *State, sub *Subnet) error {
	if es := s.InterfacesInSubnet(sub.ID); len(es) > 0 {
		return dependency("subnet", sub.ID, "network interface "+es[0].ID)
	}
	for _, n := range sorted(s.NatGateways, nil) {
		if n.SubnetID == sub.ID && n.State != StateDeleted {
			return dependency("subnet", sub.ID, "NAT gateway "+n.ID)
		}
	}
	return nil
}

// CheckDeleteSecurityGroup refuses the default group (CannotDelete), and a
// group used by an interface or referenced by another group's rule.
func CheckDeleteSecurityGroup(s *State, g *SecurityGroup) error {
	if g.GroupName == DefaultGroupName {
		return errorf(CodeCannotDelete, "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.ID)
	}
	if es := s.GroupMembers(g.ID); len(es) > 0 {
		return dependency("security group", g.ID, "used by network interface "+es[0].ID)
	}
	for _, o := range sorted(s.SecurityGroups, nil) {
		if o.ID == g.ID {
			continue
		}
		for _, rs := range [][]SecurityGroupRule{o.Ingress, o.Egress} {
			for _, r := range rs {
				if r.ReferencedGroupID == g.ID {
					return dependency("security group", g.ID, "referenced by rule "+r.ID+" of "+o.ID)
				}
			}
		}
	}
	return nil
}

// CheckDeleteInternetGateway refuses while it is attached.
func CheckDeleteInternetGateway(g *InternetGateway) error {
	if len(g.Attachments) > 0 {
		return dependency("internetGateway", g.ID, "attached to "+g.Attachments[0].VpcID)
	}
	return nil
}

// CheckDeleteRouteTable refuses the main table and a table with subnet
// associations.
func CheckDeleteRouteTable(t *RouteTable) error {
	for _, a := range t.Associations {
		if a.Main {
			return errorf(CodeDependencyViolation, "The routeTable '%s' is the main route table of %s and cannot be deleted.", t.ID, t.VpcID)
		}
	}
	if len(t.Associations) > 0 {
		return dependency("routeTable", t.ID, "associated with "+t.Associations[0].SubnetID)
	}
	return nil
}

// CheckDeleteNetworkACL refuses the default ACL and an associated one.
func CheckDeleteNetworkACL(a *NetworkACL) error {
	if a.IsDefault {
		return errorf(CodeInvalidParameterValue, "cannot delete default network ACL %s", a.ID)
	}
	if len(a.Associations) > 0 {
		return dependency("networkAcl", a.ID, "associated with "+a.Associations[0].SubnetID)
	}
	return nil
}

// CheckDeleteDhcpOptions refuses while a VPC uses the set.
func CheckDeleteDhcpOptions(s *State, d *DhcpOptions) error {
	for _, v := range s.SortedVpcs() {
		if v.DhcpOptionsID == d.ID {
			return dependency("dhcpOptions", d.ID, "used by "+v.ID)
		}
	}
	return nil
}

// CheckDeleteInterface refuses an attached interface and one a NAT gateway
// manages.
func CheckDeleteInterface(e *NetworkInterface) error {
	if e.Attachment != nil {
		return errorf(CodeInvalidNetworkInterfaceUse, "Interface: [%s] in use.", e.ID)
	}
	if e.RequesterManaged || e.InterfaceType == InterfaceTypeNatGateway {
		return errorf(CodeOperationNotPermitted, "Interface %s is managed by a NAT gateway and cannot be deleted.", e.ID)
	}
	return nil
}

// CheckReleaseAddress refuses an address still associated (with an
// interface or as a NAT gateway's address).
func CheckReleaseAddress(s *State, a *Address) error {
	if a.AssociationID != "" || a.NetworkInterfaceID != "" {
		return errorf(CodeInvalidIPAddressInUse, "Address %s is in use.", a.PublicIP)
	}
	for _, n := range sorted(s.NatGateways, nil) {
		if n.AllocationID == a.AllocationID && n.State != StateDeleted {
			return errorf(CodeInvalidIPAddressInUse, "Address %s is in use by NAT gateway %s.", a.PublicIP, n.ID)
		}
	}
	return nil
}
