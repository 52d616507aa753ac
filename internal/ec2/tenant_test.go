package ec2_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestTenantIsolation: two accounts with the same CIDRs; neither sees nor
// touches the other's resources.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t, nil)
	a, _ := e.account("alice")
	b, _ := e.account("bob")
	ctx := ctx(t)
	fa := build(t, a)
	fb := build(t, b) // same CIDRs, same private address 10.0.1.10
	if fa.vpc == fb.vpc {
		t.Fatal("same VPC id")
	}
	before := e.dump()
	// Bob names Alice's objects: NotFound, never her data.
	checks := []struct {
		name, code string
		err        error
	}{}
	add := func(name, code string, _ any, err error) {
		checks = append(checks, struct {
			name, code string
			err        error
		}{name, code, err})
	}
	r1, err := b.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{fa.vpc}})
	add("describe vpc", "InvalidVpcID.NotFound", r1, err)
	r2, err := b.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(fa.vpc)})
	add("delete vpc", "InvalidVpcID.NotFound", r2, err)
	r3, err := b.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(fa.vpc), CidrBlock: aws.String("10.0.9.0/24")})
	add("subnet in her vpc", "InvalidVpcID.NotFound", r3, err)
	r4, err := b.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(fa.sub)})
	add("delete subnet", "InvalidSubnetID.NotFound", r4, err)
	r5, err := b.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(fa.sg),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	add("authorize on her group", "InvalidGroup.NotFound", r5, err)
	r6, err := b.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(fb.sg),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(fa.sg)}}}}})
	add("reference her group", "InvalidGroup.NotFound", r6, err)
	r7, err := b.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(fa.igw), VpcId: aws.String(fb.vpc2)})
	add("attach her igw", "InvalidInternetGatewayID.NotFound", r7, err)
	r8, err := b.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(fb.rtb), DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: aws.String(fa.igw)})
	add("route to her igw", "InvalidGatewayID.NotFound", r8, err)
	r9, err := b.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(fa.alloc), NetworkInterfaceId: aws.String(fb.eni), AllowReassociation: aws.Bool(true)})
	add("take her address", "InvalidAllocationID.NotFound", r9, err)
	r10, err := b.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(fa.eni)})
	add("delete her eni", "InvalidNetworkInterfaceID.NotFound", r10, err)
	r11, err := b.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{fa.vpc}, Tags: []types.Tag{{Key: aws.String("x"), Value: aws.String("y")}}})
	add("tag her vpc", "InvalidVpcID.NotFound", r11, err)
	r12, err := b.ReplaceNetworkAclAssociation(ctx, &ec2.ReplaceNetworkAclAssociationInput{AssociationId: aws.String("aclassoc-" + fa.sub[len("subnet-"):]), NetworkAclId: aws.String(fb.acl)})
	add("move her subnet's acl", "InvalidAssociationID.NotFound", r12, err)
	for _, c := range checks {
		if got := code(c.err); got != c.code {
			t.Errorf("%s: %q, want %q", c.name, got, c.code)
		}
	}
	if after := e.dump(); after != before {
		t.Fatalf("bob changed the store")
	}
	// Each sees only their own, by list and by filter.
	for _, tc := range []struct {
		c      *ec2.Client
		own    fixture
		theirs fixture
	}{{a, fa, fb}, {b, fb, fa}} {
		vs := must[*ec2.DescribeVpcsOutput](t)(tc.c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("cidr-block"), Values: []string{"10.0.0.0/16"}}}}))
		if len(vs.Vpcs) != 1 || aws.ToString(vs.Vpcs[0].VpcId) != tc.own.vpc {
			t.Errorf("vpcs by cidr: %+v", vs.Vpcs)
		}
		enis := must[*ec2.DescribeNetworkInterfacesOutput](t)(tc.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{}))
		if len(enis.NetworkInterfaces) != 1 || aws.ToString(enis.NetworkInterfaces[0].NetworkInterfaceId) != tc.own.eni ||
			aws.ToString(enis.NetworkInterfaces[0].PrivateIpAddress) != "10.0.1.10" {
			t.Errorf("enis: %+v", enis.NetworkInterfaces)
		}
		tags := must[*ec2.DescribeTagsOutput](t)(tc.c.DescribeTags(ctx, &ec2.DescribeTagsInput{}))
		for _, tg := range tags.Tags {
			if aws.ToString(tg.ResourceId) == tc.theirs.vpc {
				t.Errorf("sees the other's tags")
			}
		}
	}
}

