package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// The suite runs on the agent's default datapath, auto: on this machine's
// kernel that is the kernel fast path with tcx. (CANOPY_E2E_DATAPATH and
// CANOPY_E2E_KERNEL_ATTACH put a whole run on another.) The tests below
// run the agent and instance tests again on what the default run does not
// take: the userspace path, and the kernel path attached the way kernels
// before 6.6 (Debian 12's 6.1) get it, classic TC.

// pathTest is a test run again on another datapath.
type pathTest struct {
	name string
	f    func(*testing.T)
}

// onPath runs tests as subtests with the lab's agents on datapath and
// attach mode (netns.Datapath, netns.KernelAttach), then restores them.
func onPath(t *testing.T, datapath, attach string, tests []pathTest) {
	saved, savedAttach := netns.Datapath, netns.KernelAttach
	netns.Datapath, netns.KernelAttach = datapath, attach
	defer func() { netns.Datapath, netns.KernelAttach = saved, savedAttach }()
	for _, tc := range tests {
		t.Run(tc.name, tc.f)
	}
}

// TestUserspaceDatapath runs the agent and instance tests on
// --datapath=userspace (the path of a host without BPF or kernel VXLAN).
// Left out, to keep the suite's time: the server's tests (the datapath
// moves nothing of theirs) and most of the gateways' (BGP, failover, edge
// objects); a gateway's planned drain and restart is in.
func TestUserspaceDatapath(t *testing.T) {
	if netns.Datapath == "userspace" {
		t.Skip("the whole run is on the userspace datapath")
	}
	onPath(t, "userspace", "", []pathTest{
		{"Bridge", TestAgentBridge},
		{"Router", TestAgentRouter},
		{"Filter", TestAgentFilter},
		{"Stateful", TestAgentStateful},
		{"FloatingIP", TestAgentFloatingIP},
		{"MTU", TestAgentMTU},
		{"Kill9", TestAgentKill9},
		{"DHCPMetadata", TestAgentDHCPMetadata},
		{"Instances", TestInstances},
		{"InstancesSecurity", TestInstancesSecurity},
		{"QEMUGuest", TestQEMUGuest},
		{"SharedLearning", TestSharedLearning},
		{"EdgeProxyARP", TestEdgeProxyARP},
		{"StatefulPortGroup", TestStatefulPortGroup},
		{"FragNeeded", TestFragNeeded},
		{"AmazonProvidedDNS", TestAmazonProvidedDNS},
		{"GatewayPlannedWork", TestGatewayPlannedWork},
	})
}

// TestKernelDatapath runs the tests of what the kernel fast path does
// differently with its program attached as classic TC (a clsact qdisc's
// direct-action filter: --kernel-attach=tc, what kernels before 6.6 get):
// forwarding on one host and across hosts through kernel VXLAN, routing
// with its rewrites, flow invalidation by a rule change within 1 s,
// stateful return traffic and 1:1 NAT with the connection state sent to
// the peer, the MTU with the tunnel's clamp, and the kill -9 of both
// agents under a TCP stream.
func TestKernelDatapath(t *testing.T) {
	if netns.Datapath == "userspace" {
		t.Skip("the whole run is on the userspace datapath") // TestKernelKill9Hitless still runs
	}
	if netns.KernelAttach == "tc" {
		t.Skip("the whole run attaches with classic TC")
	}
	onPath(t, "kernel", "tc", []pathTest{
		{"Bridge", TestAgentBridge},
		{"Router", TestAgentRouter},
		{"Filter", TestAgentFilter},
		{"Stateful", TestAgentStateful},
		{"FloatingIP", TestAgentFloatingIP},
		{"MTU", TestAgentMTU},
		{"Kill9Hitless", kernelKill9Hitless},
	})
}

