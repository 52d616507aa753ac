package topology

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fixture builds a small topology, every object validated and checked the
// way the store does it:
//
//	r1: rp1 (10.0.0.1/24) ↔ bp1 on b1;  rp2 (192.0.2.2/32) bound to h1/eth1
//	r2: rp3 (10.9.0.1/24)
//	b1: bp1, bp2 (bound to h1/tap-bp2, in_filter c-in), DHCP d1 10.0.0.0/24
//	b2: bp5 (unlinked, unbound)
//	routes on r1: rt1 0/0 via rp1 gw 10.0.0.254, rt2 blackhole, rt3 via rp2
//	chains: c-in; c-a jumps to c-b; c-b; c-ipg uses ipg1
//	pg1 = {bp2, rp2};  tz1 = {h1, h2}
func fixture(t *testing.T) *Index {
	t.Helper()
	x := NewIndex()
	put := func(o Object) {
		t.Helper()
		if err := o.Validate(); err != nil {
			t.Fatalf("fixture %s: Validate: %v", Key(o), err)
		}
		if err := Check(x, nil, o); err != nil {
			t.Fatalf("fixture %s: Check: %v", Key(o), err)
		}
		x.Put(o)
	}
	put(&Host{Meta: Meta{ID: "h1"}, Interfaces: []HostInterface{{Name: "eth1"}, {Name: "tap-bp2"}}})
	put(&Host{Meta: Meta{ID: "h2"}})
	put(&TunnelZone{Meta: Meta{ID: "tz1"}, Type: TunnelVXLAN, Members: []TunnelZoneMember{
		{HostID: "h1", Address: ip("192.168.1.1")}, {HostID: "h2", Address: ip("192.168.1.2")}}})
	put(&IPAddrGroup{Meta: Meta{ID: "ipg1"}, Addresses: []netip.Addr{ip("10.0.0.10")}})
	put(&Chain{Meta: Meta{ID: "c-in"}, Rules: []Rule{{ID: "1", Action: ActionAccept}}})
	put(&Chain{Meta: Meta{ID: "c-b"}, Rules: []Rule{{ID: "1", Action: ActionReturn}}})
	put(&Chain{Meta: Meta{ID: "c-a"}, Rules: []Rule{{ID: "1", Action: ActionJump, JumpChain: "c-b"}}})
	put(&Chain{Meta: Meta{ID: "c-ipg"}, Rules: []Rule{{ID: "1", Action: ActionDrop, Condition: Condition{IPGroupSrc: "ipg1"}}}})
	put(&Router{Meta: Meta{ID: "r1"}})
	put(&Router{Meta: Meta{ID: "r2"}})
	put(&Bridge{Meta: Meta{ID: "b1"}})
	put(&Bridge{Meta: Meta{ID: "b2"}})
	put(&Port{Meta: Meta{ID: "bp1"}, DeviceKind: KindBridge, DeviceID: "b1"})
	put(&Port{Meta: Meta{ID: "rp1"}, DeviceKind: KindRouter, DeviceID: "r1", MAC: mac("02:00:00:00:00:01"), Address: pfx("10.0.0.1/24"), PeerID: "bp1"})
	linked := Clone(x.Get(KindPort, "bp1")).(*Port)
	linked.PeerID = "rp1"
	if err := Check(x, x.Get(KindPort, "bp1"), linked); err != nil {
		t.Fatalf("fixture: link bp1: %v", err)
	}
	x.Put(linked)
	put(&Port{Meta: Meta{ID: "rp2"}, DeviceKind: KindRouter, DeviceID: "r1", MAC: mac("02:00:00:00:00:02"), Address: pfx("192.0.2.2/32"), HostID: "h1", Interface: "eth1"})
	put(&Port{Meta: Meta{ID: "rp3"}, DeviceKind: KindRouter, DeviceID: "r2", MAC: mac("02:00:00:00:00:03"), Address: pfx("10.9.0.1/24")})
	put(&Port{Meta: Meta{ID: "bp2"}, DeviceKind: KindBridge, DeviceID: "b1", HostID: "h1", Interface: "tap-bp2", InFilter: "c-in"})
	put(&Port{Meta: Meta{ID: "bp5"}, DeviceKind: KindBridge, DeviceID: "b2"})
	put(&PortGroup{Meta: Meta{ID: "pg1"}, Ports: []string{"bp2", "rp2"}})
	put(&Route{Meta: Meta{ID: "rt1"}, RouterID: "r1", Type: RouteNormal, DstPrefix: pfx("0.0.0.0/0"), NextHopPort: "rp1", NextHopGateway: ip("10.0.0.254")})
	put(&Route{Meta: Meta{ID: "rt2"}, RouterID: "r1", Type: RouteBlackhole, DstPrefix: pfx("10.66.0.0/16")})
	// A /32 uplink reaches its gateway on the link, outside its "subnet".
	put(&Route{Meta: Meta{ID: "rt3"}, RouterID: "r1", Type: RouteNormal, DstPrefix: pfx("203.0.113.0/24"), NextHopPort: "rp2", NextHopGateway: ip("192.0.2.1")})
	put(&DHCPSubnet{Meta: Meta{ID: "d1"}, BridgeID: "b1", Subnet: pfx("10.0.0.0/24"), Gateway: ip("10.0.0.1")})
	return x
}

