package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/netnstest"
	"github.com/canopy-sdn/canopy/internal/upstream"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
	"github.com/google/nftables"
)

// readmeUp splits the README's `canopy up` walk-through (the shell lines of
// the code blocks between <!-- up:begin --> and <!-- up:end -->) into the
// `canopy up` command, the shell script a tenant runs in a second terminal,
// and the `canopy down` command.
func readmeUp(t *testing.T) (up []string, script string, down []string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- up:begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- up:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no up:begin/end block")
	}
	var sh []string
	inCode := false
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if !inCode || strings.TrimSpace(line) == "" {
			continue
		}
		cmd, _, _ := strings.Cut(line, "#")
		f := strings.Fields(cmd)
		switch {
		case len(f) >= 2 && f[0] == "canopy" && f[1] == "up":
			up = f[1:]
		case len(f) >= 2 && f[0] == "canopy" && f[1] == "down":
			down = f[1:]
		default:
			sh = append(sh, line)
		}
	}
	if up == nil || down == nil || len(sh) < 5 {
		t.Fatalf("README up block: want canopy up, a script and canopy down; got %v, %d lines, %v", up, len(sh), down)
	}
	return up, strings.Join(sh, "\n") + "\n", down
}

// freeUDPPort returns a loopback UDP port nobody uses right now.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// upProc is a running `canopy up`.
type upProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startUp starts `canopy ARGS` (an up command) and waits until it prints
// that it is up.
func startUp(t *testing.T, args []string) *upProc {
	t.Helper()
	return startUpIn(t, "", args)
}

// startUpIn is startUp inside network namespace ns ("" = this one).
func startUpIn(t *testing.T, ns string, args []string) *upProc {
	t.Helper()
	p := &upProc{cmd: inNS(ns, canopyBin, args...), out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.After(90 * time.Second)
	for !strings.Contains(p.out.String(), "Canopy is up") {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("canopy up exited during start: %v\n%s", err, p.out)
		case <-deadline:
			t.Fatalf("canopy up not up within 90 s:\n%s", p.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return p
}

// wait waits for the process to exit (after a canopy down) and returns its
// exit error.
func (p *upProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("canopy up still runs 30 s after canopy down:\n%s", p.out)
		return nil
	}
}

// inNS is exec.Command(name, args...) run in network namespace ns (""
// = this one). nsenter enters the network namespace only: the namespaces
// and mounts canopy up makes for its instances are everyone's, as they are
// when it runs on a machine of its own.
func inNS(ns, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, name}, args...)...)
}

// nsHTTPClient is an HTTP client whose connections are made inside network
// namespace ns (each dial on a thread switched there and back).
func nsHTTPClient(ns string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = netns.InNamespace(ns, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dial}}
}

// upOutsideLab is the machine canopy up runs on in TestUp: a network
// namespace of its own (so the outside it sets up — routes, forwarding, the
// masquerade table — never touches this machine's), whose default route
// leads to a second namespace standing for the rest of the world. That one
// knows no route to the public pool: an instance reaches it only
// masqueraded behind the up machine's address.
func upOutsideLab(t *testing.T) (upNS string) {
	t.Helper()
	sfx := netnstest.Suffix(t)
	upNS, world := "cu-"+sfx, "cw-"+sfx
	up, w := netnstest.New(t, upNS), netnstest.New(t, world)
	netnstest.Veth(t, "cu"+sfx, "cw"+sfx, up, w)
	netnstest.AddAddr(t, up, "cu"+sfx, "10.201.0.1/24")
	netnstest.AddAddr(t, w, "cw"+sfx, "10.201.0.2/24")
	netnstest.IP(t, "-n", upNS, "route", "add", "default", "via", "10.201.0.2")
	return upNS
}

