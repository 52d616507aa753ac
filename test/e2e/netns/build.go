package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// RunWithCanopy is a test package's TestMain body: it builds the canopy
// binary once into a temporary directory, sets *bin to its path, runs the
// package's tests and benchmarks, removes the directory and exits with
// their code. Building once per package keeps every test on one binary,
// the one of this checkout.
func RunWithCanopy(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "canopy-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "canopy")
	build := exec.Command("go", "build", "-o", *bin, "github.com/canopy-sdn/canopy/cmd/canopy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building canopy:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// PerfLock is the lock every timed run on this host takes (the OVN peer's
// scripts take it too), so that two benchmarks never measure at the same
// time.
const PerfLock = "/tmp/perf.lock"

// PerfLocked runs f holding PerfLock.
func PerfLocked(tb testing.TB, f func()) {
	tb.Helper()
	fd, err := unix.Open(PerfLock, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o666)
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Close(fd)
	for {
		if err = unix.Flock(fd, unix.LOCK_EX); err != unix.EINTR {
			break
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer unix.Flock(fd, unix.LOCK_UN)
	f()
}