// checkErr asserts err's type (conflict or not), field and reason.
func checkErr(t *testing.T, err error, conflict bool, field, reason string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("got nil, want error on %q containing %q", field, reason)
	case conflict:
		var ce *ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
			t.Fatalf("got %v (%T), want *ConflictError", err, err)
		}
		if ce.Field != field || !strings.Contains(ce.Reason, reason) {
			t.Fatalf("conflict mismatch\n got field %q reason %q\nwant field %q reason containing %q", ce.Field, ce.Reason, field, reason)
		}
	default:
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("got %v (%T), want *FieldError", err, err)
		}
		if errors.Is(err, ErrConflict) {
			t.Fatalf("a FieldError must not be a conflict: %v", err)
		}
		if fe.Field != field || !strings.Contains(fe.Reason, reason) {
			t.Fatalf("field error mismatch\n got field %q reason %q\nwant field %q reason containing %q", fe.Field, fe.Reason, field, reason)
		}
	}
}

func TestCheck(t *testing.T) {
	port := func(id, dev string, kind Kind, mod func(*Port)) *Port {
		p := &Port{Meta: Meta{ID: id}, DeviceKind: kind, DeviceID: dev}
		if kind == KindRouter {
			p.MAC, p.Address = mac("02:00:00:00:00:99"), pfx("10.5.0.1/24")
		}
		if mod != nil {
			mod(p)
		}
		return p
	}
	update := func(x *Index, k Kind, id string, mod func(Object)) (old, o Object) {
		old = x.Get(k, id)
		o = Clone(old)
		mod(o)
		return old, o
	}
	cases := []struct {
		name     string
		build    func(x *Index) (old, o Object)
		conflict bool
		field    string
		reason   string // "" = Check must pass
	}{
		{"new bridge port ok", func(x *Index) (Object, Object) { return nil, port("bp9", "b1", KindBridge, nil) }, false, "", ""},
		{"link new router port to free bridge port", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r2", KindRouter, func(p *Port) { p.PeerID = "bp5" })
		}, false, "", ""},
		{"unknown device", func(x *Index) (Object, Object) { return nil, port("bp9", "b9", KindBridge, nil) }, false, "device_id", "bridge b9 does not exist"},
		{"unknown in_filter", func(x *Index) (Object, Object) {
			return nil, port("bp9", "b1", KindBridge, func(p *Port) { p.InFilter = "nope" })
		}, false, "in_filter", "chain nope does not exist"},
		{"unknown host", func(x *Index) (Object, Object) {
			return nil, port("bp9", "b1", KindBridge, func(p *Port) { p.HostID, p.Interface = "h9", "tap0" })
		}, false, "host_id", "host h9 does not exist"},
		{"unknown next hop port", func(x *Index) (Object, Object) {
			return nil, &Route{Meta: Meta{ID: "rt9"}, RouterID: "r1", Type: RouteNormal, DstPrefix: pfx("0.0.0.0/0"), NextHopPort: "nope"}
		}, false, "next_hop_port", "port nope does not exist"},
		{"unknown rule port", func(x *Index) (Object, Object) {
			return nil, &Chain{Meta: Meta{ID: "c9"}, Rules: []Rule{{ID: "1", Action: ActionDrop}, {ID: "2", Action: ActionDrop, Condition: Condition{InPorts: []string{"bp1", "zz"}}}}}
		}, false, "rules[1].in_ports[1]", "port zz does not exist"},
		{"unknown tunnel zone host", func(x *Index) (Object, Object) {
			return nil, &TunnelZone{Meta: Meta{ID: "tz9"}, Type: TunnelVXLAN, Members: []TunnelZoneMember{{HostID: "h9", Address: ip("192.168.1.9")}}}
		}, false, "members[0].host_id", "host h9 does not exist"},
		{"router id names a bridge", func(x *Index) (Object, Object) {
			return nil, &Route{Meta: Meta{ID: "rt9"}, RouterID: "b1", Type: RouteBlackhole, DstPrefix: pfx("0.0.0.0/0")}
		}, false, "router_id", "router b1 does not exist"},

		{"link to already linked port", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r2", KindRouter, func(p *Port) { p.PeerID = "bp1" })
		}, true, "peer_id", "port bp1 is already linked to port rp1"},
		{"link to bound port", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r2", KindRouter, func(p *Port) { p.PeerID = "bp2" })
		}, true, "peer_id", "port bp2 is bound to a host interface"},
		{"bridge to bridge", func(x *Index) (Object, Object) {
			return nil, port("bp9", "b1", KindBridge, func(p *Port) { p.PeerID = "bp5" })
		}, false, "peer_id", "bridge ports can only be linked to router ports"},
		{"bridge port links to a free router port", func(x *Index) (Object, Object) {
			return nil, port("bp9", "b1", KindBridge, func(p *Port) { p.PeerID = "rp3" })
		}, false, "", ""},
		{"router to own router", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r2", KindRouter, func(p *Port) { p.PeerID = "rp3" })
		}, false, "peer_id", "port rp3 is on the same device"},
		{"device cannot change", func(x *Index) (Object, Object) {
			return update(x, KindPort, "bp5", func(o Object) { o.(*Port).DeviceID = "b1" })
		}, false, "device_id", "cannot change"},
		{"tunnel key cannot change", func(x *Index) (Object, Object) {
			return update(x, KindPort, "bp5", func(o Object) { o.(*Port).TunnelKey = 7 })
		}, false, "tunnel_key", "assigned by the store"},
		{"duplicate router address", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r1", KindRouter, func(p *Port) { p.Address = pfx("10.0.0.1/16") })
		}, true, "address", "address 10.0.0.1 is already on port rp1"},
		{"same address on another router", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r2", KindRouter, func(p *Port) { p.Address = pfx("10.0.0.1/24") })
		}, false, "", ""},
		{"subnet inside another port's subnet", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r1", KindRouter, func(p *Port) { p.Address = pfx("10.0.0.129/25") })
		}, true, "address", "subnet 10.0.0.128/25 overlaps subnet 10.0.0.0/24 of port rp1"},
		{"subnet around another port's subnet", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r1", KindRouter, func(p *Port) { p.Address = pfx("10.0.9.1/16") })
		}, true, "address", "subnet 10.0.0.0/16 overlaps subnet 10.0.0.0/24 of port rp1"},
		{"a port's subnet moved onto another's", func(x *Index) (Object, Object) {
			return update(x, KindPort, "rp2", func(o Object) { o.(*Port).Address = pfx("10.0.0.2/24") })
		}, true, "address", "overlaps subnet 10.0.0.0/24 of port rp1"},
		{"adjacent subnets on one router", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r1", KindRouter, func(p *Port) { p.Address = pfx("10.0.1.1/24") })
		}, false, "", ""},
		{"overlapping subnet on another router", func(x *Index) (Object, Object) {
			return nil, port("rp9", "r2", KindRouter, func(p *Port) { p.Address = pfx("10.0.0.2/16") })
		}, false, "", ""},

		{"route via another router's port", func(x *Index) (Object, Object) {
			return nil, &Route{Meta: Meta{ID: "rt9"}, RouterID: "r1", Type: RouteNormal, DstPrefix: pfx("0.0.0.0/0"), NextHopPort: "rp3"}
		}, false, "next_hop_port", "port rp3 is not a port of router r1"},
		{"route via a bridge port", func(x *Index) (Object, Object) {
			return nil, &Route{Meta: Meta{ID: "rt9"}, RouterID: "r1", Type: RouteNormal, DstPrefix: pfx("0.0.0.0/0"), NextHopPort: "bp1"}
		}, false, "next_hop_port", "port bp1 is not a port of router r1"},
		{"gateway outside the port's subnet", func(x *Index) (Object, Object) {
			return nil, &Route{Meta: Meta{ID: "rt9"}, RouterID: "r1", Type: RouteNormal, DstPrefix: pfx("0.0.0.0/0"), NextHopPort: "rp1", NextHopGateway: ip("10.1.0.1")}
		}, false, "next_hop_gateway", "10.1.0.1 is not in the subnet 10.0.0.0/24 of port rp1"},
		{"route cannot move", func(x *Index) (Object, Object) {
			return update(x, KindRoute, "rt2", func(o Object) { o.(*Route).RouterID = "r2" })
		}, false, "router_id", "cannot change"},

		{"jump cycle", func(x *Index) (Object, Object) {
			return update(x, KindChain, "c-b", func(o Object) {
				c := o.(*Chain)
				c.Rules = append([]Rule{{ID: "0", Action: ActionDrop}}, Rule{ID: "j", Action: ActionJump, JumpChain: "c-a"})
			})
		}, false, "rules[1].jump_chain", "jumping to chain c-a makes a cycle back to chain c-b"},
		{"self jump", func(x *Index) (Object, Object) {
			return nil, &Chain{Meta: Meta{ID: "c9"}, Rules: []Rule{{ID: "j", Action: ActionJump, JumpChain: "c9"}}}
		}, false, "rules[0].jump_chain", "jumping to chain c9 makes a cycle back to chain c9"},
		{"diamond is no cycle", func(x *Index) (Object, Object) {
			return nil, &Chain{Meta: Meta{ID: "c9"}, Rules: []Rule{
				{ID: "1", Action: ActionJump, JumpChain: "c-a"}, {ID: "2", Action: ActionJump, JumpChain: "c-b"}}}
		}, false, "", ""},

		{"bind an interface twice", func(x *Index) (Object, Object) {
			return nil, port("bp9", "b2", KindBridge, func(p *Port) { p.HostID, p.Interface = "h1", "tap-bp2" })
		}, true, "interface", "interface tap-bp2 of host h1 is already bound to port bp2"},
		{"bind another interface", func(x *Index) (Object, Object) {
			return nil, port("bp9", "b2", KindBridge, func(p *Port) { p.HostID, p.Interface = "h1", "tap-bp9" })
		}, false, "", ""},
		{"rebind a port to its own interface", func(x *Index) (Object, Object) {
			return update(x, KindPort, "bp2", func(o Object) { o.(*Port).AdminDown = true })
		}, false, "", ""},

		{"host in two zones", func(x *Index) (Object, Object) {
			return nil, &TunnelZone{Meta: Meta{ID: "tz2"}, Type: TunnelVXLAN, Members: []TunnelZoneMember{{HostID: "h2", Address: ip("192.168.2.2")}}}
		}, true, "members[0].host_id", "host h2 is already a member of tunnel zone tz1"},
		{"update own zone", func(x *Index) (Object, Object) {
			return update(x, KindTunnelZone, "tz1", func(o Object) { o.(*TunnelZone).Members[0].Address = ip("192.168.1.100") })
		}, false, "", ""},

		{"overlapping DHCP subnet", func(x *Index) (Object, Object) {
			return nil, &DHCPSubnet{Meta: Meta{ID: "d9"}, BridgeID: "b1", Subnet: pfx("10.0.0.128/25")}
		}, true, "subnet", "10.0.0.128/25 overlaps DHCP subnet d1 (10.0.0.0/24) on the same bridge"},
		{"disjoint DHCP subnet", func(x *Index) (Object, Object) {
			return nil, &DHCPSubnet{Meta: Meta{ID: "d9"}, BridgeID: "b1", Subnet: pfx("10.0.1.0/24")}
		}, false, "", ""},
		{"same subnet on another bridge", func(x *Index) (Object, Object) {
			return nil, &DHCPSubnet{Meta: Meta{ID: "d9"}, BridgeID: "b2", Subnet: pfx("10.0.0.0/24")}
		}, false, "", ""},
		{"DHCP subnet cannot move", func(x *Index) (Object, Object) {
			return update(x, KindDHCP, "d1", func(o Object) { o.(*DHCPSubnet).BridgeID = "b2" })
		}, false, "bridge_id", "cannot change"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := fixture(t)
			old, o := c.build(x)
			if err := o.Validate(); err != nil {
				t.Fatalf("test object does not validate: %v", err)
			}
			err := Check(x, old, o)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			checkErr(t, err, c.conflict, c.field, c.reason)
		})
	}
}

