package ec2_test

import (
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
)

// The calls terraform's AWS provider makes that Canopy used to refuse, each
// answered with AWS's shapes and codes (issue 15).

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

func TestSecurityGroupIPv6Rules(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	f := build(t, c)
	cx := ctx(t)
	sg := must[*ec2.CreateSecurityGroupOutput](t)(c.CreateSecurityGroup(cx, &ec2.CreateSecurityGroupInput{VpcId: aws.String(f.vpc), GroupName: aws.String("tf"), Description: aws.String("tf")})).GroupId
	allV6 := []types.IpPermission{{IpProtocol: aws.String("-1"), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}}
	// What the provider does right after creating a group: revoke both
	// default egress rules; the IPv6 one is not there (no IPv6 VPC).
	must[*ec2.RevokeSecurityGroupEgressOutput](t)(c.RevokeSecurityGroupEgress(cx, &ec2.RevokeSecurityGroupEgressInput{GroupId: sg,
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}))
	_, err := c.RevokeSecurityGroupEgress(cx, &ec2.RevokeSecurityGroupEgressInput{GroupId: sg, IpPermissions: allV6})
	if code(err) != "InvalidPermission.NotFound" {
		t.Fatalf("revoking an absent ::/0 egress rule: %v, want InvalidPermission.NotFound", err)
	}
	// Accepted, stored, described.
	out := must[*ec2.AuthorizeSecurityGroupIngressOutput](t)(c.AuthorizeSecurityGroupIngress(cx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg,
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("2001:db8::/32"), Description: aws.String("docs")}}}}}))
	if len(out.SecurityGroupRules) != 1 || aws.ToString(out.SecurityGroupRules[0].CidrIpv6) != "2001:db8::/32" {
		t.Fatalf("authorize answered %+v", out.SecurityGroupRules)
	}
	ruleID := out.SecurityGroupRules[0].SecurityGroupRuleId
	must[*ec2.AuthorizeSecurityGroupEgressOutput](t)(c.AuthorizeSecurityGroupEgress(cx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: sg, IpPermissions: allV6}))
	_, err = c.AuthorizeSecurityGroupEgress(cx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: sg, IpPermissions: allV6})
	if code(err) != "InvalidPermission.Duplicate" {
		t.Errorf("the same ::/0 rule twice: %v", err)
	}
	g := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(cx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{*sg}})).SecurityGroups[0]
	if len(g.IpPermissions) != 1 || len(g.IpPermissions[0].Ipv6Ranges) != 1 || *g.IpPermissions[0].Ipv6Ranges[0].CidrIpv6 != "2001:db8::/32" ||
		*g.IpPermissions[0].Ipv6Ranges[0].Description != "docs" || len(g.IpPermissions[0].IpRanges) != 0 {
		t.Errorf("ingress %+v", g.IpPermissions)
	}
	if len(g.IpPermissionsEgress) != 1 || len(g.IpPermissionsEgress[0].Ipv6Ranges) != 1 || *g.IpPermissionsEgress[0].Ipv6Ranges[0].CidrIpv6 != "::/0" {
		t.Errorf("egress %+v", g.IpPermissionsEgress)
	}
	byV6 := must[*ec2.DescribeSecurityGroupsOutput](t)(c.DescribeSecurityGroups(cx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("ip-permission.ipv6-cidr", "2001:db8::/32")}}))
	if len(byV6.SecurityGroups) != 1 || *byV6.SecurityGroups[0].GroupId != *sg {
		t.Errorf("filter ip-permission.ipv6-cidr: %d groups", len(byV6.SecurityGroups))
	}
	// ModifySecurityGroupRules: a new description, the same rule id.
	must[*ec2.ModifySecurityGroupRulesOutput](t)(c.ModifySecurityGroupRules(cx, &ec2.ModifySecurityGroupRulesInput{GroupId: sg,
		SecurityGroupRules: []types.SecurityGroupRuleUpdate{{SecurityGroupRuleId: ruleID, SecurityGroupRule: &types.SecurityGroupRuleRequest{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), CidrIpv6: aws.String("2001:db8::/32"), Description: aws.String("changed")}}}}))
	rules := must[*ec2.DescribeSecurityGroupRulesOutput](t)(c.DescribeSecurityGroupRules(cx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{*ruleID}}))
	if len(rules.SecurityGroupRules) != 1 || *rules.SecurityGroupRules[0].Description != "changed" || *rules.SecurityGroupRules[0].CidrIpv6 != "2001:db8::/32" {
		t.Errorf("after modify: %+v", rules.SecurityGroupRules)
	}
	_, err = c.ModifySecurityGroupRules(cx, &ec2.ModifySecurityGroupRulesInput{GroupId: sg, SecurityGroupRules: []types.SecurityGroupRuleUpdate{{
		SecurityGroupRuleId: aws.String("sgr-0123456789abcdef0"), SecurityGroupRule: &types.SecurityGroupRuleRequest{IpProtocol: aws.String("-1"), CidrIpv4: aws.String("10.0.0.0/8")}}}})
	if code(err) != "InvalidSecurityGroupRuleId.NotFound" {
		t.Errorf("modify an unknown rule: %v", err)
	}
	// Revoked by value.
	must[*ec2.RevokeSecurityGroupEgressOutput](t)(c.RevokeSecurityGroupEgress(cx, &ec2.RevokeSecurityGroupEgressInput{GroupId: sg, IpPermissions: allV6}))
	for _, bad := range []string{"10.0.0.0/8", "2001:db8::1/32", "::ffff:10.0.0.0/104"} {
		before := e.dump()
		_, err := c.AuthorizeSecurityGroupIngress(cx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg,
			IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String(bad)}}}}})
		if code(err) != "InvalidParameterValue" || e.dump() != before {
			t.Errorf("CidrIpv6 %s: %v (state changed: %v)", bad, err, e.dump() != before)
		}
	}
}

