package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// tenant is an EC2 account in a lab, driven with Debian's AWS CLI.
type tenant struct {
	t           *testing.T
	l           *netns.Lab
	key, secret string
}

func newTenant(t *testing.T, l *netns.Lab) *tenant {
	var na struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	out := l.CLI("account", "create", "e2e")
	if err := json.Unmarshal([]byte(out), &na); err != nil {
		t.Fatalf("account create: %v\n%s", err, out)
	}
	return &tenant{t: t, l: l, key: na.AccessKeyID, secret: na.SecretAccessKey}
}

// ec2 runs `aws ec2 ARGS` and fails the test on error.
func (tn *tenant) ec2(args ...string) string {
	tn.t.Helper()
	out, err := tn.l.AWS(tn.key, tn.secret, append([]string{"ec2"}, args...)...)
	if err != nil {
		tn.t.Fatalf("aws ec2 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

type inst struct {
	id, ip, ns string
}

// run launches one instance into subnet with group sg (and address ip
// unless empty) and waits until it is running.
func (tn *tenant) run(subnet, sg, ip string) inst {
	tn.t.Helper()
	return tn.launch(subnet, []string{sg}, ip)
}

// launch launches one instance into subnet with groups (nil: the VPC's
// default group, as in AWS) and address ip (empty: the next free one), and
// waits until it is running: the driver reports running once the
// namespace's eth0 holds its address.
func (tn *tenant) launch(subnet string, groups []string, ip string) inst {
	tn.t.Helper()
	args := []string{"run-instances", "--image-id", "ami-0deb1a12c0ffee001", "--instance-type", "t3.micro",
		"--subnet-id", subnet, "--query", "Instances[0].[InstanceId,PrivateIpAddress]"}
	if groups != nil {
		args = append(args, append([]string{"--security-group-ids"}, groups...)...)
	}
	if ip != "" {
		args = append(args, "--private-ip-address", ip)
	}
	f := strings.Fields(tn.ec2(args...))
	if len(f) != 2 {
		tn.t.Fatalf("run-instances: %v", f)
	}
	in := inst{id: f[0], ip: f[1], ns: "ci-" + f[0][len(f[0])-13:]}
	waitUntil(tn.t, in.id+" running", func() bool {
		out, _ := tn.l.AWS(tn.key, tn.secret, "ec2", "describe-instances", "--instance-ids", in.id, "--query", "Reservations[0].Instances[0].State.Name")
		return out == "running"
	})
	return in
}

func nsRun(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

func nsPing(ns, dst string) bool {
	_, err := nsRun(ns, "ping", "-c", "1", "-W", "1", dst)
	return err == nil
}

// within polls cond for up to d and reports whether it came true.
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestInstances is issue 6's end-to-end proof on two agent hosts running
// the netns instance driver, driven only with the AWS CLI.
func TestInstances(t *testing.T) {
	l := netns.New(t, canopyBin, netns.Options{})
	h1 := l.AddInstanceHost("hv1")
	h2 := l.AddInstanceHost("hv2")
	tn := newTenant(t, l)

	vpcID := tn.ec2("create-vpc", "--cidr-block", "10.20.0.0/16", "--query", "Vpc.VpcId")
	subA := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.20.1.0/24", "--availability-zone", "us-east-1a", "--query", "Subnet.SubnetId")
	subB := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.20.2.0/24", "--availability-zone", "us-east-1a", "--query", "Subnet.SubnetId")
	sg := tn.ec2("create-security-group", "--group-name", "web", "--description", "icmp and iperf", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "10.20.0.0/16")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "5201", "--cidr", "10.20.0.0/16")

	a1 := tn.run(subA, sg, "")
	a2 := tn.run(subA, sg, "")
	b1 := tn.run(subB, sg, "")
	all := []inst{a1, a2, b1}

	// Spread over both hosts (the scheduler places least-loaded first): each
	// host's driver records the namespaces it made.
	on := map[string]*netns.Host{}
	for _, in := range all {
		for _, h := range []*netns.Host{h1, h2} {
			if _, err := os.Stat(filepath.Join(h.InstanceStateDir(), in.ns+".json")); err == nil {
				on[in.id] = h
			}
		}
	}
	if len(on) != 3 || on[a1.id] == on[a2.id] && on[a2.id] == on[b1.id] {
		t.Errorf("instances not spread over both hosts: %v", on)
	}

	// DHCP inside each namespace: address, mask, router, MTU.
	for _, in := range all {
		addr, err := nsRun(in.ns, "ip", "-o", "-4", "addr", "show", "eth0")
		if err != nil {
			t.Fatalf("%s: %v %s", in.ns, err, addr)
		}
		if !strings.Contains(addr, in.ip+"/24") {
			t.Errorf("%s eth0: want %s/24: %s", in.id, in.ip, addr)
		}
		gw := "10.20.1.1"
		if in == b1 {
			gw = "10.20.2.1"
		}
		if rt, _ := nsRun(in.ns, "ip", "route", "show", "default"); !strings.Contains(rt, "via "+gw+" dev eth0") {
			t.Errorf("%s default route: want via %s: %s", in.id, gw, rt)
		}
		if link, _ := nsRun(in.ns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(link, "mtu 1450") {
			t.Errorf("%s eth0 MTU: want 1450 (1500 underlay − VXLAN): %s", in.id, link)
		}
	}

	// Ping within and across subnets.
	for _, p := range [][2]inst{{a1, a2}, {a1, b1}, {b1, a2}} {
		if !within(5*time.Second, func() bool { return nsPing(p[0].ns, p[1].ip) }) {
			t.Errorf("%s cannot ping %s", p[0].id, p[1].ip)
		}
	}

	// iperf3 across subnets and hosts, port 5201 allowed. a1 and a2 are on
	// different hosts (least-loaded placement), so one of them is not on
	// b1's host: that one is the client.
	cl := a1
	if on[a1.id] == on[b1.id] {
		cl = a2
	}
	if on[cl.id] == nil || on[cl.id] == on[b1.id] {
		t.Errorf("iperf3 pair %s, %s not on two hosts: %v", cl.id, b1.id, on)
	}
	stop := exec.Command("ip", "netns", "exec", b1.ns, "iperf3", "-s", "-1")
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	out, err := nsRun(cl.ns, "iperf3", "-c", b1.ip, "-t", "2", "-J")
	_ = stop.Wait()
	if err != nil {
		t.Errorf("iperf3 %s → %s: %v\n%s", cl.id, b1.ip, err, out)
	} else {
		var r struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		_ = json.Unmarshal([]byte(out), &r)
		t.Logf("iperf3 %s (%s) → %s (%s): %.2f Gbit/s", cl.id, on[cl.id].Name, b1.id, on[b1.id].Name, r.End.SumReceived.BitsPerSecond/1e9)
		if r.End.SumReceived.BitsPerSecond <= 0 {
			t.Errorf("iperf3 carried nothing")
		}
	}

	// TCP to a port the group does not allow is blocked.
	srv := exec.Command("ip", "netns", "exec", b1.ns, "iperf3", "-s", "-p", "5301", "-1")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if out, err := nsRun(a1.ns, "curl", "-s", "-m", "2", fmt.Sprintf("telnet://%s:5301", b1.ip)); err == nil || !strings.Contains(fmt.Sprint(err), "exit status 28") {
		t.Errorf("TCP 5301 not blocked: %v %s", err, out)
	}
	_ = srv.Process.Kill()
	_ = srv.Wait()

	// Revoke ICMP: ping stops within 1 s; authorize again: back within 1 s.
	tn.ec2("revoke-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "10.20.0.0/16")
	if !within(time.Second, func() bool { return !nsPingFast(a1.ns, b1.ip) }) {
		t.Error("ping still answered 1 s after the ICMP rule was revoked")
	}
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "10.20.0.0/16")
	if !within(time.Second, func() bool { return nsPingFast(a1.ns, b1.ip) }) {
		t.Error("ping not answered 1 s after the ICMP rule was authorized again")
	}

	// Metadata from inside: own instance-id and local-ipv4, IMDSv1 and v2.
	for _, in := range []inst{a1, b1} {
		md := "http://169.254.169.254/latest/meta-data/"
		if got, err := nsRun(in.ns, "curl", "-s", "-m", "3", md+"instance-id"); err != nil || got != in.id {
			t.Errorf("%s IMDSv1 instance-id = %q (%v)", in.id, got, err)
		}
		if got, _ := nsRun(in.ns, "curl", "-s", "-m", "3", md+"local-ipv4"); got != in.ip {
			t.Errorf("%s IMDSv1 local-ipv4 = %q, want %s", in.id, got, in.ip)
		}
		tok, err := nsRun(in.ns, "curl", "-s", "-m", "3", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", "http://169.254.169.254/latest/api/token")
		if err != nil || tok == "" {
			t.Errorf("%s IMDSv2 token: %v %q", in.id, err, tok)
			continue
		}
		if got, _ := nsRun(in.ns, "curl", "-s", "-m", "3", "-H", "X-aws-ec2-metadata-token: "+tok, md+"local-ipv4"); got != in.ip {
			t.Errorf("%s IMDSv2 local-ipv4 = %q, want %s", in.id, got, in.ip)
		}
		if got, _ := nsRun(in.ns, "busybox", "wget", "-q", "-O", "-", md+"instance-id"); got != in.id {
			t.Errorf("%s busybox wget instance-id = %q", in.id, got)
		}
	}

	// Terminate: namespace, TAP, topology port and address go; the IP is
	// reusable. The ENI's TAP (vn<13 hex>) lives in the instance's
	// namespace while it runs; afterwards it is nowhere on the host.
	eni := tn.ec2("describe-instances", "--instance-ids", a2.id, "--query", "Reservations[0].Instances[0].NetworkInterfaces[0].NetworkInterfaceId")
	tap := "vn" + eni[len(eni)-13:]
	if _, err := nsRun(a2.ns, "ip", "link", "show", "eth0"); err != nil {
		t.Errorf("%s has no eth0 before terminate: %v", a2.ns, err)
	}
	if ports := l.CLI("port", "list"); !strings.Contains(ports, eni) {
		t.Errorf("no topology port realizes %s before terminate:\n%s", eni, ports)
	}
	tn.ec2("terminate-instances", "--instance-ids", a2.id)
	waitUntil(t, a2.id+" terminated", func() bool {
		out, _ := tn.l.AWS(tn.key, tn.secret, "ec2", "describe-instances", "--instance-ids", a2.id, "--query", "Reservations[0].Instances[0].State.Name")
		return out == "terminated"
	})
	if _, err := nsRun(a2.ns, "true"); err == nil {
		t.Errorf("namespace %s still there after terminate", a2.ns)
	}
	for _, ns := range []string{on[a2.id].NS, ""} {
		args := []string{"link", "show", tap}
		if ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err == nil {
			t.Errorf("TAP %s still there after terminate (netns %q): %s", tap, ns, out)
		}
	}
	if out := tn.ec2("describe-network-interfaces", "--filters", "Name=private-ip-address,Values="+a2.ip, "--query", "NetworkInterfaces[].NetworkInterfaceId"); out != "" {
		t.Errorf("ENI of %s still there: %s", a2.ip, out)
	}
	// The controller removes the ENI's port (with its binding) from the
	// topology: the REST API lists no port labelled with the ENI any more.
	if !within(5*time.Second, func() bool { return !strings.Contains(l.CLI("port", "list"), eni) }) {
		t.Errorf("topology port of %s still listed after terminate", eni)
	}
	again := tn.run(subA, sg, a2.ip)
	// a1 still holds the old ENI's MAC for this address until its
	// neighbour entry goes stale (the agent answers ARP itself, so a1 never
	// sees the new instance's requests): forget it, as time would.
	if _, err := nsRun(a1.ns, "ip", "neigh", "flush", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	if again.ip != a2.ip || !within(5*time.Second, func() bool { return nsPing(again.ns, a1.ip) }) {
		t.Errorf("re-used address %s not reachable from %s", a2.ip, a1.id)
	}
}

// nsPingFast is one ping with a 200 ms wait (for the 1 s rule-change checks).
func nsPingFast(ns, dst string) bool {
	_, err := nsRun(ns, "ping", "-c", "1", "-W", "0.2", dst)
	return err == nil
}
