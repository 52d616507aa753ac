// Package netns is the end-to-end harness of the agent: a lab of network
// namespaces on this machine. One namespace holds the underlay (a Linux
// bridge), one the infrastructure (a real `canopy server` with its embedded
// etcd listening on the underlay), one per hypervisor "host" (a real
// `canopy agent` process, its tunnel address on the underlay) and one per
// "VM" (one end of a veth pair whose other end, in the host's namespace, is
// the bound port's device that the agent plugs; a real QEMU guest on its
// own TAP with StartGuest).
//
// Every namespace, process and temp dir is removed by t.Cleanup, also when
// the test fails. Only addresses inside these namespaces are used
// (10.99.0.0/24 on the underlay; whatever the test gives its VMs).
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Underlay addressing.
const (
	underlayNet = "10.99.0."
	infraIP     = underlayNet + "1"
	apiPort     = 8080
	etcdPort    = 2379
	metricsPort = 9100
)

// Lab is one set of namespaces with a server.
type Lab struct {
	t      testing.TB
	bin    string
	id     string // short random prefix of every namespace and device name
	dir    string
	mtu    int
	ul     string // underlay namespace
	infra  string
	server *proc
	hosts  []*Host
	vms    []*VM
	nHosts int
	args   []string // extra server arguments
}

// Options of a lab.
type Options struct {
	// UnderlayMTU of the underlay links (default 1500).
	UnderlayMTU int
	// ServerArgs are added to the server's command line (say
	// --cloud-config FILE).
	ServerArgs []string
}

// New builds the underlay and the infra namespace and starts the server.
func New(t testing.TB, bin string, o Options) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the netns lab needs root")
	}
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	l := &Lab{t: t, bin: bin, id: "cz" + hex.EncodeToString(b), dir: t.TempDir(), mtu: o.UnderlayMTU, args: o.ServerArgs}
	if l.mtu == 0 {
		l.mtu = 1500
	}
	l.ul, l.infra = l.id+"-ul", l.id+"-infra"
	t.Cleanup(l.cleanup)
	l.mustNS(l.ul)
	l.must("ip", "-n", l.ul, "link", "add", "br0", "type", "bridge")
	l.must("ip", "-n", l.ul, "link", "set", "br0", "up")
	l.mustNS(l.infra)
	l.plugUnderlay(l.infra, infraIP)
	l.startServer()
	return l
}

// plugUnderlay joins namespace ns to the underlay bridge with address ip.
func (l *Lab) plugUnderlay(ns, ip string) {
	a, b := l.id+"u"+ip[len(underlayNet):], "eth0"
	l.must("ip", "link", "add", a, "mtu", fmt.Sprint(l.mtu), "netns", l.ul, "type", "veth", "peer", "name", b, "mtu", fmt.Sprint(l.mtu), "netns", ns)
	l.must("ip", "-n", l.ul, "link", "set", a, "master", "br0", "up")
	l.must("ip", "-n", ns, "addr", "add", ip+"/24", "dev", b)
	l.must("ip", "-n", ns, "link", "set", b, "up")
	l.must("ip", "-n", ns, "link", "set", "lo", "up")
}

func (l *Lab) startServer() {
	data := l.serverData()
	args := append([]string{"server", "--data-dir", data,
		"--listen", fmt.Sprintf("%s:%d", infraIP, apiPort),
		"--etcd-client-url", l.Endpoints(),
		"--etcd-peer-url", "https://127.0.0.1:2380"}, l.args...)
	l.server = l.start("server", l.infra, args...)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := l.RunCLI("router", "list"); err == nil {
			return
		}
		if l.server.exited() {
			l.t.Fatalf("server exited during start:\n%s", l.server.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.t.Fatalf("server did not answer within 60s:\n%s", l.server.log.String())
}

// ServerLog is the server's output so far.
func (l *Lab) ServerLog() string { return l.server.log.String() }

// ServerExited reports whether the server process has ended.
func (l *Lab) ServerExited() bool { return l.server.exited() }

// KillServer kills the server (and its embedded etcd) with SIGKILL.
func (l *Lab) KillServer() { l.server.kill(syscall.SIGKILL) }

// StartServer starts the server again on the same data and addresses.
func (l *Lab) StartServer() {
	l.t.Helper()
	l.startServer()
}

// Endpoints is the etcd client URL agents use (TLS with client
// certificates: see Enroll and RootEtcdFlags).
func (l *Lab) Endpoints() string { return fmt.Sprintf("https://%s:%d", infraIP, etcdPort) }

// serverData is the server's data dir (its CA, root etcd credentials and
// admin token).
func (l *Lab) serverData() string { return filepath.Join(l.dir, "server") }

// RootEtcdFlags are etcdctl's flags to reach the lab's etcd as root (the
// server's own credentials), for a test that writes what only the server
// may.
func (l *Lab) RootEtcdFlags() []string {
	d := l.serverData()
	return []string{"--endpoints", l.Endpoints(), "--cacert", filepath.Join(d, "etcd-ca", "ca.crt"),
		"--cert", filepath.Join(d, "etcd-tls", "root.crt"), "--key", filepath.Join(d, "etcd-tls", "root.key")}
}

// RunCLI runs `canopy ARGS` against the lab's server (inside the infra
// namespace, as an operator on the server machine would).
func (l *Lab) RunCLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"netns", "exec", l.infra, l.bin}, args...)
	cmd := exec.CommandContext(ctx, "ip", full...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("CANOPY_URL=http://%s:%d", infraIP, apiPort),
		"CANOPY_DATA_DIR="+filepath.Join(l.dir, "server"), "HOME="+l.dir, "CANOPY_TOKEN=", "CANOPY_CONFIG=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		return o.String(), fmt.Errorf("canopy %s: %w\n%s%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), nil
}

