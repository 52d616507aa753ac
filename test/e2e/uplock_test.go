package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpAfterKill9: `canopy up` killed with SIGKILL leaves its pid file
// behind, and — until its parent reaps it — a zombie whose pid still
// "exists". The next `canopy up` on the same data dir starts at once: it
// trusts the pid file's lock, which died with the process, not its content.
// A third one is refused while the second runs, and `canopy down` finds and
// stops the second through the lock. (No instances and --outside=false: the
// test changes nothing in this machine's network.)
func TestUpAfterKill9(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"up", "--data-dir", data, "--instance-driver", "none", "--outside=false",
		"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--ec2-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--etcd-client-url", fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
		"--etcd-peer-url", fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
		"--tunnel-port", fmt.Sprint(freeUDPPort(t))}
	t.Cleanup(func() { _ = exec.Command(canopyBin, "down", "--purge", "--data-dir", data).Run() })

	// The first one is not reaped until the end: it stays a zombie.
	first := exec.Command(canopyBin, args...)
	out1 := &syncBuffer{}
	first.Stdout, first.Stderr = out1, out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Kill(); _ = first.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out1.String(), "Canopy is up") {
		if processState(first.Process.Pid) == "Z" || time.Now().After(deadline) {
			t.Fatalf("first canopy up did not come up:\n%s", out1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if pid := pidFile(t, data); pid != first.Process.Pid {
		t.Errorf("pid file holds %d, want %d", pid, first.Process.Pid)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for processState(first.Process.Pid) != "Z" { // dead, its files closed, not reaped
		if time.Now().After(deadline) {
			t.Fatalf("canopy up pid %d not dead after SIGKILL (state %q)", first.Process.Pid, processState(first.Process.Pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Its other threads may still be exiting for a moment after the main
	// one is a zombie; the lock goes when the last one has closed the files.
	for pidFileLocked(t, data) {
		if time.Now().After(deadline) {
			t.Fatalf("the pid file is still locked %s after canopy up (pid %d) was killed", 90*time.Second, first.Process.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if syscall.Kill(first.Process.Pid, 0) != nil {
		t.Fatal("the killed canopy up was reaped: the test needs its zombie")
	}

	second := startUp(t, args)
	if pid := pidFile(t, data); pid != second.cmd.Process.Pid {
		t.Errorf("pid file holds %d, want the second canopy up's %d", pid, second.cmd.Process.Pid)
	}
	third, err := exec.Command(canopyBin, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(third), fmt.Sprintf("already runs on %s (pid %d)", data, second.cmd.Process.Pid)) {
		t.Errorf("a third canopy up beside a running one: %v\n%s", err, third)
	}
	down, err := exec.Command(canopyBin, "down", "--data-dir", data).CombinedOutput()
	if err != nil || !strings.Contains(string(down), fmt.Sprintf("Stopping canopy up (pid %d)", second.cmd.Process.Pid)) {
		t.Errorf("canopy down: %v\n%s", err, down)
	}
	if err := second.wait(t); err != nil {
		t.Errorf("second canopy up exit after canopy down: %v\n%s", err, second.out)
	}
}

// processState is the state letter of /proc/<pid>/stat ("" when gone).
func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// pid (comm) STATE ...: comm may hold spaces, so cut at the last ')'.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

func pidFile(t *testing.T, data string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "canopy-up.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// pidFileLocked reports whether a process holds the lock of data's pid file.
func pidFileLocked(t *testing.T, data string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(data, "canopy-up.pid"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil
}
