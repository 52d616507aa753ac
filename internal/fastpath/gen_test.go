package fastpath

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/canopy-sdn/canopy/internal/netnstest"
)

// TestGeneratedObjectsMatchSource compiles bpf/fastpath.c again, as `go
// generate` does, and compares the result with the committed object and
// bindings: a change to the C without regenerating (or a hand-edited
// object) fails here.
func TestGeneratedObjectsMatchSource(t *testing.T) {
	netnstest.RequireTool(t, "clang", "clang")
	netnstest.RequireTool(t, "llvm-strip", "llvm")
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		netnstest.Missing(t, "libbpf headers are not installed (make deps, or apt-get install libbpf-dev)")
	}
	dir := t.TempDir()
	// The same arguments as gen.go's go:generate line, written elsewhere.
	cmd := exec.Command("go", "tool", "bpf2go", "-output-dir", dir, "-cc", "clang", "-cflags", "-O2 -g -Wall -Werror",
		"-target", "bpfel", "-type", "flow_key", "-type", "flow_val", "-type", "action", "-type", "port_val",
		"-type", "dev_val", "-type", "config", "-type", "miss", "fastpath", "bpf/fastpath.c", "--", "-I/usr/include/x86_64-linux-gnu")
	cmd.Env = append(os.Environ(), "GOPACKAGE=fastpath")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, out)
	}
	for _, f := range []string{"fastpath_bpfel.o", "fastpath_bpfel.go"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what bpf/fastpath.c compiles to: run go generate ./internal/fastpath and commit the result", f)
		}
	}
}
