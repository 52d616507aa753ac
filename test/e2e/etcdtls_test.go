package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestExternalEtcdTLS is an operator's set-up against an external etcd
// cluster over TLS (README, "The server"; docs/operations.md): three etcd
// members serving client TLS with certificates from the operator's CA and
// --client-cert-auth on; `canopy server --etcd-endpoints --etcd-ca
// --etcd-cert --etcd-key` with etcd's root certificate; one host enrolled
// with `canopy host enroll --etcd-ca/--etcd-cert/--etcd-key
// --agent-etcd-endpoints --host-id`, its agent started with the
// enrollment alone; an EC2 tenant launches two instances on it and one
// pings the other. The agent's certificate may write its own host's state
// and not another's (the server turned etcd's authentication on). A wrong
// CA, or a client certificate missing or from another CA, makes the
// server, enroll and the agent exit non-zero at once, saying what is
// wrong. The agent runs on this machine's network namespace (instances
// are namespaces ci-…, removed at the end) on the userspace datapath.
func TestExternalEtcdTLS(t *testing.T) {
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Fatal("etcdctl (Debian's etcd-client, installed by make deps) is needed")
	}
	cluster, ca := nsdbtest.StartTLSCluster(t, 3)
	endpoints := strings.Join(cluster.Endpoints, ",")
	root := cluster.Root // CN=root, from the operator's CA
	etcdFlags := []string{"--etcd-ca", root.CAFile, "--etcd-cert", root.CertFile, "--etcd-key", root.KeyFile}

	// A CA the cluster does not know, and a root certificate from it.
	otherDir := t.TempDir()
	other, err := pki.LoadOrCreateCA(filepath.Join(otherDir, "ca"), "not the cluster's CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := other.Issue(otherDir, "root", pki.IssueOptions{CommonName: "root", Client: true})
	if err != nil {
		t.Fatal(err)
	}

	// The refusals first: each must exit non-zero promptly with a message
	// naming the problem (not a timeout after a minute).
	badDir := t.TempDir()
	for _, c := range []struct {
		what  string
		args  []string
		wants []string // one of them must be in stderr
	}{
		{"server, CA not the cluster's",
			[]string{"server", "--data-dir", badDir, "--etcd-endpoints", endpoints, "--etcd-ca", other.CertFile(), "--etcd-cert", root.CertFile, "--etcd-key", root.KeyFile},
			[]string{"certificate signed by unknown authority"}},
		{"server, no client certificate",
			[]string{"server", "--data-dir", badDir, "--etcd-endpoints", endpoints, "--etcd-ca", root.CAFile},
			[]string{"client certificate"}},
		{"server, client certificate from another CA",
			[]string{"server", "--data-dir", badDir, "--etcd-endpoints", endpoints, "--etcd-ca", root.CAFile, "--etcd-cert", otherCert, "--etcd-key", otherKey},
			[]string{"client certificate"}},
		{"host enroll, CA not the cluster's",
			[]string{"host", "enroll", "hv0", "--data-dir", badDir, "--out", filepath.Join(badDir, "hv0"), "--etcd-endpoints", endpoints,
				"--etcd-ca", other.CertFile(), "--etcd-cert", root.CertFile, "--etcd-key", root.KeyFile},
			[]string{"certificate signed by unknown authority"}},
		{"host enroll, the data dir's etcd CA not trusted by the cluster",
			[]string{"host", "enroll", "hv0", "--data-dir", badDir, "--out", filepath.Join(badDir, "hv0"), "--etcd-endpoints", endpoints,
				"--etcd-ca", root.CAFile, "--etcd-cert", root.CertFile, "--etcd-key", root.KeyFile},
			[]string{"refuses its agent's certificate"}},
		{"agent, CA not the cluster's",
			[]string{"agent", "--etcd-endpoints", endpoints, "--etcd-ca", other.CertFile(), "--etcd-cert", root.CertFile, "--etcd-key", root.KeyFile,
				"--state-dir", filepath.Join(badDir, "agent"), "--tunnel-ip", "127.0.0.1", "--tunnel-port", fmt.Sprint(freeUDPPort(t)), "--datapath", "userspace"},
			[]string{"certificate signed by unknown authority"}},
	} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		cmd := exec.CommandContext(ctx, canopyBin, c.args...)
		cmd.Env = append(os.Environ(), "CANOPY_TOKEN=", "CANOPY_CONFIG=", "HOME="+badDir)
		// The server's listeners stay off the default ports.
		if c.args[0] == "server" {
			cmd.Args = append(cmd.Args, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--ec2-listen", "off",
				"--neutron-listen", "off", "--keystone-listen", "off")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		took := time.Since(start)
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 || timedOut {
			t.Errorf("%s: want a non-zero exit, got %v after %v\n%s", c.what, err, took.Round(time.Millisecond), stderr.String())
			continue
		}
		t.Logf("%s: exit %d after %v: %s", c.what, ee.ExitCode(), took.Round(time.Millisecond), lastLine(stderr.String()))
		found := false
		for _, w := range c.wants {
			found = found || strings.Contains(stderr.String(), w)
		}
		if !found || !strings.Contains(stderr.String(), "etcd") {
			t.Errorf("%s: the message does not say %q about etcd:\n%s", c.what, c.wants, stderr.String())
		}
	}

	// The server's data dir keeps the operator's CA as its etcd CA: the
	// agents' certificates enroll issues are then ones the cluster trusts.
	s := newServerWith(t, cluster.Endpoints, etcdFlags, func(dataDir string) {
		dst := filepath.Join(dataDir, "etcd-ca")
		if err := os.MkdirAll(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"ca.crt", "ca.key"} {
			b, err := os.ReadFile(filepath.Join(ca.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	})

	// Enroll one host with an id of the operator's choosing, telling its
	// agent two of the three members.
	const hostID = "5e7c2a10-0000-4000-8000-00000000e7c5"
	enrollDir := filepath.Join(t.TempDir(), "hv1.enrollment")
	agentEtcd := cluster.Endpoints[1] + "," + cluster.Endpoints[2]
	s.cli(append([]string{"host", "enroll", "hv1", "--out", enrollDir, "--host-id", hostID,
		"--etcd-endpoints", endpoints, "--agent-etcd-endpoints", agentEtcd}, etcdFlags...)...)
	b, err := os.ReadFile(filepath.Join(enrollDir, "enrollment.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		HostID string   `json:"host_id"`
		User   string   `json:"etcd_user"`
		Etcd   []string `json:"etcd_endpoints"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	if e.HostID != hostID || e.User != "host-"+hostID || strings.Join(e.Etcd, ",") != agentEtcd {
		t.Fatalf("enrollment.json: %s", b)
	}

	// The agent's certificate against the cluster itself: its own host's
	// state yes, another host's no (etcd's authentication is on).
	etcdctl := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		full := append([]string{"--endpoints", agentEtcd, "--dial-timeout", "3s", "--command-timeout", "5s",
			"--cacert", filepath.Join(enrollDir, "ca.crt"), "--cert", filepath.Join(enrollDir, "agent.crt"), "--key", filepath.Join(enrollDir, "agent.key")}, args...)
		out, err := exec.CommandContext(ctx, "etcdctl", full...).CombinedOutput()
		return string(out), err
	}
	if out, err := etcdctl("put", "/canopy/v1/state/hosts/"+hostID+"/probe", "1"); err != nil {
		t.Errorf("the agent's certificate cannot write its own host's state: %v\n%s", err, out)
	}
	if out, err := etcdctl("put", "/canopy/v1/state/hosts/5e7c2a10-0000-4000-8000-0000000000ff/probe", "1"); err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("the agent's certificate wrote another host's state (is etcd's authentication on?): %v\n%s", err, out)
	}
	if out, err := etcdctl("del", "/canopy/v1/state/hosts/"+hostID+"/probe"); err != nil {
		t.Errorf("the agent's certificate cannot delete its own key: %v\n%s", err, out)
	}

	// The agent: the enrollment names its id, etcd endpoints and
	// credentials; instances are network namespaces on this machine.
	stateDir := t.TempDir()
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var agentLog syncBuffer
	agent := exec.Command(canopyBin, "agent", "--enrollment", enrollDir, "--state-dir", stateDir,
		"--tunnel-ip", "127.0.0.1", "--tunnel-port", fmt.Sprint(freeUDPPort(t)), "--metrics-listen", metrics,
		"--instance-driver", "netns", "--datapath", "userspace")
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Wait() }()
	var nss []string
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-agentDone:
		case <-time.After(30 * time.Second):
			_ = agent.Process.Kill()
			<-agentDone
		}
		// The instances outlive their agent (by design): their DHCP
		// clients and namespaces go with the driver's records.
		netns.PurgeInstances(filepath.Join(stateDir, "instances"))
		for _, ns := range nss {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	})
	waitUntil(t, "the agent up", func() bool {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	// A tenant: a VPC, a subnet and two instances in its default group.
	var na struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if out := s.cli("account", "create", "tls", "--output", "json"); json.Unmarshal([]byte(out), &na) != nil {
		t.Fatalf("account create: %s", out)
	}
	ec2 := awsec2.NewFromConfig(aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(na.AccessKeyID, na.SecretAccessKey, "")},
		func(o *awsec2.Options) { o.BaseEndpoint = aws.String(fmt.Sprintf("http://127.0.0.1:%d", s.ec2)) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vpcOut, err := ec2.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ec2.CreateSubnet(ctx, &awsec2.CreateSubnetInput{VpcId: vpcOut.Vpc.VpcId, CidrBlock: aws.String("10.77.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := ec2.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-0deb1a12c0ffee001"), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(2), MaxCount: aws.Int32(2), SubnetId: sub.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range run.Instances {
		id := aws.ToString(in.InstanceId)
		ids = append(ids, id)
		nss = append(nss, "ci-"+id[len(id)-13:])
	}
	var ips []string
	waitUntil(t, "both instances running", func() bool {
		out, err := ec2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			return false
		}
		ips = ips[:0]
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				if in.State.Name != types.InstanceStateNameRunning || aws.ToString(in.Placement.HostId) != "" && aws.ToString(in.Placement.HostId) != hostID {
					return false
				}
				ips = append(ips, aws.ToString(in.PrivateIpAddress))
			}
		}
		return len(ips) == 2
	})
	var ipB string
	if out, err := ec2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: ids[1:]}); err == nil {
		ipB = aws.ToString(out.Reservations[0].Instances[0].PrivateIpAddress)
	} else {
		t.Fatal(err)
	}
	if !within(20*time.Second, func() bool { return nsPing(nss[0], ipB) }) {
		out, _ := nsRun(nss[0], "ip", "addr")
		t.Fatalf("%s (%s) does not reach %s (%s) within 20 s\n%s", ids[0], nss[0], ids[1], ipB, out)
	}
	t.Logf("instances %v on host %s (etcd over TLS, %s): %s pings %s", ids, hostID, agentEtcd, ids[0], ipB)
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
