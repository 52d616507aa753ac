package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// addClient makes an "outside" client namespace behind the upstream router
// namespace up: clientCIDR on a veth, default route via routerIP (which the
// router side gets, with forwarding on).
func addClient(t *testing.T, up, routerCIDR, clientCIDR string) string {
	t.Helper()
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	ns := "cbgpcl-" + hex.EncodeToString(b)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "link", "add", "cl0", "netns", up, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run("ip", "-n", up, "addr", "add", routerCIDR, "dev", "cl0")
	run("ip", "-n", up, "link", "set", "cl0", "up")
	run("ip", "netns", "exec", up, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run("ip", "-n", ns, "addr", "add", clientCIDR, "dev", "eth0")
	run("ip", "-n", ns, "link", "set", "eth0", "up")
	gw, _, _ := strings.Cut(routerCIDR, "/")
	run("ip", "-n", ns, "route", "add", "default", "via", gw)
	return ns
}

// learnedRoutes returns the edge router's learned routes as "DST via GW".
func learnedRoutes(t *testing.T, l *netns.Lab) []string {
	t.Helper()
	var routes []struct {
		Dst     string `json:"dst_prefix"`
		Gateway string `json:"next_hop_gateway"`
		Learned bool   `json:"learned"`
	}
	out := l.CLI("route", "list", "canopy-edge")
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("route list: %v\n%s", err, out)
	}
	var got []string
	for _, r := range routes {
		if r.Learned {
			got = append(got, r.Dst+" via "+r.Gateway)
		}
	}
	return got
}

// TestBGPGateway is issue 11's BGP core with one gateway: the gateway
// host's agent speaks BGP (GoBGP embedded) to FRR in the upstream router's
// namespace; FRR learns the public pool with the gateway's uplink address
// as next hop and sends the default route, which the edge learns; an
// instance on a compute host answers a client behind FRR on its elastic IP
// — with no static route anywhere, the way back is the learned default.
// The session stays up, once, for the whole test (GoBGP v4.8.0's flap bug
// with FRR `listen range` peers is why FRR names its neighbour).
func TestBGPGateway(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(`{
		"bgp": {"asn": 65001},
		"public_pools": ["203.0.113.0/28"],
		"gateways": [{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24",
			"bgp_peer": {"address": "192.0.2.1", "asn": 65000}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l := netns.New(t, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", "203.0.113.0/28"}})
	gw := l.AddHostIn("gw", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	waitUntil(t, "the uplink bound to the gateway host", func() bool {
		_, host, iface := edgeUplink(t, l)
		return host == gw.ID() && iface == "edge0"
	})
	up := l.AddOutside("upstream", gw, "edge0", "192.0.2.1/24")
	client := addClient(t, up.NS, "198.51.100.1/24", "198.51.100.2/24")
	// No BGP speaker upstream yet: the session's state says so.
	waitUntil(t, "the gateway's session to the absent peer reported", func() bool {
		out := l.CLI("gateway", "show", "gw")
		return strings.Contains(out, `"peer": "192.0.2.1"`) && !strings.Contains(out, `"state": "established"`) &&
			strings.Contains(out, `"state": "`)
	})
	f := netns.StartFRR(t, up.NS, `frr defaults datacenter
hostname upstream
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 neighbor 192.0.2.2 remote-as 65001
 neighbor 192.0.2.2 timers connect 2
 !
 address-family ipv4 unicast
  neighbor 192.0.2.2 default-originate
  maximum-paths 8
 exit-address-family
!
`)

	waitUntil(t, "the BGP session established", func() bool { return f.Neighbor("192.0.2.2").State == "Established" })
	waitUntil(t, "FRR's route to the public pool via the gateway", func() bool {
		nh := f.NextHops("203.0.113.0/28")
		return len(nh) == 1 && nh[0] == "192.0.2.2"
	})
	if out := f.Vtysh("show ip bgp"); !strings.Contains(out, "203.0.113.0/28") || !strings.Contains(out, "192.0.2.2") {
		t.Errorf("show ip bgp does not show the pool via the gateway:\n%s", out)
	}
	waitUntil(t, "the edge's learned default route", func() bool {
		got := learnedRoutes(t, l)
		return len(got) == 1 && got[0] == "0.0.0.0/0 via 192.0.2.1"
	})
	if n := gw.Metric(`canopy_agent_bgp_session_established{peer="192.0.2.1"`); n != 1 {
		t.Errorf("the gateway's /metrics says the session is established %v times, want 1", n)
	}
	// The REST API and the CLI show the gateway: its uplink, its session,
	// what it advertises and learned.
	var g struct {
		HostName string `json:"host_name"`
		Alive    bool   `json:"alive"`
		Uplinks  []struct {
			Interface string `json:"interface"`
			Address   string `json:"address"`
		} `json:"uplinks"`
		BGP *struct {
			Sessions []struct {
				Peer  string `json:"peer"`
				State string `json:"state"`
			} `json:"sessions"`
			Advertised []string `json:"advertised"`
			Learned    int      `json:"learned"`
		} `json:"bgp"`
	}
	waitUntil(t, "the gateway's status in the REST API", func() bool {
		if err := json.Unmarshal([]byte(l.CLI("gateway", "show", "gw")), &g); err != nil {
			t.Fatal(err)
		}
		return g.BGP != nil && len(g.BGP.Sessions) == 1 && g.BGP.Sessions[0].State == "established" && g.BGP.Learned == 1
	})
	if !g.Alive || len(g.Uplinks) != 1 || g.Uplinks[0].Interface != "edge0" || g.Uplinks[0].Address != "192.0.2.2/24" ||
		g.BGP.Sessions[0].Peer != "192.0.2.1" || len(g.BGP.Advertised) != 1 || g.BGP.Advertised[0] != "203.0.113.0/28" {
		t.Errorf("canopy gateway show gw: %+v (bgp %+v)", g, g.BGP)
	}
	if out, err := l.RunCLI("gateway", "list"); err != nil || !strings.Contains(out, "192.0.2.1:established") {
		t.Errorf("canopy gateway list: %v\n%s", err, out)
	}

	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.32.0.0/16", "10.32.1.0/24", "us-east-1a")
	sg := tn.icmpGroup(vpcID)
	allocID, eip := tn.allocate()
	alloc := []string{allocID, eip}
	in := tn.run(sub, sg, "")
	tn.ec2("associate-address", "--allocation-id", alloc[0], "--instance-id", in.id)
	if !within(15*time.Second, func() bool { return nsPing(client, alloc[1]) }) {
		t.Errorf("the client behind FRR cannot ping the elastic IP %s of %s", alloc[1], in.id)
	}
	if !within(10*time.Second, func() bool { return nsPing(in.ns, "198.51.100.2") }) {
		t.Errorf("%s cannot ping the client behind FRR", in.id)
	}

	// One session, never dropped, from start to end.
	if n := f.Neighbor("192.0.2.2"); n.State != "Established" || n.Established != 1 || n.Dropped != 0 {
		t.Errorf("the session flapped: %+v (want established once, never dropped)", n)
	}
}

