package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// edgeUplink returns the edge's uplink port as the CLI shows it.
func edgeUplink(t *testing.T, l *netns.Lab) (id, hostID, iface string) {
	t.Helper()
	var ports []struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		HostID    string `json:"host_id"`
		Interface string `json:"interface"`
	}
	out := l.CLI("port", "list")
	if err := json.Unmarshal([]byte(out), &ports); err != nil {
		t.Fatalf("port list: %v\n%s", err, out)
	}
	for _, p := range ports {
		if p.Name == "edge/uplink0" {
			return p.ID, p.HostID, p.Interface
		}
	}
	t.Fatalf("no edge uplink in the port list:\n%s", out)
	return "", "", ""
}

// TestCloudConfigGatewayRegistersLater is issue 9's "what it must show" 5:
// the server starts with a --cloud-config whose gateway names its host by
// name, before that host's agent ever ran. The gateway is pending (said
// once in the log, no refused write); when the agent starts, the uplink is
// bound to it and an outside namespace on the gateway's link reaches the
// edge and an instance's elastic IP, and the instance reaches outside —
// all without restarting the server.
func TestCloudConfigGatewayRegistersLater(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(`{"gateways": [
		{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24", "next_hop": "192.0.2.1"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l := netns.New(t, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", "203.0.113.0/28"}})

	// No gateway host yet: the uplink exists, unbound, and is pending.
	waitUntil(t, "the edge's uplink", func() bool {
		out, err := l.RunCLI("port", "list", "-o", "json")
		return err == nil && strings.Contains(out, "edge/uplink0")
	})
	if _, host, _ := edgeUplink(t, l); host != "" {
		t.Fatalf("the uplink is bound to %s before any host registered", host)
	}
	waitUntil(t, "the pending gateway in the server log", func() bool { return strings.Contains(l.ServerLog(), "gateway pending") })

	// The tenant's side, before the gateway host exists: a VPC with an
	// internet gateway and an elastic IP.
	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.30.0.0/16", "10.30.1.0/24", "us-east-1a")
	sg := tn.icmpGroup(vpcID)
	allocID, eip := tn.allocate()

	// The gateway host's agent starts now (it also runs the instance).
	gw := l.AddInstanceHost("gw")
	waitUntil(t, "the uplink bound to the gateway host", func() bool {
		_, host, iface := edgeUplink(t, l)
		return host == gw.ID() && iface == "edge0"
	})
	out := l.AddOutside("out", gw, "edge0", "192.0.2.1/24")
	if o, err := out.Exec("ip", "route", "add", "203.0.113.0/28", "via", "192.0.2.2"); err != nil {
		t.Fatalf("outside route: %v\n%s", err, o)
	}
	mustPing(t, out, "192.0.2.2")

	in := tn.run(sub, sg, "")
	tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", in.id)
	if !within(10*time.Second, func() bool { _, ok := out.Ping(eip, 1); return ok }) {
		t.Errorf("outside cannot ping the elastic IP %s of %s", eip, in.id)
	}
	if !within(10*time.Second, func() bool { return nsPing(in.ns, "192.0.2.1") }) {
		t.Errorf("%s cannot ping outside (192.0.2.1)", in.id)
	}

	if l.ServerExited() {
		t.Fatal("the server exited")
	}
	log := l.ServerLog()
	for s, want := range map[string]int{"gateway pending": 1, "gateway bound": 1, "write refused": 0} {
		if n := strings.Count(log, s); n != want {
			t.Errorf("server log has %q %d times, want %d", s, n, want)
		}
	}
}
