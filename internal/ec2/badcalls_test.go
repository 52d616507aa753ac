package ec2_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
)

// fixture is a small VPC the bad calls aim at.
type fixture struct {
	vpc, vpc2, sub, sub2, rtb, mainRtb, igw, sg, defSG, acl, defACL, eni, alloc string
}

func build(t *testing.T, c *ec2.Client) fixture {
	ctx := ctx(t)
	var f fixture
	v := must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})).Vpc
	f.vpc = aws.ToString(v.VpcId)
	f.vpc2 = aws.ToString(must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.1.0.0/16")})).Vpc.VpcId)
	f.sub = aws.ToString(must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.VpcId, CidrBlock: aws.String("10.0.1.0/24")})).Subnet.SubnetId)
	f.sub2 = aws.ToString(must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc2), CidrBlock: aws.String("10.1.1.0/24")})).Subnet.SubnetId)
	f.rtb = aws.ToString(must[*ec2.CreateRouteTableOutput](t)(c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: v.VpcId})).RouteTable.RouteTableId)
	f.igw = aws.ToString(must[*ec2.CreateInternetGatewayOutput](t)(c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})).InternetGateway.InternetGatewayId)
	must[*ec2.AttachInternetGatewayOutput](t)(c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(f.igw), VpcId: v.VpcId}))
	f.sg = aws.ToString(must[*ec2.CreateSecurityGroupOutput](t)(c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: v.VpcId, GroupName: aws.String("web"), Description: aws.String("web")})).GroupId)
	must[*ec2.AuthorizeSecurityGroupIngressOutput](t)(c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(f.sg),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}))
	f.acl = aws.ToString(must[*ec2.CreateNetworkAclOutput](t)(c.CreateNetworkAcl(ctx, &ec2.CreateNetworkAclInput{VpcId: v.VpcId})).NetworkAcl.NetworkAclId)
	must[*ec2.CreateNetworkAclEntryOutput](t)(c.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(f.acl), RuleNumber: aws.Int32(100),
		Protocol: aws.String("6"), RuleAction: types.RuleActionAllow, Egress: aws.Bool(false), CidrBlock: aws.String("0.0.0.0/0"), PortRange: &types.PortRange{From: aws.Int32(80), To: aws.Int32(80)}}))
	f.eni = aws.ToString(must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.sub), PrivateIpAddress: aws.String("10.0.1.10"), Groups: []string{f.sg}})).NetworkInterface.NetworkInterfaceId)
	f.alloc = aws.ToString(must[*ec2.AllocateAddressOutput](t)(c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})).AllocationId)
	must[*ec2.AssociateAddressOutput](t)(c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(f.alloc), NetworkInterfaceId: aws.String(f.eni)}))
	rts := must[*ec2.DescribeRouteTablesOutput](t)(c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{f.vpc}}, {Name: aws.String("association.main"), Values: []string{"true"}}}}))
	f.mainRtb = aws.ToString(rts.RouteTables[0].RouteTableId)
	sgs := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{f.vpc}}, {Name: aws.String("group-name"), Values: []string{"default"}}}}))
	f.defSG = aws.ToString(sgs.SecurityGroups[0].GroupId)
	acls := must[*ec2.DescribeNetworkAclsOutput](t)(c.DescribeNetworkAcls(ctx, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{f.vpc}}, {Name: aws.String("default"), Values: []string{"true"}}}}))
	f.defACL = aws.ToString(acls.NetworkAcls[0].NetworkAclId)
	return f
}

