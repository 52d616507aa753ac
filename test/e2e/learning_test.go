package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// rxPackets reads how many frames a VM's interface has received.
func rxPackets(t *testing.T, vm *netns.VM) int {
	t.Helper()
	out, err := vm.Exec("cat", "/sys/class/net/"+vm.Tap+"/statistics/rx_packets")
	if err != nil {
		t.Fatalf("%s rx_packets: %v %s", vm.Name, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("%s rx_packets: %q", vm.Name, out)
	}
	return n
}

// quietVM turns IPv6 off in a VM (no neighbour discovery or MLD chatter:
// every frame a test counts is one it sent on purpose).
func quietVM(t *testing.T, vm *netns.VM) {
	t.Helper()
	if out, err := vm.Exec("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"); err != nil {
		t.Fatalf("%s: %v %s", vm.Name, err, out)
	}
}

// settled waits until the VMs' receive counters stop moving (the same for
// 400 ms) and returns them; it fails the test when they never do.
func settled(t *testing.T, what string, vms ...*netns.VM) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	read := func() []int {
		out := make([]int, len(vms))
		for i, vm := range vms {
			out[i] = rxPackets(t, vm)
		}
		return out
	}
	last := read()
	for {
		time.Sleep(400 * time.Millisecond)
		cur := read()
		if fmt.Sprint(cur) == fmt.Sprint(last) {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still receiving after 20 s (%v → %v)", what, last, cur)
		}
		last = cur
	}
}

// grows waits until vm has received at least n more frames than base.
func grows(t *testing.T, what string, vm *netns.VM, base, n int) {
	t.Helper()
	waitUntil(t, what, func() bool { return rxPackets(t, vm) >= base+n })
}

