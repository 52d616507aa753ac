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

// AddClient is an "outside" client namespace behind the upstream router
// up: clientCIDR on a veth whose other end, in up, gets routerCIDR (with
// forwarding on); the client's default route is routerCIDR's address.
func (l *Lab) AddClient(name string, up *VM, routerCIDR, clientCIDR string) *VM {
	l.t.Helper()
	ip, _, _ := strings.Cut(routerCIDR, "/")
	vm := &VM{l: l, Name: name, NS: l.id + "-cl-" + name, Tap: "eth0", CIDR: clientCIDR, GW: ip, MTU: 1500}
	l.mustNS(vm.NS)
	l.vms = append(l.vms, vm)
	dev := "cl-" + name
	if len(dev) > 15 {
		l.t.Fatalf("client name %q too long for a device name", name)
	}
	l.must("ip", "-n", vm.NS, "link", "set", "lo", "up")
	l.must("ip", "link", "add", dev, "netns", up.NS, "type", "veth", "peer", "name", "eth0", "netns", vm.NS)
	l.must("ip", "-n", up.NS, "addr", "add", routerCIDR, "dev", dev)
	l.must("ip", "-n", up.NS, "link", "set", dev, "up")
	l.must("ip", "netns", "exec", up.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.must("ip", "-n", vm.NS, "addr", "add", clientCIDR, "dev", "eth0")
	l.must("ip", "-n", vm.NS, "link", "set", "eth0", "up")
	l.must("ip", "-n", vm.NS, "route", "add", "default", "via", ip)
	return vm
}