// TestCheckBindLinkedPeer: binding a port that another port is linked to
// is refused, even though the port itself names no peer.
func TestCheckBindLinkedPeer(t *testing.T) {
	x := fixture(t)
	// Half of a link (as in the middle of a transaction): rp1 → bp1 only.
	bp1 := Clone(x.Get(KindPort, "bp1")).(*Port)
	bp1.PeerID = ""
	x.Put(bp1)
	bound := Clone(bp1).(*Port)
	bound.HostID, bound.Interface = "h2", "tap0"
	checkErr(t, Check(x, bp1, bound), true, "host_id", "port bp1 is linked to port rp1")
}

func keys(os ...Object) []ObjectKey {
	var out []ObjectKey
	for _, o := range os {
		out = append(out, Key(o))
	}
	return out
}

func sortedKeys(ks []ObjectKey) []string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = k.String()
	}
	slices.Sort(s)
	return s
}

// apply carries out a delete plan on x and checks that nothing dangles.
func apply(t *testing.T, x *Index, p *DeletePlan) {
	t.Helper()
	for _, k := range p.Deletes {
		x.Delete(k.Kind, k.ID)
	}
	for _, o := range p.Updates {
		if err := o.Validate(); err != nil {
			t.Fatalf("updated %s does not validate: %v", Key(o), err)
		}
		x.Put(o)
	}
	for _, k := range Kinds {
		for _, o := range x.List(k) {
			for _, r := range o.Refs() {
				if x.Get(r.Kind, r.ID) == nil {
					t.Errorf("after the delete, %s %s still refers to %s %s", Key(o), r.Field, r.Kind, r.ID)
				}
			}
		}
	}
}

