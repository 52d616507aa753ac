package netns

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// AddInstanceHost is AddHost with the agent's netns instance driver: the
// EC2 instances the scheduler places on this host become namespaces
// ci-<id> on this machine. Cleanup removes them (instance.Purge's job is
// done here with the driver's records: every process in them is killed).
func (l *Lab) AddInstanceHost(name string) *Host {
	l.t.Helper()
	l.nHosts++
	h := &Host{l: l, Name: name, NS: l.id + "-" + name, IP: underlayNet + itoa(10+l.nHosts),
		stateDir: filepath.Join(l.dir, "agent-"+name), driver: "netns"}
	l.mustNS(h.NS)
	l.plugUnderlay(h.NS, h.IP)
	l.hosts = append(l.hosts, h)
	h.Start()
	return h
}

func itoa(i int) string { return fmt.Sprint(i) }

// InstanceStateDir is where the host's instance driver keeps its records.
func (h *Host) InstanceStateDir() string { return filepath.Join(h.stateDir, "instances") }

// PurgeInstances kills the processes of every recorded instance namespace
// and deletes it. The host's agent must be dead by then: a live one's
// driver makes the namespaces again as soon as they go (the lab's cleanup
// purges after its kills).
func PurgeInstances(dir string) {
	recs, _ := filepath.Glob(filepath.Join(dir, "ci-*.json"))
	for _, r := range recs {
		ns := strings.TrimSuffix(filepath.Base(r), ".json")
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, pid := range strings.Fields(string(out)) {
			_ = exec.Command("kill", "-9", pid).Run()
		}
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
	}
}

// AWS runs Debian's AWS CLI (/usr/bin/aws: a pyenv shim may shadow it on
// the PATH) in the infra namespace against the server's EC2 endpoint, with
// the given credentials; it returns the combined output.
func (l *Lab) AWS(keyID, secret string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"netns", "exec", l.infra, "/usr/bin/aws", "--endpoint-url", "http://127.0.0.1:8788", "--output", "text"}, args...)
	cmd := exec.CommandContext(ctx, "ip", full...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_DEFAULT_REGION=us-east-1", "HOME="+l.dir, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// EC2Endpoint is the lab server's EC2 endpoint, reachable through
// EC2HTTPClient (it listens on loopback in the infra namespace).
const EC2Endpoint = "http://127.0.0.1:8788"

// EC2HTTPClient is an HTTP client for SDK calls from this process to
// EC2Endpoint: its connections are opened inside the infra namespace, so no
// CLI process start sits in a timed call.
func (l *Lab) EC2HTTPClient() *http.Client {
	ns := l.infra
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = InNamespace(ns, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
}

// PowerOff is a host losing its power: its agent is killed (SIGKILL) and
// every instance its driver ran dies with it (namespaces, processes and
// records gone), so another host may start them again under the same
// names.
func (h *Host) PowerOff() {
	h.l.t.Helper()
	h.Kill()
	dir := h.InstanceStateDir()
	PurgeInstances(dir)
	recs, _ := filepath.Glob(filepath.Join(dir, "ci-*.json"))
	for _, r := range recs {
		if err := os.Remove(r); err != nil {
			h.l.t.Fatal(err)
		}
	}
}
