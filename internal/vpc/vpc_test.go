package vpc

import (
	"errors"
	"net/netip"
	"testing"
)

const owner = "111122223333"

var pfx = netip.MustParsePrefix
var ip = netip.MustParseAddr

// fixture is a small cloud: one VPC with two subnets, an attached internet
// gateway, a main route table, a default ACL, two groups (web references
// default), an ENI, an elastic IP on it, an instance, a NAT gateway and a
// DHCP option set.
func fixture() *State {
	s := NewState()
	s.Accounts[owner] = &Account{ID: owner, Name: "a"}
	s.Accounts["444455556666"] = &Account{ID: "444455556666", Name: "b"}
	s.Vpcs["vpc-1"] = &Vpc{ID: "vpc-1", OwnerID: owner, CidrBlock: pfx("10.0.0.0/16"), DhcpOptionsID: "dopt-1", State: StateAvailable, TransitIndex: 2}
	s.Vpcs["vpc-other"] = &Vpc{ID: "vpc-other", OwnerID: "444455556666", CidrBlock: pfx("10.0.0.0/16"), TransitIndex: 3}
	s.Subnets["subnet-1"] = &Subnet{ID: "subnet-1", OwnerID: owner, VpcID: "vpc-1", CidrBlock: pfx("10.0.1.0/24")}
	s.Subnets["subnet-2"] = &Subnet{ID: "subnet-2", OwnerID: owner, VpcID: "vpc-1", CidrBlock: pfx("10.0.2.0/28")}
	s.InternetGateways["igw-1"] = &InternetGateway{ID: "igw-1", OwnerID: owner, Attachments: []IGWAttachment{{VpcID: "vpc-1", State: StateAvailable}}}
	s.InternetGateways["igw-2"] = &InternetGateway{ID: "igw-2", OwnerID: owner}
	s.RouteTables["rtb-main"] = &RouteTable{ID: "rtb-main", OwnerID: owner, VpcID: "vpc-1",
		Routes:       []Route{{DestinationCidrBlock: pfx("10.0.0.0/16"), GatewayID: LocalGateway, State: RouteActive}, {DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: "igw-1", State: RouteActive}},
		Associations: []RouteTableAssociation{{ID: "rtbassoc-m", Main: true}}}
	s.RouteTables["rtb-2"] = &RouteTable{ID: "rtb-2", OwnerID: owner, VpcID: "vpc-1",
		Routes:       []Route{{DestinationCidrBlock: pfx("10.0.0.0/16"), GatewayID: LocalGateway}},
		Associations: []RouteTableAssociation{{ID: "rtbassoc-2", SubnetID: "subnet-2"}}}
	s.NetworkACLs["acl-def"] = &NetworkACL{ID: "acl-def", OwnerID: owner, VpcID: "vpc-1", IsDefault: true,
		Entries: []NetworkACLEntry{{RuleNumber: 100, Protocol: "-1", RuleAction: ACLAllow, CidrBlock: pfx("0.0.0.0/0")}}}
	s.NetworkACLs["acl-2"] = &NetworkACL{ID: "acl-2", OwnerID: owner, VpcID: "vpc-1", Associations: []NetworkACLAssociation{{ID: "aclassoc-2", SubnetID: "subnet-2"}}}
	s.SecurityGroups["sg-def"] = &SecurityGroup{ID: "sg-def", OwnerID: owner, VpcID: "vpc-1", GroupName: DefaultGroupName}
	s.SecurityGroups["sg-web"] = &SecurityGroup{ID: "sg-web", OwnerID: owner, VpcID: "vpc-1", GroupName: "web",
		Ingress: []SecurityGroupRule{{ID: "sgr-1", IPProtocol: "tcp", FromPort: 80, ToPort: 80, CidrIPv4: pfx("0.0.0.0/0")}, {ID: "sgr-2", IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: "sg-def"}}}
	s.SecurityGroups["sg-other"] = &SecurityGroup{ID: "sg-other", OwnerID: "444455556666", VpcID: "vpc-other", GroupName: "x"}
	s.NetworkInterfaces["eni-1"] = &NetworkInterface{ID: "eni-1", OwnerID: owner, VpcID: "vpc-1", SubnetID: "subnet-1", MacAddress: "02:00:00:00:00:01",
		PrivateIPs: []PrivateIP{{Address: ip("10.0.1.10"), Primary: true}}, Groups: []string{"sg-web"}, SourceDestCheck: true,
		Attachment: &ENIAttachment{ID: "eni-attach-1", InstanceID: "i-1"}}
	s.NetworkInterfaces["eni-free"] = &NetworkInterface{ID: "eni-free", OwnerID: owner, VpcID: "vpc-1", SubnetID: "subnet-1", MacAddress: "02:00:00:00:00:02",
		PrivateIPs: []PrivateIP{{Address: ip("10.0.1.4"), Primary: true}}}
	s.Instances["i-1"] = &Instance{ID: "i-1", OwnerID: owner, VpcID: "vpc-1", SubnetID: "subnet-1", State: "running"}
	s.Addresses["eipalloc-1"] = &Address{AllocationID: "eipalloc-1", OwnerID: owner, PublicIP: ip("203.0.113.10"), AssociationID: "eipassoc-1", NetworkInterfaceID: "eni-1"}
	s.Addresses["eipalloc-2"] = &Address{AllocationID: "eipalloc-2", OwnerID: owner, PublicIP: ip("203.0.113.11")}
	s.Addresses["eipalloc-3"] = &Address{AllocationID: "eipalloc-3", OwnerID: owner, PublicIP: ip("203.0.113.12")}
	s.NatGateways["nat-1"] = &NatGateway{ID: "nat-1", OwnerID: owner, VpcID: "vpc-1", SubnetID: "subnet-2", State: StateAvailable, AllocationID: "eipalloc-3", PublicIP: ip("203.0.113.12"), PrivateIP: ip("10.0.2.5"), TransitIndex: 4}
	s.DhcpOptions["dopt-1"] = &DhcpOptions{ID: "dopt-1", OwnerID: owner}
	s.DhcpOptions["dopt-2"] = &DhcpOptions{ID: "dopt-2", OwnerID: owner}
	return s
}