func TestKeyPairs(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	other, _ := e.account("bob")
	cx := ctx(t)

	// Created RSA: PEM PKCS#1, fingerprint the SHA-1 of the PKCS#8 DER.
	rk := must[*ec2.CreateKeyPairOutput](t)(c.CreateKeyPair(cx, &ec2.CreateKeyPairInput{KeyName: aws.String("rsa-made")}))
	blk, _ := pem.Decode([]byte(aws.ToString(rk.KeyMaterial)))
	if blk == nil || blk.Type != "RSA PRIVATE KEY" {
		t.Fatalf("rsa key material %q", aws.ToString(rk.KeyMaterial))
	}
	priv, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(priv)
	if sum := sha1.Sum(p8); *rk.KeyFingerprint != colonHex(sum[:]) || !strings.HasPrefix(*rk.KeyPairId, "key-") {
		t.Errorf("rsa fingerprint %s id %s, want %s", *rk.KeyFingerprint, *rk.KeyPairId, colonHex(sum[:]))
	}
	// Created ed25519: OpenSSH PEM, fingerprint base64 SHA-256 with padding.
	ek := must[*ec2.CreateKeyPairOutput](t)(c.CreateKeyPair(cx, &ec2.CreateKeyPairInput{KeyName: aws.String("ed-made"), KeyType: types.KeyTypeEd25519,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeKeyPair, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}}}}}))
	signer, err := ssh.ParsePrivateKey([]byte(aws.ToString(ek.KeyMaterial)))
	if err != nil {
		t.Fatalf("ed25519 key material: %v", err)
	}
	h := sha256.Sum256(signer.PublicKey().Marshal())
	if want := base64.StdEncoding.EncodeToString(h[:]); *ek.KeyFingerprint != want {
		t.Errorf("ed25519 fingerprint %s, want %s", *ek.KeyFingerprint, want)
	}
	// Imported RSA: fingerprint the MD5 of the DER public key.
	ik, _ := rsa.GenerateKey(rand.Reader, 2048)
	ipub, _ := ssh.NewPublicKey(&ik.PublicKey)
	imp := must[*ec2.ImportKeyPairOutput](t)(c.ImportKeyPair(cx, &ec2.ImportKeyPairInput{KeyName: aws.String("rsa-imported"), PublicKeyMaterial: ssh.MarshalAuthorizedKey(ipub)}))
	der, _ := x509.MarshalPKIXPublicKey(&ik.PublicKey)
	if sum := md5.Sum(der); *imp.KeyFingerprint != colonHex(sum[:]) {
		t.Errorf("imported rsa fingerprint %s, want %s", *imp.KeyFingerprint, colonHex(sum[:]))
	}
	epk, _, _ := ed25519.GenerateKey(rand.Reader)
	epub, _ := ssh.NewPublicKey(epk)
	must[*ec2.ImportKeyPairOutput](t)(c.ImportKeyPair(cx, &ec2.ImportKeyPairInput{KeyName: aws.String("ed-imported"), PublicKeyMaterial: ssh.MarshalAuthorizedKey(epub)}))

	for _, tc := range []struct {
		name string
		in   *ec2.DescribeKeyPairsInput
		want []string
		code string
	}{
		{"all", &ec2.DescribeKeyPairsInput{}, []string{"ed-imported", "ed-made", "rsa-imported", "rsa-made"}, ""},
		{"by name", &ec2.DescribeKeyPairsInput{KeyNames: []string{"rsa-made"}}, []string{"rsa-made"}, ""},
		{"by id", &ec2.DescribeKeyPairsInput{KeyPairIds: []string{*ek.KeyPairId}}, []string{"ed-made"}, ""},
		{"key-type", &ec2.DescribeKeyPairsInput{Filters: []types.Filter{filter("key-type", "ed25519")}}, []string{"ed-imported", "ed-made"}, ""},
		{"fingerprint", &ec2.DescribeKeyPairsInput{Filters: []types.Filter{filter("fingerprint", *imp.KeyFingerprint)}}, []string{"rsa-imported"}, ""},
		{"key-name wildcard", &ec2.DescribeKeyPairsInput{Filters: []types.Filter{filter("key-name", "*-made")}}, []string{"ed-made", "rsa-made"}, ""},
		{"tag", &ec2.DescribeKeyPairsInput{Filters: []types.Filter{filter("tag:team", "ops")}}, []string{"ed-made"}, ""},
		{"unknown name", &ec2.DescribeKeyPairsInput{KeyNames: []string{"nope"}}, nil, "InvalidKeyPair.NotFound"},
		{"unknown id", &ec2.DescribeKeyPairsInput{KeyPairIds: []string{"key-0123456789abcdef0"}}, nil, "InvalidKeyPair.NotFound"},
	} {
		out, err := c.DescribeKeyPairs(cx, tc.in)
		if code(err) != tc.code {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.code)
			continue
		}
		if err != nil {
			continue
		}
		var got []string
		for _, k := range out.KeyPairs {
			got = append(got, *k.KeyName)
		}
		slices.Sort(got)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	withPub := must[*ec2.DescribeKeyPairsOutput](t)(c.DescribeKeyPairs(cx, &ec2.DescribeKeyPairsInput{KeyNames: []string{"ed-imported"}, IncludePublicKey: aws.Bool(true)}))
	if k := withPub.KeyPairs[0]; !strings.HasPrefix(aws.ToString(k.PublicKey), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(epub)))) || k.KeyType != types.KeyTypeEd25519 || k.CreateTime == nil {
		t.Errorf("public key %q type %s", aws.ToString(k.PublicKey), k.KeyType)
	}
	// Another account sees none of them and may use the same names.
	if out := must[*ec2.DescribeKeyPairsOutput](t)(other.DescribeKeyPairs(cx, &ec2.DescribeKeyPairsInput{})); len(out.KeyPairs) != 0 {
		t.Errorf("bob sees %d key pairs", len(out.KeyPairs))
	}
	must[*ec2.CreateKeyPairOutput](t)(other.CreateKeyPair(cx, &ec2.CreateKeyPairInput{KeyName: aws.String("rsa-made")}))

	before := e.dump()
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		{"duplicate create", func() error {
			_, err := c.CreateKeyPair(cx, &ec2.CreateKeyPairInput{KeyName: aws.String("rsa-made")})
			return err
		}, "InvalidKeyPair.Duplicate"},
		{"duplicate import", func() error {
			_, err := c.ImportKeyPair(cx, &ec2.ImportKeyPairInput{KeyName: aws.String("ed-made"), PublicKeyMaterial: ssh.MarshalAuthorizedKey(epub)})
			return err
		}, "InvalidKeyPair.Duplicate"},
		{"garbage key", func() error {
			_, err := c.ImportKeyPair(cx, &ec2.ImportKeyPairInput{KeyName: aws.String("x"), PublicKeyMaterial: []byte("ssh-rsa AAAA not-a-key")})
			return err
		}, "InvalidKey.Format"},
		{"bad key type", func() error {
			_, err := c.CreateKeyPair(cx, &ec2.CreateKeyPairInput{KeyName: aws.String("x"), KeyType: "dsa"})
			return err
		}, "InvalidParameterValue"},
		{"dry run", func() error {
			_, err := c.CreateKeyPair(cx, &ec2.CreateKeyPairInput{KeyName: aws.String("x"), DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation"},
		{"delete by unknown id", func() error {
			_, err := c.DeleteKeyPair(cx, &ec2.DeleteKeyPairInput{KeyPairId: aws.String("key-0123456789abcdef0")})
			return err
		}, "InvalidKeyPair.NotFound"},
		{"run with unknown key", func() error {
			_, err := c.RunInstances(cx, &ec2.RunInstancesInput{ImageId: aws.String(image), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), KeyName: aws.String("nope")})
			return err
		}, "InvalidKeyPair.NotFound"},
	} {
		if err := tc.call(); code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
		if e.dump() != before {
			t.Fatalf("%s changed the store", tc.name)
		}
	}
	// Delete: by name (an absent name is no error, as on AWS) and by id.
	must[*ec2.DeleteKeyPairOutput](t)(c.DeleteKeyPair(cx, &ec2.DeleteKeyPairInput{KeyName: aws.String("rsa-made")}))
	must[*ec2.DeleteKeyPairOutput](t)(c.DeleteKeyPair(cx, &ec2.DeleteKeyPairInput{KeyName: aws.String("rsa-made")}))
	must[*ec2.DeleteKeyPairOutput](t)(c.DeleteKeyPair(cx, &ec2.DeleteKeyPairInput{KeyPairId: ek.KeyPairId}))
	left := must[*ec2.DescribeKeyPairsOutput](t)(c.DescribeKeyPairs(cx, &ec2.DescribeKeyPairsInput{}))
	if len(left.KeyPairs) != 2 {
		t.Errorf("%d key pairs left, want 2", len(left.KeyPairs))
	}
	if out := must[*ec2.DescribeKeyPairsOutput](t)(other.DescribeKeyPairs(cx, &ec2.DescribeKeyPairsInput{})); len(out.KeyPairs) != 1 {
		t.Errorf("bob's key pair went with alice's: %d left", len(out.KeyPairs))
	}
}

func TestProviderReadPaths(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	f := build(t, c)
	cx := ctx(t)
	count := func(name string, n, want int) {
		t.Helper()
		if n != want {
			t.Errorf("%s: %d results, want %d", name, n, want)
		}
	}
	// The legacy filter spellings.
	def := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{Filters: []types.Filter{filter("isDefault", "true")}}))
	count("isDefault", len(def.Vpcs), 1)
	count("cidrBlock", len(must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{Filters: []types.Filter{filter("cidrBlock", "10.1.0.0/16")}})).Vpcs), 1)
	sub := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{SubnetIds: []string{f.sub}})).Subnets[0]
	for _, fl := range []types.Filter{filter("availabilityZoneId", *sub.AvailabilityZoneId), filter("availability-zone-id", *sub.AvailabilityZoneId),
		filter("subnet-arn", *sub.SubnetArn), filter("cidrBlock", "10.0.1.0/24")} {
		out := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{fl, filter("vpc-id", f.vpc)}}))
		count(*fl.Name, len(out.Subnets), 1)
	}
	_, err := c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("noSuchFilter", "x")}})
	if code(err) != "InvalidParameterValue" {
		t.Errorf("unknown filter: %v", err)
	}
	// DescribeAddressesAttribute: the elastic IP, no reverse record.
	aa := must[*ec2.DescribeAddressesAttributeOutput](t)(c.DescribeAddressesAttribute(cx, &ec2.DescribeAddressesAttributeInput{AllocationIds: []string{f.alloc}, Attribute: types.AddressAttributeNameDomainName}))
	if len(aa.Addresses) != 1 || *aa.Addresses[0].AllocationId != f.alloc || aa.Addresses[0].PtrRecord != nil {
		t.Errorf("addresses attribute %+v", aa.Addresses)
	}
	_, err = c.DescribeAddressesAttribute(cx, &ec2.DescribeAddressesAttributeInput{AllocationIds: []string{"eipalloc-0123456789abcdef0"}, Attribute: types.AddressAttributeNameDomainName})
	if code(err) != "InvalidAllocationID.NotFound" {
		t.Errorf("unknown allocation: %v", err)
	}
	// DescribeInstanceTypeOfferings.
	offs := must[*ec2.DescribeInstanceTypeOfferingsOutput](t)(c.DescribeInstanceTypeOfferings(cx, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: types.LocationTypeAvailabilityZone, Filters: []types.Filter{filter("instance-type", "t3.micro", "m5.large"), filter("location", "us-east-1b")}}))
	if len(offs.InstanceTypeOfferings) != 2 || *offs.InstanceTypeOfferings[0].Location != "us-east-1b" || offs.InstanceTypeOfferings[0].LocationType != types.LocationTypeAvailabilityZone {
		t.Errorf("offerings %+v", offs.InstanceTypeOfferings)
	}
	count("region offerings", len(must[*ec2.DescribeInstanceTypeOfferingsOutput](t)(c.DescribeInstanceTypeOfferings(cx, &ec2.DescribeInstanceTypeOfferingsInput{})).InstanceTypeOfferings), 8)
	// DescribeNetworkInterfaceAttribute.
	na := must[*ec2.DescribeNetworkInterfaceAttributeOutput](t)(c.DescribeNetworkInterfaceAttribute(cx, &ec2.DescribeNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(f.eni), Attribute: types.NetworkInterfaceAttributeSourceDestCheck}))
	if na.SourceDestCheck == nil || !*na.SourceDestCheck.Value {
		t.Errorf("sourceDestCheck %+v", na.SourceDestCheck)
	}
	na = must[*ec2.DescribeNetworkInterfaceAttributeOutput](t)(c.DescribeNetworkInterfaceAttribute(cx, &ec2.DescribeNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(f.eni), Attribute: types.NetworkInterfaceAttributeGroupSet}))
	if len(na.Groups) != 1 || *na.Groups[0].GroupId != f.sg || *na.Groups[0].GroupName != "web" {
		t.Errorf("groupSet %+v", na.Groups)
	}
	// aws_default_route_table given a VPC id: AWS's not-found answer.
	_, err = c.DescribeRouteTables(cx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{f.vpc}})
	if code(err) != "InvalidRouteTableID.NotFound" {
		t.Errorf("route table by a VPC id: %v", err)
	}
	_, err = c.DescribeRouteTables(cx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{"nonsense"}})
	if code(err) != "InvalidRouteTableID.Malformed" {
		t.Errorf("route table by nonsense: %v", err)
	}
}

