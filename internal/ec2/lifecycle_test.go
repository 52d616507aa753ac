package ec2_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/canopy-sdn/canopy/internal/controller"
	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// TestNatGatewayLifecycle: a NAT gateway reads pending until the controller
// has realized it, then available; a deleted one reads deleting until the
// controller has taken it out of the topology, then deleted, its interface
// and address freed, for NatDeletedRetention, and then it disappears.
// DescribeNatGateways only reads.
func TestNatGatewayLifecycle(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	e := newEnv(t, func(c *canopyec2.Config) {
		c.Now = now
		c.ClockSkew = 24 * time.Hour // the test moves the server's clock an hour on
	})
	c, _ := e.account("alice")
	ctx := ctx(t)
	v := must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})).Vpc
	sub := must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.VpcId, CidrBlock: aws.String("10.0.1.0/24")})).Subnet
	igw := must[*ec2.CreateInternetGatewayOutput](t)(c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})).InternetGateway
	must[*ec2.AttachInternetGatewayOutput](t)(c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId, VpcId: v.VpcId}))
	eip := must[*ec2.AllocateAddressOutput](t)(c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}))

	out := must[*ec2.CreateNatGatewayOutput](t)(c.CreateNatGateway(ctx, &ec2.CreateNatGatewayInput{SubnetId: sub.SubnetId, AllocationId: eip.AllocationId}))
	nat := out.NatGateway
	if nat.State != types.NatGatewayStatePending || len(nat.NatGatewayAddresses) != 1 || aws.ToString(nat.NatGatewayAddresses[0].PublicIp) != aws.ToString(eip.PublicIp) {
		t.Fatalf("created: state %s, addresses %+v", nat.State, nat.NatGatewayAddresses)
	}
	describeNat := func() (*types.NatGateway, error) {
		out, err := c.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{NatGatewayIds: []string{aws.ToString(nat.NatGatewayId)}})
		if err != nil {
			return nil, err
		}
		if len(out.NatGateways) != 1 {
			t.Fatalf("%d gateways described", len(out.NatGateways))
		}
		return &out.NatGateways[0], nil
	}
	waitNat := func(want types.NatGatewayState, passing ...types.NatGatewayState) *types.NatGateway {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			g := must[*types.NatGateway](t)(describeNat())
			if g.State == want {
				return g
			}
			if !slices.Contains(passing, g.State) || time.Now().After(deadline) {
				t.Fatalf("state %s, want %s", g.State, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// No controller has realized it yet: it stays pending, and describing
	// it writes nothing.
	rev := e.vpcs.Revision()
	for range 3 {
		if g := must[*types.NatGateway](t)(describeNat()); g.State != types.NatGatewayStatePending {
			t.Fatalf("state %s before any controller ran, want pending", g.State)
		}
	}
	if got := e.vpcs.Revision(); got != rev {
		t.Fatalf("describing moved the VPC objects from revision %d to %d", rev, got)
	}

	// A real controller realizes it; it turns available.
	const gw = "7d3c0c1e-0000-4000-8000-0000000000b1"
	if _, err := e.store.Create(ctx, &topology.Host{Meta: topology.Meta{ID: gw, Name: "gateway"}}); err != nil {
		t.Fatal(err)
	}
	ctl := controller.New(e.store, translate.CloudConfig{
		Gateways:    []translate.Gateway{{HostID: gw, Interface: "eth1", Address: netip.MustParsePrefix("192.0.2.2/24"), NextHop: netip.MustParseAddr("192.0.2.1")}},
		PublicPools: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/29")},
	}, slog.New(slog.NewTextHandler(io.Discard, nil))).WithLifecycle(e.vpcs, controller.LifecycleConfig{Now: now})
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	waitNat(types.NatGatewayStateAvailable, types.NatGatewayStatePending)
	filtered := must[*ec2.DescribeNatGatewaysOutput](t)(c.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{
		Filter: []types.Filter{{Name: aws.String("state"), Values: []string{"available"}}}}))
	if len(filtered.NatGateways) != 1 {
		t.Fatalf("state=available filter: %d gateways", len(filtered.NatGateways))
	}

	// Delete: deleting, then deleted (with its delete time) for an hour,
	// then gone.
	must[*ec2.DeleteNatGatewayOutput](t)(c.DeleteNatGateway(ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: nat.NatGatewayId}))
	// A second delete while it is deleting answers as the first.
	must[*ec2.DeleteNatGatewayOutput](t)(c.DeleteNatGateway(ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: nat.NatGatewayId}))
	g := waitNat(types.NatGatewayStateDeleted, types.NatGatewayStateAvailable, types.NatGatewayStateDeleting)
	if g.DeleteTime == nil {
		t.Fatalf("deleted without a delete time")
	}
	addr := must[*ec2.DescribeAddressesOutput](t)(c.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{AllocationIds: []string{aws.ToString(eip.AllocationId)}}))
	if a := addr.Addresses[0]; a.AssociationId != nil || a.NetworkInterfaceId != nil {
		t.Fatalf("address still associated after the delete: %+v", a)
	}
	if _, err := c.DeleteNatGateway(ctx, &ec2.DeleteNatGatewayInput{NatGatewayId: nat.NatGatewayId}); code(err) != "NatGatewayNotFound" {
		t.Fatalf("delete of a deleted gateway: %v", err)
	}
	// The retention runs on the controller's clock; a tag written after
	// each move of the clock wakes its life cycle, which then sees the time.
	tag := func(v string) error {
		_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(nat.NatGatewayId)},
			Tags: []types.Tag{{Key: aws.String("clock"), Value: aws.String(v)}}})
		return err
	}
	clock.Add(int64(controller.NatDeletedRetention - time.Minute))
	if err := tag("59m"); err != nil {
		t.Fatal(err)
	}
	if g := must[*types.NatGateway](t)(describeNat()); g.State != types.NatGatewayStateDeleted {
		t.Fatalf("59 minutes after the delete: state %s", g.State)
	}
	clock.Add(int64(2 * time.Minute))
	// The round the first tag woke may already read the moved clock.
	if err := tag("61m"); err != nil && code(err) != "NatGatewayNotFound" {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := must[*ec2.DescribeNatGatewaysOutput](t)(c.DescribeNatGateways(ctx, &ec2.DescribeNatGatewaysInput{}))
		if len(all.NatGateways) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("61 minutes after the delete: %+v", all.NatGateways)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := describeNat(); code(err) != "NatGatewayNotFound" {
		t.Fatalf("describing the expired gateway by id: %v", err)
	}
	if n := e.vpcKeys()["nat_gateways"]; n != 0 {
		t.Fatalf("%d NAT gateway keys left in the store", n)
	}
	// Its VPC can go now (after the subnet).
	must[*ec2.DeleteSubnetOutput](t)(c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: sub.SubnetId}))
	must[*ec2.DetachInternetGatewayOutput](t)(c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId, VpcId: v.VpcId}))
	must[*ec2.DeleteVpcOutput](t)(c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: v.VpcId}))
}

