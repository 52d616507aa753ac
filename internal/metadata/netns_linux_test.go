package metadata

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/netnstest"
)

// TestInstancesInNamespaces puts two "instances" in namespaces the test
// creates, routed to a third holding 169.254.169.254:80, and reads metadata
// with curl (IMDSv1 and v2) and busybox wget from inside them: each gets its
// own data, keyed by its source address.
func TestInstancesInNamespaces(t *testing.T) {
	netnstest.RequireRoot(t)
	curl := netnstest.RequireTool(t, "curl", "curl")
	netnstest.RequireTool(t, "busybox", "busybox")
	id := netnstest.Suffix(t)
	srvNS := "cmd-srv-" + id
	vms := []struct {
		ns, ip string
		in     *Instance
	}{
		{"cmd-a-" + id, "10.99.8.10", instA()},
		{"cmd-b-" + id, "10.99.9.10", instB()},
	}
	srv := netnstest.New(t, srvNS)
	netnstest.IP(t, "-n", srvNS, "addr", "add", "169.254.169.254/32", "dev", "lo")
	byAddr := map[netip.Addr]*Instance{}
	for i, vm := range vms {
		h := netnstest.New(t, vm.ns)
		gw := strings.TrimSuffix(vm.ip, ".10") + ".1"
		peer := "vm" + string(rune('0'+i))
		netnstest.Veth(t, "eth0", peer, h, srv)
		netnstest.IP(t, "-n", vm.ns, "addr", "add", vm.ip+"/24", "dev", "eth0")
		netnstest.IP(t, "-n", vm.ns, "link", "set", "eth0", "up")
		netnstest.IP(t, "-n", vm.ns, "route", "add", "default", "via", gw)
		netnstest.IP(t, "-n", srvNS, "addr", "add", gw+"/24", "dev", peer)
		netnstest.IP(t, "-n", srvNS, "link", "set", peer, "up")
		byAddr[netip.MustParseAddr(vm.ip)] = vm.in
	}

	s, err := New(Config{Resolve: SourceResolver(func(a netip.Addr) (*Instance, bool) {
		in, ok := byAddr[a]
		return in, ok
	})})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	netnstest.Do(t, srv, func() { ln, err = net.Listen("tcp4", "169.254.169.254:80") })
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Shutdown(context.Background()) })

	run := func(ns string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		out, err := netnstest.Command(ctx, ns, args...).Output()
		return string(out), err
	}
	const base = "http://169.254.169.254/latest"
	for _, vm := range vms {
		tok, err := run(vm.ns, curl, "-sf", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base+"/api/token")
		if err != nil || tok == "" {
			t.Fatalf("%s: PUT token: %v %q", vm.ns, err, tok)
		}
		got, err := run(vm.ns, curl, "-sf", "-H", "X-aws-ec2-metadata-token: "+tok, base+"/meta-data/instance-id")
		if err != nil || got != vm.in.ID {
			t.Errorf("%s: v2 instance-id %q (%v), want %q", vm.ns, got, err, vm.in.ID)
		}
		got, err = run(vm.ns, curl, "-sf", "-H", "X-aws-ec2-metadata-token: "+tok, base+"/meta-data/local-ipv4")
		if want := vm.in.Interfaces[0].PrivateIPs[0].String(); err != nil || got != want {
			t.Errorf("%s: v2 local-ipv4 %q (%v), want %q", vm.ns, got, err, want)
		}
		got, err = run(vm.ns, "busybox", "wget", "-q", "-O", "-", base+"/meta-data/instance-id")
		if vm.in.HTTPTokens == TokensRequired {
			if err == nil {
				t.Errorf("%s: IMDSv1 answered %q on a token-required instance", vm.ns, got)
			}
		} else if err != nil || got != vm.in.ID {
			t.Errorf("%s: v1 (wget) instance-id %q (%v), want %q", vm.ns, got, err, vm.in.ID)
		}
	}
	// A's token is no good from B.
	tokA, _ := run(vms[0].ns, curl, "-sf", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base+"/api/token")
	code, _ := run(vms[1].ns, curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "X-aws-ec2-metadata-token: "+tokA, base+"/meta-data/instance-id")
	if code != "401" {
		t.Errorf("A's token used from B: HTTP %s, want 401", code)
	}
}
