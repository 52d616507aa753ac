// Package e2e runs the real canopy binary: a `canopy server` process on
// loopback ports with its data in a temp dir, driven by the real CLI and by
// the REST API.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/cli"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// canopyBin is the binary built once for the whole package.
var canopyBin string

func TestMain(m *testing.M) {
	netns.RunWithCanopy(m, &canopyBin)
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// server is a `canopy server` process. Its ports and data dir stay the same
// across restarts.
type server struct {
	t                              *testing.T
	dataDir, home                  string
	api, etcdClient, etcdPeer, ec2 int
	cmd                            *exec.Cmd
	exited                         chan error
	log                            *bytes.Buffer
	starts                         int
	endpoints                      []string // external etcd; nil = embedded
	args                           []string // more server flags
}

func newServer(t *testing.T) *server { return newServerOn(t, nil) }

// newServerOn starts a server on an external etcd cluster (endpoints), or
// with an embedded one when endpoints is nil.
func newServerOn(t *testing.T, endpoints []string) *server {
	return newServerWith(t, endpoints, nil, nil)
}

// newServerWith is newServerOn with more server flags, and prepare (if
// set) run on the data dir before the server starts.
func newServerWith(t *testing.T, endpoints, args []string, prepare func(dataDir string)) *server {
	s := &server{t: t, dataDir: t.TempDir(), home: t.TempDir(),
		api: freePort(t), etcdClient: freePort(t), etcdPeer: freePort(t), ec2: freePort(t), endpoints: endpoints, args: args}
	if prepare != nil {
		prepare(s.dataDir)
	}
	t.Cleanup(func() {
		if s.cmd != nil {
			s.kill()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	s.log = &bytes.Buffer{}
	s.start()
	return s
}

func (s *server) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.api) }

// start runs the server and waits until /healthz answers.
func (s *server) start() {
	t := s.t
	t.Helper()
	s.starts++
	fmt.Fprintf(s.log, "--- start %d ---\n", s.starts)
	s.cmd = exec.Command(canopyBin, "server",
		"--data-dir", s.dataDir,
		"--listen", fmt.Sprintf("127.0.0.1:%d", s.api),
		"--etcd-client-url", fmt.Sprintf("https://127.0.0.1:%d", s.etcdClient),
		"--etcd-peer-url", fmt.Sprintf("https://127.0.0.1:%d", s.etcdPeer),
		"--ec2-listen", fmt.Sprintf("127.0.0.1:%d", s.ec2),
		// Several of these servers share the machine's loopback: the
		// OpenStack endpoints' fixed default ports would collide.
		"--neutron-listen", "off", "--keystone-listen", "off")
	if s.endpoints != nil {
		s.cmd.Args = append(s.cmd.Args, "--etcd-endpoints", strings.Join(s.endpoints, ","))
	}
	s.cmd.Args = append(s.cmd.Args, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(s.cmd, s.exited)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.exited:
			s.cmd = nil
			t.Fatalf("server exited during start: %v", err)
		default:
		}
		resp, err := http.Get(s.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not answer /healthz within 60s")
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	t := s.t
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.cmd = nil
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s of SIGTERM")
	}
}

// kill sends SIGKILL: no chance to flush or close anything.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// client is an API client with the server's admin token.
func (s *server) client() *cli.Client {
	s.t.Helper()
	tok, err := os.ReadFile(filepath.Join(s.dataDir, "admin-token"))
	if err != nil {
		s.t.Fatal(err)
	}
	return &cli.Client{URL: s.url(), Token: strings.TrimSpace(string(tok)), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// run runs the CLI against the server the way an operator on the server
// machine would: URL from CANOPY_URL, token found in the data dir.
func (s *server) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, canopyBin, args...)
	cmd.Env = append(os.Environ(), "CANOPY_URL="+s.url(), "CANOPY_DATA_DIR="+s.dataDir, "HOME="+s.home,
		"CANOPY_TOKEN=", "CANOPY_CONFIG=")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// cli runs the CLI and fails the test if it fails.
func (s *server) cli(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.run(args...)
	if err != nil {
		s.t.Fatalf("canopy %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// cliFail runs the CLI, expects exit code 1 and returns stderr.
func (s *server) cliFail(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.run(args...)
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		s.t.Fatalf("canopy %s: want exit code 1, got %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return errOut
}