func TestDhcpOptions(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	ctx := ctx(t)
	v := must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})).Vpc
	if aws.ToString(v.DhcpOptionsId) == "" {
		t.Fatal("a new VPC has no DHCP options id")
	}
	d := must[*ec2.CreateDhcpOptionsOutput](t)(c.CreateDhcpOptions(ctx, &ec2.CreateDhcpOptionsInput{DhcpConfigurations: []types.NewDhcpConfiguration{
		{Key: aws.String("domain-name"), Values: []string{"corp.example"}},
		{Key: aws.String("domain-name-servers"), Values: []string{"10.0.0.53", "AmazonProvidedDNS"}},
	}})).DhcpOptions
	id := aws.ToString(d.DhcpOptionsId)
	got := must[*ec2.DescribeDhcpOptionsOutput](t)(c.DescribeDhcpOptions(ctx, &ec2.DescribeDhcpOptionsInput{DhcpOptionsIds: []string{id}}))
	if len(got.DhcpOptions) != 1 {
		t.Fatalf("%d sets described", len(got.DhcpOptions))
	}
	conf := map[string][]string{}
	for _, c := range got.DhcpOptions[0].DhcpConfigurations {
		for _, v := range c.Values {
			conf[aws.ToString(c.Key)] = append(conf[aws.ToString(c.Key)], aws.ToString(v.Value))
		}
	}
	if len(conf) != 2 || conf["domain-name"][0] != "corp.example" || len(conf["domain-name-servers"]) != 2 || conf["domain-name-servers"][1] != "AmazonProvidedDNS" {
		t.Fatalf("described configuration %v", conf)
	}
	vpcDopt := func() string {
		out := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{aws.ToString(v.VpcId)}}))
		return aws.ToString(out.Vpcs[0].DhcpOptionsId)
	}
	must[*ec2.AssociateDhcpOptionsOutput](t)(c.AssociateDhcpOptions(ctx, &ec2.AssociateDhcpOptionsInput{DhcpOptionsId: d.DhcpOptionsId, VpcId: v.VpcId}))
	if got := vpcDopt(); got != id {
		t.Fatalf("VPC's DHCP options %s, want %s", got, id)
	}
	byFilter := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("dhcp-options-id"), Values: []string{id}}}}))
	if len(byFilter.Vpcs) != 1 {
		t.Fatalf("dhcp-options-id filter: %d VPCs", len(byFilter.Vpcs))
	}
	before := e.dump()
	if _, err := c.DeleteDhcpOptions(ctx, &ec2.DeleteDhcpOptionsInput{DhcpOptionsId: d.DhcpOptionsId}); code(err) != "DependencyViolation" {
		t.Fatalf("deleting a set in use: %v", err)
	}
	if e.dump() != before {
		t.Fatal("the refused delete changed the store")
	}
	// "default" means no options set of the account's: AWS's defaults.
	must[*ec2.AssociateDhcpOptionsOutput](t)(c.AssociateDhcpOptions(ctx, &ec2.AssociateDhcpOptionsInput{DhcpOptionsId: aws.String("default"), VpcId: v.VpcId}))
	if got := vpcDopt(); got != "default" {
		t.Fatalf("VPC's DHCP options %s after associating default", got)
	}
	must[*ec2.DeleteDhcpOptionsOutput](t)(c.DeleteDhcpOptions(ctx, &ec2.DeleteDhcpOptionsInput{DhcpOptionsId: d.DhcpOptionsId}))
	if _, err := c.DescribeDhcpOptions(ctx, &ec2.DescribeDhcpOptionsInput{DhcpOptionsIds: []string{id}}); code(err) != "InvalidDhcpOptionID.NotFound" {
		t.Fatalf("describing the deleted set: %v", err)
	}
	if _, err := c.AssociateDhcpOptions(ctx, &ec2.AssociateDhcpOptionsInput{DhcpOptionsId: d.DhcpOptionsId, VpcId: v.VpcId}); code(err) != "InvalidDhcpOptionID.NotFound" {
		t.Fatalf("associating the deleted set: %v", err)
	}
}