func TestValidationCodes(t *testing.T) {
	l := DefaultLimits()
	small := l
	small.SubnetsPerVpc, small.RulesPerSecurityGroup, small.SecurityGroupsPerInterface, small.RoutesPerTable, small.ACLEntriesPerDirection, small.VpcsPerAccount = 2, 2, 1, 2, 1, 1
	rule := func(proto string, from, to int, cidr string, group string) SecurityGroupRule {
		r := SecurityGroupRule{IPProtocol: proto, FromPort: from, ToPort: to, ReferencedGroupID: group}
		if cidr != "" {
			r.CidrIPv4 = pfx(cidr)
		}
		return r
	}
	tests := []struct {
		name string
		code Code // "" = accepted
		f    func(s *State) error
	}{
		{"vpc /15", CodeInvalidVpcRange, func(s *State) error { return CheckCreateVpc(s, owner, pfx("10.0.0.0/15"), l) }},
		{"vpc /29", CodeInvalidVpcRange, func(s *State) error { return CheckCreateVpc(s, owner, pfx("10.0.0.0/29"), l) }},
		{"vpc link-local", CodeInvalidVpcRange, func(s *State) error { return CheckCreateVpc(s, owner, pfx("169.254.0.0/16"), l) }},
		{"vpc multicast", CodeInvalidVpcRange, func(s *State) error { return CheckCreateVpc(s, owner, pfx("224.0.0.0/16"), l) }},
		{"vpc ok /16", "", func(s *State) error { return CheckCreateVpc(s, owner, pfx("172.16.0.0/16"), l) }},
		{"vpc ok /28", "", func(s *State) error { return CheckCreateVpc(s, owner, pfx("172.16.0.0/28"), l) }},
		{"vpc limit", CodeVpcLimitExceeded, func(s *State) error { return CheckCreateVpc(s, owner, pfx("172.16.0.0/16"), small) }},
		{"cidr malformed", CodeInvalidParameterValue, func(*State) error { _, err := ParseCIDR("cidrBlock", "10.0.0.0/33"); return err }},
		{"cidr host bits", CodeInvalidParameterValue, func(*State) error { _, err := ParseCIDR("cidrBlock", "10.0.0.1/16"); return err }},
		{"subnet /29", CodeInvalidSubnetRange, func(s *State) error { return CheckCreateSubnet(s, s.Vpcs["vpc-1"], pfx("10.0.3.0/29"), l) }},
		{"subnet outside vpc", CodeInvalidSubnetRange, func(s *State) error { return CheckCreateSubnet(s, s.Vpcs["vpc-1"], pfx("10.1.0.0/24"), l) }},
		{"subnet larger than vpc", CodeInvalidSubnetRange, func(s *State) error {
			v := *s.Vpcs["vpc-1"]
			v.CidrBlock = pfx("10.0.0.0/20")
			return CheckCreateSubnet(s, &v, pfx("10.0.0.0/16"), l)
		}},
		{"subnet overlap", CodeInvalidSubnetConflict, func(s *State) error { return CheckCreateSubnet(s, s.Vpcs["vpc-1"], pfx("10.0.1.128/25"), l) }},
		{"subnet contains other", CodeInvalidSubnetConflict, func(s *State) error { return CheckCreateSubnet(s, s.Vpcs["vpc-1"], pfx("10.0.0.0/20"), l) }},
		{"subnet limit", CodeSubnetLimitExceeded, func(s *State) error { return CheckCreateSubnet(s, s.Vpcs["vpc-1"], pfx("10.0.3.0/24"), small) }},
		{"subnet ok", "", func(s *State) error { return CheckCreateSubnet(s, s.Vpcs["vpc-1"], pfx("10.0.3.0/24"), l) }},
		{"ip network address", CodeInvalidParameterValue, func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-1"], ip("10.0.1.0")) }},
		{"ip .1 reserved", CodeInvalidParameterValue, func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-1"], ip("10.0.1.1")) }},
		{"ip .3 reserved", CodeInvalidParameterValue, func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-1"], ip("10.0.1.3")) }},
		{"ip broadcast reserved", CodeInvalidParameterValue, func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-1"], ip("10.0.1.255")) }},
		{"ip outside subnet", CodeInvalidParameterValue, func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-1"], ip("10.0.2.9")) }},
		{"ip in use", CodeInvalidIPAddressInUse, func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-1"], ip("10.0.1.10")) }},
		{"ip in use by nat", CodeInvalidIPAddressInUse, func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-2"], ip("10.0.2.5")) }},
		{"ip ok", "", func(s *State) error { return CheckPrivateIP(s, s.Subnets["subnet-1"], ip("10.0.1.5")) }},
		{"private ip count", CodePrivateIPLimitExceeded, func(*State) error { return CheckPrivateIPCount(51, l) }},
		{"delete vpc with subnets", CodeDependencyViolation, func(s *State) error { return CheckDeleteVpc(s, s.Vpcs["vpc-1"]) }},
		{"delete subnet with eni", CodeDependencyViolation, func(s *State) error { return CheckDeleteSubnet(s, s.Subnets["subnet-1"]) }},
		{"delete subnet with nat", CodeDependencyViolation, func(s *State) error { return CheckDeleteSubnet(s, s.Subnets["subnet-2"]) }},
		{"delete sg in use", CodeDependencyViolation, func(s *State) error { return CheckDeleteSecurityGroup(s, s.SecurityGroups["sg-web"]) }},
		{"delete sg referenced", CodeDependencyViolation, func(s *State) error {
			s.SecurityGroups["sg-def"].GroupName = "renamed"
			return CheckDeleteSecurityGroup(s, s.SecurityGroups["sg-def"])
		}},
		{"delete default sg", CodeCannotDelete, func(s *State) error { return CheckDeleteSecurityGroup(s, s.SecurityGroups["sg-def"]) }},
		{"delete attached igw", CodeDependencyViolation, func(s *State) error { return CheckDeleteInternetGateway(s.InternetGateways["igw-1"]) }},
		{"delete detached igw", "", func(s *State) error { return CheckDeleteInternetGateway(s.InternetGateways["igw-2"]) }},
		{"delete main rtb", CodeDependencyViolation, func(s *State) error { return CheckDeleteRouteTable(s.RouteTables["rtb-main"]) }},
		{"delete associated rtb", CodeDependencyViolation, func(s *State) error { return CheckDeleteRouteTable(s.RouteTables["rtb-2"]) }},
		{"delete default acl", CodeInvalidParameterValue, func(s *State) error { return CheckDeleteNetworkACL(s.NetworkACLs["acl-def"]) }},
		{"delete associated acl", CodeDependencyViolation, func(s *State) error { return CheckDeleteNetworkACL(s.NetworkACLs["acl-2"]) }},
		{"delete dopt in use", CodeDependencyViolation, func(s *State) error { return CheckDeleteDhcpOptions(s, s.DhcpOptions["dopt-1"]) }},
		{"delete dopt unused", "", func(s *State) error { return CheckDeleteDhcpOptions(s, s.DhcpOptions["dopt-2"]) }},
		{"delete attached eni", CodeInvalidNetworkInterfaceUse, func(s *State) error { return CheckDeleteInterface(s.NetworkInterfaces["eni-1"]) }},
		{"delete free eni", "", func(s *State) error { return CheckDeleteInterface(s.NetworkInterfaces["eni-free"]) }},
		{"release associated eip", CodeInvalidIPAddressInUse, func(s *State) error { return CheckReleaseAddress(s, s.Addresses["eipalloc-1"]) }},
		{"release nat eip", CodeInvalidIPAddressInUse, func(s *State) error { return CheckReleaseAddress(s, s.Addresses["eipalloc-3"]) }},
		{"release free eip", "", func(s *State) error { return CheckReleaseAddress(s, s.Addresses["eipalloc-2"]) }},
		{"vpc not found", KindVpc.NotFound, func(s *State) error { _, err := s.Vpc(owner, "vpc-nope"); return err }},
		{"other account's vpc", KindVpc.NotFound, func(s *State) error { _, err := s.Vpc(owner, "vpc-other"); return err }},
		{"subnet not found", KindSubnet.NotFound, func(s *State) error { _, err := s.Subnet(owner, "subnet-nope"); return err }},
		{"group not found", "InvalidGroup.NotFound", func(s *State) error { _, err := s.SecurityGroup(owner, "sg-nope"); return err }},
		{"malformed vpc id", "InvalidVpcID.Malformed", func(*State) error { return ParseID(KindVpc, "vpc-XYZ") }},
		{"rule duplicate", CodeInvalidPermissionDuplicate, func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("tcp", 80, 80, "0.0.0.0/0", "")}, l)
		}},
		{"rule duplicate in request", CodeInvalidPermissionDuplicate, func(s *State) error {
			r := rule("udp", 53, 53, "10.0.0.0/8", "")
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{r, r}, l)
		}},
		{"rule group not found", "InvalidGroup.NotFound", func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("tcp", 22, 22, "", "sg-nope")}, l)
		}},
		{"rule other account's group", "InvalidGroup.NotFound", func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("tcp", 22, 22, "", "sg-other")}, l)
		}},
		{"rule bad ports", CodeInvalidParameterValue, func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("tcp", 90, 80, "0.0.0.0/0", "")}, l)
		}},
		{"rule bad protocol", CodeInvalidParameterValue, func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("bogus", 0, 0, "0.0.0.0/0", "")}, l)
		}},
		{"rule cidr and group", CodeInvalidParameterCombination, func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("tcp", 1, 2, "10.0.0.0/8", "sg-def")}, l)
		}},
		{"rules limit", CodeRulesPerSecurityGroupLimitExceeded, func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("tcp", 443, 443, "0.0.0.0/0", "")}, small)
		}},
		{"rule ok", "", func(s *State) error {
			return CheckAddRules(s, s.SecurityGroups["sg-web"], []SecurityGroupRule{rule("tcp", 443, 443, "0.0.0.0/0", ""), rule("icmp", 8, -1, "10.0.0.0/8", "")}, l)
		}},
		{"groups per interface", CodeSecurityGroupsPerInterfaceLimitExceeded, func(s *State) error {
			return CheckInterfaceGroups(s, owner, "vpc-1", []string{"sg-0000000a", "sg-0000000b"}, small)
		}},
		{"interface group not found", "InvalidGroup.NotFound", func(s *State) error {
			return CheckInterfaceGroups(s, owner, "vpc-1", []string{"sg-0000000a"}, l)
		}},
		{"route no target", CodeInvalidParameterCombination, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0")}, false, l)
		}},
		{"route two targets", CodeInvalidParameterCombination, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: "igw-1", NatGatewayID: "nat-1"}, false, l)
		}},
		{"route local", CodeInvalidParameterValue, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("10.0.0.0/16"), GatewayID: "local"}, true, l)
		}},
		{"route inside vpc", CodeInvalidParameterValue, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("10.0.5.0/24"), NatGatewayID: "nat-1"}, false, l)
		}},
		{"route exists", CodeRouteAlreadyExists, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-main"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: "igw-1"}, false, l)
		}},
		{"replace missing route", CodeInvalidRouteNotFound, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: "igw-1"}, true, l)
		}},
		{"route igw not attached", CodeInvalidParameterValue, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: "igw-2"}, false, l)
		}},
		{"route igw unknown", "InvalidGatewayID.NotFound", func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: "igw-0000000f"}, false, l)
		}},
		{"route nat unknown", "NatGatewayNotFound", func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), NatGatewayID: "nat-2"}, false, l)
		}},
		{"route eni unknown", "InvalidNetworkInterfaceID.NotFound", func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), NetworkInterfaceID: "eni-2"}, false, l)
		}},
		{"route limit", CodeRouteLimitExceeded, func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-main"], Route{DestinationCidrBlock: pfx("192.168.0.0/16"), NatGatewayID: "nat-1"}, false, small)
		}},
		{"route ok", "", func(s *State) error {
			return CheckRoute(s, s.RouteTables["rtb-2"], Route{DestinationCidrBlock: pfx("0.0.0.0/0"), NatGatewayID: "nat-1"}, false, l)
		}},
		{"delete local route", CodeInvalidParameterValue, func(s *State) error { return CheckDeleteRoute(s.RouteTables["rtb-main"], pfx("10.0.0.0/16")) }},
		{"delete missing route", CodeInvalidRouteNotFound, func(s *State) error { return CheckDeleteRoute(s.RouteTables["rtb-2"], pfx("0.0.0.0/0")) }},
		{"associate twice", CodeResourceAlreadyAssociated, func(s *State) error {
			return CheckAssociateRouteTable(s, s.RouteTables["rtb-main"], s.Subnets["subnet-2"])
		}},
		{"acl entry exists", CodeNetworkACLEntryExists, func(s *State) error {
			return CheckACLEntry(s.NetworkACLs["acl-def"], NetworkACLEntry{RuleNumber: 100, Protocol: "-1", RuleAction: ACLDeny, CidrBlock: pfx("0.0.0.0/0")}, false, l)
		}},
		{"acl entry number", CodeInvalidParameterValue, func(s *State) error {
			return CheckACLEntry(s.NetworkACLs["acl-def"], NetworkACLEntry{RuleNumber: 32767, Protocol: "-1", RuleAction: ACLDeny, CidrBlock: pfx("0.0.0.0/0")}, false, l)
		}},
		{"acl entry replace missing", CodeNetworkACLEntryNotFound, func(s *State) error {
			return CheckACLEntry(s.NetworkACLs["acl-def"], NetworkACLEntry{RuleNumber: 200, Protocol: "-1", RuleAction: ACLDeny, CidrBlock: pfx("0.0.0.0/0")}, true, l)
		}},
		{"acl entry limit", CodeNetworkACLEntryLimitExceeded, func(s *State) error {
			return CheckACLEntry(s.NetworkACLs["acl-def"], NetworkACLEntry{RuleNumber: 200, Protocol: "6", RuleAction: ACLDeny, CidrBlock: pfx("0.0.0.0/0"), PortFrom: 22, PortTo: 22}, false, small)
		}},
		{"acl entry bad ports", CodeInvalidParameterValue, func(s *State) error {
			return CheckACLEntry(s.NetworkACLs["acl-def"], NetworkACLEntry{RuleNumber: 200, Protocol: "6", RuleAction: ACLDeny, CidrBlock: pfx("0.0.0.0/0"), PortFrom: 30, PortTo: 22}, false, l)
		}},
		{"attach attached igw", CodeResourceAlreadyAssociated, func(s *State) error {
			return CheckAttachInternetGateway(s, s.InternetGateways["igw-1"], s.Vpcs["vpc-1"])
		}},
		{"attach second igw", CodeInvalidParameterValue, func(s *State) error {
			return CheckAttachInternetGateway(s, s.InternetGateways["igw-2"], s.Vpcs["vpc-1"])
		}},
		{"detach not attached", CodeGatewayNotAttached, func(s *State) error {
			return CheckDetachInternetGateway(s, s.InternetGateways["igw-2"], "vpc-1")
		}},
		{"detach with mapped eip", CodeDependencyViolation, func(s *State) error {
			return CheckDetachInternetGateway(s, s.InternetGateways["igw-1"], "vpc-1")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f(fixture())
			if tt.code == "" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *vpc.Error %s, got %v", tt.code, err)
			}
			if e.Code != tt.code {
				t.Fatalf("code = %s, want %s (%s)", e.Code, tt.code, e.Message)
			}
			if !errors.Is(err, &Error{Code: tt.code}) {
				t.Fatalf("errors.Is does not match code %s", tt.code)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	id := NewID(KindVpc, [IDRandomBytes]byte{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x8f})
	if id != "vpc-0a1b2c3d4e5f60718" {
		t.Fatalf("NewID = %s", id)
	}
	if err := ParseID(KindVpc, id); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"vpc-1a2b3c4d", "sg-0123456789abcdef0"} {
		k := KindVpc
		if ok[:2] == "sg" {
			k = KindSecurityGroup
		}
		if err := ParseID(k, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"vpc-", "vpc-1a2b3c4", "vpc-0A1B2C3D", "subnet-1a2b3c4d", "vpc-1a2b3c4dx", "vpc-0a1b2c3d4e5f607189"} {
		if err := ParseID(KindVpc, bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if m := NewMAC([5]byte{1, 2, 3, 4, 0xff}); m != "02:01:02:03:04:ff" {
		t.Fatalf("NewMAC = %s", m)
	}
	if n := HostInterfaceName("eni-0a1b2c3d4e5f60718"); n != "vn2c3d4e5f60718" {
		t.Fatalf("HostInterfaceName = %s", n)
	}
}

func TestAddresses(t *testing.T) {
	s := fixture()
	sub := s.Subnets["subnet-1"]
	// 256 - 5 reserved - 2 ENI addresses.
	if n := s.AvailableIPAddressCount(sub); n != 249 {
		t.Fatalf("available = %d, want 249", n)
	}
	got, err := s.AllocPrivateIPs(sub, 2)
	if err != nil {
		t.Fatal(err)
	}
	// .4 is eni-free's; the lowest free are .5 and .6.
	if got[0] != ip("10.0.1.5") || got[1] != ip("10.0.1.6") {
		t.Fatalf("alloc = %v", got)
	}
	small := s.Subnets["subnet-2"] // /28: 16 - 5 - NAT's .5 = 10 free
	if _, err := s.AllocPrivateIPs(small, 11); !errors.Is(err, &Error{Code: CodeInsufficientFreeAddresses}) {
		t.Fatalf("want %s, got %v", CodeInsufficientFreeAddresses, err)
	}
	if a, err := s.AllocPrivateIPs(small, 10); err != nil || len(a) != 10 || a[9] != ip("10.0.2.14") {
		t.Fatalf("alloc 10 = %v, %v", a, err)
	}
	if idx := s.AllocTransitIndex(); idx != 5 {
		t.Fatalf("AllocTransitIndex = %d, want 5 (2, 3, 4 taken)", idx)
	}
}

func TestNormalizeProtocol(t *testing.T) {
	for in, want := range map[string]string{"tcp": "tcp", "TCP": "tcp", "6": "tcp", "17": "udp", "1": "icmp", "-1": "-1", "all": "-1", "47": "47"} {
		if got, err := NormalizeProtocol(in); err != nil || got != want {
			t.Errorf("NormalizeProtocol(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"256", "-2", "foo", ""} {
		if _, err := NormalizeProtocol(bad); err == nil {
			t.Errorf("NormalizeProtocol(%q) accepted", bad)
		}
	}
	if p, _ := ACLProtocol("tcp"); p != "6" {
		t.Errorf("ACLProtocol(tcp) = %s", p)
	}
}

func TestLimits(t *testing.T) {
	l := Limits{SubnetsPerVpc: 7}.WithDefaults()
	if l.SubnetsPerVpc != 7 || l.RulesPerSecurityGroup != 60 {
		t.Fatalf("WithDefaults = %+v", l)
	}
	if err := (Limits{SubnetsPerVpc: -1}).Validate(); err == nil {
		t.Fatal("negative limit accepted")
	}
	if err := (Limits{SecurityGroupsPerInterface: 17}).Validate(); err == nil {
		t.Fatal("17 groups per interface accepted")
	}
}
