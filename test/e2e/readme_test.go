package e2e

import (
	"os"
	"strings"
	"testing"
)

// readmeWalkthrough returns the canopy commands of the README's walk-through
// block, each split into arguments (without the leading "canopy").
func readmeWalkthrough(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- walkthrough:begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- walkthrough:end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no walkthrough:begin/end block")
	}
	var cmds [][]string
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "```") || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if f[0] != "canopy" || strings.ContainsAny(line, `'"$|;&<>`+"`") {
			t.Fatalf("README walk-through line is not a plain canopy command: %q", line)
		}
		cmds = append(cmds, f[1:])
	}
	return cmds
}

// TestREADMEWalkthrough runs the README's walk-through verbatim: every
// command succeeds, the first port listing shows the link to the bridge and
// the last one (after deleting the bridge) does not.
func TestREADMEWalkthrough(t *testing.T) {
	cmds := readmeWalkthrough(t)
	if len(cmds) < 15 {
		t.Fatalf("README walk-through has only %d commands", len(cmds))
	}
	s := newServer(t)
	var listings []string
	for _, args := range cmds {
		out := s.cli(args...)
		if strings.Join(args, " ") == "router port list edge" {
			listings = append(listings, out)
			t.Logf("canopy %s\n%s", strings.Join(args, " "), out)
		}
	}
	if len(listings) != 2 {
		t.Fatalf("the walk-through should list the edge router's ports twice, got %d", len(listings))
	}
	if lineWith(listings[0], "tenant-gw", "bridge tenant") == "" || lineWith(listings[0], "uplink", "198.51.100.1/24", "gw1/eth1") == "" {
		t.Errorf("first listing does not show the link and the binding:\n%s", listings[0])
	}
	if lineWith(listings[1], "bridge tenant") != "" || lineWith(listings[1], "tenant-gw") == "" {
		t.Errorf("after deleting the bridge, tenant-gw should be unlinked:\n%s", listings[1])
	}
}