// TestKernelUnavailable: where the kernel path cannot start, auto forwards
// in userspace and says so. The agents run without CAP_BPF and
// CAP_SYS_ADMIN (setpriv takes them out of the bounding set, as a container
// runtime would; without CAP_SYS_ADMIN the metadata service cannot make its
// namespace, so it is off): they load no BPF program, log why at start-up, report
// canopy_datapath_kernel 0 with no attach mode, and forward on one host and
// across hosts (their own UDP tunnel) all the same.
func TestKernelUnavailable(t *testing.T) {
	if netns.Datapath != "" && netns.Datapath != "auto" {
		t.Skipf("the whole run is on the %s datapath", netns.Datapath)
	}
	saved, savedFlags := netns.AgentPrefix, netns.AgentFlags
	netns.AgentPrefix = []string{"setpriv", "--bounding-set", "-bpf,-sys_admin,-perfmon", "--"}
	// The metadata service's namespace needs CAP_SYS_ADMIN too.
	netns.AgentFlags = []string{"--no-metadata"}
	defer func() { netns.AgentPrefix, netns.AgentFlags = saved, savedFlags }()
	l := netns.New(t, canopyBin, netns.Options{})
	h1, h2 := l.AddHost("h1"), l.AddHost("h2")
	for _, h := range []*netns.Host{h1, h2} {
		if !strings.Contains(h.Log(), "kernel datapath unavailable, forwarding in userspace") {
			t.Errorf("agent on %s did not say why it forwards in userspace:\n%s", h.Name, h.Log())
		}
		m, err := h.Get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m, "\ncanopy_datapath_kernel 0\n") || strings.Contains(m, "canopy_datapath_kernel_attach{") {
			t.Errorf("/metrics of %s: want canopy_datapath_kernel 0 and no attach mode:\n%s", h.Name, grepLines(m, "canopy_datapath"))
		}
	}
	l.CLI("bridge", "create", "b1")
	p1 := bridgePort(t, l, "b1", "p1", mac(1), "10.0.0.1")
	p2 := bridgePort(t, l, "b1", "p2", mac(2), "10.0.0.2")
	p3 := bridgePort(t, l, "b1", "p3", mac(3), "10.0.0.3")
	vm1 := l.AddVM("vm1", h1, p1, mac(1), "10.0.0.1/24", "", 0)
	vm2 := l.AddVM("vm2", h1, p2, mac(2), "10.0.0.2/24", "", 0)
	vm3 := l.AddVM("vm3", h2, p3, mac(3), "10.0.0.3/24", "", 0)
	mustPing(t, vm1, vm2.IP())
	mustPing(t, vm1, vm3.IP())
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestKernelKill9Hitless is inherently the kernel path's (on the userspace
// path forwarding stops with the agent: TestAgentKill9): agents on
// --datapath=kernel, attached as the kernel allows.
func TestKernelKill9Hitless(t *testing.T) {
	saved := netns.Datapath
	netns.Datapath = "kernel"
	defer func() { netns.Datapath = saved }()
	kernelKill9Hitless(t)
}

