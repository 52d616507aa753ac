package netns

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// A guest is a real virtual machine: QEMU (Debian's qemu-system-x86, TCG:
// no KVM on CI) booting Debian's kernel from /boot with a busybox initramfs
// built here, its virtio-net NIC on a TAP that QEMU itself creates and
// holds, in a host's namespace, as a hypervisor does. The test drives it
// through its serial console.

// Guest programs: the kernel and modules of Debian's linux-image-amd64, a
// static busybox (busybox-static) for the initramfs.
const (
	qemuBin      = "/usr/bin/qemu-system-x86_64"
	busyboxBin   = "/bin/busybox"
	kernelPrefix = "/boot/vmlinuz-"
)

// guestModules are the modules the guest needs for its NIC (Debian builds
// them as modules); their dependencies come from modules.dep.
var guestModules = []string{"kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/net/virtio_net.ko"}

// GuestKernel finds a kernel in /boot with its modules and the guest's
// tools; it returns the kernel's version, or what is missing.
func GuestKernel() (string, error) {
	for _, p := range []string{qemuBin, busyboxBin} {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s missing (apt-get install qemu-system-x86 busybox-static)", p)
		}
	}
	if out, err := exec.Command(busyboxBin, "--list").Output(); err != nil || !bytes.Contains(out, []byte("udhcpc")) {
		return "", fmt.Errorf("%s has no udhcpc: %v", busyboxBin, err)
	}
	kernels, _ := filepath.Glob(kernelPrefix + "*")
	slices.Sort(kernels)
	for i := len(kernels) - 1; i >= 0; i-- {
		ver := strings.TrimPrefix(kernels[i], kernelPrefix)
		if _, err := os.Stat(filepath.Join("/lib/modules", ver, "modules.dep")); err == nil {
			return ver, nil
		}
	}
	return "", fmt.Errorf("no kernel with modules in /boot (apt-get install linux-image-amd64)")
}

