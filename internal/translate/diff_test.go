package translate

import (
	"encoding/json"
	"net/netip"
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

// roundTrip is o as the store hands it back: encoded, decoded, with a
// revision and, on a port, a tunnel key.
func roundTrip(t *testing.T, o topology.Object) topology.Object {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	c := topology.New(o.Kind())
	if err := json.Unmarshal(b, c); err != nil {
		t.Fatal(err)
	}
	c.GetMeta().Revision = 42
	if p, ok := c.(*topology.Port); ok {
		p.TunnelKey = 7
	}
	return c
}

// jsonEqual is what Equal stands for: the same stored JSON but for the
// fields the store assigns.
func jsonEqual(t *testing.T, a, b topology.Object) bool {
	t.Helper()
	enc := func(o topology.Object) string {
		c := topology.Clone(o)
		c.GetMeta().Revision = 0
		if p, ok := c.(*topology.Port); ok {
			p.TunnelKey = 0
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return a.Kind() == b.Kind() && enc(a) == enc(b)
}

// TestEqualIsStoredJSONEquality: Equal, which compares structs, agrees with
// comparing the objects' JSON, on every object of every translation case:
// each equals itself read back from the store, and pairs of one kind are
// equal exactly when their JSON is.
func TestEqualIsStoredJSONEquality(t *testing.T) {
	for name, st := range cases {
		d := Translate(st(), cloud())
		byKind := map[topology.Kind][]topology.Object{}
		for _, o := range d.Objects {
			if !Equal(o, roundTrip(t, o)) {
				t.Errorf("%s: %s differs from itself read back from the store", name, topology.Key(o))
			}
			byKind[o.Kind()] = append(byKind[o.Kind()], o)
		}
		for _, objs := range byKind {
			for i, a := range objs {
				for _, b := range objs[i+1:] {
					// Same id, so that the comparison reaches the fields.
					b = topology.Clone(b)
					b.GetMeta().ID, b.GetMeta().Name = a.GetMeta().ID, a.GetMeta().Name
					if got, want := Equal(a, b), jsonEqual(t, a, b); got != want {
						t.Errorf("%s: Equal(%s, %s) = %v, JSON equal %v", name, topology.Key(a), topology.Key(b), got, want)
					}
				}
			}
		}
	}
}

// TestEqualSeesEachChange: a change anywhere in an object, nested included,
// makes it unequal; the store's fields and nil against empty do not.
func TestEqualSeesEachChange(t *testing.T) {
	base := &topology.Chain{Meta: topology.Meta{ID: "c", Labels: map[string]string{"a": "b"}}, Rules: []topology.Rule{{
		ID: "r", Action: topology.ActionAccept,
		Condition:  topology.Condition{NwSrc: netip.MustParsePrefix("10.0.0.0/8")},
		NATTargets: []topology.NATTarget{{AddrFrom: netip.MustParseAddr("192.0.2.1"), AddrTo: netip.MustParseAddr("192.0.2.1")}},
	}}}
	changes := map[string]func(c *topology.Chain){
		"name":        func(c *topology.Chain) { c.Name = "x" },
		"label value": func(c *topology.Chain) { c.Labels["a"] = "c" },
		"label added": func(c *topology.Chain) { c.Labels["z"] = "" },
		"rule action": func(c *topology.Chain) { c.Rules[0].Action = topology.ActionDrop },
		"prefix bits": func(c *topology.Chain) { c.Rules[0].NwSrc = netip.MustParsePrefix("10.0.0.0/9") },
		"nat address": func(c *topology.Chain) { c.Rules[0].NATTargets[0].AddrTo = netip.MustParseAddr("192.0.2.2") },
		"rule added":  func(c *topology.Chain) { c.Rules = append(c.Rules, topology.Rule{ID: "s"}) },
		"no rules":    func(c *topology.Chain) { c.Rules = nil },
	}
	for name, change := range changes {
		c := topology.Clone(base).(*topology.Chain)
		change(c)
		if Equal(base, c) || Equal(c, base) {
			t.Errorf("%s: still equal", name)
		}
	}
	same := topology.Clone(base).(*topology.Chain)
	same.Revision = 9
	same.Rules[0].NATTargets = append([]topology.NATTarget{}, same.Rules[0].NATTargets...)
	if !Equal(base, same) {
		t.Error("a revision or a copied slice made the chain unequal")
	}
	empty := &topology.Chain{Meta: topology.Meta{ID: "e"}, Rules: []topology.Rule{}}
	if !Equal(empty, &topology.Chain{Meta: topology.Meta{ID: "e", Labels: map[string]string{}}}) {
		t.Error("empty and nil rules or labels made the chain unequal")
	}
	p := &topology.Port{Meta: topology.Meta{ID: "p"}, TunnelKey: 5}
	if !Equal(p, &topology.Port{Meta: topology.Meta{ID: "p"}, TunnelKey: 6}) {
		t.Error("the tunnel key made the port unequal")
	}
}
