package netns

// AttachUplink wires the edge uplink that h's agent has bound to interface
// iface (a veth pair, iface on both sides) into the existing namespace of
// vm (an upstream router with several gateways' links), gives it address
// cidr there, and waits until the agent has plugged the uplink.
func (l *Lab) AttachUplink(vm *VM, h *Host, iface, cidr string) {
	l.t.Helper()
	l.wire(h, iface, vm.NS, iface)
	l.must("ip", "-n", vm.NS, "link", "set", iface, "up")
	l.must("ip", "-n", vm.NS, "addr", "add", cidr, "dev", iface)
	l.waitPlugged(h, iface)
}