// TestSharedLearning is issue 9's "what it must show" 1 on three agent
// hosts, with real frames. Four VMs on one bridge whose ports know no MAC
// (ports bound as a hypervisor hook binds them, so the bridge learns):
// vm1 and vm4 on h1, vm2 on h2, vm3 on h3. vm1 and vm3 stream pings to an
// address whose MAC z nobody owns yet: the frames flood, on both hosts'
// cached flows, and vm4 receives them. Then vm2 takes MAC z and says one
// thing: h2 learns it, every host follows, the cached floods stop at once
// and new flows (vm4's) go to vm2 only. Then z moves to vm3 (another host)
// and to vm4 (the senders' own host): the stream follows each time.
func TestSharedLearning(t *testing.T) {
	l := netns.New(t, canopyBin, netns.Options{})
	h1, h2, h3 := l.AddHost("h1"), l.AddHost("h2"), l.AddHost("h3")
	l.CLI("bridge", "create", "lb")
	port := func(name string) string { return idOf(t, l.CLI("bridge", "port", "add", "lb", "--name", name)) }
	vm1 := l.AddVM("vm1", h1, port("p1"), mac(1), "10.44.0.1/24", "", 0)
	vm2 := l.AddVM("vm2", h2, port("p2"), mac(2), "10.44.0.2/24", "", 0)
	vm3 := l.AddVM("vm3", h3, port("p3"), mac(3), "10.44.0.3/24", "", 0)
	vm4 := l.AddVM("vm4", h1, port("p4"), mac(4), "10.44.0.4/24", "", 0)
	const z, zIP = "02:00:00:00:00:7a", "10.44.0.99"
	for _, vm := range []*netns.VM{vm1, vm2, vm3, vm4} {
		quietVM(t, vm)
		// The pingers know z's MAC already (no ARP to answer): every frame
		// they send is addressed to a MAC the network has to find.
		if out, err := vm.Exec("ip", "neigh", "replace", zIP, "lladdr", z, "dev", vm.Tap, "nud", "permanent"); err != nil {
			t.Fatalf("%s: %v %s", vm.Name, err, out)
		}
	}
	// The sources' own MACs are learned as soon as they send.
	mustPing(t, vm1, vm2.IP())
	mustPing(t, vm3, vm4.IP())
	mustPing(t, vm4, vm2.IP())
	vms := []*netns.VM{vm1, vm2, vm3, vm4}
	for _, vm := range vms {
		// Nobody answers the pings, and nobody ARPs (every neighbour is
		// static, the kernel's probes of a MAC that moved would flood):
		// only the streams and the frames the test sends move counters.
		for _, o := range vms {
			if o != vm {
				if out, err := vm.Exec("ip", "neigh", "replace", o.IP(), "lladdr", o.MAC, "dev", vm.Tap, "nud", "permanent"); err != nil {
					t.Fatalf("%s: %v %s", vm.Name, err, out)
				}
			}
		}
		if out, err := vm.Exec("sh", "-c", "echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all"); err != nil {
			t.Fatalf("%s: %v %s", vm.Name, err, out)
		}
	}

	// Phase 1: an unknown destination floods, from h1 and from h3.
	base := settled(t, "the lab at rest", vm1, vm2, vm3, vm4)
	vm1.Background("ping", "-q", "-i", "0.01", zIP)
	stop3 := vm3.Background("ping", "-q", "-i", "0.01", zIP)
	grows(t, "vm4 to receive vm1's floods", vm4, base[3], 20)
	grows(t, "vm1 to receive vm3's floods", vm1, base[0], 20)
	grows(t, "vm3 to receive vm1's floods", vm3, base[2], 20)

	// Phase 2: vm2 takes z and sends one frame.
	setMAC(t, vm2, z)
	_, _ = vm2.Exec("ping", "-c", "1", "-W", "1", vm1.IP())
	start := time.Now()
	after := settled(t, "the floods to stop once z is learned", vm1, vm3, vm4)
	t.Logf("floods stopped (counters still within 400 ms) %v after z's first frame", time.Since(start).Round(time.Millisecond))
	v2 := rxPackets(t, vm2)
	grows(t, "vm2 to receive both streams", vm2, v2, 40)
	// A new flow from h1 (vm4) goes to vm2 alone.
	out, _ := vm4.Exec("ping", "-c", "20", "-i", "0.01", "-W", "1", zIP)
	_ = out
	grows(t, "vm2 to receive vm4's new flow", vm2, v2, 20)
	// Flooded, its 20 pings would reach vm1 and vm3 too. (A stray frame or
	// two — a kernel's probe on some VM — may move a counter: the test
	// tells a flood, 20 more, from those.)
	if now := settled(t, "after vm4's new flow", vm1, vm3, vm4); now[0]-after[0] >= 20 || now[1]-after[1] >= 20 {
		t.Errorf("vm4's new flow to z reached vm1 or vm3 (%v → %v)", after, now)
	} else if now[0] != after[0] || now[1] != after[1] {
		t.Logf("vm1 and vm3 received %d and %d other frames meanwhile", now[0]-after[0], now[1]-after[1])
	}
	for _, h := range []*netns.Host{h1, h2, h3} {
		if n := h.Metric(`canopy_agent_learned_entries_total{source="remote",table="mac"}`); n == 0 && h != h2 {
			t.Errorf("%s applied no MAC entry learned elsewhere", h.Name)
		}
	}

	// Phase 3: z moves to vm3, on h3 — another host than the old owner's
	// and the sender's. vm1's stream (a cached flow to h2) follows it.
	stop3()
	setMAC(t, vm2, mac(2))
	setMAC(t, vm3, z)
	_, _ = vm3.Exec("ping", "-c", "1", "-W", "1", vm1.IP())
	start = time.Now()
	v3 := rxPackets(t, vm3)
	grows(t, "vm3 to receive vm1's stream after the move", vm3, v3, 20)
	settled(t, "vm2 to stop receiving vm1's stream", vm2)
	t.Logf("the stream followed z to h3 within %v", time.Since(start).Round(time.Millisecond))

	// Phase 4: z moves to vm4, on h1, the sender's own host.
	setMAC(t, vm3, mac(3))
	setMAC(t, vm4, z)
	_, _ = vm4.Exec("ping", "-c", "1", "-W", "1", vm1.IP())
	v4 := rxPackets(t, vm4)
	grows(t, "vm4 to receive vm1's stream after the move", vm4, v4, 20)
	settled(t, "vm3 to stop receiving vm1's stream", vm3)
}

