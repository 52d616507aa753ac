package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/netnstest"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestFastpathOnDebian12Kernel: the kernel fast path on the kernel Debian
// 12 ships (linux-image-amd64: 6.1, which has no tcx). internal/fastpath's
// tests, built here, run inside a QEMU guest (TCG) booting that kernel with
// a busybox initramfs, the kernel's veth, VXLAN, clsact and cls_bpf
// modules (nothing loads modules on demand there), and iproute2, ping and
// iperf3 from this host: the program
// passes 6.1's verifier, auto attaches with classic TC, and same-host
// routing, NAT rewrites, cross-host kernel VXLAN and the adoption of a
// dead owner's filters forward real packets there.
func TestFastpathOnDebian12Kernel(t *testing.T) {
	ver, err := oldKernel()
	if err != nil {
		netnstest.Missing(t, err.Error())
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fastpath.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "github.com/canopy-sdn/canopy/internal/fastpath")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the guest has only what we give it
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the fastpath tests: %v\n%s", err, out)
	}
	var progs []string
	for _, p := range []string{"ip", "ping", "iperf3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			netnstest.Missing(t, p+" missing (make deps)")
		}
		progs = append(progs, path)
	}
	initrd, err := netns.BuildInitramfsWith(dir, ver, netns.InitramfsExtra{
		Modules: []string{"kernel/drivers/net/veth.ko", "kernel/drivers/net/vxlan/vxlan.ko",
			"kernel/net/sched/sch_ingress.ko", "kernel/net/sched/cls_bpf.ko",
			// The netlink families a netlink.Handle opens (it opens them all).
			"kernel/net/xfrm/xfrm_user.ko", "kernel/net/netfilter/nfnetlink.ko"},
		Programs: append(progs, bin)})
	if err != nil {
		t.Fatal(err)
	}
	g := netns.StartGuest(t, netns.GuestConfig{Kernel: ver, Initramfs: initrd, MemoryMB: 768})
	// The tests on classic TC only (tcx subtests would find no tcx);
	// TestAttachModeChange moves to tcx and back, and the generated-object
	// check needs clang.
	run := `^(TestAutoAttach|TestSameHostRouted|TestCrossHostVXLAN|TestPinnedAdoption|TestNATRewrites)$/^tc$`
	out, rc := g.Run("mkdir -p /var/run && cd /tmp && PATH=/opt/bin:$PATH CI=true fastpath.test -test.v -test.count=1 -test.run '"+run+"'",
		600*time.Second)
	if rc != 0 {
		mods, _ := g.Run("cat /proc/modules", 60*time.Second)
		t.Fatalf("internal/fastpath's tests in the guest (Linux %s): exit %d\n%s\nmodules:\n%s\nconsole:\n%s", ver, rc, out, mods, g.Console())
	}
	for _, name := range []string{"TestAutoAttach", "TestSameHostRouted/tc", "TestCrossHostVXLAN/tc", "TestPinnedAdoption/tc", "TestNATRewrites"} {
		if !regexp.MustCompile(`--- PASS: ` + regexp.QuoteMeta(name) + ` `).MatchString(out) {
			t.Errorf("%s did not pass in the guest:\n%s", name, out)
		}
	}
	if strings.Contains(out, "--- SKIP") {
		t.Errorf("a test skipped in the guest:\n%s", out)
	}
	if m := regexp.MustCompile(`Linux \S+: (\w+)`).FindStringSubmatch(out); m != nil {
		t.Logf("Linux %s: the program attached with %s; every fastpath test on classic TC passed", ver, m[1])
	}
}

// oldKernel finds a kernel before 6.6 (no tcx) in /boot with its modules:
// Debian 12's linux-image-amd64.
func oldKernel() (string, error) {
	if _, err := netns.GuestKernel(); err != nil {
		return "", err
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	slices.Sort(kernels)
	for _, k := range kernels {
		ver := strings.TrimPrefix(k, "/boot/vmlinuz-")
		var major, minor int
		if _, err := fmt.Sscanf(ver, "%d.%d", &major, &minor); err != nil || major > 6 || major == 6 && minor >= 6 {
			continue
		}
		if _, err := os.Stat(filepath.Join("/lib/modules", ver, "modules.dep")); err == nil {
			return ver, nil
		}
	}
	return "", fmt.Errorf("no kernel before 6.6 with modules in /boot (Debian 12's linux-image-amd64)")
}