// CLI runs the CLI with JSON output and fails the test on error; it
// returns the trimmed output.
func (l *Lab) CLI(args ...string) string {
	l.t.Helper()
	out, err := l.RunCLI(append(args, "-o", "json")...)
	if err != nil {
		l.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// Host is a hypervisor namespace running an agent.
type Host struct {
	l        *Lab
	Name, NS string
	IP       string // underlay / tunnel address
	stateDir string
	agent    *proc
	starts   int
	driver   string   // --instance-driver ("" = the agent's default)
	extra    []string // more agent flags
}

// AddHost creates a host namespace on the underlay and starts its agent in
// tunnel zone "tz".
func (l *Lab) AddHost(name string) *Host {
	l.t.Helper()
	l.nHosts++
	h := &Host{l: l, Name: name, NS: l.id + "-" + name, IP: fmt.Sprintf("%s%d", underlayNet, 10+l.nHosts),
		stateDir: filepath.Join(l.dir, "agent-"+name)}
	l.mustNS(h.NS)
	l.plugUnderlay(h.NS, h.IP)
	l.hosts = append(l.hosts, h)
	h.Start()
	return h
}

// Start starts (or restarts) the host's agent and waits until it answers
// /healthz (it holds a topology snapshot).
func (h *Host) Start() {
	l := h.l
	l.t.Helper()
	h.starts++
	if h.starts == 1 {
		h.enroll()
	}
	args := []string{"agent",
		"--enrollment", h.enrollDir(), "--host-name", h.Name, "--tunnel-ip", h.IP,
		"--tunnel-zone", "tz", "--state-dir", h.stateDir,
		"--metrics-listen", fmt.Sprintf("%s:%d", h.IP, metricsPort)}
	if h.driver != "" {
		args = append(args, "--instance-driver", h.driver)
	}
	if Datapath != "" {
		args = append(args, "--datapath", Datapath)
	}
	if KernelAttach != "" {
		args = append(args, "--kernel-attach", KernelAttach)
	}
	args = append(append(args, AgentFlags...), h.extra...)
	h.agent = l.startUnder(fmt.Sprintf("agent-%s-%d", h.Name, h.starts), h.NS, AgentPrefix, args...)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := h.Get("/healthz"); err == nil {
			return
		}
		if h.agent.exited() {
			l.t.Fatalf("agent %s exited during start:\n%s", h.Name, h.agent.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("agent %s not healthy within 30s:\n%s", h.Name, h.agent.log.String())
}

func (h *Host) enrollDir() string { return filepath.Join(h.l.dir, "enroll-"+h.Name) }

// enroll runs canopy host enroll for this host on the server's machine, as
// an operator does before starting the agent.
func (h *Host) enroll() {
	h.l.t.Helper()
	if _, err := h.l.RunCLI("host", "enroll", h.Name, "--out", h.enrollDir(), "--etcd-endpoints", h.l.Endpoints()); err != nil {
		h.l.t.Fatal(err)
	}
}

// Kill sends SIGKILL to the agent and waits for it to be gone.
func (h *Host) Kill() { h.agent.kill(syscall.SIGKILL) }

// Stop sends SIGTERM and waits.
func (h *Host) Stop() { h.agent.kill(syscall.SIGTERM) }

// ID is the host id the agent keeps in its state dir.
func (h *Host) ID() string {
	b, err := os.ReadFile(filepath.Join(h.stateDir, "host-id"))
	if err != nil {
		h.l.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Log is the agent's output so far.
func (h *Host) Log() string { return h.agent.log.String() }

// Get fetches a path from the agent's metrics listener (from inside the
// host's namespace).
func (h *Host) Get(path string) (string, error) {
	return h.l.Exec(h.NS, "curl", "-sf", "--max-time", "5", fmt.Sprintf("http://%s:%d%s", h.IP, metricsPort, path))
}

// apiFlags are the hook's REST flags: the lab's API and the operator token
// (from the server's data dir).
func (h *Host) apiFlags() []string {
	return []string{"--url", fmt.Sprintf("http://%s:%d", infraIP, apiPort), "--data-dir", h.l.serverData(), "--state-dir", h.stateDir}
}

// Bind runs `canopy agent bind PORT IFACE` on the host, as a hypervisor
// hook would (through the REST API, with the operator's token).
func (h *Host) Bind(port, iface string) {
	h.l.t.Helper()
	if out, err := h.l.Exec(h.NS, append([]string{h.l.bin, "agent", "bind", port, iface}, h.apiFlags()...)...); err != nil {
		h.l.t.Fatalf("agent bind: %v\n%s", err, out)
	}
}

// Unbind runs `canopy agent unbind PORT` on the host.
func (h *Host) Unbind(port string) {
	h.l.t.Helper()
	if out, err := h.l.Exec(h.NS, append([]string{h.l.bin, "agent", "unbind", port}, h.apiFlags()...)...); err != nil {
		h.l.t.Fatalf("agent unbind: %v\n%s", err, out)
	}
}

// Metric returns the sum of the agent's counter samples whose line starts
// with prefix (a metric name, optionally with a label prefix).
func (h *Host) Metric(prefix string) float64 {
	out, err := h.Get("/metrics")
	if err != nil {
		return -1
	}
	var sum float64
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			var v float64
			if f := strings.Fields(line); len(f) == 2 {
				fmt.Sscan(f[1], &v)
				sum += v
			}
		}
	}
	return sum
}

// Exec runs a command in namespace ns and returns its combined output.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *Lab) must(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *Lab) mustNS(name string) { l.must("ip", "netns", "add", name) }

// cleanup kills every process and deletes every namespace, in reverse.
func (l *Lab) cleanup() {
	for _, h := range l.hosts {
		if h.agent != nil {
			h.agent.kill(syscall.SIGKILL)
			if l.t.Failed() {
				l.t.Logf("agent %s log:\n%s", h.Name, h.agent.log.String())
			}
		}
	}
	if l.server != nil {
		l.server.kill(syscall.SIGKILL)
		if l.t.Failed() {
			l.t.Logf("server log (tail):\n%s", tail(l.server.log.String(), 4000))
		}
	}
	for _, vm := range l.vms {
		_ = exec.Command("ip", "netns", "del", vm.NS).Run()
	}
	for _, h := range l.hosts {
		// Only now that its agent is dead: a live instance driver would
		// make the namespaces again (they leaked, holding only lo).
		PurgeInstances(h.InstanceStateDir())
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
		// A kernel-datapath agent killed with SIGKILL leaves its pins.
		if b, err := os.ReadFile(filepath.Join(h.stateDir, "host-id")); err == nil {
			_ = os.RemoveAll(filepath.Join("/sys/fs/bpf/canopy", strings.TrimSpace(string(b))))
		}
	}
	_ = exec.Command("ip", "netns", "del", l.infra).Run()
	_ = exec.Command("ip", "netns", "del", l.ul).Run()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// proc is a background process with its output captured.
type proc struct {
	cmd  *exec.Cmd
	log  *syncBuf
	done chan struct{}
	once sync.Once
}

func (l *Lab) start(name, ns string, args ...string) *proc {
	l.t.Helper()
	return l.startUnder(name, ns, nil, args...)
}

// AgentPrefix is a command (and its arguments) the lab's agents run under,
// such as setpriv taking capabilities away; nil: none. A test sets it for
// the labs it builds.
var AgentPrefix []string

// startUnder is start with the binary run by prefix (nil: directly).
func (l *Lab) startUnder(name, ns string, prefix []string, args ...string) *proc {
	l.t.Helper()
	p := &proc{log: &syncBuf{}, done: make(chan struct{})}
	// nsenter enters only the network namespace: an instance driver's
	// namespaces (ip netns add, a bind mount under /run/netns) must be
	// visible outside, which `ip netns exec`'s private mount namespace
	// would prevent.
	cmd := append([]string{"--net=/run/netns/" + ns}, prefix...)
	p.cmd = exec.Command("nsenter", append(append(cmd, l.bin), args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) kill(sig syscall.Signal) {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
