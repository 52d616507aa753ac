package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnrolledAgentCredentials (issue 10, "What it must show" 3): against
// a real `canopy server`, `canopy host enroll` writes each host's
// credentials, and with them etcdctl — standing in for a compromised agent —
// writes its own host's state but fails to write another host's state, any
// topology object or any VPC object, and cannot read the EC2 keys; once
// `canopy host unenroll` revoked it, it opens nothing; without a client
// certificate etcd answers nothing.
func TestEnrolledAgentCredentials(t *testing.T) {
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Fatal("etcdctl (Debian's etcd-client, installed by make deps) is needed")
	}
	s := newServer(t)
	etcd := fmt.Sprintf("https://127.0.0.1:%d", s.etcdClient)
	dir := t.TempDir()
	enroll := func(name string) (id, out string) {
		t.Helper()
		out = filepath.Join(dir, name)
		s.cli("host", "enroll", name, "--out", out, "--etcd-endpoints", etcd)
		b, err := os.ReadFile(filepath.Join(out, "enrollment.json"))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			HostID   string   `json:"host_id"`
			User     string   `json:"etcd_user"`
			Etcd     []string `json:"etcd_endpoints"`
			HostName string   `json:"host_name"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if e.User != "host-"+e.HostID || e.HostName != name || len(e.Etcd) != 1 || e.Etcd[0] != etcd {
			t.Fatalf("enrollment.json: %s", b)
		}
		return e.HostID, out
	}
	idA, dirA := enroll("hv1")
	idB, _ := enroll("hv2")
	if again, _ := enroll("hv1"); again != idA {
		t.Fatalf("enrolling hv1 again made host %s, want %s", again, idA)
	}
	if out := s.cli("host", "list", "-o", "json"); !strings.Contains(out, idA) || !strings.Contains(out, idB) {
		t.Fatalf("enrolled hosts not listed:\n%s", out)
	}

	etcdctl := func(creds []string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		full := append(append([]string{"--endpoints", etcd, "--dial-timeout", "3s", "--command-timeout", "5s"}, creds...), args...)
		out, err := exec.CommandContext(ctx, "etcdctl", full...).CombinedOutput()
		return string(out), err
	}
	agentA := []string{"--cacert", filepath.Join(dirA, "ca.crt"), "--cert", filepath.Join(dirA, "agent.crt"), "--key", filepath.Join(dirA, "agent.key")}
	info := `{"name":"hv1"}`
	for _, kv := range [][2]string{
		{"/canopy/v1/state/host/" + idA, "alive"},
		{"/canopy/v1/state/hosts/" + idA + "/info", info},
		{"/canopy/v1/state/hosts/" + idA + "/port/p1/active", "1"},
		{"/canopy/v1/state/learned/" + idA + "/bridge/b1/02:00:00:00:00:01", "p1"},
	} {
		if out, err := etcdctl(agentA, "put", kv[0], kv[1]); err != nil {
			t.Errorf("agent of hv1 cannot write its own %s: %v\n%s", kv[0], err, out)
		}
	}
	if out, err := etcdctl(agentA, "get", "--prefix", "--keys-only", "/canopy/v1/topo/host/"); err != nil || !strings.Contains(out, idA) {
		t.Errorf("agent of hv1 cannot read the topology: %v\n%s", err, out)
	}
	for _, k := range []string{
		"/canopy/v1/state/host/" + idB,
		"/canopy/v1/state/hosts/" + idB + "/info",
		"/canopy/v1/state/learned/" + idB + "/bridge/b1/02:00:00:00:00:01",
		"/canopy/v1/topo/host/" + idA,
		"/canopy/v1/topo/tunnel_zone/x",
		"/canopy/v1/topo-seq",
		"/canopy/v1/vpc/vpcs/vpc-0123456789abcdef0",
		"/canopy/v1/ec2/keys/AKIAEXAMPLE",
	} {
		out, err := etcdctl(agentA, "put", k, "{}")
		if err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("agent of hv1 wrote %s: %v\n%s", k, err, out)
		}
	}
	if out, err := etcdctl(agentA, "get", "--prefix", "/canopy/v1/ec2/"); err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("agent of hv1 read the EC2 keys: %v\n%s", err, out)
	}
	// Unenrolled, hv1's certificate opens nothing any more; hv2's still does.
	s.cli("host", "unenroll", "hv1", "--etcd-endpoints", etcd)
	if out, err := etcdctl(agentA, "get", "--prefix", "--keys-only", "/canopy/v1/topo/host/"); err == nil {
		t.Errorf("the unenrolled agent of hv1 still reads:\n%s", out)
	}
	dirB := filepath.Join(dir, "hv2")
	agentB := []string{"--cacert", filepath.Join(dirB, "ca.crt"), "--cert", filepath.Join(dirB, "agent.crt"), "--key", filepath.Join(dirB, "agent.key")}
	if out, err := etcdctl(agentB, "put", "/canopy/v1/state/host/"+idB, "alive"); err != nil {
		t.Errorf("agent of hv2 after hv1's unenrollment: %v\n%s", err, out)
	}
	// No client certificate: refused.
	if out, err := etcdctl([]string{"--cacert", filepath.Join(dirA, "ca.crt")}, "get", "/canopy/v1/topo-seq"); err == nil {
		t.Errorf("etcd answered a client without a certificate:\n%s", out)
	}
}
