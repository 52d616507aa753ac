package ec2_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestDefaultVpcAndCallerIdentity(t *testing.T) {
	e := newEnv(t, nil)
	c, nc := e.account("alice")
	ctx := ctx(t)

	id := must[*sts.GetCallerIdentityOutput](t)(e.sts(nc.AccessKeyID, nc.SecretAccessKey).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))
	if aws.ToString(id.Account) != nc.AccountID {
		t.Fatalf("GetCallerIdentity account = %q, want %q", aws.ToString(id.Account), nc.AccountID)
	}

	vpcs := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}))
	if len(vpcs.Vpcs) != 1 {
		t.Fatalf("want the default VPC only, got %d", len(vpcs.Vpcs))
	}
	v := vpcs.Vpcs[0]
	if !aws.ToBool(v.IsDefault) || aws.ToString(v.CidrBlock) != "172.31.0.0/16" || aws.ToString(v.OwnerId) != nc.AccountID || v.State != types.VpcStateAvailable {
		t.Fatalf("default VPC: %+v", v)
	}
	subs := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{
		Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}}))
	if len(subs.Subnets) != 3 {
		t.Fatalf("want 3 default subnets (one per zone), got %d", len(subs.Subnets))
	}
	zones := map[string]bool{}
	for _, s := range subs.Subnets {
		zones[aws.ToString(s.AvailabilityZone)] = true
		if !strings.HasSuffix(aws.ToString(s.CidrBlock), "/20") || aws.ToInt32(s.AvailableIpAddressCount) != 4091 {
			t.Errorf("default subnet %s %s avail %d", aws.ToString(s.SubnetId), aws.ToString(s.CidrBlock), aws.ToInt32(s.AvailableIpAddressCount))
		}
	}
	if len(zones) != 3 {
		t.Errorf("default subnets in zones %v", zones)
	}
	igws := must[*ec2.DescribeInternetGatewaysOutput](t)(c.DescribeInternetGateways(ctx, &ec2.DescribeInternetGatewaysInput{
		Filters: []types.Filter{{Name: aws.String("attachment.vpc-id"), Values: []string{aws.ToString(v.VpcId)}}}}))
	if len(igws.InternetGateways) != 1 || igws.InternetGateways[0].Attachments[0].State != "available" {
		t.Fatalf("default IGW: %+v", igws.InternetGateways)
	}
	rts := must[*ec2.DescribeRouteTablesOutput](t)(c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{
		Filters: []types.Filter{{Name: aws.String("association.main"), Values: []string{"true"}}}}))
	if len(rts.RouteTables) != 1 || len(rts.RouteTables[0].Routes) != 2 {
		t.Fatalf("main route table: %+v", rts.RouteTables)
	}
	r := rts.RouteTables[0].Routes
	if aws.ToString(r[0].GatewayId) != "local" || aws.ToString(r[1].DestinationCidrBlock) != "0.0.0.0/0" ||
		aws.ToString(r[1].GatewayId) != aws.ToString(igws.InternetGateways[0].InternetGatewayId) {
		t.Fatalf("main routes: %+v", r)
	}
	sgs := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"default"}}}}))
	if len(sgs.SecurityGroups) != 1 {
		t.Fatalf("default SG: %+v", sgs.SecurityGroups)
	}
	sg := sgs.SecurityGroups[0]
	if len(sg.IpPermissions) != 1 || aws.ToString(sg.IpPermissions[0].UserIdGroupPairs[0].GroupId) != aws.ToString(sg.GroupId) ||
		len(sg.IpPermissionsEgress) != 1 || aws.ToString(sg.IpPermissionsEgress[0].IpRanges[0].CidrIp) != "0.0.0.0/0" {
		t.Fatalf("default SG rules: %+v", sg)
	}
	attrs := must[*ec2.DescribeAccountAttributesOutput](t)(c.DescribeAccountAttributes(ctx, &ec2.DescribeAccountAttributesInput{
		AttributeNames: []types.AccountAttributeName{types.AccountAttributeNameDefaultVpc}}))
	if got := aws.ToString(attrs.AccountAttributes[0].AttributeValues[0].AttributeValue); got != aws.ToString(v.VpcId) {
		t.Fatalf("default-vpc attribute %q", got)
	}
	azs := must[*ec2.DescribeAvailabilityZonesOutput](t)(c.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{}))
	if len(azs.AvailabilityZones) != 3 || aws.ToString(azs.AvailabilityZones[0].ZoneName) != "us-east-1a" {
		t.Fatalf("zones: %+v", azs.AvailabilityZones)
	}
}

