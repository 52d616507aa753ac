package translate

import (
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// stored returns what the store would hold after creating objs: clones
// with a revision and, on ports, a tunnel key.
func stored(objs []topology.Object) []topology.Object {
	out := make([]topology.Object, len(objs))
	for i, o := range objs {
		c := topology.Clone(o)
		c.GetMeta().Revision = int64(100 + i)
		if p, ok := c.(*topology.Port); ok {
			p.TunnelKey = uint32(1000 + i)
		}
		out[i] = c
	}
	return out
}

func keys(objs []topology.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, topology.Key(o).String()+" "+o.GetMeta().Name)
	}
	return out
}

func TestDiffFromEmpty(t *testing.T) {
	d := Translate(cases["sg"](), cloud())
	c, u, del := Diff(d.Objects, nil)
	if len(c) != len(d.Objects) || len(u) != 0 || len(del) != 0 {
		t.Fatalf("creates %d updates %d deletes %d, want %d 0 0", len(c), len(u), len(del), len(d.Objects))
	}
	// Creates come in dependency order: no object references one created
	// after it (linked port pairs aside: the controller links them).
	pos := map[topology.ObjectKey]int{}
	for i, o := range c {
		pos[topology.Key(o)] = i
	}
	for i, o := range c {
		for _, r := range o.Refs() {
			j, ok := pos[topology.ObjectKey{Kind: r.Kind, ID: r.ID}]
			if ok && r.Field != "peer_id" && j > i {
				t.Errorf("%s is created before %s/%s it references", topology.Key(o), r.Kind, r.ID)
			}
		}
	}
}

func TestDiffIgnoresStoreFields(t *testing.T) {
	d := Translate(cases["eip"](), cloud())
	c, u, del := Diff(d.Objects, stored(d.Objects))
	if len(c)+len(u)+len(del) != 0 {
		t.Fatalf("no change expected, got creates %v updates %v deletes %v", keys(c), keys(u), keys(del))
	}
}

func TestDiffOneChange(t *testing.T) {
	s := cases["sg"]()
	cur := stored(Translate(s, cloud()).Objects)
	web := s.SecurityGroups["sg-00000000000000web"]
	web.Ingress = append(web.Ingress, vpc.SecurityGroupRule{ID: "sgr-00000000000web09", IPProtocol: "tcp", FromPort: 22, ToPort: 22, CidrIPv4: pfx("198.51.100.0/24")})
	c, u, del := Diff(Translate(s, cloud()).Objects, cur)
	if len(c) != 0 || len(del) != 0 || len(u) != 1 {
		t.Fatalf("want one update, got creates %v updates %v deletes %v", keys(c), keys(u), keys(del))
	}
	ch, ok := u[0].(*topology.Chain)
	if !ok || ch.ID != ObjectID(web.ID, "ingress") || ch.RuleIndex("sgr-00000000000web09") < 0 {
		t.Fatalf("update is %s, want the web group's ingress chain with the new rule", keys(u))
	}
	// The update carries the stored revision so the store's guard applies.
	for _, o := range cur {
		if o.GetMeta().ID == ch.ID && o.GetMeta().Revision != ch.Revision {
			t.Fatalf("update revision %d, stored %d", ch.Revision, o.GetMeta().Revision)
		}
	}
}

func TestDiffDeletesOnlyOwned(t *testing.T) {
	s := cases["eni"]()
	cur := stored(Translate(s, cloud()).Objects)
	foreign := &topology.Bridge{Meta: topology.Meta{ID: "operator-bridge", Labels: map[string]string{"team": "ops"}}}
	cur = append(cur, foreign)
	delete(s.NetworkInterfaces, "eni-0000000000000unb1")
	c, u, del := Diff(Translate(s, cloud()).Objects, cur)
	if len(c) != 0 {
		t.Fatalf("unexpected creates %v", keys(c))
	}
	// The ENI's port, its two chains and its address group go; the DHCP
	// subnet of its subnet no longer lists it (an update).
	want := map[string]bool{
		ObjectID("eni-0000000000000unb1", "port"):      true,
		ObjectID("eni-0000000000000unb1", "from-vm"):   true,
		ObjectID("eni-0000000000000unb1", "to-vm"):     true,
		ObjectID("eni-0000000000000unb1", "addresses"): true,
	}
	if len(del) != len(want) {
		t.Fatalf("deletes %v, want the ENI's 4 objects", keys(del))
	}
	for _, o := range del {
		if !want[o.GetMeta().ID] {
			t.Errorf("unexpected delete %s", topology.Key(o))
		}
		if o.GetMeta().ID == foreign.ID {
			t.Errorf("deleted an object the translator does not own")
		}
	}
	// Deletes come referrers first: the port before the chains it uses.
	if del[0].Kind() != topology.KindPort {
		t.Errorf("first delete is %s, want the port", topology.Key(del[0]))
	}
	if len(u) != 1 || u[0].Kind() != topology.KindDHCP {
		t.Errorf("updates %v, want the subnet's DHCP", keys(u))
	}
}

func TestDiffUnownedNotUpdated(t *testing.T) {
	d := Translate(cases["vpc"](), cloud())
	cur := stored(d.Objects)
	// Someone stripped the label of the edge router: it is not ours any
	// more, so it is neither updated nor deleted.
	for _, o := range cur {
		if o.GetMeta().ID == ObjectID(CloudObject, "edge-router") {
			o.GetMeta().Labels = nil
		}
	}
	c, u, del := Diff(d.Objects, cur)
	if len(u) != 0 || len(del) != 0 || len(c) != 1 || c[0].GetMeta().ID != ObjectID(CloudObject, "edge-router") {
		t.Fatalf("creates %v updates %v deletes %v", keys(c), keys(u), keys(del))
	}
}
