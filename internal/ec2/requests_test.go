package ec2_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestOtherSignaturesRefused: a presigned URL (SigV4 in the query string,
// made by the SDK's own presigner) and a SigV2 request (signed as the old
// clients sign it, with the account's real secret) carry valid credentials
// in a form the endpoint does not take: both are refused with AuthFailure
// and a message that says what to do, never served.
func TestOtherSignaturesRefused(t *testing.T) {
	e := newEnv(t, nil)
	_, nc := e.account("alice")
	c := ctx(t)
	creds := aws.Credentials{AccessKeyID: nc.AccessKeyID, SecretAccessKey: nc.SecretAccessKey}
	send := func(req *http.Request) (int, string) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Presigned: X-Amz-Signature and friends in the query string.
	q := url.Values{"Action": {"DescribeVpcs"}, "Version": {"2016-11-15"}}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/?"+q.Encode(), nil)
	signed, _, err := v4.NewSigner().PresignHTTP(c, creds, req, sha256hex(""), "ec2", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(signed, "X-Amz-Signature=") {
		t.Fatalf("the presigner made no presigned URL: %s", signed)
	}
	req, _ = http.NewRequest(http.MethodGet, signed, nil)
	if st, b := send(req); st != http.StatusUnauthorized || !strings.Contains(b, "<Code>AuthFailure</Code>") || !strings.Contains(b, "Presigned") || strings.Contains(b, "vpcSet") {
		t.Errorf("presigned URL: %d %s", st, b)
	}

	// SigV2: AWSAccessKeyId, SignatureVersion=2, SignatureMethod,
	// Timestamp and Signature among the parameters, in a POST body and in
	// a GET query string.
	v2 := func(method string) *http.Request {
		host := strings.TrimPrefix(e.url, "http://")
		p := url.Values{"Action": {"DescribeVpcs"}, "Version": {"2016-11-15"}, "AWSAccessKeyId": {nc.AccessKeyID},
			"SignatureVersion": {"2"}, "SignatureMethod": {"HmacSHA256"}, "Timestamp": {time.Now().UTC().Format("2006-01-02T15:04:05Z")}}
		keys := make([]string, 0, len(p))
		for k := range p {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var canon []string
		for _, k := range keys {
			canon = append(canon, url.QueryEscape(k)+"="+strings.ReplaceAll(url.QueryEscape(p.Get(k)), "+", "%20"))
		}
		mac := hmac.New(sha256.New, []byte(nc.SecretAccessKey))
		mac.Write([]byte(method + "\n" + host + "\n/\n" + strings.Join(canon, "&")))
		p.Set("Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		if method == http.MethodGet {
			r, _ := http.NewRequest(method, e.url+"/?"+p.Encode(), nil)
			return r
		}
		r, _ := http.NewRequest(method, e.url+"/", strings.NewReader(p.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		return r
	}
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		if st, b := send(v2(m)); st != http.StatusUnauthorized || !strings.Contains(b, "<Code>AuthFailure</Code>") || !strings.Contains(b, "Signature Version 2") || strings.Contains(b, "vpcSet") {
			t.Errorf("SigV2 %s: %d %s", m, st, b)
		}
	}
}

// TestClientTokenNetworkAclNatGateway: CreateNetworkAcl and
// CreateNatGateway retried with the same ClientToken answer the object the
// first call made and make no second one; another token makes another.
func TestClientTokenNetworkAclNatGateway(t *testing.T) {
	e := newEnv(t, nil)
	cli, _ := e.account("alice")
	c := ctx(t)
	v := must[*ec2.CreateVpcOutput](t)(cli.CreateVpc(c, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})).Vpc
	sub := must[*ec2.CreateSubnetOutput](t)(cli.CreateSubnet(c, &ec2.CreateSubnetInput{VpcId: v.VpcId, CidrBlock: aws.String("10.0.1.0/24")})).Subnet
	igw := must[*ec2.CreateInternetGatewayOutput](t)(cli.CreateInternetGateway(c, &ec2.CreateInternetGatewayInput{})).InternetGateway
	must[*ec2.AttachInternetGatewayOutput](t)(cli.AttachInternetGateway(c, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGatewayId, VpcId: v.VpcId}))

	acl := func(tok string) string {
		t.Helper()
		return aws.ToString(must[*ec2.CreateNetworkAclOutput](t)(cli.CreateNetworkAcl(c, &ec2.CreateNetworkAclInput{VpcId: v.VpcId, ClientToken: aws.String(tok)})).NetworkAcl.NetworkAclId)
	}
	a1, a2, a3 := acl("acl-tok"), acl("acl-tok"), acl("acl-tok-2")
	if a1 != a2 || a1 == a3 {
		t.Errorf("network ACLs: %s, retry %s, other token %s", a1, a2, a3)
	}
	acls := must[*ec2.DescribeNetworkAclsOutput](t)(cli.DescribeNetworkAcls(c, &ec2.DescribeNetworkAclsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{*v.VpcId}}}}))
	if len(acls.NetworkAcls) != 3 { // the default one, a1 and a3
		t.Errorf("%d network ACLs in the VPC, want 3", len(acls.NetworkAcls))
	}

	eip1 := must[*ec2.AllocateAddressOutput](t)(cli.AllocateAddress(c, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}))
	eip2 := must[*ec2.AllocateAddressOutput](t)(cli.AllocateAddress(c, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}))
	nat := func(tok string, alloc *string) string {
		t.Helper()
		return aws.ToString(must[*ec2.CreateNatGatewayOutput](t)(cli.CreateNatGateway(c, &ec2.CreateNatGatewayInput{SubnetId: sub.SubnetId, AllocationId: alloc, ClientToken: aws.String(tok)})).NatGateway.NatGatewayId)
	}
	// The retry names the same address: a second gateway could not have it.
	n1, n2, n3 := nat("nat-tok", eip1.AllocationId), nat("nat-tok", eip1.AllocationId), nat("nat-tok-2", eip2.AllocationId)
	if n1 != n2 || n1 == n3 {
		t.Errorf("NAT gateways: %s, retry %s, other token %s", n1, n2, n3)
	}
	nats := must[*ec2.DescribeNatGatewaysOutput](t)(cli.DescribeNatGateways(c, &ec2.DescribeNatGatewaysInput{}))
	if len(nats.NatGateways) != 2 {
		t.Errorf("%d NAT gateways, want 2", len(nats.NatGateways))
	}
	enis := must[*ec2.DescribeNetworkInterfacesOutput](t)(cli.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{{Name: aws.String("subnet-id"), Values: []string{*sub.SubnetId}}}}))
	if len(enis.NetworkInterfaces) != 2 {
		t.Errorf("%d interfaces in the subnet, want one per gateway (2)", len(enis.NetworkInterfaces))
	}
}