// TestUp runs the README's `canopy up` walk-through as written: `canopy up`
// (with a temporary data dir and ports of its own instead of the defaults),
// the tenant's script with bash -e (the README's data dir and EC2 endpoint
// replaced by those), `canopy down` and `canopy up` again on the same data
// (the instances come back), then the README's `canopy down --purge`:
// nothing is left, neither namespace nor TAP nor data.
func TestUp(t *testing.T) {
	upArgs, script, downArgs := readmeUp(t)
	ns := upOutsideLab(t)
	forwarding := func() string {
		o, err := inNS(ns, "cat", "/proc/sys/net/ipv4/ip_forward").CombinedOutput()
		if err != nil {
			t.Fatalf("ip_forward: %v %s", err, o)
		}
		return strings.TrimSpace(string(o))
	}
	forwardingBefore := forwarding()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ec2Addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	restAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	flags := []string{"--data-dir", data,
		"--listen", restAddr,
		"--ec2-listen", ec2Addr,
		"--etcd-client-url", fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
		"--etcd-peer-url", fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
		"--tunnel-port", fmt.Sprint(freeUDPPort(t))}
	up := append(append([]string{}, upArgs...), flags...)

	// The only rewrite of the tenant's script: the defaults it names. The
	// endpoint is HTTPS, trusted through AWS_CA_BUNDLE of the credentials
	// file the script sources.
	for _, def := range []string{"/var/lib/canopy/", "https://127.0.0.1:8788 "} {
		if !strings.Contains(script, def) {
			t.Fatalf("README up script does not use the default %q:\n%s", def, script)
		}
	}
	script = strings.ReplaceAll(script, "/var/lib/canopy/", data+"/")
	script = strings.ReplaceAll(script, "https://127.0.0.1:8788 ", "https://"+ec2Addr+" ")

	p := startUpIn(t, ns, up)
	t.Cleanup(func() {
		// Whatever happened: stop it and remove what it made.
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		_ = exec.Command(canopyBin, "down", "--purge", "--data-dir", data).Run()
		if t.Failed() {
			t.Logf("canopy up output:\n%s", p.out)
		}
	})
	t.Logf("canopy %s\n%s", strings.Join(up, " "), p.out)

	// A tenant's shell: /usr/bin/aws (not a shim elsewhere on the PATH),
	// no AWS configuration of this machine's users.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nsh := inNS(ns, "bash", "-e", "-c", script)
	sh := exec.CommandContext(ctx, nsh.Path, nsh.Args[1:]...)
	sh.Env = []string{"PATH=" + filepath.Dir(canopyBin) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dir, "LANG=C.UTF-8"}
	outB, err := sh.CombinedOutput()
	out := string(outB)
	t.Logf("README script:\n%s", out)
	if err != nil {
		t.Fatalf("README script: %v", err)
	}

	// What it showed: two running instances with their addresses, the
	// first one's DHCP address and MTU, a ping through the default group
	// and the first one's own instance id from the metadata service.
	aws := func(args ...string) string {
		t.Helper()
		c := inNS(ns, "bash", append([]string{"-c", ". " + data + "/demo-credentials && exec /usr/bin/aws --endpoint-url https://" + ec2Addr + ` --output text "$@"`, "aws"}, args...)...)
		c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
		o, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, o)
		}
		return strings.TrimSpace(string(o))
	}
	type upInst struct{ id, ip, eni string }
	var insts []upInst
	for _, line := range strings.Split(aws("ec2", "describe-instances", "--query", "Reservations[].Instances[].[InstanceId,PrivateIpAddress,NetworkInterfaces[0].NetworkInterfaceId]"), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			insts = append(insts, upInst{f[0], f[1], f[2]})
		}
	}
	if len(insts) != 2 {
		t.Fatalf("the README launches two instances; describe-instances shows %v", insts)
	}
	upRefusals(t, ns, data, ec2Addr, restAddr)
	var metaID string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "i-") && !strings.ContainsAny(line, " \t") {
			metaID = line
		}
	}
	var first upInst
	for _, in := range insts {
		if lineWith(out, in.id, in.ip, "running") == "" {
			t.Errorf("the script's describe-instances does not show %s %s running", in.id, in.ip)
		}
		if in.id == metaID {
			first = in
		}
	}
	if first.id == "" {
		t.Fatalf("the metadata service answered %q, not one of %v", metaID, insts)
	}
	if !strings.Contains(out, "inet "+first.ip+"/") || !strings.Contains(out, "mtu 1450") {
		t.Errorf("eth0 of %s does not show %s and MTU 1450", first.id, first.ip)
	}
	if !strings.Contains(out, "3 received") {
		t.Errorf("the ping between the instances did not get 3 replies")
	}
	// The outside: the script pinged the first instance's public address
	// from the up machine and the world's address (its gateway) from the
	// instance; bash -e ran both to success. Three pings in all.
	if n := strings.Count(out, " received"); n != 3 {
		t.Errorf("the script ran %d pings, want 3 (instances, public address, outside)", n)
	}
	nsOf := func(id string) string { return "ci-" + id[len(id)-13:] }
	for _, in := range insts {
		if _, err := nsRun(nsOf(in.id), "true"); err != nil {
			t.Errorf("namespace %s of %s missing while up", nsOf(in.id), in.id)
		}
	}

	// canopy down without --purge, canopy up again on the same data dir:
	// the instances come back with their addresses.
	if o, err := exec.Command(canopyBin, "down", "--data-dir", data).CombinedOutput(); err != nil {
		t.Fatalf("canopy down: %v\n%s", err, o)
	}
	if err := p.wait(t); err != nil {
		t.Errorf("canopy up exit after canopy down: %v", err)
	}
	for _, in := range insts {
		if _, err := nsRun(nsOf(in.id), "true"); err == nil {
			t.Errorf("namespace %s still there after canopy down", nsOf(in.id))
		}
	}
	p = startUpIn(t, ns, up)
	if !within(30*time.Second, func() bool { return nsPing(nsOf(insts[0].id), insts[1].ip) }) {
		t.Errorf("after canopy up again, %s cannot ping %s", insts[0].id, insts[1].ip)
	}
	if o, _ := nsRun(nsOf(insts[1].id), "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(o, "inet "+insts[1].ip+"/") {
		t.Errorf("after canopy up again, %s has not its address %s: %s", insts[1].id, insts[1].ip, o)
	}

	// The README's canopy down --purge (its data dir: this test's).
	down := exec.Command(canopyBin, downArgs...)
	down.Env = append(os.Environ(), "CANOPY_DATA_DIR="+data)
	if o, err := down.CombinedOutput(); err != nil {
		t.Fatalf("canopy %s: %v\n%s", strings.Join(downArgs, " "), err, o)
	}
	if err := p.wait(t); err != nil {
		t.Errorf("canopy up exit after canopy down --purge: %v", err)
	}
	for _, in := range insts {
		if _, err := nsRun(nsOf(in.id), "true"); err == nil {
			t.Errorf("namespace %s still there after canopy down --purge", nsOf(in.id))
		}
		tap := "vn" + in.eni[len(in.eni)-13:]
		if o, err := exec.Command("ip", "link", "show", tap).CombinedOutput(); err == nil {
			t.Errorf("TAP %s of %s still there after canopy down --purge: %s", tap, in.eni, o)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("data dir %s still there after canopy down --purge (%v)", data, err)
	}
	// Nor the outside: no masquerade table, forwarding as it was.
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nft, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := nft.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == upstream.TableName {
			t.Errorf("nftables table %s still there after canopy down --purge", tb.Name)
		}
	}
	if got := forwarding(); got != forwardingBefore {
		t.Errorf("IPv4 forwarding %s after canopy down --purge, was %s before canopy up", got, forwardingBefore)
	}
}

