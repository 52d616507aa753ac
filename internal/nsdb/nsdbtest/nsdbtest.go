// Package nsdbtest starts real etcd for tests: an embedded store on free
// loopback ports in a temporary directory, or an external cluster of etcd
// processes (Debian's etcd-server) on loopback.
package nsdbtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// FreeURL returns http://127.0.0.1:<port> for a port that was free a moment
// ago. (Another process may take it before the caller binds it; callers that
// start servers retry.)
func FreeURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// EmbeddedConfig is the config of a fresh embedded store in t's temporary
// directory on free loopback ports.
func EmbeddedConfig(t testing.TB) nsdb.Config {
	t.Helper()
	return nsdb.Config{
		DataDir:   filepath.Join(t.TempDir(), "etcd"),
		ClientURL: FreeURL(t),
		PeerURL:   FreeURL(t),
	}
}

// Open opens a store with cfg and closes it when the test ends.
func Open(t testing.TB, cfg nsdb.Config) *nsdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := nsdb.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("nsdb.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// OpenEmbedded opens a fresh store with an embedded etcd. It retries with new
// ports when a port it picked was taken meanwhile.
func OpenEmbedded(t testing.TB) (*nsdb.Store, nsdb.Config) {
	t.Helper()
	return OpenEmbeddedWith(t, nil)
}

// OpenEmbeddedWith is OpenEmbedded with mod (if not nil) applied to each
// attempt's configuration. Another test process can take a port between
// the moment it was seen free and etcd's bind: each attempt picks new ones.
func OpenEmbeddedWith(t testing.TB, mod func(nsdb.Config) nsdb.Config) (*nsdb.Store, nsdb.Config) {
	t.Helper()
	var last error
	for range 5 {
		cfg := EmbeddedConfig(t)
		if mod != nil {
			cfg = mod(cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		s, err := nsdb.Open(ctx, cfg)
		cancel()
		if err == nil {
			t.Cleanup(func() { s.Close() })
			return s, cfg
		}
		last = err
	}
	t.Fatalf("embedded store: %v", last)
	return nil, nsdb.Config{}
}

// EtcdBinary finds the etcd server binary: $CANOPY_EXTERNAL_ETCD, then
// /usr/bin/etcd, then $PATH. When there is none the test is skipped, except
// in CI as root (CI=true), where it fails: CI installs etcd-server, so a
// missing binary there is a broken setup, not a reason to test less.
func EtcdBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CANOPY_EXTERNAL_ETCD"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CANOPY_EXTERNAL_ETCD=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd"
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	msg := "no etcd binary: install Debian's etcd-server (apt-get install -y etcd-server) or set CANOPY_EXTERNAL_ETCD to an etcd binary"
	if os.Getuid() == 0 && os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Cluster is a set of etcd processes forming one cluster on loopback.
type Cluster struct {
	Endpoints []string
	// Root is what a client presents to a TLS cluster: its CA and a
	// certificate for etcd's root user (zero without TLS).
	Root  nsdb.Credentials
	procs []*exec.Cmd
	logs  []*bytes.Buffer
	tls   *clusterTLS
}

// clusterTLS are the certificates of a TLS cluster.
type clusterTLS struct {
	ca                *pki.CA
	srvCert, srvKey   string
	rootCert, rootKey string
}

// StartCluster starts an n-member etcd cluster in t's temporary directory
// and stops it when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return startClusterRetry(t, n, nil)
}

// StartTLSCluster starts an n-member etcd cluster serving TLS only, client
// and peer, requiring client certificates signed by ca (made for it in
// t's temporary directory).
func StartTLSCluster(t testing.TB, n int) (*Cluster, *pki.CA) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"), "test cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	ct := &clusterTLS{ca: ca}
	if ct.srvCert, ct.srvKey, err = ca.Issue(dir, "member", pki.IssueOptions{CommonName: "etcd-member", Server: true, Client: true,
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}); err != nil {
		t.Fatal(err)
	}
	if ct.rootCert, ct.rootKey, err = ca.Issue(dir, "root", pki.IssueOptions{CommonName: nsdb.RootUser, Client: true}); err != nil {
		t.Fatal(err)
	}
	return startClusterRetry(t, n, ct), ca
}

func startClusterRetry(t testing.TB, n int, ct *clusterTLS) *Cluster {
	bin := EtcdBinary(t)
	var last error
	for range 3 {
		c, err := startCluster(t, bin, n, ct)
		if err == nil {
			t.Cleanup(c.Stop)
			return c
		}
		last = err
	}
	t.Fatalf("etcd cluster: %v", last)
	return nil
}

func startCluster(t testing.TB, bin string, n int, ct *clusterTLS) (*Cluster, error) {
	dir := t.TempDir()
	c := &Cluster{tls: ct}
	url := FreeURL
	if ct != nil {
		url = func(t testing.TB) string { return "https" + strings.TrimPrefix(FreeURL(t), "http") }
		c.Root = nsdb.Credentials{CAFile: ct.ca.CertFile(), CertFile: ct.rootCert, KeyFile: ct.rootKey}
	}
	var names, peers, clients []string
	for i := range n {
		names = append(names, fmt.Sprintf("m%d", i))
		peers = append(peers, url(t))
		clients = append(clients, url(t))
	}
	var initial []string
	for i := range n {
		initial = append(initial, names[i]+"="+peers[i])
	}
	for i := range n {
		var log bytes.Buffer
		cmd := exec.Command(bin,
			"--name", names[i],
			"--data-dir", filepath.Join(dir, names[i]),
			"--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new", "--initial-cluster-token", "canopy-test",
			// Deleting a device takes all its ports in one transaction.
			"--max-txn-ops", fmt.Sprint(nsdb.MaxTxnOps), "--max-request-bytes", fmt.Sprint(64<<20),
			"--logger", "zap", "--log-level", "error",
		)
		if ct != nil {
			cmd.Args = append(cmd.Args,
				"--cert-file", ct.srvCert, "--key-file", ct.srvKey, "--trusted-ca-file", ct.ca.CertFile(), "--client-cert-auth",
				"--peer-cert-file", ct.srvCert, "--peer-key-file", ct.srvKey, "--peer-trusted-ca-file", ct.ca.CertFile(), "--peer-client-cert-auth")
		}
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
		if err := cmd.Start(); err != nil {
			c.Stop()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		c.procs = append(c.procs, cmd)
		c.logs = append(c.logs, &log)
	}
	c.Endpoints = clients
	if err := c.waitHealthy(30 * time.Second); err != nil {
		c.Stop()
		return nil, fmt.Errorf("%w\n%s", err, c.Logs())
	}
	return c, nil
}

// waitHealthy waits until every member answers and knows a leader.
func (c *Cluster) waitHealthy(timeout time.Duration) error {
	cfg := clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 2 * time.Second, Logger: zap.NewNop()}
	if c.tls != nil {
		info := transport.TLSInfo{TrustedCAFile: c.Root.CAFile, CertFile: c.Root.CertFile, KeyFile: c.Root.KeyFile}
		tc, err := info.ClientConfig()
		if err != nil {
			return err
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(timeout)
	for {
		healthy := 0
		for _, ep := range c.Endpoints {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, ep)
			cancel()
			if err == nil && st.Leader != 0 {
				healthy++
			}
		}
		if healthy == len(c.Endpoints) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd cluster %v not healthy after %s", c.Endpoints, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Logs returns what the members printed (for a failing test's message).
func (c *Cluster) Logs() string {
	var b strings.Builder
	for i, l := range c.logs {
		fmt.Fprintf(&b, "--- member %d ---\n%s\n", i, l.String())
	}
	return b.String()
}

// Stop terminates every member and waits for them.
func (c *Cluster) Stop() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGCONT) // a paused member would not act on SIGTERM
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
}

// Secure is an embedded store serving TLS with client certificates and
// etcd's authentication on, as `canopy server` runs it: the store returned
// is root's; CA issues the certificates of other users.
type Secure struct {
	Store  *nsdb.Store
	Config nsdb.Config // the embedded server's (root's credentials)
	CA     *pki.CA
	Dir    string // where certificates are issued
}

// OpenSecure opens a fresh secure embedded store (retrying on new ports
// when one was taken meanwhile).
func OpenSecure(t testing.TB) *Secure {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.Issue(dir, "etcd-server", pki.IssueOptions{CommonName: "etcd", Server: true, Client: true,
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	rootCert, rootKey, err := ca.Issue(dir, "root", pki.IssueOptions{CommonName: nsdb.RootUser, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for range 3 {
		cfg := EmbeddedConfig(t)
		cfg.ClientURL = "https" + strings.TrimPrefix(cfg.ClientURL, "http")
		cfg.PeerURL = "https" + strings.TrimPrefix(cfg.PeerURL, "http")
		cfg.Credentials = nsdb.Credentials{CAFile: ca.CertFile(), CertFile: rootCert, KeyFile: rootKey}
		cfg.Serve = &nsdb.ServeTLS{CAFile: ca.CertFile(), CertFile: srvCert, KeyFile: srvKey}
		cfg.EnableAuth = true
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		s, err := nsdb.Open(ctx, cfg)
		cancel()
		if err == nil {
			t.Cleanup(func() { s.Close() })
			return &Secure{Store: s, Config: cfg, CA: ca, Dir: dir}
		}
		last = err
	}
	t.Fatalf("secure embedded store: %v", last)
	return nil
}

// ClientConfig is the config of a client of the secure store presenting a
// certificate for user (issued now); user "" presents none.
func (s *Secure) ClientConfig(t testing.TB, user string) nsdb.Config {
	t.Helper()
	cfg := nsdb.Config{Endpoints: []string{s.Config.ClientURL}, Credentials: nsdb.Credentials{CAFile: s.CA.CertFile()}}
	if user != "" {
		cert, key, err := s.CA.Issue(s.Dir, user, pki.IssueOptions{CommonName: user, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		cfg.CertFile, cfg.KeyFile = cert, key
	}
	return cfg
}

// Pause freezes member i (SIGSTOP): it keeps its connections open and
// answers nothing, like a hung host or a partition. Resume undoes it.
func (c *Cluster) Pause(t testing.TB, i int) {
	t.Helper()
	pid := c.procs[i].Process.Pid
	if err := c.procs[i].Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("pause etcd member %d: %v", i, err)
	}
	// kill(2) returns once the signal is queued; on a busy machine the
	// member's threads can run on (and answer a heartbeat) until each is
	// scheduled out. A test that expects silence waits for it.
	deadline := time.Now().Add(10 * time.Second)
	for !stopped(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("etcd member %d (pid %d) did not stop within 10 s of SIGSTOP", i, pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// stopped reports whether every thread of process pid is stopped (state T
// in /proc/<pid>/task/<tid>/stat).
func stopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the command name's closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Resume continues a paused member (SIGCONT).
func (c *Cluster) Resume(t testing.TB, i int) {
	t.Helper()
	if err := c.procs[i].Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("resume etcd member %d: %v", i, err)
	}
}

// Kill ends member i with SIGKILL, a crash, and reaps it: its connections
// are refused from then on. Restart starts it again on its data.
func (c *Cluster) Kill(t testing.TB, i int) {
	t.Helper()
	if err := c.procs[i].Process.Kill(); err != nil {
		t.Fatalf("kill etcd member %d: %v", i, err)
	}
	_ = c.procs[i].Wait() // "signal: killed"
}

// Restart starts a killed member again with the same command line and data.
func (c *Cluster) Restart(t testing.TB, i int) {
	t.Helper()
	old := c.procs[i]
	cmd := exec.Command(old.Path, old.Args[1:]...)
	cmd.Stdout, cmd.Stderr = old.Stdout, old.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart etcd member %d: %v", i, err)
	}
	c.procs[i] = cmd
}