// TestRegionsKeyFormatTags, through the SDK: DescribeRegions names the
// endpoint's region (another region name is refused), KeyFormat=ppk is
// UnsupportedOperation and makes no key, DeleteTags removes only the tags
// it names.
func TestRegionsKeyFormatTags(t *testing.T) {
	e := newEnv(t, nil)
	cli, _ := e.account("alice")
	c := ctx(t)
	r := must[*ec2.DescribeRegionsOutput](t)(cli.DescribeRegions(c, &ec2.DescribeRegionsInput{}))
	if len(r.Regions) != 1 || aws.ToString(r.Regions[0].RegionName) != "us-east-1" || aws.ToString(r.Regions[0].Endpoint) != "ec2.us-east-1.amazonaws.com" {
		t.Errorf("regions: %+v", r.Regions)
	}
	if _, err := cli.DescribeRegions(c, &ec2.DescribeRegionsInput{RegionNames: []string{"eu-west-1"}}); code(err) != "InvalidParameterValue" {
		t.Errorf("DescribeRegions eu-west-1: %v", err)
	}

	before := e.dump()
	if _, err := cli.CreateKeyPair(c, &ec2.CreateKeyPairInput{KeyName: aws.String("k"), KeyFormat: types.KeyFormatPpk}); code(err) != "UnsupportedOperation" {
		t.Errorf("KeyFormat ppk: %v, want UnsupportedOperation", err)
	}
	if after := e.dump(); after != before {
		t.Error("the refused ppk key pair changed the store")
	}

	v := must[*ec2.CreateVpcOutput](t)(cli.CreateVpc(c, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16"), TagSpecifications: []types.TagSpecification{{
		ResourceType: types.ResourceTypeVpc, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}, {Key: aws.String("c"), Value: aws.String("3")}}}}})).Vpc
	must[*ec2.DeleteTagsOutput](t)(cli.DeleteTags(c, &ec2.DeleteTagsInput{Resources: []string{*v.VpcId}, Tags: []types.Tag{
		{Key: aws.String("a")},                             // by key: whatever its value
		{Key: aws.String("b"), Value: aws.String("9")},     // another value: kept
		{Key: aws.String("c"), Value: aws.String("3")},     // key and value: gone
		{Key: aws.String("absent"), Value: aws.String("")}, // not there: no error
	}}))
	tags := must[*ec2.DescribeTagsOutput](t)(cli.DescribeTags(c, &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{*v.VpcId}}}}))
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "b" || aws.ToString(tags.Tags[0].Value) != "2" {
		t.Errorf("tags left: %+v, want b=2", tags.Tags)
	}
	if _, err := cli.DeleteTags(c, &ec2.DeleteTagsInput{Resources: []string{"vpc-0123456789abcdef0"}, Tags: []types.Tag{{Key: aws.String("b")}}}); code(err) != "InvalidVpcID.NotFound" {
		t.Errorf("DeleteTags on a VPC that does not exist: %v", err)
	}
}