// agentPID is the pid of the canopy agent running in h's namespace.
func agentPID(t *testing.T, h *netns.Host) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "pids", h.NS).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v\n%s", h.NS, err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if args := strings.Split(string(cmd), "\x00"); len(args) > 1 && filepath.Base(args[0]) == "canopy" && args[1] == "agent" {
			return pid
		}
	}
	t.Fatalf("no canopy agent in %s", h.NS)
	return 0
}

// TestBGPTwoGateways: two gateway hosts, each with an uplink on its own
// link network to the same FRR, with BFD on both sessions. FRR has both
// gateways as next hops of the public pool (maximum-paths), the edge has
// FRR's default route through both uplinks, and a client behind FRR
// reaches an elastic IP. Freezing one gateway's agent (SIGSTOP: its uplink
// stays up, only BFD can tell) makes FRR drop that next hop on BFD's word,
// the other gateway carrying on; once thawed it comes back; kill -9 of an
// agent drops it again. The times are logged, not asserted.
func TestBGPTwoGateways(t *testing.T) {
	e := newBGPEdge(t, 100, "us-east-1a")
	l, f, gw1, client := e.l, e.f, e.gw1, e.client
	both := func() bool { return e.poolVia(gw1Uplink, gw2Uplink) }
	settled := e.settle(t)
	if out := f.Vtysh("show ip bgp 203.0.113.0/28"); !strings.Contains(out, "multipath") {
		t.Errorf("FRR does not use both gateways (multipath):\n%s", out)
	}

	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.33.0.0/16", "10.33.1.0/24", "us-east-1a")
	sg := tn.icmpGroup(vpcID)
	allocID, eip := tn.allocate()
	alloc := []string{allocID, eip}
	in := tn.run(sub, sg, "")
	tn.ec2("associate-address", "--allocation-id", alloc[0], "--instance-id", in.id)
	if !within(15*time.Second, func() bool { return nsPing(client, alloc[1]) }) {
		t.Fatalf("the client behind FRR cannot ping the elastic IP %s", alloc[1])
	}
	for _, n := range []string{"192.0.2.2", "192.0.2.130"} {
		if s := f.Neighbor(n); s.Established != settled[n].Established || s.Dropped != settled[n].Dropped {
			t.Errorf("the session with %s flapped: %+v, settled %+v", n, s, settled[n])
		}
	}

	// Planned work: drain gw1. Its session stays up; it withdraws the
	// pool, and the edge's default route through it goes, so the other
	// gateway carries both directions.
	l.CLI("gateway", "drain", "gw1")
	waitUntil(t, "FRR's pool route via gw2 alone", func() bool {
		nh := f.NextHops("203.0.113.0/28")
		return len(nh) == 1 && nh[0] == "192.0.2.130"
	})
	waitUntil(t, "the edge's default route via gw2 alone", func() bool {
		got := learnedRoutes(t, l)
		return len(got) == 1 && got[0] == "0.0.0.0/0 via 192.0.2.129"
	})
	if !within(15*time.Second, func() bool { return nsPing(client, alloc[1]) }) {
		t.Errorf("the elastic IP is unreachable with gw1 drained")
	}
	if !within(15*time.Second, func() bool { return nsPing(in.ns, "198.51.100.2") }) {
		t.Errorf("%s cannot reach the client with gw1 drained", in.id)
	}
	if s := f.Neighbor("192.0.2.2"); s.State != "Established" || s.Dropped != settled["192.0.2.2"].Dropped {
		t.Errorf("draining dropped gw1's session: %+v", s)
	}
	l.CLI("gateway", "undrain", "gw1")
	waitUntil(t, "both gateways again after the drain", both)
	waitUntil(t, "the edge's default route via both uplinks again", func() bool { return len(learnedRoutes(t, l)) == 2 })

	// Freeze gw1's agent: its uplink stays, its speaker goes silent.
	pid := agentPID(t, gw1)
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	defer func() {
		if !thawed {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	waitUntil(t, "FRR to drop the frozen gateway", func() bool {
		nh := f.NextHops("203.0.113.0/28")
		return len(nh) == 1 && nh[0] == "192.0.2.130"
	})
	t.Logf("gateway frozen (SIGSTOP): FRR dropped its next hop after %v", time.Since(start).Round(time.Millisecond))
	if out := f.Vtysh("show ip bgp neighbors 192.0.2.2 json"); !strings.Contains(out, "BFD Down") {
		t.Errorf("FRR did not reset the session on BFD's word:\n%s", out)
	}
	if !within(15*time.Second, func() bool { return nsPing(client, alloc[1]) }) {
		t.Errorf("the elastic IP is unreachable through the other gateway")
	}

	// Thawed, it comes back.
	thawed = true
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "both gateways again", both)

	// kill -9: the link stays (a veth outlives the agent, as a physical
	// uplink would); BFD tells FRR.
	start = time.Now()
	gw1.Kill()
	waitUntil(t, "FRR to drop the killed gateway", func() bool {
		nh := f.NextHops("203.0.113.0/28")
		return len(nh) == 1 && nh[0] == "192.0.2.130"
	})
	t.Logf("gateway killed (kill -9): FRR dropped its next hop after %v", time.Since(start).Round(time.Millisecond))
	waitUntil(t, "the edge's default route via gw2 alone (gw1's lease expired)", func() bool {
		got := learnedRoutes(t, l)
		return len(got) == 1 && got[0] == "0.0.0.0/0 via 192.0.2.129"
	})
	if !within(15*time.Second, func() bool { return nsPing(in.ns, "198.51.100.2") }) {
		t.Errorf("%s cannot reach the client through the remaining gateway", in.id)
	}
	if s, n := f.Neighbor("192.0.2.130"), settled["192.0.2.130"]; s.Established != n.Established || s.Dropped != n.Dropped {
		t.Errorf("the surviving gateway's session flapped: %+v, settled %+v", s, n)
	}
}

// TestBGPAdvertiseAddresses: with "advertise": "addresses" the gateway
// advertises each assigned public address as a /32 — here a NAT gateway's
// — and not the pool; deleting the NAT gateway withdraws it from FRR.
func TestBGPAdvertiseAddresses(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(`{
		"bgp": {"asn": 65001, "advertise": "addresses"},
		"public_pools": ["203.0.113.0/28"],
		"gateways": [{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24",
			"bgp_peer": {"address": "192.0.2.1", "asn": 65000}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l := netns.New(t, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", "203.0.113.0/28"}})
	gw := l.AddHostIn("gw", "us-east-1z", false)
	up := l.AddOutside("upstream", gw, "edge0", "192.0.2.1/24")
	f := netns.StartFRR(t, up.NS, `frr defaults datacenter
hostname upstream
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 neighbor 192.0.2.2 remote-as 65001
 neighbor 192.0.2.2 timers connect 2
!
`)
	waitUntil(t, "the BGP session established", func() bool { return f.Neighbor("192.0.2.2").State == "Established" })

	tn := newTenant(t, l)
	vpcID := tn.ec2("create-vpc", "--cidr-block", "10.34.0.0/16", "--query", "Vpc.VpcId")
	sub := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.34.1.0/24", "--availability-zone", "us-east-1a", "--query", "Subnet.SubnetId")
	alloc := strings.Fields(tn.ec2("allocate-address", "--domain", "vpc", "--query", "[AllocationId,PublicIp]"))
	nat := tn.ec2("create-nat-gateway", "--subnet-id", sub, "--allocation-id", alloc[0], "--query", "NatGateway.NatGatewayId")
	tn.ec2("wait", "nat-gateway-available", "--nat-gateway-ids", nat)
	host := alloc[1] + "/32"
	waitUntil(t, "FRR's route to the NAT gateway's address via the gateway", func() bool {
		nh := f.NextHops(host)
		return len(nh) == 1 && nh[0] == "192.0.2.2"
	})
	if nh := f.NextHops("203.0.113.0/28"); len(nh) != 0 {
		t.Errorf("the pool is advertised too (next hops %v)", nh)
	}
	tn.ec2("delete-nat-gateway", "--nat-gateway-id", nat)
	waitUntil(t, "FRR to lose the NAT gateway's address", func() bool { return len(f.NextHops(host)) == 0 })
}