func TestCreateVpcSubnetRouteTableSG(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	ctx := ctx(t)
	v := must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeVpc, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("t1")}}}}})).Vpc
	vpcID := aws.ToString(v.VpcId)
	if len(v.Tags) != 1 || aws.ToString(v.Tags[0].Value) != "t1" {
		t.Fatalf("tags %+v", v.Tags)
	}
	got := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"t?"}}}}))
	if len(got.Vpcs) != 1 || aws.ToString(got.Vpcs[0].VpcId) != vpcID {
		t.Fatalf("tag filter: %+v", got.Vpcs)
	}
	sub := must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.VpcId, CidrBlock: aws.String("10.0.1.0/24"), AvailabilityZone: aws.String("us-east-1b")})).Subnet
	if aws.ToInt32(sub.AvailableIpAddressCount) != 251 || aws.ToString(sub.AvailabilityZoneId) != "us-east-1-az2" {
		t.Fatalf("subnet %+v", sub)
	}
	rt := must[*ec2.CreateRouteTableOutput](t)(c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: v.VpcId})).RouteTable
	igw := must[*ec2.CreateInternetGatewayOutput](t)(c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})).InternetGateway
	must[*ec2.AttachInternetGatewayOutput](t)(c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId, VpcId: v.VpcId}))
	must[*ec2.CreateRouteOutput](t)(c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt.RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: igw.InternetGatewayId}))
	assoc := must[*ec2.AssociateRouteTableOutput](t)(c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTableId, SubnetId: sub.SubnetId}))
	rts := must[*ec2.DescribeRouteTablesOutput](t)(c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{
		Filters: []types.Filter{{Name: aws.String("association.subnet-id"), Values: []string{aws.ToString(sub.SubnetId)}}}}))
	if len(rts.RouteTables) != 1 || len(rts.RouteTables[0].Routes) != 2 || aws.ToString(rts.RouteTables[0].Associations[0].RouteTableAssociationId) != aws.ToString(assoc.AssociationId) {
		t.Fatalf("route table %+v", rts.RouteTables)
	}
	sg := must[*ec2.CreateSecurityGroupOutput](t)(c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: v.VpcId, GroupName: aws.String("web"), Description: aws.String("web")}))
	must[*ec2.AuthorizeSecurityGroupIngressOutput](t)(c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId,
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String("ssh")}}}}}))
	rules := must[*ec2.DescribeSecurityGroupRulesOutput](t)(c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{aws.ToString(sg.GroupId)}}}}))
	if len(rules.SecurityGroupRules) != 2 {
		t.Fatalf("rules (egress default + ssh): %+v", rules.SecurityGroupRules)
	}
	if _, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: v.VpcId}); code(err) != "DependencyViolation" {
		t.Fatalf("DeleteVpc with dependencies: %v", err)
	}
	// Tear down in AWS's order.
	must[*ec2.DeleteSecurityGroupOutput](t)(c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}))
	must[*ec2.DisassociateRouteTableOutput](t)(c.DisassociateRouteTable(ctx, &ec2.DisassociateRouteTableInput{AssociationId: assoc.AssociationId}))
	must[*ec2.DeleteRouteTableOutput](t)(c.DeleteRouteTable(ctx, &ec2.DeleteRouteTableInput{RouteTableId: rt.RouteTableId}))
	must[*ec2.DetachInternetGatewayOutput](t)(c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId, VpcId: v.VpcId}))
	must[*ec2.DeleteInternetGatewayOutput](t)(c.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId}))
	must[*ec2.DeleteSubnetOutput](t)(c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: sub.SubnetId}))
	must[*ec2.DeleteVpcOutput](t)(c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: v.VpcId}))
	if _, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{vpcID}}); code(err) != "InvalidVpcID.NotFound" {
		t.Fatalf("deleted VPC: %v", err)
	}
	keys := e.vpcKeys()
	want := map[string]int{"accounts": 1, "vpcs": 1, "subnets": 3, "internet_gateways": 1, "route_tables": 1, "security_groups": 1, "network_acls": 1, "dhcp_options": 1}
	for k, n := range want {
		if keys[k] != n {
			t.Errorf("after teardown %s: %d keys, want %d (all: %v)", k, keys[k], n, keys)
		}
	}
	if len(keys) != len(want) {
		t.Errorf("after teardown: %v", keys)
	}
}
