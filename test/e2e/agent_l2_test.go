package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestAgentBridge: two VMs on one bridge on the same host, then a third on
// another host: ping and an iperf3 TCP stream each way (issue 4, item 1).
func TestAgentBridge(t *testing.T) {
	l := netns.New(t, canopyBin, netns.Options{})
	h1, h2 := l.AddHost("h1"), l.AddHost("h2")
	l.CLI("bridge", "create", "b1")
	p1 := bridgePort(t, l, "b1", "p1", mac(1), "10.0.0.1")
	p2 := bridgePort(t, l, "b1", "p2", mac(2), "10.0.0.2")
	p3 := bridgePort(t, l, "b1", "p3", mac(3), "10.0.0.3")
	vm1 := l.AddVM("vm1", h1, p1, mac(1), "10.0.0.1/24", "", 0)
	vm2 := l.AddVM("vm2", h1, p2, mac(2), "10.0.0.2/24", "", 0)
	vm3 := l.AddVM("vm3", h2, p3, mac(3), "10.0.0.3/24", "", 0)

	mustPing(t, vm1, vm2.IP())
	t.Logf("same host: ping RTT avg %.3f ms", pingRTT(t, vm1, vm2.IP(), 50))
	t.Logf("same host: iperf3 %.2f Gbps", iperf(t, vm1, vm2, 3))

	// The flow dump shows the cached flow with its hits and its output.
	out, err := h1.Get("/flows")
	if err != nil {
		t.Fatal(err)
	}
	var flows []struct {
		Actions []string `json:"actions"`
		Hits    uint64   `json:"hits"`
	}
	if err := json.Unmarshal([]byte(out), &flows); err != nil {
		t.Fatalf("/flows: %v\n%s", err, out)
	}
	hit := false
	for _, f := range flows {
		hit = hit || (f.Hits > 0 && len(f.Actions) > 0 && strings.HasPrefix(f.Actions[len(f.Actions)-1], "output("))
	}
	if !hit {
		t.Errorf("no cached output flow with hits in /flows:\n%s", out)
	}

	mustPing(t, vm1, vm3.IP())
	mustPing(t, vm3, vm2.IP())
	t.Logf("cross host: ping RTT avg %.3f ms", pingRTT(t, vm1, vm3.IP(), 50))
	t.Logf("cross host: iperf3 %.2f Gbps (h1→h2)", iperf(t, vm1, vm3, 3))
	t.Logf("cross host: iperf3 %.2f Gbps (h2→h1)", iperf(t, vm3, vm2, 3))

	// Unbind (the hypervisor hook): the agent unplugs the port (its
	// counters go); the device is the hypervisor's and stays.
	h2.Unbind(p3)
	// On the kernel path the port leaves the program's maps with it.
	waitUntil(t, "the agent to unplug vm3's port after unbind", func() bool {
		out, err := h2.Get("/metrics")
		return err == nil && !strings.Contains(out, `port_rx_frames_total{port="`+p3+`"}`)
	})
	if _, ok := vm1.Ping(vm3.IP(), 2); ok {
		t.Error("vm3 still reachable after unbind")
	}
}