func TestPlanDelete(t *testing.T) {
	cases := []struct {
		name    string
		prep    func(t *testing.T, x *Index)
		kind    Kind
		id      string
		deletes []string // sorted "kind/id"
		updates map[string]func(t *testing.T, o Object)
	}{
		{
			name: "router cascades ports and routes, unlinks the bridge port", kind: KindRouter, id: "r1",
			deletes: []string{"port/rp1", "port/rp2", "route/rt1", "route/rt2", "route/rt3", "router/r1"},
			updates: map[string]func(*testing.T, Object){
				"port/bp1": func(t *testing.T, o Object) {
					if p := o.(*Port); p.PeerID != "" {
						t.Errorf("bp1 still linked to %s", p.PeerID)
					}
				},
				"port-group/pg1": func(t *testing.T, o Object) {
					if got := o.(*PortGroup).Ports; !slices.Equal(got, []string{"bp2"}) {
						t.Errorf("pg1 ports = %v, want [bp2]", got)
					}
				},
			},
		},
		{
			name: "route via a port goes with the port only", kind: KindPort, id: "rp1",
			deletes: []string{"port/rp1", "route/rt1"},
			updates: map[string]func(*testing.T, Object){
				"port/bp1": func(t *testing.T, o Object) {
					if o.(*Port).PeerID != "" {
						t.Error("bp1 still linked")
					}
				},
			},
		},
		{
			name: "bridge cascades ports and DHCP subnets, unlinks the router port", kind: KindBridge, id: "b1",
			deletes: []string{"bridge/b1", "dhcp-subnet/d1", "port/bp1", "port/bp2"},
			updates: map[string]func(*testing.T, Object){
				"port/rp1": func(t *testing.T, o Object) {
					if o.(*Port).PeerID != "" {
						t.Error("rp1 still linked")
					}
				},
				"port-group/pg1": func(t *testing.T, o Object) {
					if got := o.(*PortGroup).Ports; !slices.Equal(got, []string{"rp2"}) {
						t.Errorf("pg1 ports = %v, want [rp2]", got)
					}
				},
			},
		},
		{
			name: "port leaves its port groups", kind: KindPort, id: "bp2",
			deletes: []string{"port/bp2"},
			updates: map[string]func(*testing.T, Object){
				"port-group/pg1": func(t *testing.T, o Object) {
					if got := o.(*PortGroup).Ports; !slices.Equal(got, []string{"rp2"}) {
						t.Errorf("pg1 ports = %v, want [rp2]", got)
					}
				},
			},
		},
		{
			name: "host leaves its tunnel zone", kind: KindHost, id: "h2",
			deletes: []string{"host/h2"},
			updates: map[string]func(*testing.T, Object){
				"tunnel-zone/tz1": func(t *testing.T, o Object) {
					z := o.(*TunnelZone)
					if len(z.Members) != 1 || z.Members[0].HostID != "h1" || z.Members[0].Address != ip("192.168.1.1") {
						t.Errorf("tz1 members = %+v, want only h1", z.Members)
					}
				},
			},
		},
		{
			name: "host with no ports left can go", kind: KindHost, id: "h1",
			prep: func(t *testing.T, x *Index) {
				for _, id := range []string{"rp2", "bp2"} {
					p := Clone(x.Get(KindPort, id)).(*Port)
					p.HostID, p.Interface = "", ""
					x.Put(p)
				}
			},
			deletes: []string{"host/h1"},
			updates: map[string]func(*testing.T, Object){
				"tunnel-zone/tz1": func(t *testing.T, o Object) {
					if z := o.(*TunnelZone); len(z.Members) != 1 || z.Members[0].HostID != "h2" {
						t.Errorf("tz1 members = %+v, want only h2", z.Members)
					}
				},
			},
		},
		{
			name: "unused chain", kind: KindChain, id: "c-a",
			deletes: []string{"chain/c-a"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := fixture(t)
			if c.prep != nil {
				c.prep(t, x)
			}
			before := fmt.Sprint(x.Get(c.kind, c.id))
			p, err := PlanDelete(x, c.kind, c.id)
			if err != nil {
				t.Fatalf("PlanDelete: %v", err)
			}
			if p.Deletes[0] != (ObjectKey{c.kind, c.id}) {
				t.Errorf("first delete = %v, want the object itself", p.Deletes[0])
			}
			if got := sortedKeys(p.Deletes); !slices.Equal(got, c.deletes) {
				t.Errorf("deletes\n got %v\nwant %v", got, c.deletes)
			}
			var got []string
			for _, o := range p.Updates {
				k := Key(o).String()
				got = append(got, k)
				if f := c.updates[k]; f != nil {
					f(t, o)
				}
			}
			slices.Sort(got)
			var want []string
			for k := range c.updates {
				want = append(want, k)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("updates\n got %v\nwant %v", got, want)
			}
			// Planning must not touch the objects in the reader.
			if after := fmt.Sprint(x.Get(c.kind, c.id)); after != before {
				t.Errorf("PlanDelete modified the object: %s → %s", before, after)
			}
			apply(t, x, p)
		})
	}
}

