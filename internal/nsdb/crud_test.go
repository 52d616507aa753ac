package nsdb_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func mac(i int) topology.MAC { return topology.MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)} }

// create stores o and fails the test on error.
func create[T topology.Object](t *testing.T, s *nsdb.Store, o T) T {
	t.Helper()
	got, err := s.Create(ctxT(t), o)
	if err != nil {
		t.Fatalf("create %s: %v", o.Kind(), err)
	}
	return got.(T)
}

func get[T topology.Object](t *testing.T, s *nsdb.Store, k topology.Kind, id string) T {
	t.Helper()
	o, err := s.Get(ctxT(t), k, id)
	if err != nil {
		t.Fatalf("get %s %s: %v", k, id, err)
	}
	return o.(T)
}

func routerPort(r *topology.Router, i int) *topology.Port {
	return &topology.Port{DeviceKind: topology.KindRouter, DeviceID: r.ID, MAC: mac(i),
		Address: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.1/24", i>>8, i&0xff))}
}

func bridgePort(b *topology.Bridge, i int) *topology.Port {
	return &topology.Port{DeviceKind: topology.KindBridge, DeviceID: b.ID, MAC: mac(0x8000 + i)}
}

func jsonOf(o topology.Object) string {
	b, _ := json.Marshal(o)
	return string(b)
}

func assertNotFound(t *testing.T, s *nsdb.Store, k topology.Kind, id string) {
	t.Helper()
	if _, err := s.Get(ctxT(t), k, id); !errors.Is(err, nsdb.ErrNotFound) {
		t.Fatalf("%s %s: got %v, want not found", k, id, err)
	}
}

// world is one object of every kind, referencing each other.
type world struct {
	host  *topology.Host
	zone  *topology.TunnelZone
	ipg   *topology.IPAddrGroup
	chain *topology.Chain
	r     *topology.Router
	b     *topology.Bridge
	rp    *topology.Port // router port, linked to bp
	bp    *topology.Port
	xp    *topology.Port // exterior router port bound to host/eth1
	pg    *topology.PortGroup
	route *topology.Route
	dhcp  *topology.DHCPSubnet
}

func buildWorld(t *testing.T, s *nsdb.Store) *world {
	w := &world{}
	w.host = create(t, s, &topology.Host{Meta: topology.Meta{Name: "host-a"}, Interfaces: []topology.HostInterface{{Name: "eth1"}}})
	w.zone = create(t, s, &topology.TunnelZone{Meta: topology.Meta{Name: "tz"}, Type: topology.TunnelVXLAN,
		Members: []topology.TunnelZoneMember{{HostID: w.host.ID, Address: netip.MustParseAddr("192.168.0.1")}}})
	w.ipg = create(t, s, &topology.IPAddrGroup{Meta: topology.Meta{Name: "sg"}, Addresses: []netip.Addr{netip.MustParseAddr("10.9.0.1")}})
	w.chain = create(t, s, &topology.Chain{Meta: topology.Meta{Name: "in"}, Rules: []topology.Rule{
		{Condition: topology.Condition{IPGroupSrc: w.ipg.ID}, Action: topology.ActionAccept},
		{Action: topology.ActionDrop},
	}})
	w.r = create(t, s, &topology.Router{Meta: topology.Meta{Name: "edge", Labels: map[string]string{"owner": "test"}}, InFilter: w.chain.ID})
	w.b = create(t, s, &topology.Bridge{Meta: topology.Meta{Name: "br"}})
	w.rp = create(t, s, routerPort(w.r, 1))
	w.bp = create(t, s, bridgePort(w.b, 1))
	if err := s.Link(ctxT(t), w.rp.ID, w.bp.ID); err != nil {
		t.Fatalf("link: %v", err)
	}
	w.rp = get[*topology.Port](t, s, topology.KindPort, w.rp.ID)
	w.bp = get[*topology.Port](t, s, topology.KindPort, w.bp.ID)
	xp := routerPort(w.r, 2)
	xp.HostID, xp.Interface = w.host.ID, "eth1"
	w.xp = create(t, s, xp)
	w.pg = create(t, s, &topology.PortGroup{Meta: topology.Meta{Name: "uplinks"}, Stateful: true, Ports: []string{w.xp.ID}})
	w.route = create(t, s, &topology.Route{RouterID: w.r.ID, Type: topology.RouteNormal,
		DstPrefix: netip.MustParsePrefix("0.0.0.0/0"), NextHopPort: w.xp.ID, NextHopGateway: netip.MustParseAddr("10.0.2.254")})
	w.dhcp = create(t, s, &topology.DHCPSubnet{BridgeID: w.b.ID, Subnet: netip.MustParsePrefix("10.0.1.0/24"),
		Gateway: netip.MustParseAddr("10.0.1.1"),
		Hosts:   []topology.DHCPHost{{MAC: mac(7), IP: netip.MustParseAddr("10.0.1.10")}}})
	return w
}

func (w *world) objects() []topology.Object {
	return []topology.Object{w.host, w.zone, w.ipg, w.chain, w.r, w.b, w.rp, w.bp, w.xp, w.pg, w.route, w.dhcp}
}

func testCRUDEveryKind(t *testing.T, open opener) {
	s := open()
	w := buildWorld(t, s)
	seen := map[topology.Kind]bool{}
	for _, o := range w.objects() {
		seen[o.Kind()] = true
		m := o.GetMeta()
		if m.ID == "" || m.Revision == 0 {
			t.Fatalf("%s stored without id or revision: %+v", o.Kind(), m)
		}
		got, err := s.Get(ctxT(t), o.Kind(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if jsonOf(got) != jsonOf(o) {
			t.Fatalf("%s round trip:\nput %s\ngot %s", o.Kind(), jsonOf(o), jsonOf(got))
		}
		list, err := s.List(ctxT(t), o.Kind())
		if err != nil || len(list) != map[topology.Kind]int{topology.KindPort: 3}[o.Kind()]+boolInt(o.Kind() != topology.KindPort) {
			t.Fatalf("list %s: %d objects, %v", o.Kind(), len(list), err)
		}
		// Update: rename, at the current revision.
		got.GetMeta().Name = "renamed-" + string(o.Kind())
		upd, err := s.Update(ctxT(t), got)
		if err != nil {
			t.Fatalf("update %s: %v", o.Kind(), err)
		}
		if upd.GetMeta().Revision <= m.Revision || upd.GetMeta().Name != "renamed-"+string(o.Kind()) {
			t.Fatalf("update %s: %+v after %+v", o.Kind(), upd.GetMeta(), m)
		}
		if again := get[topology.Object](t, s, o.Kind(), m.ID); jsonOf(again) != jsonOf(upd) {
			t.Fatalf("%s after update:\nwant %s\ngot  %s", o.Kind(), jsonOf(upd), jsonOf(again))
		}
	}
	for _, k := range topology.Kinds {
		if !seen[k] {
			t.Errorf("kind %s not covered", k)
		}
	}
	// Rules got ids from the store.
	for i, r := range get[*topology.Chain](t, s, topology.KindChain, w.chain.ID).Rules {
		if r.ID == "" {
			t.Errorf("rule %d has no id", i)
		}
	}
	// Get returns copies: changing one does not change the store.
	r := get[*topology.Router](t, s, topology.KindRouter, w.r.ID)
	r.Labels["owner"] = "someone-else"
	if get[*topology.Router](t, s, topology.KindRouter, w.r.ID).Labels["owner"] != "test" {
		t.Fatal("modifying a returned object changed the cache")
	}
	// Delete every object, referrers first.
	objs := w.objects()
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		if _, err := s.Delete(ctxT(t), o.Kind(), o.GetMeta().ID, 0); err != nil && !errors.Is(err, nsdb.ErrNotFound) {
			t.Fatalf("delete %s: %v", o.Kind(), err)
		}
		assertNotFound(t, s, o.Kind(), o.GetMeta().ID)
	}
	for _, k := range topology.Kinds {
		if l, _ := s.List(ctxT(t), k); len(l) != 0 {
			t.Errorf("%d %s left after deleting everything", len(l), k)
		}
	}
	if _, err := s.Update(ctxT(t), w.r); !errors.Is(err, nsdb.ErrNotFound) {
		t.Fatalf("update of a deleted router: %v, want not found", err)
	}
	if _, err := s.Delete(ctxT(t), topology.KindRouter, w.r.ID, 0); !errors.Is(err, nsdb.ErrNotFound) {
		t.Fatalf("delete of a deleted router: %v, want not found", err)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func testRevisionMismatch(t *testing.T, open opener) {
	s := open()
	r := create(t, s, &topology.Router{Meta: topology.Meta{Name: "r"}})
	stale := *r
	r.Name = "r2"
	r2, err := s.Update(ctxT(t), r)
	if err != nil {
		t.Fatal(err)
	}
	before := dump(t, s)
	stale.Name = "lost update"
	_, err = s.Update(ctxT(t), &stale)
	var re *nsdb.RevisionError
	if !errors.As(err, &re) || !errors.Is(err, nsdb.ErrConflict) || re.Want != stale.Revision || re.Current != r2.GetMeta().Revision {
		t.Fatalf("stale update: %v", err)
	}
	if _, err := s.Delete(ctxT(t), topology.KindRouter, r.ID, stale.Revision); !errors.Is(err, nsdb.ErrConflict) {
		t.Fatalf("stale delete: %v", err)
	}
	sameDump(t, before, dump(t, s))
	if _, err := s.Delete(ctxT(t), topology.KindRouter, r.ID, r2.GetMeta().Revision); err != nil {
		t.Fatalf("delete at the current revision: %v", err)
	}
	// Creating an id that exists is a conflict.
	b := create(t, s, &topology.Bridge{})
	if _, err := s.Create(ctxT(t), &topology.Bridge{Meta: topology.Meta{ID: b.ID}}); !errors.Is(err, nsdb.ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
	// A caller-chosen id is kept.
	if c := create(t, s, &topology.Bridge{Meta: topology.Meta{ID: "bridge-one"}}); c.ID != "bridge-one" {
		t.Fatalf("id %q", c.ID)
	}
}

func testTunnelKeys(t *testing.T, open opener) {
	s := open()
	b := create(t, s, &topology.Bridge{})
	keys := map[uint32]string{}
	var ports []*topology.Port
	for i := range 50 {
		p := bridgePort(b, i)
		p.TunnelKey = 77 // ignored: the store assigns keys
		p = create(t, s, p)
		if p.TunnelKey == 0 || p.TunnelKey > topology.MaxTunnelKey {
			t.Fatalf("tunnel key %d out of range", p.TunnelKey)
		}
		if other, dup := keys[p.TunnelKey]; dup {
			t.Fatalf("tunnel key %d given to %s and %s", p.TunnelKey, other, p.ID)
		}
		keys[p.TunnelKey] = p.ID
		ports = append(ports, p)
	}
	// Delete some, create more: keys stay unique among live ports.
	for _, p := range ports[:10] {
		if _, err := s.Delete(ctxT(t), topology.KindPort, p.ID, 0); err != nil {
			t.Fatal(err)
		}
		delete(keys, p.TunnelKey)
	}
	for i := range 20 {
		p := create(t, s, bridgePort(b, 100+i))
		if other, dup := keys[p.TunnelKey]; dup {
			t.Fatalf("tunnel key %d reused while %s holds it", p.TunnelKey, other)
		}
		keys[p.TunnelKey] = p.ID
	}
	// The key cannot be changed, but an update may leave it out.
	p := get[*topology.Port](t, s, topology.KindPort, ports[20].ID)
	p.TunnelKey++
	var fe *topology.FieldError
	if _, err := s.Update(ctxT(t), p); !errors.As(err, &fe) || fe.Field != "tunnel_key" {
		t.Fatalf("changing the tunnel key: %v", err)
	}
	p.TunnelKey = 0
	p.AdminDown = true
	u, err := s.Update(ctxT(t), p)
	if err != nil || u.(*topology.Port).TunnelKey != ports[20].TunnelKey {
		t.Fatalf("update without tunnel key: %v %+v", err, u)
	}
}

func testLinkUnlink(t *testing.T, open opener) {
	s := open()
	r := create(t, s, &topology.Router{})
	b := create(t, s, &topology.Bridge{})
	rp := create(t, s, routerPort(r, 1))
	bp := create(t, s, bridgePort(b, 1))
	bp2 := create(t, s, bridgePort(b, 2))
	if err := s.Link(ctxT(t), rp.ID, bp.ID); err != nil {
		t.Fatal(err)
	}
	if p := get[*topology.Port](t, s, topology.KindPort, rp.ID); p.PeerID != bp.ID {
		t.Fatalf("router port peer %q", p.PeerID)
	}
	if p := get[*topology.Port](t, s, topology.KindPort, bp.ID); p.PeerID != rp.ID {
		t.Fatalf("bridge port peer %q", p.PeerID)
	}
	before := dump(t, s)
	for _, c := range []struct {
		a, b string
		want error
	}{
		{rp.ID, bp2.ID, nsdb.ErrConflict},     // rp already linked
		{bp2.ID, rp.ID, nsdb.ErrConflict},     // rp already linked, seen from the other side
		{"nope", bp2.ID, nsdb.ErrNotFound},    // unknown port
		{bp2.ID, bp.ID, errFieldSentinel},     // bridge to bridge is invalid
		{rp.ID, rp.ID, nsdb.ErrConflict},      // itself (already linked)
		{bp2.ID, "missing", errFieldSentinel}, // unknown peer
	} {
		err := s.Link(ctxT(t), c.a, c.b)
		if c.want == errFieldSentinel {
			var fe *topology.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("link %s %s: %v, want a field error", c.a, c.b, err)
			}
		} else if !errors.Is(err, c.want) {
			t.Errorf("link %s %s: %v, want %v", c.a, c.b, err, c.want)
		}
	}
	sameDump(t, before, dump(t, s))
	// Unlinking from either side clears both.
	if err := s.Unlink(ctxT(t), bp.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{rp.ID, bp.ID} {
		if p := get[*topology.Port](t, s, topology.KindPort, id); p.PeerID != "" {
			t.Fatalf("port %s still linked to %s", id, p.PeerID)
		}
	}
	if err := s.Unlink(ctxT(t), bp.ID); !errors.Is(err, nsdb.ErrConflict) {
		t.Fatalf("unlinking an unlinked port: %v", err)
	}
	// Creating a port with a peer_id links both sides.
	p3 := routerPort(r, 3)
	p3.PeerID = bp2.ID
	p3 = create(t, s, p3)
	if p := get[*topology.Port](t, s, topology.KindPort, bp2.ID); p.PeerID != p3.ID {
		t.Fatalf("peer of a port created linked: %q", p.PeerID)
	}
}

// errFieldSentinel marks an expected *topology.FieldError in tables.
var errFieldSentinel = errors.New("field error")

func testCascadesAndRefusals(t *testing.T, open opener) {
	s := open()
	w := buildWorld(t, s)
	ctx := ctxT(t)

	// Refused writes leave the store exactly as it was.
	before := dump(t, s)
	refused := []struct {
		name string
		do   func() error
		want error
	}{
		{"delete chain in use by a router", func() error {
			_, err := s.Delete(ctx, topology.KindChain, w.chain.ID, 0)
			return err
		}, nsdb.ErrConflict},
		{"delete ip group used by a rule", func() error {
			_, err := s.Delete(ctx, topology.KindIPGroup, w.ipg.ID, 0)
			return err
		}, nsdb.ErrConflict},
		{"delete host with a bound port", func() error {
			_, err := s.Delete(ctx, topology.KindHost, w.host.ID, 0)
			return err
		}, nsdb.ErrConflict},
		{"port on a missing router", func() error {
			_, err := s.Create(ctx, &topology.Port{DeviceKind: topology.KindRouter, DeviceID: "missing", MAC: mac(9), Address: netip.MustParsePrefix("10.8.0.1/24")})
			return err
		}, errFieldSentinel},
		{"jump to a missing chain", func() error {
			_, err := s.Create(ctx, &topology.Chain{Rules: []topology.Rule{{Action: topology.ActionJump, JumpChain: "missing"}}})
			return err
		}, errFieldSentinel},
		{"jump cycle", func() error {
			c := get[*topology.Chain](t, s, topology.KindChain, w.chain.ID)
			c.Rules = append(c.Rules, topology.Rule{Action: topology.ActionJump, JumpChain: c.ID})
			_, err := s.Update(ctx, c)
			return err
		}, errFieldSentinel},
		{"route via a port of another router", func() error {
			_, err := s.Create(ctx, &topology.Route{RouterID: w.r.ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("10.7.0.0/16"), NextHopPort: w.bp.ID})
			return err
		}, errFieldSentinel},
		{"bind an interface twice", func() error {
			p := routerPort(w.r, 5)
			p.HostID, p.Interface = w.host.ID, "eth1"
			_, err := s.Create(ctx, p)
			return err
		}, nsdb.ErrConflict},
		{"overlapping dhcp subnet", func() error {
			_, err := s.Create(ctx, &topology.DHCPSubnet{BridgeID: w.b.ID, Subnet: netip.MustParsePrefix("10.0.1.128/25"), Gateway: netip.MustParseAddr("10.0.1.129")})
			return err
		}, nsdb.ErrConflict},
		{"invalid object", func() error {
			_, err := s.Create(ctx, &topology.Route{RouterID: w.r.ID, Type: "sideways"})
			return err
		}, errFieldSentinel},
		{"move a port to another device", func() error {
			p := get[*topology.Port](t, s, topology.KindPort, w.xp.ID)
			p.DeviceID = "other"
			_, err := s.Update(ctx, p)
			return err
		}, errFieldSentinel},
	}
	for _, c := range refused {
		err := c.do()
		if c.want == errFieldSentinel {
			var fe *topology.FieldError
			if !errors.As(err, &fe) {
				t.Errorf("%s: %v, want a field error", c.name, err)
			}
		} else if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		sameDump(t, before, dump(t, s))
	}

	// Deleting the bridge unlinks the router port and takes its ports and
	// DHCP subnet with it.
	plan, err := s.Delete(ctx, topology.KindBridge, w.b.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Deletes) != 3 { // bridge, bridge port, dhcp subnet
		t.Fatalf("bridge delete took %v", plan.Deletes)
	}
	assertNotFound(t, s, topology.KindPort, w.bp.ID)
	assertNotFound(t, s, topology.KindDHCP, w.dhcp.ID)
	if p := get[*topology.Port](t, s, topology.KindPort, w.rp.ID); p.PeerID != "" {
		t.Fatalf("router port still linked to %s", p.PeerID)
	}

	// Deleting the router takes its ports and routes; the port group loses
	// its member; the chain is then free to go.
	if _, err := s.Delete(ctx, topology.KindRouter, w.r.ID, 0); err != nil {
		t.Fatal(err)
	}
	for _, o := range []topology.Object{w.r, w.rp, w.xp, w.route} {
		assertNotFound(t, s, o.Kind(), o.GetMeta().ID)
	}
	if pg := get[*topology.PortGroup](t, s, topology.KindPortGroup, w.pg.ID); len(pg.Ports) != 0 {
		t.Fatalf("port group still lists %v", pg.Ports)
	}
	if _, err := s.Delete(ctx, topology.KindChain, w.chain.ID, 0); err != nil {
		t.Fatalf("delete an unused chain: %v", err)
	}
	// The host leaves its tunnel zone when deleted.
	if _, err := s.Delete(ctx, topology.KindHost, w.host.ID, 0); err != nil {
		t.Fatal(err)
	}
	if z := get[*topology.TunnelZone](t, s, topology.KindTunnelZone, w.zone.ID); len(z.Members) != 0 {
		t.Fatalf("zone members %v", z.Members)
	}
	noDangling(t, s)
}

// noDangling checks every reference in the store resolves.
func noDangling(t *testing.T, s *nsdb.Store) {
	t.Helper()
	s.Read(func(r topology.Reader) {
		for _, k := range topology.Kinds {
			for _, o := range r.List(k) {
				for _, ref := range o.Refs() {
					if r.Get(ref.Kind, ref.ID) == nil {
						t.Errorf("%s %s: %s → missing %s %s", k, o.GetMeta().ID, ref.Field, ref.Kind, ref.ID)
					}
				}
				if p, ok := o.(*topology.Port); ok && p.PeerID != "" {
					if q, _ := r.Get(topology.KindPort, p.PeerID).(*topology.Port); q == nil || q.PeerID != p.ID {
						t.Errorf("port %s links to %s, which does not link back", p.ID, p.PeerID)
					}
				}
			}
		}
	})
}

func testTxnAllOrNothing(t *testing.T, open opener) {
	s := open()
	ctx := ctxT(t)
	before := dump(t, s)
	// A Txn whose second step fails commits nothing.
	_, err := s.Txn(ctx, func(tx *nsdb.Tx) error {
		r, err := tx.Create(&topology.Router{Meta: topology.Meta{Name: "r"}})
		if err != nil {
			return err
		}
		if tx.Get(topology.KindRouter, r.GetMeta().ID) == nil {
			return errors.New("tx does not see its own create")
		}
		_, err = tx.Create(&topology.Port{DeviceKind: topology.KindRouter, DeviceID: "missing", MAC: mac(1), Address: netip.MustParsePrefix("10.0.0.1/24")})
		return err
	})
	var fe *topology.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("txn: %v", err)
	}
	sameDump(t, before, dump(t, s))
	// A Txn creating a router and its ports, which reference it, commits at once.
	var rid string
	rev, err := s.Txn(ctx, func(tx *nsdb.Tx) error {
		r, err := tx.Create(&topology.Router{})
		if err != nil {
			return err
		}
		rid = r.GetMeta().ID
		for i := range 3 {
			if _, err := tx.Create(routerPort(r.(*topology.Router), i)); err != nil {
				return err
			}
		}
		if n := len(tx.List(topology.KindPort)); n != 3 {
			return fmt.Errorf("tx lists %d ports", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ports, _ := s.List(ctx, topology.KindPort)
	if len(ports) != 3 {
		t.Fatalf("%d ports", len(ports))
	}
	for _, p := range ports {
		if p.GetMeta().Revision != rev || p.(*topology.Port).DeviceID != rid {
			t.Fatalf("port %+v not from the commit at %d", p, rev)
		}
	}
}

// A device with more ports than etcd's default transaction limit (128
// operations) is created and deleted in one transaction each.
func testBigTransaction(t *testing.T, open opener) {
	s := open()
	var bid string
	_, err := s.Txn(ctxT(t), func(tx *nsdb.Tx) error {
		b, err := tx.Create(&topology.Bridge{})
		if err != nil {
			return err
		}
		bid = b.GetMeta().ID
		for i := range 300 {
			if _, err := tx.Create(bridgePort(b.(*topology.Bridge), i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ports, _ := s.List(ctxT(t), topology.KindPort); len(ports) != 300 {
		t.Fatalf("%d ports", len(ports))
	}
	plan, err := s.Delete(ctxT(t), topology.KindBridge, bid, 0)
	if err != nil || len(plan.Deletes) != 301 {
		t.Fatalf("delete: %v", err)
	}
	if ports, _ := s.List(ctxT(t), topology.KindPort); len(ports) != 0 {
		t.Fatalf("%d ports left", len(ports))
	}
}
