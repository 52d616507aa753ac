package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTempestInterop (issue 14, must-show 2) runs Debian's Tempest with the
// OpenStack interoperability guideline's network tests
// (test/openstack/interop-network.txt: API versions, networks, subnets,
// ports, bulk, subnet pools, routers, floating IPs, security groups)
// against a canopy server of its own (test/openstack/tempest.sh, ports
// 16xxx), and fails unless every one of them runs and passes: none
// failed, none skipped.
func TestTempestInterop(t *testing.T) {
	if _, err := exec.LookPath("tempest"); err != nil {
		t.Fatal("tempest (Debian's package, installed by make deps) is needed")
	}
	dir, err := filepath.Abs("../openstack")
	if err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "interop-network.txt")
	f, err := os.Open(list)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			want++
		}
	}
	f.Close()
	cmd := exec.Command("sh", filepath.Join(dir, "tempest.sh"))
	cmd.Env = append(os.Environ(), "CANOPY="+canopyBin, "WORK="+filepath.Join(t.TempDir(), "tempest"),
		"PORT_BASE=16", "TEMPEST_INCLUDE_LIST="+list)
	out, err := cmd.CombinedOutput()
	count := func(what string) int {
		m := regexp.MustCompile(`(?m)^ - ` + what + `: (\d+)$`).FindSubmatch(out)
		if m == nil {
			return -1
		}
		n := 0
		for _, c := range m[1] {
			n = n*10 + int(c-'0')
		}
		return n
	}
	passed, failed, skipped := count("Passed"), count("Failed"), count("Skipped")
	t.Logf("tempest: %d of %d passed, %d failed, %d skipped", passed, want, failed, skipped)
	if err != nil || passed != want || failed != 0 || skipped != 0 {
		var bad []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "... FAILED") || strings.Contains(l, "... SKIPPED") {
				bad = append(bad, l)
			}
		}
		tail := out
		if len(tail) > 6000 {
			tail = tail[len(tail)-6000:]
		}
		t.Fatalf("tempest.sh: %v; %d of %d passed:\n%s\n--- output's end:\n%s", err, passed, want, strings.Join(bad, "\n"), tail)
	}
}