func TestDryRunFirst(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	f := build(t, c)
	cx := ctx(t)
	for _, tc := range []struct {
		name string
		call func() error
		code string
	}{
		// The state would refuse these; DryRun answers first.
		{"delete a VPC with subnets", func() error {
			_, err := c.DeleteVpc(cx, &ec2.DeleteVpcInput{VpcId: aws.String(f.vpc), DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation"},
		{"a VPC over the quota", func() error {
			for range 2 { // the default VPC and build's two: at the quota of 5
				if _, err := c.CreateVpc(cx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")}); err != nil {
					return err
				}
			}
			_, err := c.CreateVpc(cx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16"), DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation"},
		{"a duplicate group", func() error {
			_, err := c.CreateSecurityGroup(cx, &ec2.CreateSecurityGroupInput{VpcId: aws.String(f.vpc), GroupName: aws.String("web"), Description: aws.String("x"), DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation"},
		{"create-default-vpc while one exists", func() error {
			_, err := c.CreateDefaultVpc(cx, &ec2.CreateDefaultVpcInput{DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation"},
		// A wrong request still answers its own error.
		{"a malformed id", func() error {
			_, err := c.DeleteVpc(cx, &ec2.DeleteVpcInput{VpcId: aws.String("vpc-x"), DryRun: aws.Bool(true)})
			return err
		}, "InvalidVpcID.Malformed"},
		{"an unknown id", func() error {
			_, err := c.DeleteSubnet(cx, &ec2.DeleteSubnetInput{SubnetId: aws.String("subnet-0123456789abcdef0"), DryRun: aws.Bool(true)})
			return err
		}, "InvalidSubnetID.NotFound"},
	} {
		if err := tc.call(); code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

func TestCreateDefaultVpc(t *testing.T) {
	e := newEnv(t, nil)
	c, _ := e.account("alice")
	cx := ctx(t)
	before := e.dump()
	_, err := c.CreateDefaultVpc(cx, &ec2.CreateDefaultVpcInput{})
	if code(err) != "DefaultVpcAlreadyExists" || e.dump() != before {
		t.Fatalf("with a default VPC: %v", err)
	}
	// Take the default VPC down as a user would, then make it again.
	v := must[*ec2.DescribeVpcsOutput](t)(c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{Filters: []types.Filter{filter("is-default", "true")}})).Vpcs[0]
	for _, s := range must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("vpc-id", *v.VpcId)}})).Subnets {
		must[*ec2.DeleteSubnetOutput](t)(c.DeleteSubnet(cx, &ec2.DeleteSubnetInput{SubnetId: s.SubnetId}))
	}
	for _, g := range must[*ec2.DescribeInternetGatewaysOutput](t)(c.DescribeInternetGateways(cx, &ec2.DescribeInternetGatewaysInput{})).InternetGateways {
		must[*ec2.DetachInternetGatewayOutput](t)(c.DetachInternetGateway(cx, &ec2.DetachInternetGatewayInput{InternetGatewayId: g.InternetGatewayId, VpcId: v.VpcId}))
		must[*ec2.DeleteInternetGatewayOutput](t)(c.DeleteInternetGateway(cx, &ec2.DeleteInternetGatewayInput{InternetGatewayId: g.InternetGatewayId}))
	}
	must[*ec2.DeleteVpcOutput](t)(c.DeleteVpc(cx, &ec2.DeleteVpcInput{VpcId: v.VpcId}))
	out := must[*ec2.CreateDefaultVpcOutput](t)(c.CreateDefaultVpc(cx, &ec2.CreateDefaultVpcInput{}))
	if !*out.Vpc.IsDefault || *out.Vpc.CidrBlock != "172.31.0.0/16" || *out.Vpc.VpcId == *v.VpcId {
		t.Errorf("re-created %+v", out.Vpc)
	}
	subs := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("defaultForAz", "true")}}))
	if len(subs.Subnets) != 3 {
		t.Errorf("%d default subnets, want one per zone", len(subs.Subnets))
	}
	attr := must[*ec2.DescribeAccountAttributesOutput](t)(c.DescribeAccountAttributes(cx, &ec2.DescribeAccountAttributesInput{AttributeNames: []types.AccountAttributeName{types.AccountAttributeNameDefaultVpc}}))
	if *attr.AccountAttributes[0].AttributeValues[0].AttributeValue != *out.Vpc.VpcId {
		t.Errorf("default-vpc attribute %s", *attr.AccountAttributes[0].AttributeValues[0].AttributeValue)
	}
}

// TestInstanceProviderCalls: CPU credits, volume tags, the filters and
// names terraform reads, a key pair's public key on the instance, an ENI
// attachment that reads detached after a detach, a NAT gateway's
// association id.
func TestInstanceProviderCalls(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "us-east-1a", true)
	c := ctx(t)
	must[*ec2.ModifyVpcAttributeOutput](t)(e.cli.ModifyVpcAttribute(c, &ec2.ModifyVpcAttributeInput{VpcId: aws.String(e.vpcID), EnableDnsHostnames: &types.AttributeBooleanValue{Value: aws.Bool(true)}}))
	igw := must[*ec2.CreateInternetGatewayOutput](t)(e.cli.CreateInternetGateway(c, &ec2.CreateInternetGatewayInput{})).InternetGateway.InternetGatewayId
	must[*ec2.AttachInternetGatewayOutput](t)(e.cli.AttachInternetGateway(c, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw, VpcId: aws.String(e.vpcID)}))
	must[*ec2.ImportKeyPairOutput](t)(e.cli.ImportKeyPair(c, &ec2.ImportKeyPairInput{KeyName: aws.String("ops"),
		PublicKeyMaterial: []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example")}))

	// t3 with unlimited credits (what the provider sends), a volume tag.
	out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{InstanceType: types.InstanceTypeT3Micro, KeyName: aws.String("ops"),
		CreditSpecification: &types.CreditSpecificationRequest{CpuCredits: aws.String("unlimited")},
		NetworkInterfaces:   []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(e.sub), AssociatePublicIpAddress: aws.Bool(true)}},
		TagSpecifications:   []types.TagSpecification{{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String("disk"), Value: aws.String("root")}}}}}))
	id := *out.Instances[0].InstanceId
	cs := must[*ec2.DescribeInstanceCreditSpecificationsOutput](t)(e.cli.DescribeInstanceCreditSpecifications(c, &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: []string{id}}))
	if *cs.InstanceCreditSpecifications[0].CpuCredits != "unlimited" {
		t.Errorf("credits %s", *cs.InstanceCreditSpecifications[0].CpuCredits)
	}
	must[*ec2.ModifyInstanceCreditSpecificationOutput](t)(e.cli.ModifyInstanceCreditSpecification(c, &ec2.ModifyInstanceCreditSpecificationInput{
		InstanceCreditSpecifications: []types.InstanceCreditSpecificationRequest{{InstanceId: aws.String(id), CpuCredits: aws.String("standard")}}}))
	cs = must[*ec2.DescribeInstanceCreditSpecificationsOutput](t)(e.cli.DescribeInstanceCreditSpecifications(c, &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: []string{id}}))
	if *cs.InstanceCreditSpecifications[0].CpuCredits != "standard" {
		t.Errorf("credits after modify %s", *cs.InstanceCreditSpecifications[0].CpuCredits)
	}
	_, err := e.run(&ec2.RunInstancesInput{InstanceType: types.InstanceTypeM5Large, SubnetId: aws.String(e.sub), CreditSpecification: &types.CreditSpecificationRequest{CpuCredits: aws.String("unlimited")}})
	if code(err) != "InvalidParameterCombination" {
		t.Errorf("credits on m5: %v", err)
	}
	vols := must[*ec2.DescribeVolumesOutput](t)(e.cli.DescribeVolumes(c, &ec2.DescribeVolumesInput{Filters: []types.Filter{filter("tag:disk", "root")}}))
	if len(vols.Volumes) != 1 || *vols.Volumes[0].Attachments[0].InstanceId != id || len(vols.Volumes[0].Tags) != 1 {
		t.Errorf("volume tags: %+v", vols.Volumes)
	}
	// Names and filters.
	i := e.describe(id)
	if *i.PrivateDnsName != "ip-"+strings.ReplaceAll(*i.PrivateIpAddress, ".", "-")+".ec2.internal" ||
		*i.PublicDnsName != "ec2-"+strings.ReplaceAll(*i.PublicIpAddress, ".", "-")+".compute-1.amazonaws.com" {
		t.Errorf("names %s %s", *i.PrivateDnsName, *i.PublicDnsName)
	}
	if *i.NetworkInterfaces[0].Association.PublicDnsName != *i.PublicDnsName {
		t.Errorf("interface public name %s", *i.NetworkInterfaces[0].Association.PublicDnsName)
	}
	for _, fl := range []types.Filter{filter("private-dns-name", *i.PrivateDnsName), filter("dns-name", *i.PublicDnsName),
		filter("launch-time", i.LaunchTime.UTC().Format("2006-01-02")+"*")} {
		got := must[*ec2.DescribeInstancesOutput](t)(e.cli.DescribeInstances(c, &ec2.DescribeInstancesInput{Filters: []types.Filter{fl}}))
		if len(got.Reservations) != 1 {
			t.Errorf("filter %s: %d reservations", *fl.Name, len(got.Reservations))
		}
	}
	// An ENI attached and detached reads "detached".
	eni := must[*ec2.CreateNetworkInterfaceOutput](t)(e.cli.CreateNetworkInterface(c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.sub)})).NetworkInterface.NetworkInterfaceId
	att := must[*ec2.AttachNetworkInterfaceOutput](t)(e.cli.AttachNetworkInterface(c, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: eni, InstanceId: aws.String(id), DeviceIndex: aws.Int32(1)}))
	must[*ec2.DetachNetworkInterfaceOutput](t)(e.cli.DetachNetworkInterface(c, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	ds := must[*ec2.DescribeNetworkInterfacesOutput](t)(e.cli.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("attachment.attachment-id", *att.AttachmentId)}}))
	if len(ds.NetworkInterfaces) != 1 || ds.NetworkInterfaces[0].Attachment == nil || ds.NetworkInterfaces[0].Attachment.Status != types.AttachmentStatusDetached ||
		ds.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusAvailable {
		t.Errorf("after detach: %+v", ds.NetworkInterfaces)
	}
	na := must[*ec2.DescribeNetworkInterfaceAttributeOutput](t)(e.cli.DescribeNetworkInterfaceAttribute(c, &ec2.DescribeNetworkInterfaceAttributeInput{NetworkInterfaceId: eni, Attribute: types.NetworkInterfaceAttributeAttachment}))
	if na.Attachment == nil || na.Attachment.Status != types.AttachmentStatusDetached {
		t.Errorf("attachment attribute %+v", na.Attachment)
	}
	// Attached again: the new attachment, attached.
	must[*ec2.AttachNetworkInterfaceOutput](t)(e.cli.AttachNetworkInterface(c, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: eni, InstanceId: aws.String(id), DeviceIndex: aws.Int32(1)}))
	ds = must[*ec2.DescribeNetworkInterfacesOutput](t)(e.cli.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*eni}}))
	if a := ds.NetworkInterfaces[0].Attachment; a == nil || a.Status != types.AttachmentStatusAttached || *a.AttachmentId == *att.AttachmentId {
		t.Errorf("re-attached: %+v", a)
	}
	// A NAT gateway's address shows its association id.
	alloc := must[*ec2.AllocateAddressOutput](t)(e.cli.AllocateAddress(c, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})).AllocationId
	nat := must[*ec2.CreateNatGatewayOutput](t)(e.cli.CreateNatGateway(c, &ec2.CreateNatGatewayInput{SubnetId: aws.String(e.sub2), AllocationId: alloc})).NatGateway
	addr := must[*ec2.DescribeAddressesOutput](t)(e.cli.DescribeAddresses(c, &ec2.DescribeAddressesInput{AllocationIds: []string{*alloc}})).Addresses[0]
	if len(nat.NatGatewayAddresses) != 1 || aws.ToString(nat.NatGatewayAddresses[0].AssociationId) == "" || *nat.NatGatewayAddresses[0].AssociationId != aws.ToString(addr.AssociationId) {
		t.Errorf("NAT gateway association %+v, address %v", nat.NatGatewayAddresses, aws.ToString(addr.AssociationId))
	}
}
