package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
)

// hangBound is how long a call may take before the test calls it a hang. The
// server answers within 2 s (nsdb.RequestTimeout is 1.5 s); the bound is
// generous so that a busy machine does not fail the test — it is not a
// measurement.
const hangBound = 5 * time.Second

// TestQuorumLoss: a server on a 3-member etcd cluster; two members frozen
// (SIGSTOP: their connections stay open and nothing answers, like hung hosts
// or a partition). The EC2 API answers every call ServiceUnavailable (HTTP
// 503, which the SDKs retry) instead of hanging, the REST API answers writes
// 503 naming etcd, /healthz turns 503 with a reason, cached REST reads still
// answer. Members continued: everything works again, with no restart of the
// server, and everything created before is there.
func TestQuorumLoss(t *testing.T) {
	cluster := nsdbtest.StartCluster(t, 3)
	s := newServerOn(t, cluster.Endpoints)
	ec2URL := fmt.Sprintf("http://127.0.0.1:%d", s.ec2)

	var na struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	out := s.cli("account", "create", "quorum", "--output", "json")
	if err := json.Unmarshal([]byte(out), &na); err != nil {
		t.Fatalf("account create: %v\n%s", err, out)
	}
	ec2c := awsec2.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(na.AccessKeyID, na.SecretAccessKey, ""),
		// No retries: the test wants the server's first answer.
		RetryMaxAttempts: 1,
	}, func(o *awsec2.Options) { o.BaseEndpoint = aws.String(ec2URL) })
	ctx := context.Background()

	// Before: a VPC (EC2) and a router (REST).
	vpc, err := ec2c.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String("10.42.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(vpc.Vpc.VpcId)
	tok, err := os.ReadFile(filepath.Join(s.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	rest := func(method, path, body string) (int, string) {
		t.Helper()
		var status int
		var text string
		bounded(t, method+" "+path, func() error {
			req, _ := http.NewRequest(method, s.url()+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			status, text = resp.StatusCode, string(b)
			return nil
		})
		return status, text
	}
	if st, b := rest("POST", "/routers", `{"name":"before"}`); st != http.StatusCreated {
		t.Fatalf("create router: %d %s", st, b)
	}

	cluster.Pause(t, 1)
	cluster.Pause(t, 2)
	resumed := false
	resume := func() {
		if !resumed {
			cluster.Resume(t, 1)
			cluster.Resume(t, 2)
			resumed = true
		}
	}
	defer resume()

	// EC2: reads, writes, deletes alike (the caller's access key is read
	// from etcd on every call: a linearizable check that must fail clearly).
	calls := map[string]func() error{
		"DescribeVpcs": func() error { _, err := ec2c.DescribeVpcs(ctx, &awsec2.DescribeVpcsInput{}); return err },
		"DescribeSubnets": func() error {
			_, err := ec2c.DescribeSubnets(ctx, &awsec2.DescribeSubnetsInput{})
			return err
		},
		"CreateVpc": func() error {
			_, err := ec2c.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String("10.43.0.0/16")})
			return err
		},
		"CreateSecurityGroup": func() error {
			_, err := ec2c.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{GroupName: aws.String("g"), Description: aws.String("d"), VpcId: aws.String(vpcID)})
			return err
		},
		"DeleteVpc": func() error {
			_, err := ec2c.DeleteVpc(ctx, &awsec2.DeleteVpcInput{VpcId: aws.String(vpcID)})
			return err
		},
	}
	for name, call := range calls {
		err := bounded(t, name, call)
		var ae smithy.APIError
		var re *awshttp.ResponseError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
			t.Errorf("%s without quorum: %v, want ServiceUnavailable (HTTP 503)", name, err)
		}
	}

	// REST: a write answers 503 naming the store; /healthz is unhealthy
	// with a reason; a read from the server's cache still answers.
	if st, b := rest("POST", "/routers", `{"name":"during"}`); st != http.StatusServiceUnavailable || !strings.Contains(b, "etcd") {
		t.Errorf("REST create without quorum: %d %s, want 503 naming etcd", st, b)
	}
	if st, b := rest("GET", "/healthz", ""); st != http.StatusServiceUnavailable || !strings.Contains(b, `"status":"unavailable"`) || !strings.Contains(b, "etcd") {
		t.Errorf("/healthz without quorum: %d %s, want 503 with a reason", st, b)
	}
	if st, b := rest("GET", "/routers", ""); st != http.StatusOK || !strings.Contains(b, `"before"`) {
		t.Errorf("cached REST read without quorum: %d %s", st, b)
	}
	if st, b := rest("GET", "/metrics", ""); st != http.StatusOK || !strings.Contains(b, "\ncanopy_server_store_up 0\n") {
		t.Errorf("/metrics without quorum: %d, want canopy_server_store_up 0", st)
	}

	// Members back: the same server process recovers by itself.
	resume()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, b := rest("GET", "/healthz", "")
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz still %d %s 60 s after the members continued\n%s", st, b, cluster.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var vpcs *awsec2.DescribeVpcsOutput
	for {
		vpcs, err = ec2c.DescribeVpcs(ctx, &awsec2.DescribeVpcsInput{VpcIds: []string{vpcID}})
		if err == nil {
			break
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" || time.Now().After(deadline) {
			t.Fatalf("DescribeVpcs after recovery: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(vpcs.Vpcs) != 1 {
		t.Errorf("the VPC created before the outage: %+v", vpcs.Vpcs)
	}
	sub, err := ec2c.CreateSubnet(ctx, &awsec2.CreateSubnetInput{VpcId: aws.String(vpcID), CidrBlock: aws.String("10.42.1.0/24")})
	if err != nil {
		t.Fatalf("CreateSubnet after recovery: %v", err)
	}
	// The controller (its election and its watches went through the
	// outage too) realizes the new subnet as a bridge.
	subnetID := aws.ToString(sub.Subnet.SubnetId)
	for {
		st, b := rest("GET", "/bridges", "")
		if st == http.StatusOK && strings.Contains(b, subnetID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller did not realize subnet %s after recovery: %d %s", subnetID, st, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, b := rest("POST", "/routers", `{"name":"after"}`); st != http.StatusCreated {
		t.Errorf("REST create after recovery: %d %s", st, b)
	}
	if st, b := rest("GET", "/routers", ""); st != http.StatusOK || !strings.Contains(b, `"before"`) || !strings.Contains(b, `"after"`) {
		t.Errorf("routers after recovery: %d %s", st, b)
	}
	if s.cmd == nil {
		t.Fatal("the server exited")
	}
	select {
	case err := <-s.exited:
		s.exited <- err
		t.Fatalf("the server exited during the outage: %v", err)
	default:
	}
}

// bounded runs f and fails the test if it has not returned within hangBound.
func bounded(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		t.Logf("%s: answered after %s (%v)", what, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(hangBound):
		t.Fatalf("%s: no answer within %s", what, hangBound)
		return nil
	}
}
