package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// routed is two bridges joined by a router, vm1 on b1 at h1 and vm2 on b2
// at h2:
//
//	vm1 10.0.1.2 ─ b1 ─ (10.0.1.1) r1 (10.0.2.1) ─ b2 ─ vm2 10.0.2.2
type routed struct {
	l        *netns.Lab
	h1, h2   *netns.Host
	vm1, vm2 *netns.VM
	p1, p2   string // VM port ids
}

func newRouted(t *testing.T, o netns.Options) *routed {
	l := netns.New(t, canopyBin, o)
	r := &routed{l: l, h1: l.AddHost("h1"), h2: l.AddHost("h2")}
	l.CLI("router", "create", "r1")
	for i, b := range []string{"b1", "b2"} {
		n := string(rune('1' + i))
		l.CLI("bridge", "create", b)
		rp := idOf(t, l.CLI("router", "port", "add", "r1", "--name", "rp"+n, "--address", "10.0."+n+".1/24"))
		bp := idOf(t, l.CLI("bridge", "port", "add", b, "--name", "up"+n))
		l.CLI("port", "link", rp, bp)
	}
	r.p1 = bridgePort(t, l, "b1", "vp1", mac(1), "10.0.1.2")
	r.p2 = bridgePort(t, l, "b2", "vp2", mac(2), "10.0.2.2")
	r.vm1 = l.AddVM("vm1", r.h1, r.p1, mac(1), "10.0.1.2/24", "10.0.1.1", 0)
	r.vm2 = l.AddVM("vm2", r.h2, r.p2, mac(2), "10.0.2.2/24", "10.0.2.1", 0)
	return r
}

// TestAgentRouter: VMs on different hosts behind a router: ping, TCP, the
// router's own addresses (issue 4, item 2); then router errors: TTL expiry
// answered with time exceeded, no route with unreachable (item 5).
func TestAgentRouter(t *testing.T) {
	r := newRouted(t, netns.Options{})
	mustPing(t, r.vm1, "10.0.1.1")
	mustPing(t, r.vm1, "10.0.2.1")
	mustPing(t, r.vm1, r.vm2.IP())
	mustPing(t, r.vm2, r.vm1.IP())
	t.Logf("routed cross host: ping RTT avg %.3f ms", pingRTT(t, r.vm1, r.vm2.IP(), 50))
	t.Logf("routed cross host: iperf3 %.2f Gbps", iperf(t, r.vm1, r.vm2, 3))

	out, _ := r.vm1.Exec("ping", "-c", "1", "-W", "2", "-t", "1", r.vm2.IP())
	if !strings.Contains(out, "From 10.0.1.1") || !strings.Contains(out, "Time to live exceeded") {
		t.Errorf("ping with TTL 1 through the router: want time exceeded from 10.0.1.1, got:\n%s", out)
	}
	out, _ = r.vm1.Exec("traceroute", "-n", "-q", "1", "-w", "1", "-m", "3", r.vm2.IP())
	if !strings.Contains(out, " 10.0.1.1 ") || !strings.Contains(out, " "+r.vm2.IP()+" ") {
		t.Errorf("traceroute should see the router then vm2:\n%s", out)
	}
	out, _ = r.vm1.Exec("ping", "-c", "1", "-W", "2", "192.0.2.1")
	if !strings.Contains(out, "From 10.0.1.1") || !strings.Contains(out, "Unreachable") {
		t.Errorf("ping to an address without route: want unreachable from 10.0.1.1, got:\n%s", out)
	}
}

// TestAgentFilter: a port's in-filter set to drop stops traffic within 1 s
// of the API call (cached flows invalidated); removing it resumes traffic
// (issue 4, item 3).
func TestAgentFilter(t *testing.T) {
	r := newRouted(t, netns.Options{})
	l := r.l
	mustPing(t, r.vm1, r.vm2.IP())
	stop := r.vm1.Background("ping", "-i", "0.05", r.vm2.IP()) // keeps the flows hot
	defer stop()
	l.CLI("chain", "create", "deny")
	l.CLI("chain", "rule", "add", "deny", "--action", "drop")
	l.CLI("port", "set", r.p2, "--in-filter", "deny")
	changed := time.Now()
	// Traffic must have stopped within 1 s of the API answer.
	// A probe is one echo with a 300 ms wait; the time reported is when
	// the first unanswered probe was sent.
	stopped := time.Duration(-1)
	for time.Since(changed) < time.Second {
		sent := time.Since(changed)
		if _, err := r.vm1.Exec("ping", "-c", "1", "-W", "0.3", r.vm2.IP()); err != nil {
			stopped = sent
			break
		}
	}
	if stopped < 0 {
		t.Fatal("traffic still flows 1 s after the drop filter was set")
	}
	if out, ok := r.vm1.Ping(r.vm2.IP(), 3); ok {
		t.Fatalf("ping passes the drop filter:\n%s", out)
	}
	t.Logf("drop filter: traffic stopped %v after the API call returned", stopped.Round(time.Millisecond))
	l.CLI("port", "set", r.p2, "--in-filter", "none")
	changed = time.Now()
	mustPing(t, r.vm1, r.vm2.IP())
	t.Logf("filter removed: traffic back %v after the API call returned", time.Since(changed).Round(time.Millisecond))
}