// TestBadCalls sends calls AWS refuses and checks each answers AWS's exact
// code and leaves the store exactly as it was.
func TestBadCalls(t *testing.T) {
	e := newEnv(t, func(c *canopyec2.Config) {
		c.Limits.SubnetsPerVpc = 2
		c.Limits.RulesPerSecurityGroup = 2
		c.Limits.SecurityGroupsPerInterface = 1
	})
	c, _ := e.account("alice")
	f := build(t, c)
	ctx := ctx(t)
	tcp := func(port int32, cidr string) []types.IpPermission {
		return []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port), IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}}}}
	}
	cases := []struct {
		name string
		code string
		call func() error
	}{
		{"vpc /15", "InvalidVpc.Range", func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/15")})
			return err
		}},
		{"vpc /29", "InvalidVpc.Range", func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/29")})
			return err
		}},
		{"vpc link-local", "InvalidVpc.Range", func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("169.254.0.0/16")})
			return err
		}},
		{"vpc not a cidr", "InvalidParameterValue", func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.300/16")})
			return err
		}},
		{"vpc limit", "VpcLimitExceeded", func() error { // default + 4 of 5 (filled below)
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.4.0.0/16")})
			return err
		}},
		{"subnet outside vpc", "InvalidSubnet.Range", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String("10.9.0.0/24")})
			return err
		}},
		{"subnet /29", "InvalidSubnet.Range", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String("10.0.2.0/29")})
			return err
		}},
		{"subnet overlap", "InvalidSubnet.Conflict", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String("10.0.1.128/25")})
			return err
		}},
		{"subnet bad zone", "InvalidParameterValue", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String("10.0.2.0/24"), AvailabilityZone: aws.String("mars-1a")})
			return err
		}},
		{"subnet unknown vpc", "InvalidVpcID.NotFound", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String("vpc-0123456789abcdef0"), CidrBlock: aws.String("10.0.2.0/24")})
			return err
		}},
		{"malformed vpc id", "InvalidVpcID.Malformed", func() error {
			_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-xyz"}})
			return err
		}},
		{"eni reserved address", "InvalidParameterValue", func() error {
			_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.sub), PrivateIpAddress: aws.String("10.0.1.3")})
			return err
		}},
		{"eni address in use", "InvalidIPAddress.InUse", func() error {
			_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.sub), PrivateIpAddress: aws.String("10.0.1.10")})
			return err
		}},
		{"eni too many groups", "SecurityGroupsPerInterfaceLimitExceeded", func() error {
			_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.sub), Groups: []string{f.sg, f.defSG}})
			return err
		}},
		{"eni unknown group", "InvalidGroup.NotFound", func() error {
			_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(f.sub), Groups: []string{"sg-0123456789abcdef0"}})
			return err
		}},
		{"delete vpc with subnets", "DependencyViolation", func() error {
			_, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(f.vpc)})
			return err
		}},
		{"delete subnet with eni", "DependencyViolation", func() error {
			_, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String(f.sub)})
			return err
		}},
		{"delete attached igw", "DependencyViolation", func() error {
			_, err := c.DeleteInternetGateway(ctx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: aws.String(f.igw)})
			return err
		}},
		{"delete sg in use", "DependencyViolation", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(f.sg)})
			return err
		}},
		{"delete default sg", "CannotDelete", func() error {
			_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(f.defSG)})
			return err
		}},
		{"delete main route table", "DependencyViolation", func() error {
			_, err := c.DeleteRouteTable(ctx, &ec2.DeleteRouteTableInput{RouteTableId: aws.String(f.mainRtb)})
			return err
		}},
		{"duplicate rule", "InvalidPermission.Duplicate", func() error {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(f.sg), IpPermissions: tcp(22, "0.0.0.0/0")})
			return err
		}},
		{"rule limit", "RulesPerSecurityGroupLimitExceeded", func() error {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(f.sg),
				IpPermissions: append(tcp(80, "0.0.0.0/0"), tcp(443, "0.0.0.0/0")...)})
			return err
		}},
		{"revoke missing rule", "InvalidPermission.NotFound", func() error {
			_, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(f.sg), IpPermissions: tcp(23, "0.0.0.0/0")})
			return err
		}},
		{"duplicate group name", "InvalidGroup.Duplicate", func() error {
			_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: aws.String(f.vpc), GroupName: aws.String("web"), Description: aws.String("x")})
			return err
		}},
		{"replace local route", "InvalidParameterValue", func() error {
			_, err := c.ReplaceRoute(ctx, &ec2.ReplaceRouteInput{RouteTableId: aws.String(f.rtb), DestinationCidrBlock: aws.String("10.0.0.0/16"), LocalTarget: aws.Bool(true)})
			return err
		}},
		{"delete local route", "InvalidParameterValue", func() error {
			_, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(f.rtb), DestinationCidrBlock: aws.String("10.0.0.0/16")})
			return err
		}},
		{"route to missing table", "InvalidRouteTableID.NotFound", func() error {
			_, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String("rtb-0123456789abcdef0"), DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: aws.String(f.igw)})
			return err
		}},
		{"route without target", "InvalidParameterCombination", func() error {
			_, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(f.rtb), DestinationCidrBlock: aws.String("0.0.0.0/0")})
			return err
		}},
		{"delete missing route", "InvalidRoute.NotFound", func() error {
			_, err := c.DeleteRoute(ctx, &ec2.DeleteRouteInput{RouteTableId: aws.String(f.rtb), DestinationCidrBlock: aws.String("192.0.2.0/24")})
			return err
		}},
		{"associate across vpcs", "InvalidParameterValue", func() error {
			_, err := c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: aws.String(f.rtb), SubnetId: aws.String(f.sub2)})
			return err
		}},
		{"attach igw twice", "Resource.AlreadyAssociated", func() error {
			_, err := c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(f.igw), VpcId: aws.String(f.vpc2)})
			return err
		}},
		{"detach not attached", "Gateway.NotAttached", func() error {
			_, err := c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: aws.String(f.igw), VpcId: aws.String(f.vpc2)})
			return err
		}},
		{"detach igw with mapped address", "DependencyViolation", func() error {
			_, err := c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: aws.String(f.igw), VpcId: aws.String(f.vpc)})
			return err
		}},
		{"acl entry exists", "NetworkAclEntryAlreadyExists", func() error {
			_, err := c.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(f.acl), RuleNumber: aws.Int32(100),
				Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny, Egress: aws.Bool(false), CidrBlock: aws.String("0.0.0.0/0")})
			return err
		}},
		{"acl rule number", "InvalidParameterValue", func() error {
			_, err := c.CreateNetworkAclEntry(ctx, &ec2.CreateNetworkAclEntryInput{NetworkAclId: aws.String(f.acl), RuleNumber: aws.Int32(32767),
				Protocol: aws.String("-1"), RuleAction: types.RuleActionDeny, Egress: aws.Bool(false), CidrBlock: aws.String("0.0.0.0/0")})
			return err
		}},
		{"delete default acl", "InvalidParameterValue", func() error {
			_, err := c.DeleteNetworkAcl(ctx, &ec2.DeleteNetworkAclInput{NetworkAclId: aws.String(f.defACL)})
			return err
		}},
		{"release associated address", "InvalidIPAddress.InUse", func() error {
			_, err := c.ReleaseAddress(ctx, &ec2.ReleaseAddressInput{AllocationId: aws.String(f.alloc)})
			return err
		}},
		{"unknown filter", "InvalidParameterValue", func() error {
			_, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}})
			return err
		}},
		{"max results too small", "InvalidParameterValue", func() error {
			_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{MaxResults: aws.Int32(4)})
			return err
		}},
		{"unsupported action", "UnsupportedOperation", func() error {
			_, err := c.CreateVpcPeeringConnection(ctx, &ec2.CreateVpcPeeringConnectionInput{VpcId: aws.String(f.vpc), PeerVpcId: aws.String(f.vpc2)})
			return err
		}},
		{"dry run", "DryRunOperation", func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc), CidrBlock: aws.String("10.0.2.0/24"), DryRun: aws.Bool(true)})
			return err
		}},
		{"subnet limit", "SubnetLimitExceeded", func() error { // 2 of 2 (filled below)
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc2), CidrBlock: aws.String("10.1.3.0/24")})
			return err
		}},
	}
	// Fill the account to its VPC limit and vpc2 to its subnet limit.
	must[*ec2.CreateSubnetOutput](t)(c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(f.vpc2), CidrBlock: aws.String("10.1.2.0/24")}))
	must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.2.0.0/16")}))
	must[*ec2.CreateVpcOutput](t)(c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.3.0.0/16")}))
	before := e.dump()
	for _, tc := range cases {
		if got := code(tc.call()); got != tc.code {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.code)
		}
		if after := e.dump(); after != before {
			t.Fatalf("%s changed the store:\nbefore:\n%s\nafter:\n%s", tc.name, before, after)
		}
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
}

