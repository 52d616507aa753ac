package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireRoot stops the test unless it runs as root: it fails under
// CI=true, where a missing privilege is a broken setup that would otherwise
// hide a whole layer of tests, and skips elsewhere (a developer running the
// unprivileged tests).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root to create network namespaces and devices")
	}
}

// RequireTool returns the path of the program name, or stops the test as
// Missing does when it is not installed. pkg is the Debian package that
// has it (the Makefile's APT_PKGS installs it for `make test`).
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, fmt.Sprintf("%s is not installed (make deps, or apt-get install %s)", name, pkg))
	}
	return p
}

// Missing stops a test that lacks a tool or a privilege: under CI=true it
// fails (CI installs everything the tests run, so a skip there would pass
// a suite that tested less), elsewhere it skips with msg.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing tool or privilege fails the test)")
	}
	t.Skip(msg)
}

// Suffix is a random suffix that keeps the names of namespaces and devices
// of concurrent test runs apart (6 hex digits: a device name has 15 bytes).
func Suffix(t testing.TB) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// New creates a named namespace (so `ip netns exec` works in it) with lo
// up, and deletes it when the test ends.
func New(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatalf("netns %s: %v", name, err)
	}
	if err := netns.Set(orig); err != nil {
		panic("cannot return to the original netns: " + err.Error())
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns
}

// Do runs f on a thread switched into ns. Sockets f creates stay in ns.
func Do(t testing.TB, ns netns.NsHandle, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original netns: " + err.Error())
		}
	}()
	f()
}

// Veth creates a veth pair, a in nsA and b in nsB, both down. Deleting
// either namespace removes the pair.
func Veth(t testing.TB, a, b string, nsA, nsB netns.NsHandle) {
	t.Helper()
	la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, Namespace: netlink.NsFd(nsA)}, PeerName: b, PeerNamespace: netlink.NsFd(nsB)}
	if err := netlink.LinkAdd(la); err != nil {
		t.Fatalf("veth %s/%s: %v", a, b, err)
	}
}

// AddAddr puts cidr on link in ns and brings the link up.
func AddAddr(t testing.TB, ns netns.NsHandle, link, cidr string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("addr %s on %s: %v", cidr, link, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
}

// IP runs `ip args...` and fails the test if it fails.
func IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
}

// Command is the command args run inside the named namespace ns.
func Command(ctx context.Context, ns string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// Run runs args inside the named namespace ns and returns what it printed
// (stdout and stderr); it fails the test if the command fails.
func Run(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := Command(context.Background(), ns, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v in %s: %v\n%s", args, ns, err, out)
	}
	return string(out)
}