// TestAgentStateful: vm2 accepts only return traffic (out-filter of its
// port: accept return flows, drop the rest). Connections vm2 → vm1 work in
// both directions; new connections vm1 → vm2 are dropped. The hosts differ,
// so the connection state must travel with the first packet (issue 4,
// item 4).
func TestAgentStateful(t *testing.T) {
	r := newRouted(t, netns.Options{})
	l := r.l
	mustPing(t, r.vm1, r.vm2.IP())
	// The zone of vm2's connections is its port: its in-filter tracks
	// what vm2 opens (a forward-flow condition), its out-filter lets only
	// the replies in.
	l.CLI("chain", "create", "vm2-out")
	l.CLI("chain", "rule", "add", "vm2-out", "--action", "accept", "--forward-flow")
	l.CLI("port", "set", r.p2, "--in-filter", "vm2-out")
	l.CLI("chain", "create", "vm2-in")
	l.CLI("chain", "rule", "add", "vm2-in", "--action", "accept", "--return-flow")
	l.CLI("chain", "rule", "add", "vm2-in", "--action", "drop")
	l.CLI("port", "set", r.p2, "--out-filter", "vm2-in")
	time.Sleep(300 * time.Millisecond)

	if out, ok := r.vm1.Ping(r.vm2.IP(), 3); ok {
		t.Errorf("vm1 → vm2 ping passes a return-only filter:\n%s", out)
	}
	mustPing(t, r.vm2, r.vm1.IP())
	// TCP opened by vm2, data both ways.
	t.Logf("vm2 → vm1 TCP: %.2f Gbps", iperf(t, r.vm2, r.vm1, 2))
	t.Logf("vm2 → vm1 TCP, reverse data: %.2f Gbps", iperf(t, r.vm2, r.vm1, 2, "-R"))
	// TCP opened by vm1 is dropped.
	stop := r.vm2.Background("iperf3", "-s", "-1", "-B", r.vm2.IP())
	defer stop()
	r.vm2.WaitListening(5201) // else a refusal would pass for the filter's drop
	if out, err := r.vm1.Exec("iperf3", "-c", r.vm2.IP(), "-t", "1", "--connect-timeout", "2000"); err == nil {
		t.Errorf("vm1 opened a TCP connection to vm2 through a return-only filter:\n%s", out)
	}
	if n := r.h2.Metric("canopy_agent_state_messages_sent_total"); n <= 0 {
		t.Errorf("h2 sent no connection-state messages (%v)", n)
	}
	if n := r.h1.Metric("canopy_agent_state_messages_received_total"); n <= 0 {
		t.Errorf("h1 imported no connection-state messages (%v)", n)
	}
}

// TestAgentFloatingIP: 1:1 NAT on the router: vm2 (10.0.2.2) is reachable
// from vm1 at 192.0.2.100, and its replies come from that address (issue 4,
// item 6).
func TestAgentFloatingIP(t *testing.T) {
	r := newRouted(t, netns.Options{})
	l := r.l
	l.CLI("chain", "create", "fip-in")
	l.CLI("chain", "rule", "add", "fip-in", "--action", "dnat", "--nw-dst", "192.0.2.100/32", "--nat-target", "10.0.2.2")
	l.CLI("chain", "create", "fip-out")
	l.CLI("chain", "rule", "add", "fip-out", "--action", "snat", "--nw-src", "10.0.2.2/32", "--nw-dst", "10.0.1.0/24", "--nat-target", "192.0.2.100")
	l.CLI("router", "update", "r1", "--in-filter", "fip-in", "--out-filter", "fip-out")
	mustPing(t, r.vm1, "192.0.2.100")
	out, _ := r.vm1.Ping("192.0.2.100", 1)
	if !strings.Contains(out, "from 192.0.2.100") {
		t.Errorf("replies should come from the floating IP:\n%s", out)
	}
	t.Logf("floating IP: iperf3 to 192.0.2.100 (TCP through 1:1 NAT)")
	stop := r.vm2.Background("iperf3", "-s", "-1")
	defer stop()
	r.vm2.WaitListening(5201)
	if out, err := r.vm1.Exec("iperf3", "-c", "192.0.2.100", "-t", "2", "--connect-timeout", "3000"); err != nil {
		t.Errorf("TCP to the floating IP: %v\n%s", err, out)
	}
}