func TestPlanDeleteRefused(t *testing.T) {
	cases := []struct {
		name   string
		prep   func(x *Index)
		kind   Kind
		id     string
		reason string
	}{
		{"chain used by a port filter", nil, KindChain, "c-in", "cannot delete chain c-in: it is used by port bp2 (in_filter)"},
		{"chain used by a jump", nil, KindChain, "c-b", "cannot delete chain c-b: it is used by chain c-a (rules[0].jump_chain)"},
		{"chain used by a router filter", func(x *Index) {
			r := Clone(x.Get(KindRouter, "r2")).(*Router)
			r.OutFilter = "c-a"
			x.Put(r)
		}, KindChain, "c-a", "used by router r2 (out_filter)"},
		{"ip group used by a rule", nil, KindIPGroup, "ipg1", "cannot delete ip-address-group ipg1: it is used by chain c-ipg (rules[0].ip_group_src)"},
		{"host with a bound port", nil, KindHost, "h1", "cannot delete host h1: it is used by port bp2 (host_id)"},
		{"router whose port a rule names", func(x *Index) {
			x.Put(&Chain{Meta: Meta{ID: "c-p"}, Rules: []Rule{{ID: "1", Action: ActionDrop, Condition: Condition{InPorts: []string{"rp3"}}}}})
		}, KindRouter, "r2", "cannot delete router r2: port rp3 (deleted with it) is used by chain c-p (rules[0].in_ports[0])"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := fixture(t)
			if c.prep != nil {
				c.prep(x)
			}
			p, err := PlanDelete(x, c.kind, c.id)
			if p != nil {
				t.Errorf("plan = %+v, want none", p)
			}
			checkErr(t, err, true, "", c.reason)
		})
	}
	_, err := PlanDelete(fixture(t), KindRouter, "nope")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("PlanDelete(unknown) = %v, want ErrNotFound", err)
	}
}

