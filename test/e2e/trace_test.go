package e2e

import (
	"strings"
	"testing"
)

// TestREADMETrace runs the README's trace block verbatim against a real
// server: the TCP/80 packet is forwarded by rule 1 of web-in, the TCP/22
// packet dropped by rule 2.
func TestREADMETrace(t *testing.T) {
	cmds, _ := readmeBlock(t, "trace")
	s := newServer(t)
	var traces []string
	for _, args := range cmds {
		out := s.cli(args...)
		if args[0] == "trace" {
			traces = append(traces, out)
			t.Logf("canopy %s\n%s", strings.Join(args, " "), out)
		}
	}
	if len(traces) != 2 {
		t.Fatalf("want 2 traces in the README block, got %d", len(traces))
	}
	for i, want := range []struct{ verdict, rule string }{
		{"verdict: forward", "rule web-in #1: accept"},
		{"verdict: drop", "rule web-in #2: drop"},
	} {
		if !strings.HasPrefix(traces[i], want.verdict) || !strings.Contains(traces[i], want.rule) {
			t.Errorf("trace %d: want %q and %q in:\n%s", i+1, want.verdict, want.rule, traces[i])
		}
	}
	json := s.cli("trace", "subnet-a:client", "--proto", "udp", "--src", "10.0.0.11", "--dst", "10.0.0.12", "--dport", "53", "-o", "json")
	if !strings.Contains(json, `"verdict": "drop"`) || !strings.Contains(json, `"kind": "rule"`) {
		t.Errorf("trace -o json:\n%s", json)
	}
}