// kernelKill9Hitless: kill -9 of both agents while an iperf3 stream runs
// between their hosts, restarted 1.5 s later: the kernel keeps forwarding
// the established stream (every 100 ms interval at the receiver carries
// data) and, once the agents are back, new flows resume. (On the userspace
// path forwarding stops with the agent: TestAgentKill9.)
func kernelKill9Hitless(t *testing.T) {
	r := newRouted(t, netns.Options{})
	mustPing(t, r.vm1, r.vm2.IP())
	stop := r.vm2.Background("iperf3", "-s", "-1", "-J", "-i", "0.1", "-B", r.vm2.IP())
	defer stop()
	r.vm2.WaitListening(5201)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The receiver's intervals: the sender's count what its socket
		// buffer took, which goes on for a while after the network stops.
		out, err := r.vm1.Exec("iperf3", "-c", r.vm2.IP(), "-t", "5", "-i", "0.1", "-J", "--get-server-output")
		done <- result{out, err}
	}()
	time.Sleep(time.Second) // into the stream
	r.h1.Kill()
	r.h2.Kill()
	killed := time.Now()
	// Down for 1.5 s, then back before the stream ends: iperf3's closing
	// exchange (its results, larger than anything before on the control
	// connection: a flow key of another length class) is a new flow the
	// restarted agents simulate.
	time.Sleep(1500 * time.Millisecond)
	r.h1.Start()
	r.h2.Start()
	restarted := time.Since(killed)
	res := <-done
	if res.err != nil {
		t.Fatalf("iperf3 across the kill: %v\n%s", res.err, res.out)
	}
	var client struct {
		Server struct {
			Intervals []struct {
				Sum struct {
					Start   float64 `json:"start"`
					Seconds float64 `json:"seconds"`
					Bytes   float64 `json:"bytes"`
				} `json:"sum"`
			} `json:"intervals"`
		} `json:"server_output_json"`
	}
	if err := json.Unmarshal([]byte(res.out), &client); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, res.out)
	}
	// A gap is a run of intervals with no data, measured by their own
	// lengths: on a busy machine iperf3's timer fires late, so an interval
	// can be 200 ms long and the next a 20 ms sliver that happens to be
	// empty — a late report, not a stalled stream.
	var covered, gap, gapAt, worst, worstAt float64
	started := false // the connection's setup (through the agents) is not the stream
	for _, iv := range client.Server.Intervals {
		covered += iv.Sum.Seconds
		started = started || iv.Sum.Bytes > 0
		if !started || iv.Sum.Bytes > 0 {
			gap = 0
			continue
		}
		if gap == 0 {
			gapAt = iv.Sum.Start
		}
		if gap += iv.Sum.Seconds; gap > worst {
			worst, worstAt = gap, gapAt
		}
	}
	if covered < 4.5 {
		t.Fatalf("the receiver's intervals cover %.2f s, want the 5 s stream:\n%s", covered, res.out)
	}
	if worst > 0.1 {
		t.Errorf("the stream stalled after the agents were killed: no data for %.0f ms from %.2f s", worst*1000, worstAt)
	} else {
		t.Logf("kill -9 of both agents 1 s into a 5 s stream, back %v later: %d intervals at the receiver over %.2f s, the longest without data %.0f ms",
			restarted.Round(time.Millisecond), len(client.Server.Intervals), covered, worst*1000)
	}
	// Whether a stall shows depends on how fast TCP recovers; what made
	// one does not: the restarted agents adopt the stream's kernel flows
	// and leave them be, as nothing in the topology changed (the first
	// view's full load once cleared them, and the controller's rewrite of
	// the Host objects, whose interfaces now list the fast path's devices,
	// retired them). One thing may retire them: on a busy machine a
	// restart can outlast the 5 s lease, and the host going down and
	// coming back is a change for the routes (hosts_liveness > 0).
	for _, h := range []*netns.Host{r.h1, r.h2} {
		log := h.Log()
		if !strings.Contains(log, "agent: adopted the flows a previous agent left") {
			t.Errorf("the restarted agent on %s adopted no flows:\n%s", h.Name, log)
		}
		for _, line := range strings.Split(log, "\n") {
			switch {
			case !strings.Contains(line, "agent: retired the flows a previous agent left"):
			case strings.Contains(line, "hosts_liveness=0"):
				t.Errorf("the restarted agent on %s retired the flows it adopted with no host down and no change to the topology:\n%s", h.Name, log)
			default:
				t.Logf("the restarted agent on %s retired its adopted flows when a host's liveness changed (the restart outlasted the lease): %s", h.Name, line)
			}
		}
	}
	mustPing(t, r.vm1, r.vm2.IP()) // a new flow: simulated again
	mustPing(t, r.vm2, r.vm1.IP())
}

