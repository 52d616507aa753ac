package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/neutron"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestFirstPacketAfterPlug: a guest pinged from before its port is bound
// answers the first echo request the plug lets through. Its device (a
// veth, as a container runtime's or the lab's guest) exists, down, before
// Nova's bind (binding:host_id); a prober on the other host pings it every
// 5 ms from before the bind (it knows the guest's MAC: its own ARP is out
// of the picture). The guest's first answer is an ARP request for the
// prober. Before the agent waited for the guest's link to be up and knew
// the port before sending anything to it, that ARP request was lost (out
// of a link without carrier yet, or as a frame from a device the agent did
// not know yet), and Linux retransmits it only after its retransmission
// time (1 s; bench/neutron's bind → first packet of 1.02 s). Here the
// guest's retransmission time is 60 s: a lost ARP request shows as no reply
// within the 20 s the test waits (a bound far above the agents' own
// delays, the drop flows' 5 s TTL included), not as a slow one. Four ports,
// as the loss did not happen every time.
func TestFirstPacketAfterPlug(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Fatal("openstack (Debian's python3-openstackclient, installed by make deps) is needed")
	}
	l := netns.New(t, canopyBin, netns.Options{})
	h1, h2 := l.AddHost("h1"), l.AddHost("h2")
	rc := netns.ParseOpenrc(l.CLI("account", "create", "e2e", "--openrc", "http://127.0.0.1:5000/v3"))
	osc := func(args ...string) string {
		t.Helper()
		out, err := l.OpenStack(rc, args...)
		if err != nil {
			t.Fatalf("openstack %v: %v\n%s", args, err, out)
		}
		return out
	}
	osc("network", "create", "net1")
	osc("subnet", "create", "--network", "net1", "--subnet-range", "10.30.0.0/24", "sub1")
	type port struct {
		ID       string `json:"id"`
		MAC      string `json:"mac_address"`
		FixedIPs []struct {
			IP string `json:"ip_address"`
		} `json:"fixed_ips"`
	}
	create := func(name string, extra ...string) port {
		t.Helper()
		var p port
		out := osc(append([]string{"port", "create", "--network", "net1", name, "-f", "json"}, extra...)...)
		if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.FixedIPs) != 1 {
			t.Fatalf("port create: %v\n%s", err, out)
		}
		return p
	}
	ipc := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	pp := create("prober", "--host", h1.Name)
	prober := l.AddGuest("prober", h1, neutron.TapName(pp.ID), pp.MAC, 1450)
	ipc("-n", prober.NS, "addr", "add", pp.FixedIPs[0].IP+"/24", "dev", prober.Tap)

	for i := range 4 {
		p := create(fmt.Sprint("g", i))
		ip, tap := p.FixedIPs[0].IP, neutron.TapName(p.ID)
		ns := fmt.Sprintf("cplug-%d-%d", time.Now().UnixNano()%100000, i)
		ipc("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ipc("link", "add", tap, "netns", h2.NS, "mtu", "65535", "type", "veth", "peer", "name", "eth0", "netns", ns)
		ipc("-n", ns, "link", "set", "lo", "up")
		if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.neigh.eth0.retrans_time_ms=60000").CombinedOutput(); err != nil {
			t.Fatalf("sysctl: %v %s", err, out)
		}
		ipc("-n", ns, "link", "set", "eth0", "address", p.MAC, "mtu", "1450", "up")
		ipc("-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		ipc("-n", prober.NS, "neigh", "replace", ip, "lladdr", p.MAC, "dev", prober.Tap, "nud", "permanent")

		pg, err := netns.NewPinger(prober.NS, ip)
		if err != nil {
			t.Fatal(err)
		}
		pg.Interval = 5 * time.Millisecond
		pg.NewStream()
		type reply struct {
			at time.Time
			ok bool
		}
		ch := make(chan reply, 1)
		go func() { at, ok := pg.FirstReply(20 * time.Second); ch <- reply{at, ok} }()
		time.Sleep(100 * time.Millisecond) // requests meet the unbound port
		osc("port", "set", "--host", h2.Name, p.ID)
		bound := time.Now()
		r := <-ch
		pg.Close()
		if !r.ok {
			t.Fatalf("port %d (%s): no echo reply within 20 s of the bind: the guest's first answer was lost", i, ip)
		}
		t.Logf("port %d: first reply %v after the bind returned", i, r.at.Sub(bound).Round(time.Millisecond))
	}
}
