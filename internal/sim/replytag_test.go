package sim

import (
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
)

// TestReplyBeforeNATCarriesReplyKeyTag: a reply simulated before its
// connection's NAT entry exists goes on untranslated, and its result carries
// the tag of the reply key that entry will have (flow.ReplyKey). The agent
// relies on it: when the entry appears — made here or imported from a peer
// of a stateful port group — it invalidates that tag, so the flow cached for
// the early reply gives way to the translation.
func TestReplyBeforeNATCarriesReplyKeyTag(t *testing.T) {
	r := natLab().runner(t)
	back := tcp(mVM3, mR2, "10.0.1.13", "198.51.100.7", 8080, 5555)
	early := r.send("vm3", back)
	r.expect(early, VerdictForward, "r3")
	if d := deliver(t, back, early)["r3"]; d.Src == a4("192.0.2.10") {
		t.Fatal("un-DNATed before the connection existed")
	}
	earlyTags := slices.Clone(early.Tags) // the runner reuses its result
	res := r.send("r3", tcp(mGW, mR3, "198.51.100.7", "192.0.2.10", 5555, 80))
	r.expect(res, VerdictForward, "vm3")
	if len(res.NATs) != 1 || res.NATs[0].Kind != flow.DNAT {
		t.Fatalf("NATs %+v", res.NATs)
	}
	n := res.NATs[0]
	if tag := flow.KeyTag(flow.ReplyKey(n.Kind, n.Key, n.Binding)); !slices.Contains(earlyTags, tag) {
		t.Errorf("the early reply's flow does not carry its NAT entry's reply-key tag %v", tag)
	}
	late := r.send("vm3", back)
	if d := deliver(t, back, late)["r3"]; d.Src != a4("192.0.2.10") || d.SrcPort != 80 {
		t.Fatalf("reply after the connection leaves as %s:%d, want 192.0.2.10:80", ip(d.Src), d.SrcPort)
	}
}