// TestIGWReattachRoutes: detaching an internet gateway leaves the routes
// through it as blackholes; attaching it again makes them active, as on AWS.
func TestIGWReattachRoutes(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	ctx := ctx(t)
	v := must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})).Vpc
	igw := must[*ec2.CreateInternetGatewayOutput](t)(c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})).InternetGateway
	attach := &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId, VpcId: v.VpcId}
	must[*ec2.AttachInternetGatewayOutput](t)(c.AttachInternetGateway(ctx, attach))
	rtb := must[*ec2.CreateRouteTableOutput](t)(c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: v.VpcId})).RouteTable
	for _, dst := range []string{"0.0.0.0/0", "192.0.2.0/24"} {
		must[*ec2.CreateRouteOutput](t)(c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rtb.RouteTableId, DestinationCidrBlock: aws.String(dst), GatewayId: igw.InternetGatewayId}))
	}
	states := func() map[string]types.RouteState {
		out := must[*ec2.DescribeRouteTablesOutput](t)(c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{aws.ToString(rtb.RouteTableId)}}))
		m := map[string]types.RouteState{}
		for _, r := range out.RouteTables[0].Routes {
			m[aws.ToString(r.DestinationCidrBlock)] = r.State
		}
		return m
	}
	check := func(when string, want types.RouteState) {
		t.Helper()
		s := states()
		if s["0.0.0.0/0"] != want || s["192.0.2.0/24"] != want || s["10.0.0.0/16"] != types.RouteStateActive {
			t.Fatalf("%s: route states %v, want the gateway's %s and local active", when, s, want)
		}
	}
	check("attached", types.RouteStateActive)
	must[*ec2.DetachInternetGatewayOutput](t)(c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId, VpcId: v.VpcId}))
	check("detached", types.RouteStateBlackhole)
	must[*ec2.AttachInternetGatewayOutput](t)(c.AttachInternetGateway(ctx, attach))
	check("attached again", types.RouteStateActive)
}

