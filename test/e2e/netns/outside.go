package netns

import "strings"

// AddOutside is a namespace on the physical network behind a gateway: it
// holds the far end of a veth pair whose host end, in h's namespace, is
// the interface iface that h's edge uplink is bound to (by the controller,
// from the cloud config), with address cidr, as the upstream router on the
// gateway's link. It waits until the agent has plugged the uplink.
//
// The namespace's kernel spreads multipath routes by the 5-tuple
// (fib_multipath_hash_policy=1), as a real router hashes ECMP at L4: with
// the default, the addresses alone, every flow between one client and one
// public address takes the same gateway.
func (l *Lab) AddOutside(name string, h *Host, iface, cidr string) *VM {
	l.t.Helper()
	vm := &VM{l: l, Name: name, NS: l.id + "-out-" + name, Host: h, Tap: iface, CIDR: cidr, MTU: 1500}
	l.mustNS(vm.NS)
	l.vms = append(l.vms, vm)
	l.must("ip", "-n", vm.NS, "link", "set", "lo", "up")
	l.must("ip", "netns", "exec", vm.NS, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1")
	l.AttachUplink(vm, h, iface, cidr)
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
