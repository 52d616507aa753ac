package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestEdgeProxyARP is issue 11's proxy-ARP mode (its "what it must show"
// 6): the gateway meets a flat L2 segment where the public pool is on-link.
// The outside namespace has an address on that segment and no route to the
// pool at all: it reaches an instance's elastic IP only because the edge's
// uplink answers ARP for it. An address of the pool nobody was given is not
// answered. The instance runs on a compute host, not the gateway's.
func TestEdgeProxyARP(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(`{"gateways": [
		{"host": "gw", "interface": "edge0", "address": "203.0.113.254/24", "proxy_arp": true}],
		"public_pools": ["203.0.113.0/28"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l := netns.New(t, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", "203.0.113.0/28"}})
	gw := l.AddHostIn("gw", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	waitUntil(t, "the uplink bound to the gateway host", func() bool {
		_, host, iface := edgeUplink(t, l)
		return host == gw.ID() && iface == "edge0"
	})
	out := l.AddOutside("out", gw, "edge0", "203.0.113.100/24") // on the segment, outside the pool

	tn := newTenant(t, l)
	vpcID := tn.ec2("create-vpc", "--cidr-block", "10.32.0.0/16", "--query", "Vpc.VpcId")
	sub := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.32.1.0/24", "--availability-zone", "us-east-1a", "--query", "Subnet.SubnetId")
	igw := tn.ec2("create-internet-gateway", "--query", "InternetGateway.InternetGatewayId")
	tn.ec2("attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpcID)
	rtb := tn.ec2("describe-route-tables", "--filters", "Name=vpc-id,Values="+vpcID, "--query", "RouteTables[0].RouteTableId")
	tn.ec2("create-route", "--route-table-id", rtb, "--destination-cidr-block", "0.0.0.0/0", "--gateway-id", igw)
	sg := tn.ec2("create-security-group", "--group-name", "ping", "--description", "icmp from anywhere", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "0.0.0.0/0")
	alloc := strings.Fields(tn.ec2("allocate-address", "--domain", "vpc", "--query", "[AllocationId,PublicIp]"))
	in := tn.run(sub, sg, "")
	tn.ec2("associate-address", "--allocation-id", alloc[0], "--instance-id", in.id)

	if o, _ := out.Exec("ip", "route", "show", "203.0.113.0/28"); strings.TrimSpace(o) != "" {
		t.Fatalf("the outside has a route to the pool: %s", o)
	}
	if !within(10*time.Second, func() bool { _, ok := out.Ping(alloc[1], 1); return ok }) {
		t.Fatalf("outside cannot ping the elastic IP %s of %s over the flat segment", alloc[1], in.id)
	}
	if e := neighbour(out, alloc[1]); !strings.Contains(e, "lladdr") {
		t.Errorf("no neighbour entry for the elastic IP on the outside: %q", e)
	}
	if !within(10*time.Second, func() bool { return nsPing(in.ns, "203.0.113.100") }) {
		t.Errorf("%s cannot ping the outside host on the segment", in.id)
	}
	// An address of the pool nobody holds: no answer, so no neighbour.
	unused := "203.0.113.14"
	if alloc[1] == unused {
		unused = "203.0.113.13"
	}
	if _, ok := out.Ping(unused, 1); ok {
		t.Errorf("an unassigned pool address %s answered", unused)
	}
	if e := neighbour(out, unused); strings.Contains(e, "lladdr") {
		t.Errorf("the edge answered ARP for the unassigned %s: %q", unused, e)
	}
}

// neighbour is vm's neighbour-table line for address a ("" if none).
func neighbour(vm *netns.VM, a string) string {
	o, _ := vm.Exec("ip", "neigh", "show", "dev", vm.Tap)
	for _, line := range strings.Split(o, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == a {
			return line
		}
	}
	return ""
}