// upRefusals checks what a running canopy up refuses: plain HTTP on both
// listeners (no handler reached), the AWS CLI without the CA bundle, and the
// AWS CLI signing for another region; and that the canopy CLI finds the up's
// CA by itself.
func upRefusals(t *testing.T, ns, data, ec2Addr, restAddr string) {
	t.Helper()
	hc := nsHTTPClient(ns)
	for _, url := range []string{"http://" + ec2Addr + "/", "http://" + restAddr + "/healthz"} {
		resp, err := hc.Get(url)
		if err != nil {
			t.Errorf("plain GET %s: %v", url, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
			t.Errorf("plain GET %s: %d %s", url, resp.StatusCode, b)
		}
	}
	aws := func(pre string, args ...string) (string, error) {
		c := inNS(ns, "bash", append([]string{"-c", ". " + data + "/demo-credentials && " + pre + ` exec /usr/bin/aws --endpoint-url https://` + ec2Addr + ` --output text "$@"`, "aws"}, args...)...)
		c.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "AWS_MAX_ATTEMPTS=1"}
		o, err := c.CombinedOutput()
		return string(o), err
	}
	if o, err := aws("", "sts", "get-caller-identity", "--query", "Account"); err != nil {
		t.Errorf("aws sts get-caller-identity over HTTPS: %v\n%s", err, o)
	}
	if o, err := aws("unset AWS_CA_BUNDLE;", "ec2", "describe-vpcs"); err == nil || !strings.Contains(o, "CERTIFICATE_VERIFY_FAILED") {
		t.Errorf("aws without AWS_CA_BUNDLE: %v\n%s", err, o)
	}
	if o, err := aws("", "--region", "eu-west-1", "ec2", "describe-vpcs"); err == nil ||
		!strings.Contains(o, "(AuthFailure)") || !strings.Contains(o, "not 'eu-west-1'. This endpoint serves 'us-east-1'") {
		t.Errorf("aws --region eu-west-1 on the us-east-1 endpoint: %v\n%s", err, o)
	}
	// The canopy CLI on this data dir: https and the up's CA without being told.
	c := inNS(ns, canopyBin, "account", "list", "--url", "https://"+restAddr)
	c.Env = append(os.Environ(), "CANOPY_DATA_DIR="+data, "HOME="+t.TempDir(), "CANOPY_TOKEN=", "CANOPY_CONFIG=", "CANOPY_URL=", "CANOPY_CA_FILE=")
	if o, err := c.CombinedOutput(); err != nil || !strings.Contains(string(o), "demo") {
		t.Errorf("canopy account list on the up's data dir: %v\n%s", err, o)
	}
}
