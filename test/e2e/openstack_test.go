package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/neutron"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestOpenStackWalkthrough (issue 14) drives the Neutron and Keystone
// endpoints with Debian's OpenStack client, as a tenant whose project is a
// Canopy account: a network and a subnet, two ports bound on two agent
// hosts (binding:host_id, as Nova binds them), a guest behind each port's
// TAP (named as Nova's libvirt driver names it) that gets its address by
// DHCP and reaches the other through the project's default group; the
// ports turn ACTIVE. A group made with `security group create` guards a
// third guest: its rule naming the default group lets in ICMP from a, and
// c reaches a only once the default group names it. A router on net1 and
// a second network joins them (a guest there reaches a), and set down it
// carries nothing until it is up again. Every step must exit 0, and a refused one (deleting a
// network with ports) must fail with Neutron's error.
func TestOpenStackWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Fatal("openstack (Debian's python3-openstackclient, installed by make deps) is needed")
	}
	// A gateway host with an uplink to the outside, and the public pool
	// (the external network) routed to it there.
	l := cloudLab(t, `{"gateways": [{"host": "gw1", "interface": "edge0", "address": "192.0.2.2/24", "next_hop": "192.0.2.1"}]}`, "203.0.113.0/28")
	gw1 := l.AddHostIn("gw1", "us-east-1z", false)
	h1, h2 := l.AddHost("h1"), l.AddHost("h2")
	up := l.AddOutside("up", gw1, "edge0", "192.0.2.1/24")
	if o, err := up.Exec("ip", "route", "add", "203.0.113.0/28", "via", "192.0.2.2", "dev", "edge0"); err != nil {
		t.Fatalf("upstream route to the pool: %v %s", err, o)
	}
	// The tenant's credentials as `canopy account create --openrc` prints
	// them.
	rc := netns.ParseOpenrc(l.CLI("account", "create", "e2e", "--openrc", "http://127.0.0.1:5000/v3"))
	if len(rc) < 6 {
		t.Fatalf("openrc: %v", rc)
	}
	wrong := append(slices.Clone(rc), "OS_PASSWORD=wrong")
	// A second account's clouds.yaml, used by name: it sees none of e2e's networks.
	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(l.CLI("account", "create", "other", "--clouds-yaml", "http://127.0.0.1:5000/v3")), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCloud := []string{"OS_CLIENT_CONFIG_FILE=" + clouds, "OS_CLOUD=other"}
	osc := func(args ...string) string {
		t.Helper()
		out, err := l.OpenStack(rc, args...)
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	osc("network", "create", "net1")
	// The subnet's DNS server and host route reach the guests' DHCP
	// leases (busybox udhcpc's dns and staticroutes, option 121).
	osc("subnet", "create", "--network", "net1", "--subnet-range", "10.20.0.0/24",
		"--dns-nameserver", "192.0.2.53", "--host-route", "destination=198.51.100.0/24,gateway=10.20.0.9", "sub1")
	osc("network", "set", "--tag", "blue", "net1")
	if out := osc("network", "list", "--tags", "blue", "-f", "value", "-c", "Name"); out != "net1" {
		t.Errorf("network list --tags blue: %q, want net1", out)
	}
	type port struct {
		ID       string `json:"id"`
		MAC      string `json:"mac_address"`
		Status   string `json:"status"`
		Host     string `json:"binding_host_id"`
		FixedIPs []struct {
			IP string `json:"ip_address"`
		} `json:"fixed_ips"`
	}
	create := func(name string, h *netns.Host, extra ...string) port {
		t.Helper()
		var p port
		out := osc(append([]string{"port", "create", "--network", "net1", "--host", h.Name, name, "-f", "json"}, extra...)...)
		if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.FixedIPs) != 1 || p.Host != h.Name {
			t.Fatalf("port create: %v\n%s", err, out)
		}
		return p
	}
	pa, pb := create("pa", h1), create("pb", h2)

	a := l.AddGuest("a", h1, neutron.TapName(pa.ID), pa.MAC, 1450)
	b := l.AddGuest("b", h2, neutron.TapName(pb.ID), pb.MAC, 1450)
	for _, c := range []struct {
		vm *netns.VM
		p  port
	}{{a, pa}, {b, pb}} {
		if lease := dhcpClient(t, c.vm); lease["ip"] != c.p.FixedIPs[0].IP || lease["mtu"] != "1450" || lease["router"] != "10.20.0.1" ||
			lease["dns"] != "192.0.2.53" || lease["staticroutes"] != "198.51.100.0/24 10.20.0.9 0.0.0.0/0 10.20.0.1" {
			t.Errorf("%s's lease: ip %s mtu %s router %s dns %s staticroutes %q, want %s 1450 10.20.0.1 192.0.2.53 %q", c.vm.Name, lease["ip"], lease["mtu"], lease["router"],
				lease["dns"], lease["staticroutes"], c.p.FixedIPs[0].IP, "198.51.100.0/24 10.20.0.9 0.0.0.0/0 10.20.0.1")
		}
	}
	if out, ok := a.Ping(pb.FixedIPs[0].IP, 3); !ok {
		t.Errorf("a → b (%s) across hosts: %s", pb.FixedIPs[0].IP, out)
	}
	for _, p := range []port{pa, pb} {
		waitUntil(t, p.ID+" ACTIVE", func() bool {
			out, err := l.OpenStack(rc, "port", "show", p.ID, "-f", "value", "-c", "status")
			return err == nil && out == "ACTIVE"
		})
	}
	if out := osc("port", "list", "--host", "h1", "-f", "value", "-c", "ID"); out != pa.ID {
		t.Errorf("port list --host h1: %q, want %s", out, pa.ID)
	}
	// A rule on the ports' group (the project's default).
	sg := strings.Trim(osc("port", "show", pa.ID, "-f", "value", "-c", "security_group_ids"), "[]' ") // a Python list
	if id := osc("security", "group", "show", "default", "-f", "value", "-c", "id"); id != sg {
		t.Errorf("the ports' group %s, the project's default %s", sg, id)
	}
	osc("security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "8080", sg)
	if out := osc("security", "group", "rule", "list", sg, "-f", "value", "-c", "Port Range"); !strings.Contains(out, "8080:8080") {
		t.Errorf("rules of %s: %s", sg, out)
	}
	// A group of the project: c is in "web" only, which lets in ICMP from
	// the default group's members. a (default) reaches c; c does not reach
	// a (the default group lets in its own members only) until a rule of
	// the default group names web.
	osc("security", "group", "create", "web")
	osc("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "--remote-group", "default", "web")
	pc := create("pc", h2, "--security-group", "web")
	c := l.AddGuest("c", h2, neutron.TapName(pc.ID), pc.MAC, 1450)
	if lease := dhcpClient(t, c); lease["ip"] != pc.FixedIPs[0].IP {
		t.Errorf("c's lease: %v, want %s", lease, pc.FixedIPs[0].IP)
	}
	if out, ok := a.Ping(pc.FixedIPs[0].IP, 3); !ok {
		t.Errorf("a (default) → c (web, ICMP from default): %s", out)
	}
	if out, ok := c.Ping(pa.FixedIPs[0].IP, 2); ok {
		t.Errorf("c (web) → a (default, its members only) got through: %s", out)
	}
	osc("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "--remote-group", "web", "default")
	waitUntil(t, "c → a once default lets web in", func() bool { _, ok := c.Ping(pa.FixedIPs[0].IP, 1); return ok })
	if out, err := l.OpenStack(rc, "security", "group", "delete", "web"); err == nil || !strings.Contains(out, "in use") {
		t.Errorf("security group delete web with a port in it: %v %s", err, out)
	}
	// A router with the external gateway and an interface on sub1, and a
	// floating IP on pa: the outside reaches a at it, and a's connections
	// out come from it; moved to pc, it reaches c instead; gone, nothing.
	osc("router", "create", "r1")
	osc("router", "set", "--external-gateway", "public", "--disable-snat", "r1")
	osc("router", "add", "subnet", "r1", "sub1")
	osc("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "--remote-ip", "0.0.0.0/0", "default")
	osc("security", "group", "rule", "create", "--ingress", "--protocol", "icmp", "--remote-ip", "0.0.0.0/0", "web")
	fip := osc("floating", "ip", "create", "public", "--port", pa.ID, "-f", "value", "-c", "floating_ip_address")
	waitUntil(t, "the outside pings a's floating IP "+fip, func() bool { _, ok := up.Ping(fip, 1); return ok })
	if out, ok := a.Ping("192.0.2.1", 2); !ok {
		t.Errorf("a → the outside (192.0.2.1) through its floating IP: %s", out)
	}
	osc("floating", "ip", "set", "--port", pc.ID, fip)
	waitUntil(t, "the outside pings the moved floating IP "+fip, func() bool { _, ok := up.Ping(fip, 1); return ok })
	// Only c can answer at it now: a has no public address any more.
	waitUntil(t, "a to lose its way out with its floating IP", func() bool { _, ok := a.Ping("192.0.2.1", 1); return !ok })
	osc("floating", "ip", "unset", "--port", fip)
	waitUntil(t, "the disassociated floating IP "+fip+" to stop answering", func() bool { _, ok := up.Ping(fip, 1); return !ok })
	// SNAT on: a, without a floating IP, reaches the outside, which sees
	// its connection come from the router's gateway address.
	osc("router", "set", "--external-gateway", "public", "--enable-snat", "r1")
	var r1 struct {
		Gateway struct {
			IPs []struct {
				IP string `json:"ip_address"`
			} `json:"external_fixed_ips"`
			SNAT bool `json:"enable_snat"`
		} `json:"external_gateway_info"`
	}
	out := osc("router", "show", "r1", "-f", "json")
	if err := json.Unmarshal([]byte(out), &r1); err != nil {
		t.Errorf("router show: %v\n%s", err, out)
	}
	gwInfo := r1.Gateway
	if len(gwInfo.IPs) != 1 || !gwInfo.SNAT {
		t.Fatalf("r1's gateway: %+v", gwInfo)
	}
	peers := listenPeers(t, up.NS, "192.0.2.1:9000")
	waitUntil(t, "a to open TCP to the outside through SNAT", func() bool { return tcpConnects(a.NS, "192.0.2.1", 9000) })
	if got := peers.after(0).String(); got != gwInfo.IPs[0].IP {
		t.Errorf("the outside sees a's connection from %s, want r1's gateway address %s", got, gwInfo.IPs[0].IP)
	}
	if out, err := l.OpenStack(rc, "router", "remove", "subnet", "r1", "sub1"); err != nil {
		t.Errorf("router remove subnet: %v %s", err, out)
	}
	// A router on two networks joins them: d on net2 reaches a on net1,
	// not while the router is down, again once it is up.
	osc("network", "create", "net2")
	osc("subnet", "create", "--network", "net2", "--subnet-range", "10.21.0.0/24", "sub2")
	var pd port
	if out := osc("port", "create", "--network", "net2", "--host", h1.Name, "pd", "-f", "json"); json.Unmarshal([]byte(out), &pd) != nil || len(pd.FixedIPs) != 1 {
		t.Fatalf("port create on net2: %s", out)
	}
	d := l.AddGuest("d", h1, neutron.TapName(pd.ID), pd.MAC, 1450)
	if lease := dhcpClient(t, d); lease["ip"] != pd.FixedIPs[0].IP {
		t.Errorf("d's lease: %v, want %s", lease, pd.FixedIPs[0].IP)
	}
	osc("router", "create", "r2")
	osc("router", "add", "subnet", "r2", "sub1")
	osc("router", "add", "subnet", "r2", "sub2")
	waitUntil(t, "d (net2) → a (net1) through r2", func() bool { _, ok := d.Ping(pa.FixedIPs[0].IP, 1); return ok })
	osc("router", "set", "--disable", "r2")
	waitUntil(t, "d → a to stop with r2 down", func() bool { _, ok := d.Ping(pa.FixedIPs[0].IP, 1); return !ok })
	osc("router", "set", "--enable", "r2")
	waitUntil(t, "d → a again with r2 up", func() bool { _, ok := d.Ping(pa.FixedIPs[0].IP, 1); return ok })
	if out := osc("port", "list", "--router", "r2", "-f", "value", "-c", "Fixed IP Addresses"); !strings.Contains(out, "10.20.0.1") || !strings.Contains(out, "10.21.0.1") {
		t.Errorf("r2's ports: %s", out)
	}
	// Refused, with Neutron's error, and nothing changes.
	if out, err := l.OpenStack(rc, "network", "delete", "net1"); err == nil || !strings.Contains(out, "ports still in use") {
		t.Errorf("network delete with ports: %v %s", err, out)
	}
	if out, err := l.OpenStack(rc, "subnet", "create", "--network", "net1", "--subnet-range", "10.20.0.128/25", "overlap"); err == nil || !strings.Contains(out, "overlaps") {
		t.Errorf("overlapping subnet: %v %s", err, out)
	}
	if out, ok := b.Ping(pa.FixedIPs[0].IP, 1); !ok {
		t.Errorf("b → a after the refused calls: %s", out)
	}
	if out, err := l.OpenStack(otherCloud, "network", "list", "-f", "value", "-c", "Name"); err != nil || strings.Contains(out, "net1") || !strings.Contains(out, "public") {
		t.Errorf("another project's network list (clouds.yaml): %v %q, want the external network and not net1", err, out)
	}
	// A wrong password is refused by Keystone.
	if out, err := l.OpenStack(wrong, "network", "list"); err == nil {
		t.Errorf("a wrong password listed networks: %s", out)
	}
}
