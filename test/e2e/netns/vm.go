package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// VM is a namespace holding the TAP of a bound port, configured as the
// guest would configure its NIC.
type VM struct {
	l             *Lab
	Name, NS      string
	Host          *Host
	Tap           string
	Port          string // port id
	MAC, CIDR, GW string
	MTU           int
}

// IP is the VM's address (without the prefix length).
func (vm *VM) IP() string { ip, _, _ := strings.Cut(vm.CIDR, "/"); return ip }

// AddVM binds port (an id) to a new TAP on host h with `canopy agent
// bind`, waits for the agent to plug it, moves the TAP into a new VM
// namespace and gives it mac, cidr (e.g. 10.0.0.2/24) and a default route
// via gw (none if empty). mtu 0 leaves 1500.
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
	if KernelDatapath() {
		// The kernel fast path attaches to the host end of a veth pair
		// (the VM's NIC is the other end), as the netns driver plugs one.
		l.must("ip", "-n", h.NS, "link", "add", vm.Tap, "type", "veth", "peer", "name", vm.Tap, "netns", vm.NS)
		l.must("ip", "-n", h.NS, "link", "set", vm.Tap, "up")
		h.Bind(port, vm.Tap)
		vm.configure()
		return vm
	}
	h.Bind(port, vm.Tap)
	vm.Plug()
	return vm
}

// Datapath is the --datapath the lab's agents run with ("": the agent's
// default). CANOPY_E2E_DATAPATH sets it for a whole run; a test may set it
// for the labs it builds (tests of this package run one at a time).
var Datapath = os.Getenv("CANOPY_E2E_DATAPATH")

// KernelDatapath reports whether the lab runs its agents on the kernel
// fast path.
func KernelDatapath() bool { return Datapath == "kernel" }

// Plug waits until the host's agent has the TAP up in the host namespace,
// then moves it into the VM namespace and configures it. After an agent
// restart the TAP is a new device (the old one went with the old agent's
// descriptor): Plug again is what a hypervisor's re-plug does.
func (vm *VM) Plug() {
	l := vm.l
	l.t.Helper()
	if KernelDatapath() {
		return // a veth pair outlives the agent
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", vm.Host.NS, "-o", "link", "show", vm.Tap).CombinedOutput()
		if err == nil && strings.Contains(string(out), ",UP") {
			break
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("agent on %s did not plug %s within 20s:\n%s", vm.Host.Name, vm.Tap, vm.Host.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	l.must("ip", "-n", vm.Host.NS, "link", "set", vm.Tap, "netns", vm.NS)
	vm.configure()
}

// configure gives the VM's NIC its MAC, MTU, address and default route.
func (vm *VM) configure() {
	l := vm.l
	l.must("ip", "-n", vm.NS, "link", "set", vm.Tap, "address", vm.MAC, "mtu", fmt.Sprint(vm.MTU), "up")
	l.must("ip", "-n", vm.NS, "addr", "add", vm.CIDR, "dev", vm.Tap)
	if vm.GW != "" {
		l.must("ip", "-n", vm.NS, "route", "add", "default", "via", vm.GW)
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
