package netns

import (
	"os/exec"
	"strings"
	"time"
)

// AttachUplink moves the TAP that h's agent made for an edge uplink bound
// to interface iface into the existing namespace of vm (an upstream router
// with several gateways' links) and gives it address cidr there. It waits
// until the agent has plugged the uplink.
func (l *Lab) AttachUplink(vm *VM, h *Host, iface, cidr string) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", h.NS, "-o", "link", "show", iface).CombinedOutput()
		if err == nil && strings.Contains(string(out), ",UP") {
			break
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("agent on %s did not plug uplink %s within 20s:\n%s", h.Name, iface, h.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.must("ip", "-n", h.NS, "link", "set", iface, "netns", vm.NS)
	l.must("ip", "-n", vm.NS, "link", "set", iface, "up")
	l.must("ip", "-n", vm.NS, "addr", "add", cidr, "dev", iface)
}
