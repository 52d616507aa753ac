package ec2_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
)

// serviceSigner signs every request for another service than the client's.
type serviceSigner struct{ service string }

func (s serviceSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, h, _, reg string, t time.Time, o ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, h, s.service, reg, t, o...)
}

// TestSigV4Scope: a signature is good only for the endpoint's region and the
// service the request calls. A client configured for eu-west-1, or signing
// for s3, is refused with AWS's message naming the expected scope, and
// nothing changes.
func TestSigV4Scope(t *testing.T) {
	e := newEnv(t, nil) // region us-east-1, the default
	_, nc := e.account("alice")
	ctx := ctx(t)
	before := e.dump()

	inRegion := func(region string) func(*ec2.Options) {
		return func(o *ec2.Options) { o.Region = region }
	}
	cases := []struct {
		name, code, msg string
		client          *ec2.Client
	}{
		{"eu-west-1", "AuthFailure", "Credential should be scoped to a valid region, not 'eu-west-1'. This endpoint serves 'us-east-1'.",
			e.client(nc.AccessKeyID, nc.SecretAccessKey, inRegion("eu-west-1"))},
		{"signed for s3", "AuthFailure", "Credential should be scoped to correct service: 'ec2'.",
			e.client(nc.AccessKeyID, nc.SecretAccessKey, func(o *ec2.Options) { o.HTTPSignerV4 = serviceSigner{"s3"} })},
		{"signed for sts", "AuthFailure", "Credential should be scoped to correct service: 'ec2'.",
			e.client(nc.AccessKeyID, nc.SecretAccessKey, func(o *ec2.Options) { o.HTTPSignerV4 = serviceSigner{"sts"} })},
	}
	for _, tc := range cases {
		_, err := tc.client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || ae.ErrorMessage() != tc.msg {
			t.Errorf("%s: %v, want %s %q", tc.name, err, tc.code, tc.msg)
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusUnauthorized {
			t.Errorf("%s: HTTP %d, want 401", tc.name, re.HTTPStatusCode())
		}
	}
	if after := e.dump(); after != before {
		t.Fatalf("a refused CreateVpc changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// STS is signed for sts, in the endpoint's region, as the AWS CLI does.
	stsIn := func(region string, mod func(*sts.Options)) *sts.Client {
		return sts.NewFromConfig(e.cfg(nc.AccessKeyID, nc.SecretAccessKey), func(o *sts.Options) {
			o.BaseEndpoint = aws.String(e.url)
			o.Region = region
			if mod != nil {
				mod(o)
			}
		})
	}
	if _, err := stsIn("us-east-1", nil).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("GetCallerIdentity in us-east-1: %v", err)
	}
	for name, c := range map[string]struct {
		client *sts.Client
		msg    string
	}{
		"sts in eu-west-1": {stsIn("eu-west-1", nil), "Credential should be scoped to a valid region, not 'eu-west-1'. This endpoint serves 'us-east-1'."},
		"sts signed for ec2": {stsIn("us-east-1", func(o *sts.Options) { o.HTTPSignerV4 = serviceSigner{"ec2"} }),
			"Credential should be scoped to correct service: 'sts'."},
	} {
		_, err := c.client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "SignatureDoesNotMatch" || ae.ErrorMessage() != c.msg {
			t.Errorf("%s: %v, want SignatureDoesNotMatch %q", name, err, c.msg)
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusForbidden {
			t.Errorf("%s: HTTP %d, want 403", name, re.HTTPStatusCode())
		}
	}
}

// TestSigV4ScopeOtherRegion: an endpoint run with --ec2-region eu-west-1
// accepts eu-west-1 signatures and refuses us-east-1 ones.
func TestSigV4ScopeOtherRegion(t *testing.T) {
	e := newEnv(t, func(c *canopyec2.Config) { c.Region = "eu-west-1" })
	_, nc := e.account("alice")
	ctx := ctx(t)
	eu := e.client(nc.AccessKeyID, nc.SecretAccessKey, func(o *ec2.Options) { o.Region = "eu-west-1" })
	out, err := eu.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatalf("eu-west-1 client on an eu-west-1 endpoint: %v", err)
	}
	if len(out.AvailabilityZones) == 0 || !strings.HasPrefix(aws.ToString(out.AvailabilityZones[0].ZoneName), "eu-west-1") {
		t.Errorf("zones %v", out.AvailabilityZones)
	}
	_, err = e.client(nc.AccessKeyID, nc.SecretAccessKey, nil).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AuthFailure" || !strings.Contains(ae.ErrorMessage(), "not 'us-east-1'. This endpoint serves 'eu-west-1'.") {
		t.Errorf("us-east-1 client on an eu-west-1 endpoint: %v", err)
	}
}
