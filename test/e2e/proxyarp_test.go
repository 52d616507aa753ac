package e2e

import (
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
	l := cloudLab(t, `{"gateways": [
		{"host": "gw", "interface": "edge0", "address": "203.0.113.254/24", "proxy_arp": true}],
		"public_pools": ["203.0.113.0/28"]}`, "203.0.113.0/28")
	gw := l.AddHostIn("gw", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	waitUntil(t, "the uplink bound to the gateway host", func() bool {
		_, host, iface := edgeUplink(t, l)
		return host == gw.ID() && iface == "edge0"
	})
	out := l.AddOutside("out", gw, "edge0", "203.0.113.100/24") // on the segment, outside the pool

	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.32.0.0/16", "10.32.1.0/24", "us-east-1a")
	sg := tn.icmpGroup(vpcID)
	allocID, eip := tn.allocate()
	in := tn.run(sub, sg, "")
	tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", in.id)

	if o, _ := out.Exec("ip", "route", "show", "203.0.113.0/28"); strings.TrimSpace(o) != "" {
		t.Fatalf("the outside has a route to the pool: %s", o)
	}
	if !within(10*time.Second, func() bool { _, ok := out.Ping(eip, 1); return ok }) {
		t.Fatalf("outside cannot ping the elastic IP %s of %s over the flat segment", eip, in.id)
	}
	if e := neighbour(out, eip); !strings.Contains(e, "lladdr") {
		t.Errorf("no neighbour entry for the elastic IP on the outside: %q", e)
	}
	if !within(10*time.Second, func() bool { return nsPing(in.ns, "203.0.113.100") }) {
		t.Errorf("%s cannot ping the outside host on the segment", in.id)
	}
	// An address of the pool nobody holds: no answer, so no neighbour.
	unused := "203.0.113.14"
	if eip == unused {
		unused = "203.0.113.13"
	}
	if _, ok := out.Ping(unused, 1); ok {
		t.Errorf("an unassigned pool address %s answered", unused)
	}
	if e := neighbour(out, unused); strings.Contains(e, "lladdr") {
		t.Errorf("the edge answered ARP for the unassigned %s: %q", unused, e)
	}
	// A gateway without BGP still shows its uplink on /metrics.
	if n := gw.Metric(`canopy_agent_gateway_uplink_up{interface="edge0"`); n != 1 {
		t.Errorf("the gateway's /metrics: uplink edge0 up %v, want 1\n%s", n, metricLines(gw, "canopy_agent_gateway"))
	}
	// Up means carrier, not merely plugged: the far end of the uplink's
	// veth set down (a cable pulled) takes it down while the agent still
	// holds the device, and back up.
	for _, state := range []string{"down", "up"} {
		if o, err := out.Exec("ip", "link", "set", "edge0", state); err != nil {
			t.Fatalf("edge0 %s: %v %s", state, err, o)
		}
		want := 0.0
		if state == "up" {
			want = 1
		}
		if !within(10*time.Second, func() bool { return gw.Metric(`canopy_agent_gateway_uplink_up{interface="edge0"`) == want }) {
			t.Errorf("the far end of edge0 %s: the gateway's /metrics says uplink up %v, want %v\n%s", state,
				gw.Metric(`canopy_agent_gateway_uplink_up{interface="edge0"`), want, metricLines(gw, "canopy_agent_gateway"))
		}
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