// TestConcurrentSubnetConflict: two writers — two EC2 servers on their own
// VPC stores over one etcd, as two server processes would be — create
// overlapping subnets in one VPC at the same moment. A multi-object call
// validates and commits atomically, so exactly one wins each round and the
// other answers InvalidSubnet.Conflict.
func TestConcurrentSubnetConflict(t *testing.T) {
	e := newEnv(t, nil)
	c1, nc := e.account("alice")
	ctx := ctx(t)
	vs2, err := nsdb.OpenVPCStore(ctx, e.store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vs2.Close)
	srv2, err := canopyec2.New(vs2, canopyec2.Config{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	hs2 := httptest.NewServer(srv2)
	t.Cleanup(hs2.Close)
	c2 := ec2.NewFromConfig(e.cfg(nc.AccessKeyID, nc.SecretAccessKey), func(o *ec2.Options) { o.BaseEndpoint = aws.String(hs2.URL) })

	v := must[*ec2.CreateVpcOutput](t)(c1.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})).Vpc
	// The second server learns of the VPC through its watch, a moment
	// later (as AWS, eventually consistent: InvalidVpcID.NotFound right
	// after a create elsewhere; a CI run saw it in round 0). The rounds
	// test the subnets' conflict, so they start once both servers see it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := c2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{*v.VpcId}}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the second server does not see %s 10 s after its creation: %v", *v.VpcId, err)
		}
	}
	const rounds = 20
	wins := [2]int{}
	for r := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := [2]error{}
		for i, cl := range []*ec2.Client{c1, c2} {
			// Overlapping blocks: 10.0.r.0/24 and its first half.
			cidr := []string{"/24", "/25"}[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = cl.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0%s", r, cidr))})
			}()
		}
		close(start)
		wg.Wait()
		c0, c1 := code(errs[0]), code(errs[1])
		switch {
		case c0 == "" && c1 == "InvalidSubnet.Conflict":
			wins[0]++
		case c1 == "" && c0 == "InvalidSubnet.Conflict":
			wins[1]++
		default:
			t.Fatalf("round %d: answers %q and %q, want one success and one InvalidSubnet.Conflict", r, c0, c1)
		}
	}
	// The check reads what was stored: a transport error on the way (seen
	// once on a loaded machine: a connection closed under the response)
	// is retried, unlike the racing creates above.
	subs := must[*ec2.DescribeSubnetsOutput](t)(c2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{aws.ToString(v.VpcId)}}}},
		func(o *ec2.Options) { o.RetryMaxAttempts = 5 }))
	if len(subs.Subnets) != rounds {
		t.Fatalf("%d subnets stored, want %d", len(subs.Subnets), rounds)
	}
	for i, a := range subs.Subnets {
		pa := netip.MustParsePrefix(aws.ToString(a.CidrBlock))
		for _, b := range subs.Subnets[i+1:] {
			if pb := netip.MustParsePrefix(aws.ToString(b.CidrBlock)); pa.Overlaps(pb) {
				t.Fatalf("overlapping subnets stored: %s and %s", pa, pb)
			}
		}
	}
	t.Logf("wins: server 1 %d, server 2 %d", wins[0], wins[1])
}
