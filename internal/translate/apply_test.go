package translate

import (
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// apply plays a Diff against an index the way the controller plays it
// against the store: creates (a port whose peer does not exist yet is
// created unlinked; creating the peer links both), then updates, then
// deletes, each checked with Validate, Check and PlanDelete as the store
// does.
func apply(t *testing.T, x *topology.Index, creates, updates, deletes []topology.Object) {
	t.Helper()
	write := func(o topology.Object, old topology.Object) {
		if err := o.Validate(); err != nil {
			t.Fatalf("%s: Validate: %v", topology.Key(o), err)
		}
		if err := topology.Check(x, old, o); err != nil {
			t.Fatalf("%s (%s): Check: %v", topology.Key(o), o.GetMeta().Name, err)
		}
		x.Put(o)
	}
	for _, o := range creates {
		o = topology.Clone(o)
		if p, ok := o.(*topology.Port); ok && p.PeerID != "" {
			if peer, ok := x.Get(topology.KindPort, p.PeerID).(*topology.Port); ok {
				write(p, nil)
				q := topology.Clone(peer).(*topology.Port)
				q.PeerID = p.ID
				write(q, peer)
				continue
			}
			p.PeerID = ""
		}
		write(o, nil)
	}
	for _, o := range updates {
		write(topology.Clone(o), x.Get(o.Kind(), o.GetMeta().ID))
	}
	for _, o := range deletes {
		if x.Get(o.Kind(), o.GetMeta().ID) == nil {
			continue // went with an earlier cascade
		}
		plan, err := topology.PlanDelete(x, o.Kind(), o.GetMeta().ID)
		if err != nil {
			t.Fatalf("delete %s (%s): %v", topology.Key(o), o.GetMeta().Name, err)
		}
		for _, u := range plan.Updates {
			x.Put(u)
		}
		for _, k := range plan.Deletes {
			x.Delete(k.Kind, k.ID)
		}
	}
}

func all(x *topology.Index) []topology.Object {
	var out []topology.Object
	for _, k := range topology.Kinds {
		out = append(out, x.List(k)...)
	}
	return out
}

// TestApplySequence drives an index through several states, as the
// controller would drive the store, and checks that every step is accepted
// and converges: after applying a diff, diffing again finds nothing.
func TestApplySequence(t *testing.T) {
	x := topology.NewIndex()
	for _, h := range []string{gwHost, vmHost} {
		x.Put(&topology.Host{Meta: topology.Meta{ID: h}})
	}
	foreign := &topology.Bridge{Meta: topology.Meta{ID: "operator-bridge"}}
	x.Put(foreign)
	steps := []string{"sg", "eip", "route-table", "nat-gateway", "nacl", "eni", "dhcp-options", "vpc"}
	for _, name := range steps {
		want := Translate(cases[name](), cloud()).Objects
		c, u, d := Diff(want, all(x))
		apply(t, x, c, u, d)
		c, u, d = Diff(want, all(x))
		if len(c)+len(u)+len(d) != 0 {
			t.Fatalf("%s: not converged: creates %v updates %v deletes %v", name, keys(c), keys(u), keys(d))
		}
	}
	// Everything goes when the VPC state is empty, except what the
	// translator does not own.
	c, u, d := Diff(Translate(vpc.NewState(), CloudConfig{}).Objects, all(x))
	apply(t, x, c, u, d)
	for _, o := range all(x) {
		if Owned(o) && o.GetMeta().Labels[LabelObject] != CloudObject {
			t.Errorf("left behind: %s %s", topology.Key(o), o.GetMeta().Name)
		}
	}
	if x.Get(topology.KindBridge, foreign.ID) == nil {
		t.Error("the operator's bridge was deleted")
	}
}