// TestPaginationFiltersClientToken covers MaxResults/NextToken, wildcards,
// tag-key/tag-value, DryRun on describe, and ClientToken idempotency.
func TestPaginationFiltersClientToken(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	ctx := ctx(t)
	v := must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})).Vpc
	want := map[string]bool{}
	for i := range 12 {
		s := must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/24", i)),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSubnet, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String(fmt.Sprintf("app-%02d", i))}}}}})).Subnet
		want[aws.ToString(s.SubnetId)] = true
	}
	p := ec2.NewDescribeSubnetsPaginator(c, &ec2.DescribeSubnetsInput{MaxResults: aws.Int32(5), Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{aws.ToString(v.VpcId)}}}})
	got, pages := map[string]bool{}, 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.Subnets) > 5 {
			t.Fatalf("page of %d", len(out.Subnets))
		}
		for _, s := range out.Subnets {
			if got[aws.ToString(s.SubnetId)] {
				t.Fatalf("subnet %s twice", aws.ToString(s.SubnetId))
			}
			got[aws.ToString(s.SubnetId)] = true
		}
	}
	if pages != 3 || len(got) != 12 {
		t.Fatalf("%d pages, %d subnets", pages, len(got))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("missing %s", id)
		}
	}
	filters := []struct {
		f    []types.Filter
		want int
	}{
		{[]types.Filter{{Name: aws.String("tag:Name"), Values: []string{"app-1?"}}}, 2},
		{[]types.Filter{{Name: aws.String("tag:Name"), Values: []string{"app-0*", "app-11"}}}, 11},
		{[]types.Filter{{Name: aws.String("tag-key"), Values: []string{"Name"}}}, 12},
		{[]types.Filter{{Name: aws.String("tag-value"), Values: []string{"*-03"}}}, 1},
		{[]types.Filter{{Name: aws.String("cidr-block"), Values: []string{"10.0.1*"}}, {Name: aws.String("vpc-id"), Values: []string{aws.ToString(v.VpcId)}}}, 3},
		{[]types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}, 3},
		{[]types.Filter{{Name: aws.String("tag:Missing"), Values: []string{"*"}}}, 0},
	}
	for i, f := range filters {
		out := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: f.f}))
		if len(out.Subnets) != f.want {
			t.Errorf("filter %d: %d subnets, want %d", i, len(out.Subnets), f.want)
		}
	}
	if _, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{DryRun: aws.Bool(true)}); code(err) != "DryRunOperation" {
		t.Errorf("describe dry run: %v", err)
	}
	if _, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{NextToken: aws.String("garbage")}); code(err) != "InvalidPaginationToken" {
		t.Errorf("bad token: %v", err)
	}
	// ClientToken: the retry gets the same table; another token a new one.
	r1 := must[*ec2.CreateRouteTableOutput](t)(c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: v.VpcId, ClientToken: aws.String("tok-1")}))
	r2 := must[*ec2.CreateRouteTableOutput](t)(c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: v.VpcId, ClientToken: aws.String("tok-1")}))
	r3 := must[*ec2.CreateRouteTableOutput](t)(c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: v.VpcId, ClientToken: aws.String("tok-2")}))
	if aws.ToString(r1.RouteTable.RouteTableId) != aws.ToString(r2.RouteTable.RouteTableId) || aws.ToString(r1.RouteTable.RouteTableId) == aws.ToString(r3.RouteTable.RouteTableId) {
		t.Fatalf("client token: %s %s %s", aws.ToString(r1.RouteTable.RouteTableId), aws.ToString(r2.RouteTable.RouteTableId), aws.ToString(r3.RouteTable.RouteTableId))
	}
	rts := must[*ec2.DescribeRouteTablesOutput](t)(c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{aws.ToString(v.VpcId)}}}}))
	if len(rts.RouteTables) != 3 { // main + 2
		t.Fatalf("%d route tables", len(rts.RouteTables))
	}
	sub := aws.ToString(must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("tag:Name"), Values: []string{"app-00"}}}})).Subnets[0].SubnetId)
	e1 := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(sub), ClientToken: aws.String("eni-tok")}))
	e2 := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(sub), ClientToken: aws.String("eni-tok")}))
	if aws.ToString(e1.NetworkInterface.NetworkInterfaceId) != aws.ToString(e2.NetworkInterface.NetworkInterfaceId) || aws.ToString(e1.NetworkInterface.PrivateIpAddress) != "10.0.0.4" {
		t.Fatalf("eni client token: %+v %+v", e1.NetworkInterface, e2.NetworkInterface)
	}
}