// TestKernelPeerReaddressed: a host's tunnel address changes while a flow
// to it runs (issue 12). vm1 on h1 pings vm3 on h2 with one ping process (one
// flow); h2 takes a second underlay address as its primary and its tunnel
// zone membership moves there; then h1 can no longer reach h2's old
// address (a blackhole route). The kernel's copy of a flow holds the peer's
// address (the userspace path looks it up per packet): without the peer's
// tag on the flow, the established ping went on to the old address and
// every echo after the blackhole was lost. With it, the change of address
// invalidates the flow and its next packet is simulated to the new one.
// The kernel path's alone: on the userspace path h2's agent listens on the
// tunnel socket bound to its --tunnel-ip, so a host's address moves there
// with a restart of its agent (and flows look the address up per packet).
func TestKernelPeerReaddressed(t *testing.T) {
	if netns.Datapath == "userspace" {
		t.Skip("the whole run is on the userspace datapath")
	}
	l := netns.New(t, canopyBin, netns.Options{})
	h1, h2 := l.AddHost("h1"), l.AddHost("h2")
	l.CLI("bridge", "create", "b1")
	p1 := bridgePort(t, l, "b1", "p1", mac(1), "10.0.0.1")
	p3 := bridgePort(t, l, "b1", "p3", mac(3), "10.0.0.3")
	vm1 := l.AddVM("vm1", h1, p1, mac(1), "10.0.0.1/24", "", 0)
	vm3 := l.AddVM("vm3", h2, p3, mac(3), "10.0.0.3/24", "", 0)
	mustPing(t, vm1, vm3.IP())

	out := filepath.Join(t.TempDir(), "ping")
	const secs = 14
	stop := vm1.Background("sh", "-c", fmt.Sprintf("exec ping -D -i 0.1 -w %d %s > %s", secs, vm3.IP(), out))
	defer stop()
	waitUntilFor(t, 5*time.Second, "the ping's first replies", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "icmp_seq=") >= 5
	})

	// h2's new address becomes its primary one (what it sends from); the
	// old one stays as a secondary, for its agent's connections.
	old, nu := h2.IP, "10.99.0.112"
	if _, err := l.Exec(h2.NS, "sh", "-c", fmt.Sprintf("ip addr del %[1]s/24 dev eth0 && ip addr add %[2]s/24 dev eth0 && ip addr add %[1]s/24 dev eth0", old, nu)); err != nil {
		t.Fatal(err)
	}
	snaps := h1.Metric("canopy_agent_snapshots_total")
	setMemberAddress(t, l, "tz", h2.ID(), nu)
	// h1 builds a view with the change (the echoes are judged from a
	// second after the blackhole: the bound a change has to reach the
	// kernel's flows).
	waitUntilFor(t, 10*time.Second, "h1's view after the change", func() bool {
		return h1.Metric("canopy_agent_snapshots_total") > snaps
	})
	if _, err := l.Exec(h1.NS, "ip", "route", "add", "blackhole", old+"/32"); err != nil {
		t.Fatal(err)
	}
	blackhole := time.Now()

	// Wait for ping's end, then judge the echoes sent from a second after
	// the blackhole on (seq s left at first + (s - s0) × 100 ms or later).
	waitUntilFor(t, (secs+10)*time.Second, "ping's summary", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "packets transmitted")
	})
	b, _ := os.ReadFile(out)
	replies := map[int]bool{}
	var t0 float64
	s0 := -1
	for _, m := range regexp.MustCompile(`\[(\d+\.\d+)\] .*icmp_seq=(\d+)`).FindAllStringSubmatch(string(b), -1) {
		ts, _ := strconv.ParseFloat(m[1], 64)
		s, _ := strconv.Atoi(m[2])
		if s0 < 0 {
			t0, s0 = ts, s
		}
		replies[s] = true
	}
	tx := 0
	if m := regexp.MustCompile(`(\d+) packets transmitted`).FindStringSubmatch(string(b)); m != nil {
		tx, _ = strconv.Atoi(m[1])
	}
	from := s0 + int(math.Ceil((float64(blackhole.UnixNano())/1e9+1-t0)/0.1))
	to := tx - 5 // the last ones may be in flight at ping's deadline
	if to-from < 20 {
		t.Fatalf("only %d echoes to judge after the change (from seq %d to %d):\n%s", to-from, from, to, b)
	}
	lost := 0
	for s := from; s <= to; s++ {
		if !replies[s] {
			lost++
		}
	}
	t.Logf("echoes sent from 1 s after the blackhole: %d, lost %d", to-from+1, lost)
	if lost > 0 {
		t.Errorf("%d of the %d echoes sent after h2's address changed were lost: h1's flow kept the old address\n%s", lost, to-from+1, b)
	}
}

// setMemberAddress moves host's membership of tunnel zone zone to addr in
// one REST update.
func setMemberAddress(t *testing.T, l *netns.Lab, zone, host, addr string) {
	t.Helper()
	var z map[string]any
	if err := json.Unmarshal([]byte(l.CLI("tunnel-zone", "show", zone, "-o", "json")), &z); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range z["members"].([]any) {
		if mm := m.(map[string]any); mm["host_id"] == host {
			mm["address"], found = addr, true
		}
	}
	if !found {
		t.Fatalf("host %s is not a member of %s: %v", host, zone, z)
	}
	body, _ := json.Marshal(z)
	tok, err := l.AdminToken()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := l.Exec(l.InfraNS(), "curl", "-sf", "--max-time", "10", "-X", "PUT", "-H", "Authorization: Bearer "+tok,
		"-H", "Content-Type: application/json", "--data-binary", string(body), fmt.Sprintf("%s/tunnel-zones/%s", l.APIURL(), z["id"])); err != nil {
		t.Fatalf("PUT tunnel zone: %v %s", err, out)
	}
}
