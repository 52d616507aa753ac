package instance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/dhcp"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func TestNamespaceName(t *testing.T) {
	for in, want := range map[string]string{
		"i-0123456789abcdef0": "ci-456789abcdef0",
		"i-12345678":          "ci-i-12345678",
	} {
		if got := NamespaceName(in); got != want {
			t.Errorf("NamespaceName(%q) = %q, want %q", in, got, want)
		}
	}
}

// rig is one host's driver against a real embedded etcd, with the test
// playing the agent: it plugs the host end of the ENI's veth pair, as the
// agent does, and answers DHCP on it with internal/dhcp.
type rig struct {
	t     *testing.T
	store *nsdb.Store
	lease *nsdb.Lease
	dir   string
	host  string
}

func newRig(t *testing.T) *rig {
	if os.Geteuid() != 0 {
		t.Fatal("the netns driver test needs root")
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		t.Fatal("busybox is needed (apt-get install busybox)")
	}
	s, _ := nsdbtest.OpenEmbedded(t)
	l, err := s.GrantLease(context.Background(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return &rig{t: t, store: s, lease: l, dir: t.TempDir(), host: "host-1"}
}

func (r *rig) driver(ctx context.Context) (*Driver, chan error) {
	d, err := New(Config{Store: r.store, HostID: r.host, StateDir: r.dir, Lease: func() *nsdb.Lease { return r.lease }})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done, exited := make(chan error, 1), make(chan struct{})
	go func() { done <- d.Run(ctx); close(exited) }()
	r.t.Cleanup(func() { cancel(); <-exited })
	return d, done
}

func (r *rig) put(coll, id string, v any) {
	b, _ := json.Marshal(v)
	if _, err := r.store.Client().Put(context.Background(), r.store.Prefix()+nsdb.VPCPrefix+coll+"/"+id, string(b)); err != nil {
		r.t.Fatal(err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// instance places an instance with one ENI on the rig's host.
func (r *rig) instance(ip string) (*vpc.Instance, *vpc.NetworkInterface) {
	in := &vpc.Instance{ID: "i-" + randomHex(17), OwnerID: "111122223333", State: "pending", HostID: r.host}
	eni := &vpc.NetworkInterface{ID: "eni-" + randomHex(17), MacAddress: "02:aa:bb:" + randomHex(2) + ":" + randomHex(2) + ":01",
		PrivateIPs: []vpc.PrivateIP{{Address: netip.MustParseAddr(ip), Primary: true}},
		Attachment: &vpc.ENIAttachment{ID: "eni-attach-1", InstanceID: in.ID, Status: "attached"}}
	r.put("network_interfaces", eni.ID, eni)
	r.put("instances", in.ID, in)
	r.t.Cleanup(func() {
		_ = teardown(r.dir, record{InstanceID: in.ID, Netns: NamespaceName(in.ID), Ifaces: []string{vpc.HostInterfaceName(eni.ID)}})
	})
	return in, eni
}

// plug waits for the host end of an ENI's veth pair (the driver makes it)
// and attaches to it as the agent does.
func (r *rig) plug(host string) datapath.Port {
	r.t.Helper()
	var port datapath.Port
	waitFor(r.t, "the host end "+host, func() bool {
		p, err := datapath.Plug(host)
		if err != nil {
			return false
		}
		port = p
		return true
	})
	return port
}

// serveDHCP answers DHCP on the port until it is closed, like the agent.
func serveDHCP(port datapath.Port, eni *vpc.NetworkInterface) {
	mac, _ := topology.ParseMAC(eni.MacAddress)
	dp := &dhcp.Port{MAC: mac, IPs: []netip.Addr{eni.PrimaryIP()}, Subnets: []*topology.DHCPSubnet{{
		Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"),
		DNSServers: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, DomainName: "ec2.internal", MTU: 1450}}}
	pkts := make([]datapath.Packet, 8)
	for i := range pkts {
		pkts[i].Buf = make([]byte, datapath.MaxFrame)
	}
	var p packet.Packet
	for {
		n, err := port.ReadBatch(pkts)
		if errors.Is(err, datapath.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range n {
			f := pkts[i].Frame()
			p.Decode(f)
			if !dhcp.IsRequest(&p) {
				continue
			}
			if reply, _ := dhcp.Respond(f, &p, dp); reply != nil {
				_, _ = port.WriteBatch([]datapath.Packet{{Buf: reply, N: len(reply)}})
			}
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inNS(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (r *rig) stateKey(id string) (State, int64, bool) {
	v, lease, ok, err := r.store.InstanceState(context.Background(), r.host, id)
	if err != nil || !ok {
		return State{}, 0, false
	}
	var st State
	if err := json.Unmarshal(v, &st); err != nil {
		r.t.Fatalf("state key: %v", err)
	}
	return st, int64(lease), true
}

// TestDriverLifecycle: an instance placed here becomes a namespace whose
// eth0 (the instance end of a veth pair whose host end the agent plugs) got
// the ENI's MAC and, from udhcpc, its address, mask, default route, MTU and
// resolv.conf; the state key says running and is bound to the lease. A
// restarted driver re-adopts it (same DHCP client, same veth pair, plugged
// again); terminating it removes namespace, veth pair, process, key and
// record.
func TestDriverLifecycle(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, done := r.driver(ctx)
	in, eni := r.instance("10.0.1.5")
	ns, tap := NamespaceName(in.ID), vpc.HostInterfaceName(eni.ID)

	port := r.plug(tap) // what the agent does once the port is bound here
	go serveDHCP(port, eni)
	waitFor(t, "the state key", func() bool { _, _, ok := r.stateKey(in.ID); return ok })
	st, lease, _ := r.stateKey(in.ID)
	if st.State != "running" || st.HostID != r.host || st.Netns != ns || st.Interfaces[eni.ID] != (Interface{Ifname: tap, IP: "10.0.1.5"}) {
		t.Errorf("state key = %+v", st)
	}
	if lease != int64(r.lease.ID()) {
		t.Errorf("state key lease %x, want the agent's %x", lease, r.lease.ID())
	}
	link := inNS(t, ns, "ip", "-o", "link", "show", "eth0")
	if !strings.Contains(link, eni.MacAddress) || !strings.Contains(link, "mtu 1450") {
		t.Errorf("eth0: want MAC %s and mtu 1450: %s", eni.MacAddress, link)
	}
	if a := inNS(t, ns, "ip", "-o", "-4", "addr", "show", "eth0"); !strings.Contains(a, "10.0.1.5/24") {
		t.Errorf("eth0 address: %s", a)
	}
	if rt := inNS(t, ns, "ip", "route", "show", "default"); !strings.Contains(rt, "via 10.0.1.1 dev eth0") {
		t.Errorf("default route: %s", rt)
	}
	if rc := inNS(t, ns, "cat", "/etc/resolv.conf"); !strings.Contains(rc, "nameserver 10.0.0.2") || !strings.Contains(rc, "search ec2.internal") {
		t.Errorf("resolv.conf: %q", rc)
	}
	if out, err := exec.Command("ip", "-d", "-o", "link", "show", tap).CombinedOutput(); err != nil || !strings.Contains(string(out), " veth ") {
		t.Errorf("host end %s: want a veth in the host namespace: %v %s", tap, err, out)
	}
	pid := dhcpPID(r.dir, ns)
	if pid == 0 {
		t.Fatal("no DHCP client recorded")
	}

	// Agent restart: the driver stops, the agent's socket closes.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	port.Close()
	if !nsExists(ns) || dhcpPID(r.dir, ns) != pid {
		t.Fatal("stopping the driver removed the instance")
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	_, done2 := r.driver(ctx2)
	port2 := r.plug(tap)
	defer port2.Close()
	go serveDHCP(port2, eni)
	// The re-attached socket carries the instance's traffic: a renewal
	// (SIGUSR1) is answered through it.
	if err := exec.Command("kill", "-USR1", fmt.Sprint(pid)).Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renewal logged", func() bool {
		b, _ := os.ReadFile(logPath(r.dir, ns))
		return strings.Count(string(b), "lease of 10.0.1.5 obtained") >= 2
	})
	if got := dhcpPID(r.dir, ns); got != pid {
		t.Errorf("DHCP client restarted on re-adoption: pid %d → %d", pid, got)
	}

	// Reboot: the DHCP client restarts.
	in.State, in.Reboots = "running", 1
	r.put("instances", in.ID, in)
	waitFor(t, "a new DHCP client", func() bool { p := dhcpPID(r.dir, ns); return p != 0 && p != pid })

	// Terminate.
	in.State = "shutting-down"
	r.put("instances", in.ID, in)
	waitFor(t, "the teardown", func() bool { _, _, ok := r.stateKey(in.ID); return !ok && !nsExists(ns) })
	if _, err := os.Stat(recordPath(r.dir, ns)); err == nil {
		t.Error("record left")
	}
	if err := exec.Command("kill", "-0", fmt.Sprint(pid)).Run(); err == nil {
		t.Error("DHCP client still alive")
	}
	if _, err := os.Stat(resolvDir(ns)); err == nil {
		t.Error("/etc/netns dir left")
	}
	if _, err := exec.Command("ip", "link", "show", tap).CombinedOutput(); err == nil {
		t.Errorf("host end %s left after the teardown", tap)
	}
	cancel2()
	<-done2
}

// TestPurge: Purge removes every recorded instance and nothing else.
func TestPurge(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, done := r.driver(ctx)
	in, eni := r.instance("10.0.1.6")
	port := r.plug(vpc.HostInterfaceName(eni.ID))
	defer port.Close()
	go serveDHCP(port, eni)
	waitFor(t, "the state key", func() bool { _, _, ok := r.stateKey(in.ID); return ok })
	cancel()
	<-done
	other := "ci-" + randomHex(12)
	if err := exec.Command("ip", "netns", "add", other).Run(); err != nil {
		t.Fatal(err)
	}
	defer exec.Command("ip", "netns", "del", other).Run()
	gone, err := Purge(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0] != NamespaceName(in.ID) || nsExists(gone[0]) {
		t.Errorf("Purge removed %v", gone)
	}
	if !nsExists(other) {
		t.Error("Purge removed a namespace it did not make")
	}
}
