package netns

import (
	"os/exec"
	"strings"
	"time"
)

// AddOutside is a namespace on the physical network behind a gateway: the
// TAP that h's agent made for an edge uplink bound to interface iface (by
// the controller, from the cloud config), moved into a new namespace with
// address cidr, as the upstream router on the gateway's link. It waits
// until the agent has plugged the uplink.
func (l *Lab) AddOutside(name string, h *Host, iface, cidr string) *VM {
	l.t.Helper()
	vm := &VM{l: l, Name: name, NS: l.id + "-out-" + name, Host: h, Tap: iface, CIDR: cidr, MTU: 1500}
	l.mustNS(vm.NS)
	l.vms = append(l.vms, vm)
	l.must("ip", "-n", vm.NS, "link", "set", "lo", "up")
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
	return vm
}
