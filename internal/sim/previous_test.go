package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestScenariosWithPrevious runs every scenario on a snapshot built
// WithPrevious from an earlier version of its topology — half its chains,
// IP address groups and port groups missing, others there that are gone
// since, the same objects otherwise — and wants the scenario's results:
// what it reuses must be what it would compile.
func TestScenariosWithPrevious(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txtar")
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, sections := parseTxtar(data)
			x := loadTopology(t, sections["topology.json"])
			// Two histories: the even objects of each kind missing before,
			// then the odd ones.
			for skip := range 2 {
				old := topology.NewIndex()
				for _, k := range topology.Kinds {
					for i, o := range x.List(k) {
						isGroup := k == topology.KindChain || k == topology.KindIPGroup || k == topology.KindPortGroup
						if !isGroup || i%2 != skip {
							old.Put(o)
						}
					}
				}
				for i := range 3 {
					for _, id := range []string{fmt.Sprint("00-gone-", i), fmt.Sprint("zz-gone-", i)} {
						old.Put(&topology.Chain{Meta: topology.Meta{ID: id, Name: id}})
						old.Put(&topology.PortGroup{Meta: topology.Meta{ID: id, Name: id}})
						old.Put(&topology.IPAddrGroup{Meta: topology.Meta{ID: id, Name: id}})
					}
				}
				first := NewSnapshot(old)
				snap := NewSnapshot(x, WithPrevious(NewSnapshot(old, WithPrevious(first))))
				if got := runScenario(t, snap, sections["packets"]); got != sections["want"] {
					t.Errorf("skip %d: result differs from the snapshot's built at once\n--- got\n%s\n--- want\n%s", skip, got, sections["want"])
				}
				if len(x.List(topology.KindChain)) > 1 && snap.Reused() == 0 {
					t.Errorf("skip %d: no chain reused", skip)
				}
			}
		})
	}
}

// TestWithPreviousRecompilesChanged: a chain replaced by a new object, or
// whose jump target, port group or IP address group changed, is compiled
// again; an untouched one is reused.
func TestWithPreviousRecompilesChanged(t *testing.T) {
	l := newLab()
	l.chain("c-jump", topology.Rule{Action: topology.ActionJump, JumpChain: "c-target"})
	l.chain("c-target", topology.Rule{Action: topology.ActionDrop})
	l.chain("c-ipg", topology.Rule{Action: topology.ActionDrop, Condition: topology.Condition{IPGroupSrc: "ipg"}})
	l.chain("c-plain", topology.Rule{Action: topology.ActionAccept})
	l.x.Put(&topology.IPAddrGroup{Meta: topology.Meta{ID: "ipg", Name: "ipg"}})
	s0 := NewSnapshot(l.x)
	s1 := NewSnapshot(l.x, WithPrevious(s0))
	if s1.Reused() != 4 {
		t.Fatalf("unchanged topology: %d chains reused, want 4", s1.Reused())
	}
	// A new IP address group object, the jump target gone.
	l.x.Put(&topology.IPAddrGroup{Meta: topology.Meta{ID: "ipg", Name: "ipg"}})
	l.x.Delete(topology.KindChain, "c-target")
	s2 := NewSnapshot(l.x, WithPrevious(s1))
	if s2.Reused() != 1 {
		t.Errorf("after the changes: %d chains reused, want 1 (c-plain)", s2.Reused())
	}
	if ci := s2.chainIx["c-jump"]; s2.chains[ci].rules[0].jump != none {
		t.Errorf("c-jump still jumps to chain %d, which is gone", s2.chains[ci].rules[0].jump)
	}
	// A chain replaced by a new object is compiled from it.
	l.chain("c-plain", topology.Rule{Action: topology.ActionDrop})
	s3 := NewSnapshot(l.x, WithPrevious(s2))
	if ci := s3.chainIx["c-plain"]; s3.chains[ci].rules[0].action != topology.ActionDrop {
		t.Errorf("c-plain: %v, want the new object's drop", s3.chains[ci].rules[0].action)
	}
}

// runScenario simulates the packets section on snap as TestScenarios does.
func runScenario(t *testing.T, snap *Snapshot, packets string) string {
	t.Helper()
	st := flow.NewState()
	opts := Options{Now: 1e9, LocalHost: "h1", Tables: NewTables(), Trace: true}
	var got strings.Builder
	var res Result
	for i, line := range strings.Split(strings.TrimSpace(packets), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		in, frame, err := parsePacket(line)
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		var p packet.Packet
		p.Decode(frame)
		Simulate(snap, st, in, frame, &p, &opts, &res)
		fmt.Fprintf(&got, "== %s\n%s", line, FormatResult(&res))
		opts.Tables.Learn(res.Learned, 1<<62)
		opts.Now += 1e9
	}
	return got.String()
}

// BenchmarkNewSnapshot builds the snapshot of 200 bridges of 20 ports each,
// every port with its own chain of 10 rules, after one chain changed:
// from scratch, and WithPrevious (what an agent's replica does per change).
func BenchmarkNewSnapshot(b *testing.B) {
	l := newLab()
	for i := range 200 {
		br := fmt.Sprintf("b%03d", i)
		l.x.Put(&topology.Bridge{Meta: topology.Meta{ID: br, Name: br}})
		for j := range 20 {
			id := fmt.Sprintf("%s-p%02d", br, j)
			rules := make([]topology.Rule, 10)
			for k := range rules {
				rules[k] = topology.Rule{Action: topology.ActionAccept, Condition: topology.Condition{TpDst: &topology.PortRange{Start: uint16(k), End: uint16(k)}}}
			}
			l.chain("c-"+id, rules...)
			l.port(id, br, func(p *topology.Port) { p.InFilter = "c-" + id })
		}
	}
	for _, prev := range []bool{false, true} {
		b.Run(fmt.Sprintf("previous=%v", prev), func(b *testing.B) {
			snap := NewSnapshot(l.x)
			b.ReportAllocs()
			for i := range b.N {
				c := l.x.Get(topology.KindChain, "c-b000-p00").(*topology.Chain)
				l.x.Put(&topology.Chain{Meta: c.Meta, Rules: c.Rules[:1+i%10]})
				if prev {
					snap = NewSnapshot(l.x, WithPrevious(snap))
				} else {
					snap = NewSnapshot(l.x)
				}
			}
		})
	}
}