// TestSigV4 checks that only correctly signed, fresh requests get in.
func TestSigV4(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	e := newEnv(t, func(c *canopyec2.Config) { c.Now = clock })
	_, nc := e.account("alice")
	ctx := ctx(t)
	cases := []struct {
		name   string
		client *ec2.Client
		code   string
	}{
		{"good", e.client(nc.AccessKeyID, nc.SecretAccessKey, nil), ""},
		{"bad secret", e.client(nc.AccessKeyID, "x"+nc.SecretAccessKey[1:], nil), "AuthFailure"},
		{"unknown key", e.client("AKIAAAAAAAAAAAAAAAAA", nc.SecretAccessKey, nil), "AuthFailure"},
		{"clock 16 min ahead", e.client(nc.AccessKeyID, nc.SecretAccessKey, func(o *ec2.Options) {
			o.HTTPSignerV4 = skewSigner{v4.NewSigner(), 16 * time.Minute}
		}), "RequestExpired"},
		{"clock 14 min behind", e.client(nc.AccessKeyID, nc.SecretAccessKey, func(o *ec2.Options) {
			o.HTTPSignerV4 = skewSigner{v4.NewSigner(), -14 * time.Minute}
		}), ""},
	}
	for _, tc := range cases {
		_, err := tc.client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
		if got := code(err); got != tc.code {
			t.Errorf("%s: code %q, want %q (%v)", tc.name, got, tc.code, err)
		}
	}
	// Unsigned, and signed but with the body changed afterwards.
	body := "Action=DescribeVpcs&Version=2016-11-15"
	for _, tamper := range []bool{false, true} {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if tamper {
			sum := sha256hex(body)
			if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: nc.AccessKeyID, SecretAccessKey: nc.SecretAccessKey}, req, sum, "ec2", "us-east-1", now); err != nil {
				t.Fatal(err)
			}
			tampered := body + "&VpcId.1=vpc-0123456789abcdef0"
			req.Body = io.NopCloser(strings.NewReader(tampered))
			req.ContentLength = int64(len(tampered))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "<Code>MissingAuthenticationToken</Code>" // no credentials at all
		if tamper {
			want = "<Code>AuthFailure</Code>" // credentials that do not verify
		}
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), want) || !strings.Contains(string(b), "<RequestID>") {
			t.Errorf("tamper=%v: %d %s", tamper, resp.StatusCode, b)
		}
	}
	// GET with the parameters in the query string (old clients) works.
	q := url.Values{"Action": {"DescribeVpcs"}, "Version": {"2013-10-15"}}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/?"+q.Encode(), nil)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: nc.AccessKeyID, SecretAccessKey: nc.SecretAccessKey}, req, sha256hex(""), "ec2", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`) || !strings.Contains(string(b), "<isDefault>true</isDefault>") {
		t.Errorf("GET: %d %s", resp.StatusCode, b)
	}
}

