package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestKernelDatapath runs the agent tests that exercise what the kernel
// fast path does differently on it (agents with --datapath=kernel, VMs on
// veth pairs): forwarding on one host and across hosts through kernel
// VXLAN, routing with its rewrites, flow invalidation by a rule change
// within 1 s, stateful return traffic and 1:1 NAT with the connection
// state sent to the peer, the MTU with the tunnel's clamp, and the kill -9
// of both agents under a TCP stream. The rest of the suite (services,
// learning, gateways, which the kernel path hands to the agent as misses)
// runs on the userspace path only, to keep the suite's time; the whole
// suite runs on the kernel path with CANOPY_E2E_DATAPATH=kernel.
func TestKernelDatapath(t *testing.T) {
	if netns.Datapath != "" {
		t.Skipf("the whole run is on the %s datapath", netns.Datapath)
	}
	netns.Datapath = "kernel"
	defer func() { netns.Datapath = "" }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Bridge", TestAgentBridge},
		{"Router", TestAgentRouter},
		{"Filter", TestAgentFilter},
		{"Stateful", TestAgentStateful},
		{"FloatingIP", TestAgentFloatingIP},
		{"MTU", TestAgentMTU},
		{"Kill9Hitless", kernelKill9Hitless},
	} {
		t.Run(tc.name, tc.f)
	}
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
	mustPing(t, r.vm1, r.vm2.IP()) // a new flow: simulated again
	mustPing(t, r.vm2, r.vm1.IP())
}