// naiveReferrers scans every object for references to (k, id).
func naiveReferrers(x *Index, k Kind, id string) []ObjectKey {
	var out []ObjectKey
	for _, kind := range Kinds {
		for _, o := range x.List(kind) {
			for _, r := range o.Refs() {
				if r.Kind == k && r.ID == id {
					out = append(out, Key(o))
					break
				}
			}
		}
	}
	// Referrers' documented order: by kind, then id.
	slices.SortFunc(out, func(a, b ObjectKey) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// TestIndexDifferential runs random puts, replacements, in-place edits and
// deletes and compares the reverse index with a full scan after each step.
func TestIndexDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []string{"a", "b", "c", "d", "e"}
	pick := func() string { return ids[rng.IntN(len(ids))] }
	randObj := func() Object {
		switch rng.IntN(4) {
		case 0:
			p := &Port{Meta: Meta{ID: pick()}, DeviceKind: KindBridge, DeviceID: pick()}
			if rng.IntN(2) == 0 {
				p.PeerID = pick()
			}
			if rng.IntN(3) == 0 {
				p.InFilter = pick()
			}
			return p
		case 1:
			c := &Chain{Meta: Meta{ID: pick()}}
			for i := rng.IntN(4); i > 0; i-- {
				c.Rules = append(c.Rules, Rule{Action: ActionJump, JumpChain: pick(), Condition: Condition{InPorts: []string{pick(), pick()}}})
			}
			return c
		case 2:
			g := &PortGroup{Meta: Meta{ID: pick()}}
			for i := rng.IntN(4); i > 0; i-- {
				g.Ports = append(g.Ports, pick())
			}
			return g
		default:
			return &Bridge{Meta: Meta{ID: pick()}, InFilter: pick()}
		}
	}
	x := NewIndex()
	model := map[ObjectKey]Object{}
	for step := 0; step < 5000; step++ {
		switch op := rng.IntN(10); {
		case op < 5:
			o := randObj()
			x.Put(o)
			model[Key(o)] = o
		case op < 7 && len(model) > 0:
			// Edit a stored object in place, then put it again.
			k := slices.SortedFunc(mapKeys(model), func(a, b ObjectKey) int { return strings.Compare(a.String(), b.String()) })[rng.IntN(len(model))]
			switch o := model[k].(type) {
			case *Port:
				o.PeerID = pick()
			case *Chain:
				o.Rules = nil
			case *PortGroup:
				o.Ports = append(o.Ports, pick())
			case *Bridge:
				o.InFilter = ""
			}
			x.Put(model[k])
		default:
			k := []Kind{KindPort, KindChain, KindPortGroup, KindBridge}[rng.IntN(4)]
			id := pick()
			x.Delete(k, id)
			delete(model, ObjectKey{k, id})
		}
		for _, k := range []Kind{KindPort, KindChain, KindPortGroup, KindBridge} {
			if x.Len(k) != countKind(model, k) {
				t.Fatalf("step %d: Len(%s) = %d, model has %d", step, k, x.Len(k), countKind(model, k))
			}
			for _, id := range ids {
				got, want := x.Referrers(k, id), naiveReferrers(x, k, id)
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("step %d: Referrers(%s, %s)\n got %v\nwant %v", step, k, id, got, want)
				}
			}
		}
	}
	// Deleting everything leaves no reverse entries behind.
	for k := range model {
		x.Delete(k.Kind, k.ID)
	}
	if len(x.refs) != 0 || len(x.out) != 0 {
		t.Errorf("empty index keeps %d reverse and %d forward entries", len(x.refs), len(x.out))
	}
}