// skewSigner signs as if the client's clock were off by d.
type skewSigner struct {
	s *v4.Signer
	d time.Duration
}

func (k skewSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, h, svc, reg string, t time.Time, o ...func(*v4.SignerOptions)) error {
	return k.s.SignHTTP(ctx, c, r, h, svc, reg, t.Add(k.d), o...)
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestMalformedParams: a list index the server cannot read and a name
// that is not UTF-8 answer InvalidParameterValue and change nothing (they
// were read as no filter at all, and stored as U+FFFD). The AWS SDKs never
// send these, so the requests are signed by hand.
func TestMalformedParams(t *testing.T) {
	e := newEnv(t, nil)
	c, nc := e.account("alice")
	f := build(t, c)
	ctx := ctx(t)
	send := func(body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		creds := aws.Credentials{AccessKeyID: nc.AccessKeyID, SecretAccessKey: nc.SecretAccessKey}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, sha256hex(body), "ec2", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const v = "Version=2016-11-15&"
	before := e.dump()
	for _, body := range []string{
		v + "Action=DescribeVpcs&VpcId.99999999999999999999=" + f.vpc,
		v + "Action=DescribeVpcs&VpcId.0=" + f.vpc,
		v + "Action=DescribeSubnets&Filter.1.Name=vpc-id&Filter.1.Value.01=" + f.vpc,
		v + "Action=DeleteSecurityGroup&GroupId=" + f.sg + "&Filter..Name=x",
		v + "Action=CreateSecurityGroup&VpcId=" + f.vpc + "&GroupName=caf%E9&GroupDescription=latin-1",
		v + "Action=CreateTags&ResourceId.1=" + f.vpc + "&Tag.1.Key=Name&Tag.1.Value=%C3%28",
		v + "Action=CreateTags&ResourceId.1=" + f.vpc + "&Tag.1.Key=%FF&Tag.1.Value=x",
	} {
		status, out := send(body)
		if status != http.StatusBadRequest || !strings.Contains(out, "<Code>InvalidParameterValue</Code>") {
			t.Errorf("%s: %d %s", body, status, out)
		}
	}
	if after := e.dump(); after != before {
		t.Errorf("rejected calls changed the store:\nbefore %s\nafter  %s", before, after)
	}
	// The well-formed call with the same list is answered: the check is
	// on the index, not on the list.
	if status, out := send(v + "Action=DescribeVpcs&VpcId.1=" + f.vpc); status != 200 || !strings.Contains(out, f.vpc) {
		t.Errorf("VpcId.1: %d %s", status, out)
	}
}
