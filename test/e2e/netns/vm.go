package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// VM is a namespace holding one end of a veth pair whose other end, in
// its host's namespace, is the bound port's device (the host side the
// agent plugs, as a hypervisor's TAP or a container's veth), configured as
// the guest would configure its NIC.
type VM struct {
	l             *Lab
	Name, NS      string
	Host          *Host
	Tap           string // the device's name, on both sides
	Port          string // port id
	MAC, CIDR, GW string
	MTU           int
}

// IP is the VM's address (without the prefix length).
func (vm *VM) IP() string { ip, _, _ := strings.Cut(vm.CIDR, "/"); return ip }

// AddVM makes a VM namespace wired to host h by a veth pair named name's
// device on both sides, gives the VM's end mac, cidr (e.g. 10.0.0.2/24) and
// a default route via gw (none if empty), binds port (an id) to the host
// end with `canopy agent bind` and waits for the agent to plug it. mtu 0
// leaves 1500.
func (l *Lab) AddVM(name string, h *Host, port, mac, cidr, gw string, mtu int) *VM {
	l.t.Helper()
	vm := &VM{l: l, Name: name, NS: l.id + "-vm-" + name, Host: h, Tap: l.id + name, Port: port,
		MAC: mac, CIDR: cidr, GW: gw, MTU: mtu}
	if len(vm.Tap) > 15 {
		l.t.Fatalf("VM name %q too long for a device name", name)
	}
	if vm.MTU == 0 {
		vm.MTU = 1500
	}
	l.mustNS(vm.NS)
	l.vms = append(l.vms, vm)
	l.must("ip", "-n", vm.NS, "link", "set", "lo", "up")
	l.wire(h, vm.Tap, vm.NS, vm.Tap)
	l.must("ip", "-n", vm.NS, "link", "set", vm.Tap, "address", vm.MAC, "mtu", fmt.Sprint(vm.MTU), "up")
	l.must("ip", "-n", vm.NS, "addr", "add", vm.CIDR, "dev", vm.Tap)
	if vm.GW != "" {
		l.must("ip", "-n", vm.NS, "route", "add", "default", "via", vm.GW)
	}
	h.Bind(port, vm.Tap)
	vm.Plug()
	return vm
}

// Datapath is the --datapath the lab's agents run with ("": the agent's
// default, auto). CANOPY_E2E_DATAPATH sets it for a whole run; a test may
// set it for the labs it builds (tests of this package run one at a time).
var Datapath = os.Getenv("CANOPY_E2E_DATAPATH")

// AgentFlags are more flags for every agent the lab starts (a benchmark's
// --pprof-listen, say).
var AgentFlags []string

// KernelAttach is the --kernel-attach the lab's agents run with ("": the
// agent's default, auto: tcx where the kernel has it). Set for a whole run
// by CANOPY_E2E_KERNEL_ATTACH, or by a test for its labs.
var KernelAttach = os.Getenv("CANOPY_E2E_KERNEL_ATTACH")

// wire makes a veth pair: hostEnd in h's namespace (down, for the agent to
// plug and bring up) and inner in namespace ns. The host end's MTU is the
// largest a veth takes, so that only the inner end's MTU limits frames.
func (l *Lab) wire(h *Host, hostEnd, ns, inner string) {
	l.t.Helper()
	l.must("ip", "link", "add", hostEnd, "netns", h.NS, "mtu", "65535", "type", "veth", "peer", "name", inner, "netns", ns)
}

// Plug waits until the host's agent has plugged the VM's port: it brings
// the host end up when it attaches to it. The veth pair outlives an agent
// restart; Plug then only waits for the host end, which is what a
// hypervisor's re-plug amounts to.
func (vm *VM) Plug() {
	vm.l.t.Helper()
	vm.l.waitPlugged(vm.Host, vm.Tap)
}

// waitPlugged waits until h's agent has brought device up (on either
// datapath the agent does once it serves the device).
func (l *Lab) waitPlugged(h *Host, device string) {
	l.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", h.NS, "-o", "link", "show", device).CombinedOutput()
		if err == nil && strings.Contains(string(out), ",UP") {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("agent on %s did not plug %s within 20s:\n%s", h.Name, device, h.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Exec runs a command inside the VM.
func (vm *VM) Exec(args ...string) (string, error) { return vm.l.Exec(vm.NS, args...) }

// Ping sends count echo requests to dst and reports whether any came back.
func (vm *VM) Ping(dst string, count int) (string, bool) {
	out, err := vm.Exec("ping", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1", dst)
	return out, err == nil
}

// WaitListening waits until a TCP socket listens on port in the VM (a
// server started with Background is ready), so that a refused connection
// afterwards means the network refused it, not that the server was late.
func (vm *VM) WaitListening(port int) {
	vm.l.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := vm.Exec("ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if err == nil && strings.TrimSpace(out) != "" {
			return
		}
		if time.Now().After(deadline) {
			vm.l.t.Fatalf("nothing listens on TCP port %d in %s within 10 s: %v %s", port, vm.NS, err, out)
		}
	}
}

// Background starts a command in the VM and returns a stop function.
func (vm *VM) Background(args ...string) func() {
	cmd := exec.Command("ip", append([]string{"netns", "exec", vm.NS}, args...)...)
	if err := cmd.Start(); err != nil {
		vm.l.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
	}
	vm.l.t.Cleanup(stop)
	return stop
}

// AddGuest makes a VM namespace wired to host h by a veth pair whose host
// end is named tap: the device a hypervisor creates for a port the control
// plane bound on h (a Neutron port's tap + the first 11 characters of its
// id), which the agent plugs by itself. The VM's end has the same name,
// MAC mac, MTU mtu and no address (its DHCP client configures it). It
// waits until the agent has plugged the host end.
func (l *Lab) AddGuest(name string, h *Host, tap, mac string, mtu int) *VM {
	l.t.Helper()
	vm := &VM{l: l, Name: name, NS: l.id + "-vm-" + name, Host: h, Tap: tap, MAC: mac, MTU: mtu}
	l.mustNS(vm.NS)
	l.vms = append(l.vms, vm)
	l.must("ip", "-n", vm.NS, "link", "set", "lo", "up")
	l.wire(h, tap, vm.NS, tap)
	l.must("ip", "-n", vm.NS, "link", "set", tap, "address", mac, "mtu", fmt.Sprint(mtu), "up")
	vm.Plug()
	return vm
}