// guestInit is the guest's /init: mount what busybox needs, load the NIC's
// modules, then a shell on the serial console for the test to drive.
const guestInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp /www
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do insmod /lib/modules/$m || echo "insmod $m failed"; done
ip link set lo up
echo canopy-guest > /www/index.html
echo "@@BOOTED $(uname -r)"
exec sh
`

// guestDHCPScript configures the NIC from udhcpc's lease, with busybox's ip.
const guestDHCPScript = `#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
	[ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	if [ -n "$staticroutes" ]; then
		set -- $staticroutes
		while [ $# -ge 2 ]; do
			d=$1; g=$2; shift 2
			[ "$d" = 0.0.0.0/0 ] && d=default
			if [ "$g" = 0.0.0.0 ]; then ip route add "$d" dev "$interface"; else ip route add "$d" via "$g" dev "$interface"; fi
		done
	elif [ -n "$router" ]; then
		ip route add default via "${router%% *}" dev "$interface"
	fi ;;
esac
exit 0
`

// BuildInitramfs writes a gzipped newc initramfs into dir for kernel
// version ver: busybox, /init, the DHCP script, the NIC's modules in load
// order, and /dev/console (the kernel opens it before /init runs).
func BuildInitramfs(dir, ver string) (string, error) {
	return BuildInitramfsWith(dir, ver, InitramfsExtra{})
}

// InitramfsExtra is what a guest needs beyond the NIC's modules and
// busybox: more of the kernel's modules (paths under /lib/modules/<ver>,
// loaded at boot after their dependencies) and host programs, copied into
// /opt/bin (busybox's applets of the same names stay first in PATH) with
// the shared libraries ldd says they load, at their host paths.
type InitramfsExtra struct {
	Modules  []string
	Programs []string
}

// BuildInitramfsWith is BuildInitramfs with x.
func BuildInitramfsWith(dir, ver string, x InitramfsExtra) (string, error) {
	order, err := moduleOrder(ver, append(slices.Clone(guestModules), x.Modules...))
	if err != nil {
		return "", err
	}
	progs := map[string][]byte{}
	libs := map[string][]byte{}
	for _, p := range x.Programs {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		progs[filepath.Base(p)] = b
		if err := sharedLibs(p, libs); err != nil {
			return "", err
		}
	}
	bb, err := os.ReadFile(busyboxBin)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "initramfs.gz")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	w := &cpioWriter{w: zw}
	for _, d := range []string{"bin", "dev", "lib", "lib/modules", "proc", "sys"} {
		w.dir(d)
	}
	w.file("bin/busybox", 0o755, bb)
	w.symlink("bin/sh", "busybox")
	w.file("init", 0o755, []byte(guestInit))
	w.file("udhcpc.sh", 0o755, []byte(guestDHCPScript))
	w.node("dev/console", 0o600, 5, 1)
	var list []string
	for _, m := range order {
		b, err := os.ReadFile(filepath.Join("/lib/modules", ver, m))
		if err != nil {
			return "", err
		}
		name := filepath.Base(m)
		w.file("lib/modules/"+name, 0o644, b)
		list = append(list, name)
	}
	w.file("modules", 0o644, []byte(strings.Join(list, " ")+"\n"))
	if len(progs) > 0 {
		w.dir("opt")
		w.dir("opt/bin")
	}
	for _, name := range slices.Sorted(maps.Keys(progs)) {
		w.file("opt/bin/"+name, 0o755, progs[name])
	}
	made := map[string]bool{"lib": true}
	for _, p := range slices.Sorted(maps.Keys(libs)) {
		// Parents first: cpio makes no directory by itself.
		parts := strings.Split(strings.TrimPrefix(filepath.Dir(p), "/"), "/")
		for i := range parts {
			d := strings.Join(parts[:i+1], "/")
			if !made[d] {
				w.dir(d)
				made[d] = true
			}
		}
		w.file(strings.TrimPrefix(p, "/"), 0o755, libs[p])
	}
	w.trailer()
	if w.err != nil {
		return "", w.err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return path, f.Close()
}

// sharedLibs adds the shared libraries program loads (ldd's list, the
// dynamic loader included) to libs, by path.
func sharedLibs(program string, libs map[string][]byte) error {
	out, err := exec.Command("ldd", program).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil
		}
		return fmt.Errorf("ldd %s: %v\n%s", program, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		var p string
		switch {
		case len(f) >= 3 && f[1] == "=>":
			p = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			p = f[0]
		default:
			continue
		}
		if !strings.HasPrefix(p, "/") {
			continue
		}
		b, err := os.ReadFile(p) // through symbolic links
		if err != nil {
			return err
		}
		libs[p] = b
	}
	return nil
}

// moduleOrder lists mods and their dependencies (modules.dep) so that every
// module comes after what it needs.
func moduleOrder(ver string, mods []string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/lib/modules", ver, "modules.dep"))
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m, rest, ok := strings.Cut(line, ":")
		if ok {
			deps[m] = strings.Fields(rest)
		}
	}
	var order []string
	var visit func(m string) error
	visit = func(m string) error {
		if slices.Contains(order, m) {
			return nil
		}
		d, ok := deps[m]
		if !ok {
			return fmt.Errorf("module %s not in modules.dep of %s", m, ver)
		}
		for _, x := range d {
			if err := visit(x); err != nil {
				return err
			}
		}
		order = append(order, m)
		return nil
	}
	for _, m := range mods {
		if err := visit(m); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// cpioWriter writes the newc format the kernel unpacks an initramfs from.
type cpioWriter struct {
	w   io.Writer
	n   int64
	ino int
	err error
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte, rmaj, rmin int) {
	if c.err != nil {
		return
	}
	c.ino++
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmaj, rmin, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write(append([]byte(name), 0))
	c.pad()
	c.write(data)
	c.pad()
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) dir(name string)                         { c.entry(name, 0o040755, nil, 0, 0) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) { c.entry(name, 0o100000|perm, b, 0, 0) }
func (c *cpioWriter) symlink(name, target string)             { c.entry(name, 0o120777, []byte(target), 0, 0) }
func (c *cpioWriter) node(name string, perm uint32, maj, mi int) {
	c.entry(name, 0o020000|perm, nil, maj, mi)
}
func (c *cpioWriter) trailer() { c.entry("TRAILER!!!", 0, nil, 0, 0) }

// Guest is a running QEMU virtual machine and its serial console.
type Guest struct {
	t    testing.TB
	cmd  *exec.Cmd
	in   io.WriteCloser
	mu   sync.Mutex
	cond *sync.Cond
	out  bytes.Buffer // everything the console printed, \r removed
	done bool
	seq  int
}

// GuestConfig is one VM.
type GuestConfig struct {
	Kernel    string // version, from GuestKernel
	Initramfs string // from BuildInitramfs
	NS        string // the host's namespace: QEMU creates its TAP there ("": this one)
	Tap       string // the TAP's name (the port's binding); "": no NIC
	MAC       string // the NIC's MAC (the ENI's)
	MemoryMB  int    // 0: 256
}

// StartGuest starts QEMU in namespace cfg.NS with a virtio-net NIC on a TAP
// named cfg.Tap that QEMU opens itself (-netdev tap, script=no: nobody
// else configures it; the agent plugs its host side and brings it up). It
// waits until the guest's shell runs.
func StartGuest(t testing.TB, cfg GuestConfig) *Guest {
	t.Helper()
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = 256
	}
	args := []string{qemuBin,
		"-accel", "tcg", "-m", fmt.Sprint(mem), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio", "-no-reboot",
		"-kernel", kernelPrefix + cfg.Kernel, "-initrd", cfg.Initramfs,
		// Skip what costs boot time under TCG and that a guest without
		// keyboard, disk or secrets needs not: legacy input probing,
		// speculation mitigations, address randomization, timer checks.
		"-append", "console=ttyS0 panic=-1 quiet loglevel=3 rdinit=/init i8042.noaux i8042.nokbd i8042.nopnp " +
			"mitigations=off nokaslr no_timer_check tsc=reliable random.trust_cpu=on"}
	if cfg.Tap != "" {
		args = append(args, "-netdev", "tap,id=n0,ifname="+cfg.Tap+",script=no,downscript=no",
			"-device", "virtio-net-pci,netdev=n0,mac="+cfg.MAC+",romfile=")
	}
	if cfg.NS != "" {
		args = append([]string{"ip", "netns", "exec", cfg.NS}, args...)
	}
	g := &Guest{t: t, cmd: exec.Command(args[0], args[1:]...)}
	g.cond = sync.NewCond(&g.mu)
	var err error
	if g.in, err = g.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := g.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	g.cmd.Stderr = g.cmd.Stdout
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("qemu: %v", err)
	}
	go g.read(out)
	t.Cleanup(g.Stop)
	start := time.Now()
	if !g.waitFor(regexp.MustCompile(`@@BOOTED (\S+)`), 0, 300*time.Second) {
		t.Fatalf("the guest did not boot within 300 s:\n%s", g.Console())
	}
	t.Logf("guest booted in %v (TCG)", time.Since(start).Round(time.Millisecond))
	return g
}

func (g *Guest) read(r io.Reader) {
	br := bufio.NewReader(r)
	buf := make([]byte, 4096)
	for {
		n, err := br.Read(buf)
		g.mu.Lock()
		g.out.Write(bytes.ReplaceAll(buf[:n], []byte("\r"), nil))
		if err != nil {
			g.done = true
		}
		g.cond.Broadcast()
		g.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitFor waits until the console output after offset from matches re, the
// guest exits, or d passes.
func (g *Guest) waitFor(re *regexp.Regexp, from int, d time.Duration) bool {
	timer := time.AfterFunc(d, func() { g.mu.Lock(); g.cond.Broadcast(); g.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(d)
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		if re.Match(g.out.Bytes()[from:]) {
			return true
		}
		if g.done || time.Now().After(deadline) {
			return false
		}
		g.cond.Wait()
	}
}

// Console is everything the guest printed so far.
func (g *Guest) Console() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.String()
}

// Run runs a shell command line in the guest and returns what it printed
// and its exit status; it fails the test if the command does not finish
// within d.
func (g *Guest) Run(cmdline string, d time.Duration) (string, int) {
	g.t.Helper()
	g.mu.Lock()
	g.seq++
	from, seq := g.out.Len(), g.seq
	g.mu.Unlock()
	// The marker's number is split so that the echoed command line never
	// matches: only the shell's expansion prints "@@RC<seq>=<status>", on a
	// line of its own even after output without a final newline.
	if _, err := fmt.Fprintf(g.in, "%s; rc=$?; echo; echo @@RC\"%d\"=$rc\n", cmdline, seq); err != nil {
		g.t.Fatalf("guest console: %v", err)
	}
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^@@RC%d=(\d+)$`, seq))
	if !g.waitFor(re, from, d) {
		g.t.Fatalf("guest: %q did not finish within %v:\n%s", cmdline, d, g.Console())
	}
	g.mu.Lock()
	out := g.out.String()[from:]
	g.mu.Unlock()
	m := re.FindStringSubmatchIndex(out)
	var rc int
	fmt.Sscan(out[m[2]:m[3]], &rc)
	body := out[:m[0]]
	// What the command printed follows the line of the console's echo of
	// it (the tty's or the shell's line editor's, maybe both).
	echo := fmt.Sprintf("echo @@RC\"%d\"=$rc", seq)
	if i := strings.LastIndex(body, echo); i >= 0 {
		body = body[i+len(echo):]
		if _, rest, ok := strings.Cut(body, "\n"); ok {
			body = rest
		}
	}
	return body, rc
}

// Stop kills QEMU (its TAP goes with it) and waits for it.
func (g *Guest) Stop() {
	if g.cmd.Process == nil || g.cmd.ProcessState != nil {
		return
	}
	_ = g.cmd.Process.Kill()
	_ = g.cmd.Wait()
}
