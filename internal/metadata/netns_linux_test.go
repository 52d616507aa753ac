package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// TestInstancesInNamespaces puts two "instances" in namespaces the test
// creates, routed to a third holding 169.254.169.254:80, and reads metadata
// with curl (IMDSv1 and v2) and busybox wget from inside them: each gets its
// own data, keyed by its source address.
func TestInstancesInNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	var sfx [3]byte
	rand.Read(sfx[:])
	id := hex.EncodeToString(sfx[:])
	srvNS := "cmd-srv-" + id
	vms := []struct {
		ns, ip string
		in     *Instance
	}{
		{"cmd-a-" + id, "10.99.8.10", instA()},
		{"cmd-b-" + id, "10.99.9.10", instB()},
	}
	ip(t, "netns", "add", srvNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", srvNS).Run() })
	ip(t, "-n", srvNS, "link", "set", "lo", "up")
	ip(t, "-n", srvNS, "addr", "add", "169.254.169.254/32", "dev", "lo")
	byAddr := map[netip.Addr]*Instance{}
	for i, vm := range vms {
		ip(t, "netns", "add", vm.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", vm.ns).Run() })
		gw := strings.TrimSuffix(vm.ip, ".10") + ".1"
		peer := "vm" + string(rune('0'+i))
		ip(t, "-n", vm.ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", srvNS)
		ip(t, "-n", vm.ns, "addr", "add", vm.ip+"/24", "dev", "eth0")
		ip(t, "-n", vm.ns, "link", "set", "eth0", "up")
		ip(t, "-n", vm.ns, "route", "add", "default", "via", gw)
		ip(t, "-n", srvNS, "addr", "add", gw+"/24", "dev", peer)
		ip(t, "-n", srvNS, "link", "set", peer, "up")
		byAddr[netip.MustParseAddr(vm.ip)] = vm.in
	}

	s, err := New(Config{Resolve: SourceResolver(func(a netip.Addr) (*Instance, bool) {
		in, ok := byAddr[a]
		return in, ok
	})})
	if err != nil {
		t.Fatal(err)
	}
	ln := listenIn(t, srvNS, "169.254.169.254:80")
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Shutdown(context.Background()) })

	run := func(ns string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).Output()
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

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
}

// listenIn opens a TCP listener inside ns; the socket stays there.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original netns: " + err.Error())
		}
	}()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