func mapKeys(m map[ObjectKey]Object) func(func(ObjectKey) bool) {
	return func(yield func(ObjectKey) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func countKind(m map[ObjectKey]Object, k Kind) int {
	n := 0
	for key := range m {
		if key.Kind == k {
			n++
		}
	}
	return n
}

func TestIndexListAndClone(t *testing.T) {
	x := fixture(t)
	ports := x.List(KindPort)
	if got := sortedKeys(keys(ports...)); !slices.Equal(got, []string{"port/bp1", "port/bp2", "port/bp5", "port/rp1", "port/rp2", "port/rp3"}) {
		t.Errorf("List(port) = %v", got)
	}
	for i := 1; i < len(ports); i++ {
		if ports[i-1].GetMeta().ID >= ports[i].GetMeta().ID {
			t.Errorf("List not sorted by id: %v", keys(ports...))
		}
	}
	rp1 := x.Get(KindPort, "rp1").(*Port)
	rp1.Revision = 42
	c := Clone(rp1).(*Port)
	if !reflect.DeepEqual(c, rp1) {
		t.Errorf("Clone differs:\n got %+v\nwant %+v", c, rp1)
	}
	c.Labels = map[string]string{"x": "y"}
	c.IPs = append(c.IPs, ip("10.0.0.9"))
	if rp1.Labels != nil || rp1.IPs != nil {
		t.Error("Clone shares memory with the original")
	}
}
