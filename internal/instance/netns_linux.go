package instance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// record is what the driver keeps in its state dir for every namespace it
// made, so that it tears down only its own namespaces, also after a restart.
type record struct {
	InstanceID string   `json:"instance_id"`
	Netns      string   `json:"netns"`
	Ifaces     []string `json:"ifaces"` // host ends of the instance's veth pairs
}

func recordPath(dir, ns string) string { return filepath.Join(dir, ns+".json") }
func pidPath(dir, ns string) string    { return filepath.Join(dir, ns+".pid") }
func logPath(dir, ns string) string    { return filepath.Join(dir, ns+".log") }
func resolvDir(ns string) string       { return filepath.Join("/etc/netns", ns) }

// readRecords lists the namespaces recorded in dir.
func readRecords(dir string) ([]record, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "ci-*.json"))
	if err != nil {
		return nil, err
	}
	var out []record
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.Netns == "" {
			errs = append(errs, fmt.Errorf("%s: not a record: %v", p, err))
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// writeRecord writes r if the file does not already hold it.
func writeRecord(dir string, r record) error {
	b, _ := json.Marshal(r)
	p := recordPath(dir, r.Netns)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

func nsExists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}

func ipCmd(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// createNS makes the instance's namespace (with iproute2, so that it is
// visible to `ip netns exec` like any other) and its resolv.conf.
func createNS(ns string) error {
	if err := os.MkdirAll(resolvDir(ns), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(resolvDir(ns), "resolv.conf"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	if err := ipCmd("netns", "add", ns); err != nil {
		return err
	}
	return ipCmd("-n", ns, "link", "set", "lo", "up")
}

// realize makes one instance's namespace, veth pairs and DHCP client, and
// reports whether it is up: eth0 holds the ENI's address.
func (d *Driver) realize(w *want) (bool, error) {
	dir := d.cfg.StateDir
	r := record{InstanceID: w.id, Netns: w.ns}
	for _, f := range w.ifaces {
		r.Ifaces = append(r.Ifaces, f.host)
	}
	// Recorded before it exists: a crash in between leaves nothing unowned.
	if err := writeRecord(dir, r); err != nil {
		return false, err
	}
	if !nsExists(w.ns) {
		if err := createNS(w.ns); err != nil {
			return false, err
		}
		d.log.Info("instance driver: namespace created", "instance_id", w.id, "netns", w.ns)
	}
	h, err := netns.GetFromName(w.ns)
	if err != nil {
		return false, err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return false, err
	}
	defer nh.Close()
	var eth0 netlink.Link
	for _, f := range w.ifaces {
		l, err := nh.LinkByName(f.inner)
		if err != nil {
			mac, _ := net.ParseMAC(f.mac)
			if err := makeVeth(f.host, f.inner, mac, h); err != nil {
				return false, err
			}
			if l, err = nh.LinkByName(f.inner); err != nil {
				return false, err
			}
			d.log.Info("instance driver: veth pair created", "instance_id", w.id, "interface", f.host, "device", f.inner)
		}
		if mac, err := net.ParseMAC(f.mac); err == nil && !bytes.Equal(l.Attrs().HardwareAddr, mac) {
			if err := nh.LinkSetHardwareAddr(l, mac); err != nil {
				return false, fmt.Errorf("%s: set MAC: %w", f.inner, err)
			}
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			if err := nh.LinkSetUp(l); err != nil {
				return false, fmt.Errorf("%s: up: %w", f.inner, err)
			}
		}
		if f.device == 0 {
			eth0 = l
		}
	}
	if eth0 == nil {
		return false, nil
	}
	running := dhcpRunning(dir, w.ns)
	if seen, ok := d.reboots[w.id]; ok && seen != w.reboot && running {
		d.log.Info("instance driver: reboot: restarting the DHCP client", "instance_id", w.id)
		stopDHCP(dir, w.ns)
		running = false
	}
	d.reboots[w.id] = w.reboot
	if !running {
		if err := d.startDHCP(w.ns); err != nil {
			return false, err
		}
	}
	want := ""
	for _, f := range w.ifaces {
		if f.device == 0 {
			want = f.ip
		}
	}
	addrs, err := nh.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.IP.String() == want {
			return true, nil
		}
	}
	return false, nil
}

// startDHCP runs busybox udhcpc on eth0 in the namespace. It is started in
// its own process group and recorded by pid: it outlives the agent, and
// the next agent finds it.
func (d *Driver) startDHCP(ns string) error {
	dir := d.cfg.StateDir
	logf, err := os.OpenFile(logPath(dir, ns), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", ns, d.cfg.Busybox, "udhcpc", "-f", "-i", "eth0",
		"-s", d.script, "-T", "1", "-t", "10", "-A", "1", "-O", "mtu", "-O", "staticroutes")
	cmd.Env = append(os.Environ(), "CANOPY_RESOLV="+filepath.Join(resolvDir(ns), "resolv.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("udhcpc in %s: %w", ns, err)
	}
	go func() { _ = cmd.Wait() }() // reap it; a dead client is restarted by the next reconcile
	if err := os.WriteFile(pidPath(dir, ns), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return err
	}
	d.log.Info("instance driver: DHCP client started", "netns", ns, "pid", cmd.Process.Pid)
	return nil
}

// dhcpPID returns the recorded DHCP client's pid if that process is alive,
// is udhcpc and runs in the namespace (pids are reused).
func dhcpPID(dir, ns string) int {
	b, err := os.ReadFile(pidPath(dir, ns))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("udhcpc")) {
		return 0
	}
	var a, b2 unix.Stat_t
	if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &a) != nil || unix.Stat(filepath.Join("/run/netns", ns), &b2) != nil {
		return 0
	}
	if a.Ino != b2.Ino || a.Dev != b2.Dev {
		return 0
	}
	return pid
}

func dhcpRunning(dir, ns string) bool { return dhcpPID(dir, ns) > 0 }

func stopDHCP(dir, ns string) {
	if pid := dhcpPID(dir, ns); pid > 0 {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	_ = os.Remove(pidPath(dir, ns))
}

// nsPIDs lists the processes in a namespace (`ip netns pids`).
func nsPIDs(ns string) []int {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// teardown removes a recorded instance: every process in its namespace,
// its veth pairs (in it or still in the host namespace), the namespace, its
// resolv.conf and the record.
func teardown(dir string, r record) error {
	if nsExists(r.Netns) {
		for _, pid := range nsPIDs(r.Netns) {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		if h, err := netns.GetFromName(r.Netns); err == nil {
			if nh, err := netlink.NewHandleAt(h); err == nil {
				links, _ := nh.LinkList()
				for _, l := range links {
					if l.Attrs().Name != "lo" {
						_ = nh.LinkDel(l)
					}
				}
				nh.Close()
			}
			h.Close()
		}
		if err := ipCmd("netns", "del", r.Netns); err != nil && nsExists(r.Netns) {
			return err
		}
	}
	for _, name := range r.Ifaces {
		// Gone with the namespace if the pair was complete. A TAP is a
		// leftover of a version that gave instances TAPs.
		if l, err := netlink.LinkByName(name); err == nil && (l.Type() == "veth" || l.Type() == "tuntap") {
			_ = netlink.LinkDel(l)
		}
	}
	_ = os.RemoveAll(resolvDir(r.Netns))
	for _, p := range []string{pidPath(dir, r.Netns), logPath(dir, r.Netns), recordPath(dir, r.Netns)} {
		_ = os.Remove(p)
	}
	return nil
}

// Purge tears down every instance recorded in a driver's state dir (canopy
// up on exit, canopy down) and returns the namespaces it removed. It does
// not touch the store: the state keys are bound to the agent's lease.
func Purge(dir string) ([]string, error) {
	recs, err := readRecords(dir)
	var done []string
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range recs {
		if err := teardown(dir, r); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, r.Netns)
	}
	slices.Sort(done)
	return done, errors.Join(errs...)
}

// hostEndMTU is the host end's MTU: the largest a veth takes, so that it
// never limits what the agent writes towards the instance or what the
// instance sends; the instance end's MTU (from DHCP) is the instance's.
const hostEndMTU = 65535

// makeVeth creates an ENI's veth pair: host in the host namespace, for the
// agent to plug (the port is bound to that name), and inner with the ENI's
// MAC in the instance's namespace ns. A host end left from a pair whose
// other end is gone is replaced. The host end carries nothing of the
// host's own: no IPv6 (its router solicitations and neighbour discovery
// would reach the instance) and no ARP answers for the host's addresses.
func makeVeth(host, inner string, mac net.HardwareAddr, ns netns.NsHandle) error {
	if l, err := netlink.LinkByName(host); err == nil {
		if l.Type() != "veth" && l.Type() != "tuntap" {
			return fmt.Errorf("%s exists and is a %s, not an instance's device", host, l.Type())
		}
		_ = netlink.LinkDel(l)
	}
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MTU: hostEndMTU}, PeerName: inner,
		PeerMTU: 1500, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s/%s: %w", host, inner, err)
	}
	for knob, val := range map[string]string{"ipv6/conf/" + host + "/disable_ipv6": "1", "ipv4/conf/" + host + "/arp_ignore": "8"} {
		// Best effort: IPv6 may be off in this kernel altogether.
		_ = os.WriteFile("/proc/sys/net/"+knob, []byte(val), 0o644)
	}
	return nil
}
