package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/vpc"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// udhcpcScript applies a lease the way a guest's DHCP client script does
// (address, MTU, default route) and keeps what udhcpc handed it.
const udhcpcScript = `#!/bin/sh
env > "%s.$1"
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$subnet" dev "$interface"
	[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
	[ -n "$router" ] && ip route replace default via "${router%%%% *}" dev "$interface"
	;;
esac
exit 0
`

// dhcpClient runs busybox udhcpc once in vm and returns the environment
// its script saw at "bound".
func dhcpClient(t *testing.T, vm *netns.VM) map[string]string {
	t.Helper()
	dir := t.TempDir()
	script, envFile := filepath.Join(dir, "script"), filepath.Join(dir, "lease")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(udhcpcScript, envFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	// The lab configured a static address: the guest starts without one.
	for _, what := range []string{"route", "addr"} {
		if out, err := vm.Exec("ip", what, "flush", "dev", vm.Tap); err != nil {
			t.Fatalf("%s flush: %v\n%s", what, err, out)
		}
	}
	out, err := vm.Exec("busybox", "udhcpc", "-i", vm.Tap, "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", script)
	if err != nil {
		t.Fatalf("udhcpc in %s: %v\n%s\nagent log:\n%s", vm.Name, err, out, vm.Host.Log())
	}
	b, err := os.ReadFile(envFile + ".bound")
	if err != nil {
		t.Fatalf("udhcpc in %s never bound: %v\n%s", vm.Name, err, out)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// putVPCObject writes a VPC object of VPC vpcID as the EC2 server stores
// it (<prefix>vpc/<collection>/<id>, JSON of the internal/vpc struct, and
// its copy in its VPC's partition, vpcpart/<vpc>/…), with etcdctl from a
// host namespace (etcd listens on the lab's infra address).
func putVPCObject(t *testing.T, l *netns.Lab, h *netns.Host, vpcID, coll, id string, obj any) {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"/canopy/v1/vpc/" + coll + "/" + id, "/canopy/v1/vpcpart/" + vpcID + "/" + coll + "/" + id} {
		if out, err := l.Exec(h.NS, append(append([]string{"etcdctl"}, l.RootEtcdFlags()...), "put", key, string(b))...); err != nil {
			t.Fatalf("etcdctl put: %v\n%s", err, out)
		}
	}
}

// TestAgentDHCPMetadata (issue 6, items 2 and 3): guests on two hosts get
// their configuration from the agent with busybox udhcpc (address, mask,
// router, DNS, host name, and the MTU bounded by the overlay), reach each
// other with it, and read their own instance metadata at 169.254.169.254
// with IMDSv1 and IMDSv2 (curl and busybox wget); a token one instance got
// is refused at another.
func TestAgentDHCPMetadata(t *testing.T) {
	l := netns.New(t, canopyBin, netns.Options{})
	h1, h2 := l.AddHost("h1"), l.AddHost("h2")
	l.CLI("router", "create", "r1")
	l.CLI("bridge", "create", "b1")
	rp := idOf(t, l.CLI("router", "port", "add", "r1", "--name", "rp1", "--address", "10.0.1.1/24"))
	bp := idOf(t, l.CLI("bridge", "port", "add", "b1", "--name", "up1"))
	l.CLI("port", "link", rp, bp)
	l.CLI("bridge", "dhcp", "add", "b1", "--name", "s1", "--subnet", "10.0.1.0/24", "--gateway", "10.0.1.1",
		"--dns", "10.0.0.2", "--domain", "ec2.internal", "--mtu", "9000")
	l.CLI("bridge", "dhcp", "host", "add", "b1", "s1", "--mac", mac(2), "--ip", "10.0.1.20", "--name", "vm-two")

	// The ports are named after the ENIs they stand for, as the
	// translator's ports are labelled with them.
	eni := func(i int) string { return fmt.Sprintf("eni-0e2e0000000000%02d", i) }
	inst := func(i int) string { return fmt.Sprintf("i-0e2e0000000000%02d", i) }
	ips := map[int]string{1: "10.0.1.5", 2: "10.0.1.20", 3: "10.0.1.7"}
	hosts := map[int]*netns.Host{1: h1, 2: h2, 3: h1}
	vms := map[int]*netns.VM{}
	for i := 1; i <= 3; i++ {
		// In the VPC's partition, as the translator's ports are: the
		// agent's metadata follows the VPCs of its ports.
		p := idOf(t, l.CLI("bridge", "port", "add", "b1", "--name", eni(i), "--mac", mac(i), "--ip", ips[i], "--label", "canopy.vpc=vpc-0e2e"))
		vms[i] = l.AddVM(fmt.Sprintf("vm%d", i), hosts[i], p, mac(i), ips[i]+"/24", "10.0.1.1", 0)
		vi := &vpc.Instance{ID: inst(i), OwnerID: "111122223333", VpcID: "vpc-0e2e", SubnetID: "subnet-0e2e", State: "running",
			ImageID: "ami-0e2e", InstanceType: "t3.micro", AvailabilityZone: "us-east-1a",
			UserData: base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("#!/bin/sh\necho vm%d\n", i)))}
		if i == 3 {
			vi.MetadataOptions.HttpTokens = "required"
		}
		putVPCObject(t, l, h1, "vpc-0e2e", "instances", inst(i), vi)
		putVPCObject(t, l, h1, "vpc-0e2e", "network_interfaces", eni(i), &vpc.NetworkInterface{ID: eni(i), OwnerID: "111122223333",
			VpcID: "vpc-0e2e", SubnetID: "subnet-0e2e", MacAddress: mac(i), Status: "in-use",
			PrivateIPs: []vpc.PrivateIP{{Address: mustAddr(t, ips[i]), Primary: true}},
			Attachment: &vpc.ENIAttachment{InstanceID: inst(i), DeviceIndex: 0, Status: "attached"}})
	}

	// DHCP: vm1 by its port's address, vm2 by the static host entry.
	for _, c := range []struct {
		vm       *netns.VM
		ip, name string
	}{{vms[1], "10.0.1.5", ""}, {vms[2], "10.0.1.20", "vm-two"}} {
		env := dhcpClient(t, c.vm)
		want := map[string]string{"ip": c.ip, "subnet": "255.255.255.0", "router": "10.0.1.1", "dns": "10.0.0.2",
			"domain": "ec2.internal", "mtu": "1450", "hostname": c.name}
		for k, v := range want {
			if strings.TrimSpace(env[k]) != v {
				t.Errorf("%s: udhcpc %s = %q, want %q", c.vm.Name, k, env[k], v)
			}
		}
		addr, _ := c.vm.Exec("ip", "-4", "-o", "addr", "show", "dev", c.vm.Tap)
		link, _ := c.vm.Exec("ip", "-o", "link", "show", "dev", c.vm.Tap)
		route, _ := c.vm.Exec("ip", "route", "show", "default")
		if !strings.Contains(addr, c.ip+"/24") || !strings.Contains(link, "mtu 1450 ") || !strings.Contains(route, "via 10.0.1.1") {
			t.Errorf("%s after udhcpc:\n%s%s%s", c.vm.Name, addr, link, route)
		}
	}
	if h1.Metric(`canopy_agent_dhcp_requests_total{verdict="offer"}`) < 1 || h1.Metric(`canopy_agent_dhcp_requests_total{verdict="ack"}`) < 1 {
		t.Errorf("h1 counted no offer/ack:\n%s", metricLines(h1, "canopy_agent_dhcp"))
	}
	if h2.Metric(`canopy_agent_dhcp_requests_total{verdict="ack"}`) < 1 {
		t.Errorf("h2 counted no ack:\n%s", metricLines(h2, "canopy_agent_dhcp"))
	}
	mustPing(t, vms[1], "10.0.1.20")
	mustPing(t, vms[1], "10.0.1.1")

	// Metadata, IMDSv1: each instance reads its own data.
	const base = "http://169.254.169.254/latest"
	get := func(vm *netns.VM, args ...string) string {
		t.Helper()
		out, err := vm.Exec(append([]string{"curl", "-sS", "--fail-with-body", "--max-time", "5"}, args...)...)
		if err != nil {
			t.Fatalf("%s: curl %v: %v\n%s\nagent log:\n%s", vm.Name, args, err, out, vm.Host.Log())
		}
		return out
	}
	for i := 1; i <= 2; i++ {
		if got := get(vms[i], base+"/user-data"); got != fmt.Sprintf("#!/bin/sh\necho vm%d\n", i) {
			t.Errorf("vm%d user-data = %q", i, got)
		}
		if got := get(vms[i], base+"/meta-data/placement/availability-zone"); got != "us-east-1a" {
			t.Errorf("vm%d zone = %q", i, got)
		}
		if got := get(vms[i], base+"/meta-data/instance-id"); got != inst(i) {
			t.Errorf("vm%d instance-id = %q, want %q", i, got, inst(i))
		}
		if got := get(vms[i], base+"/meta-data/local-ipv4"); got != ips[i] {
			t.Errorf("vm%d local-ipv4 = %q, want %q", i, got, ips[i])
		}
	}
	if out, err := vms[2].Exec("busybox", "wget", "-q", "-O", "-", base+"/meta-data/mac"); err != nil || out != mac(2) {
		t.Errorf("vm2 busybox wget mac: %q %v", out, err)
	}

	// IMDSv2: a token from PUT /latest/api/token, then GETs carrying it.
	tok := get(vms[1], "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base+"/api/token")
	if got := get(vms[1], "-H", "X-aws-ec2-metadata-token: "+tok, base+"/meta-data/instance-id"); got != inst(1) {
		t.Errorf("vm1 with a token: instance-id = %q", got)
	}
	// vm3 requires tokens: IMDSv1 is refused, its own token works.
	if out, err := vms[3].Exec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
		base+"/meta-data/instance-id"); err != nil || out != "401" {
		t.Errorf("IMDSv1 at vm3 (tokens required): %q %v, want 401", out, err)
	}
	tok3 := get(vms[3], "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base+"/api/token")
	for _, c := range [][2]string{{"instance-id", inst(3)}, {"local-ipv4", ips[3]}} {
		if got := get(vms[3], "-H", "X-aws-ec2-metadata-token: "+tok3, base+"/meta-data/"+c[0]); got != c[1] {
			t.Errorf("vm3 with its token: %s = %q, want %q", c[0], got, c[1])
		}
	}
	// vm3 is behind the same agent (same listener, same token key): vm1's
	// token is worthless there.
	if out, err := vms[3].Exec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
		"-H", "X-aws-ec2-metadata-token: "+tok, base+"/meta-data/instance-id"); err != nil || out != "401" {
		t.Errorf("vm1's token at vm3: %q %v, want 401", out, err)
	}
	if n := h1.Metric(`canopy_agent_metadata_frames_total{outcome="to_listener"}`); n < 1 {
		t.Errorf("h1 relayed no metadata frames:\n%s", metricLines(h1, "canopy_agent_metadata"))
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// metricLines returns the agent's metric lines starting with prefix.
func metricLines(h *netns.Host, prefix string) string {
	out, _ := h.Get("/metrics")
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