// setMAC changes a VM interface's MAC in place (a TAP takes a new address
// while up).
func setMAC(t *testing.T, vm *netns.VM, m string) {
	t.Helper()
	if out, err := vm.Exec("ip", "link", "set", "dev", vm.Tap, "address", m); err != nil {
		t.Fatalf("%s: %v %s", vm.Name, err, out)
	}
}

// TestEdgeFromComputeHost is issue 9's "what it must show" 2: the gateway
// host (gw) holds the edge's uplink and runs no instance; instances run on
// c1 and c2. Right after launch, with no traffic through the gateway host
// before: an instance with an elastic IP is reachable from an outside
// namespace behind the uplink and reaches it, and an instance in a private
// subnet reaches it through a NAT gateway. The next hop's MAC is learned
// on the gateway host only; the compute hosts get it through the store.
func TestEdgeFromComputeHost(t *testing.T) {
	l := cloudLab(t, `{"gateways": [
		{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24", "next_hop": "192.0.2.1"}]}`, "203.0.113.0/28")
	// Zones keep the instances off the gateway host (whose agent runs no
	// instance driver anyway).
	gw := l.AddHostIn("gw", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	l.AddHostIn("c2", "us-east-1b", true)
	waitUntil(t, "the uplink bound to the gateway host", func() bool {
		_, host, iface := edgeUplink(t, l)
		return host == gw.ID() && iface == "edge0"
	})
	out := l.AddOutside("out", gw, "edge0", "192.0.2.1/24")
	if o, err := out.Exec("ip", "route", "add", "203.0.113.0/28", "via", "192.0.2.2"); err != nil {
		t.Fatalf("outside route: %v\n%s", err, o)
	}

	tn := newTenant(t, l)
	vpcID, pub, _ := tn.internetVPC("10.31.0.0/16", "10.31.1.0/24", "us-east-1a")
	priv := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.31.2.0/24", "--availability-zone", "us-east-1b", "--query", "Subnet.SubnetId")
	sg := tn.icmpGroup(vpcID)

	// The NAT gateway in the public subnet, the private subnet's default
	// route through it.
	natAlloc := tn.ec2("allocate-address", "--domain", "vpc", "--query", "AllocationId")
	nat := tn.ec2("create-nat-gateway", "--subnet-id", pub, "--allocation-id", natAlloc, "--query", "NatGateway.NatGatewayId")
	tn.ec2("wait", "nat-gateway-available", "--nat-gateway-ids", nat)
	privRtb := tn.ec2("create-route-table", "--vpc-id", vpcID, "--query", "RouteTable.RouteTableId")
	tn.ec2("create-route", "--route-table-id", privRtb, "--destination-cidr-block", "0.0.0.0/0", "--nat-gateway-id", nat)
	tn.ec2("associate-route-table", "--route-table-id", privRtb, "--subnet-id", priv)

	allocID, eip := tn.allocate()
	a := tn.run(pub, sg, "")
	tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", a.id)
	b := tn.run(priv, sg, "")
	// The instance speaks first: its packets wait for the upstream's MAC,
	// which only the gateway host can learn.
	if !within(10*time.Second, func() bool { return nsPing(a.ns, "192.0.2.1") }) {
		t.Errorf("%s (elastic IP, on c1) cannot ping outside", a.id)
	}
	if !within(10*time.Second, func() bool { _, ok := out.Ping(eip, 1); return ok }) {
		t.Errorf("outside cannot ping the elastic IP %s of %s", eip, a.id)
	}
	if !within(10*time.Second, func() bool { return nsPing(b.ns, "192.0.2.1") }) {
		t.Errorf("%s (private, on c2) cannot reach outside through the NAT gateway", b.id)
	}
	if n := gw.Metric(`canopy_agent_learned_entries_total{source="local",table="arp"}`); n == 0 {
		t.Error("the gateway host learned no ARP entry")
	}
}
