package agent

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// A partial replica holds the cloud and the VPCs of its host's ports only:
// nothing of VPC B while no port of B is bound to the host, all of B once one
// is, and nothing of B again when it is unbound. A full replica of the same
// store holds everything.
func TestPartialReplicaFollowsBoundVPCs(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mk := func(o topology.Object) topology.Object {
		t.Helper()
		c, err := s.Create(ctx, o)
		if err != nil {
			t.Fatalf("create %s: %v", o.Kind(), err)
		}
		return c
	}
	in := func(vpc string) topology.Meta {
		if vpc == "" {
			return topology.Meta{}
		}
		return topology.Meta{Labels: map[string]string{topology.LabelVPC: vpc}}
	}
	host := mk(&topology.Host{Meta: topology.Meta{Name: "h1"}}).GetMeta().ID
	edge := mk(&topology.Router{Meta: in("")}).GetMeta().ID
	type vpcObjs struct{ router, bridge, chain, port string }
	build := func(vpc string, n byte) vpcObjs {
		r := mk(&topology.Router{Meta: in(vpc)}).GetMeta().ID
		b := mk(&topology.Bridge{Meta: in(vpc)}).GetMeta().ID
		c := mk(&topology.Chain{Meta: in(vpc), Rules: []topology.Rule{{Action: topology.ActionAccept}}}).GetMeta().ID
		rp := mk(&topology.Port{Meta: in(vpc), DeviceKind: topology.KindRouter, DeviceID: r, MAC: topology.MAC{2, 0, 0, 0, n, 1},
			Address: netip.MustParsePrefix("10.0.0.1/24")}).GetMeta().ID
		mk(&topology.Port{Meta: in(vpc), DeviceKind: topology.KindBridge, DeviceID: b, PeerID: rp})
		p := mk(&topology.Port{Meta: in(vpc), DeviceKind: topology.KindBridge, DeviceID: b, MAC: topology.MAC{2, 0, 0, 0, n, 2},
			InFilter: c}).GetMeta().ID
		return vpcObjs{r, b, c, p}
	}
	a, b := build("vpc-a", 1), build("vpc-b", 2)
	bind := func(port, iface string) {
		t.Helper()
		o, err := s.Get(ctx, topology.KindPort, port)
		if err != nil {
			t.Fatal(err)
		}
		p := o.(*topology.Port)
		p.HostID, p.Interface = host, iface
		if iface == "" {
			p.HostID = ""
		}
		if _, err := s.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	bind(a.port, "tap-a")

	ro := nsdbtest.Open(t, nsdb.Config{Endpoints: s.Client().Endpoints(), NoTopology: true})
	partial, full := NewReplica(ro, host, true), NewReplica(ro, host, false)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	for _, r := range []*Replica{partial, full} {
		go func() { r.Run(rctx, nil); done <- struct{}{} }()
	}
	defer func() { stop(); <-done; <-done }()

	holds := func(o vpcObjs) func(topology.Reader) bool {
		return func(rd topology.Reader) bool {
			return rd.Get(topology.KindRouter, o.router) != nil && rd.Get(topology.KindBridge, o.bridge) != nil &&
				rd.Get(topology.KindChain, o.chain) != nil && rd.Get(topology.KindPort, o.port) != nil
		}
	}
	holdsNone := func(o vpcObjs) func(topology.Reader) bool {
		return func(rd topology.Reader) bool {
			return rd.Get(topology.KindRouter, o.router) == nil && rd.Get(topology.KindBridge, o.bridge) == nil &&
				rd.Get(topology.KindChain, o.chain) == nil && rd.Get(topology.KindPort, o.port) == nil
		}
	}
	wait := func(r *Replica, what string, cond func(topology.Reader) bool) {
		t.Helper()
		if err := r.WaitUntil(ctx, cond); err != nil {
			t.Fatalf("waiting until the replica %s: %v", what, err)
		}
	}
	wait(full, "holds both VPCs", func(rd topology.Reader) bool { return holds(a)(rd) && holds(b)(rd) })
	// A change to B, then one to A and one to the cloud: once the partial
	// replica has both later changes, a replica following B would have B's.
	for _, id := range []string{b.router, a.router, edge} {
		o, err := s.Get(ctx, topology.KindRouter, id)
		if err != nil {
			t.Fatal(err)
		}
		o.GetMeta().Name = "changed"
		if _, err := s.Update(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	named := func(id string) func(topology.Reader) bool {
		return func(rd topology.Reader) bool {
			o := rd.Get(topology.KindRouter, id)
			return o != nil && o.GetMeta().Name == "changed"
		}
	}
	wait(partial, "has VPC A's and the cloud's changes", func(rd topology.Reader) bool {
		return holds(a)(rd) && named(a.router)(rd) && named(edge)(rd) && rd.Get(topology.KindHost, host) != nil
	})
	partial.r.mu.Lock()
	if !holdsNone(b)(partial.r.idx) {
		t.Error("the partial replica holds objects of VPC B, which has no port on its host")
	}
	partial.r.mu.Unlock()
	if p, f := partial.Objects(), full.Objects(); p >= f {
		t.Errorf("partial replica holds %d objects, the full one %d", p, f)
	}

	bind(b.port, "tap-b")
	wait(partial, "holds VPC B once a port of B is bound to its host", holds(b))
	bind(b.port, "")
	wait(partial, "drops VPC B once its port is unbound", holdsNone(b))
	wait(partial, "keeps VPC A", holds(a))
}

// The metadata mirror of a partial agent follows the same partitions: the
// VPC objects of VPC A (its port is bound here) and the cloud's, none of B's
// until a port of B is bound here.
func TestPartialVPCMirrorFollowsBoundVPCs(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vs, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	put := func(objs map[string]any) {
		t.Helper()
		if _, err := vs.Update(ctx, func(_ *vpc.State, tx *nsdb.VPCTx) error {
			for id, o := range objs {
				if err := tx.Put(id, o); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(map[string]any{
		"vpc-a": &vpc.Vpc{ID: "vpc-a"}, "eni-a": &vpc.NetworkInterface{ID: "eni-a", VpcID: "vpc-a"},
		"vpc-b": &vpc.Vpc{ID: "vpc-b"}, "eni-b": &vpc.NetworkInterface{ID: "eni-b", VpcID: "vpc-b"},
		"111122223333": &vpc.Account{ID: "111122223333"},
	})
	host, err := s.Create(ctx, &topology.Host{Meta: topology.Meta{Name: "h1"}})
	if err != nil {
		t.Fatal(err)
	}
	br, err := s.Create(ctx, &topology.Bridge{})
	if err != nil {
		t.Fatal(err)
	}
	port := func(v string, n byte, bound bool) topology.Object {
		p := &topology.Port{Meta: topology.Meta{Labels: map[string]string{topology.LabelVPC: v}}, DeviceKind: topology.KindBridge,
			DeviceID: br.GetMeta().ID, MAC: topology.MAC{2, 0, 0, 0, 0, n}}
		if bound {
			p.HostID, p.Interface = host.GetMeta().ID, "tap-"+v
		}
		o, err := s.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	port("vpc-a", 1, true)
	pb := port("vpc-b", 2, false)

	ro := nsdbtest.Open(t, nsdb.Config{Endpoints: s.Client().Endpoints(), NoTopology: true})
	r, m := newReplica(), newVPCMirror()
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.follow(fctx, ro, host.GetMeta().ID, true, m) }()
	defer func() { stop(); <-done }()
	has := func(what string, cond func(st *vpc.State) bool) {
		t.Helper()
		for ctx.Err() == nil {
			m.mu.RLock()
			ok := cond(m.st)
			m.mu.RUnlock()
			if ok {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the mirror never %s", what)
	}
	// A change to B's ENI, then one to A's: once A's is seen, a mirror
	// following B would have B's too.
	put(map[string]any{"eni-b": &vpc.NetworkInterface{ID: "eni-b", VpcID: "vpc-b", Description: "later"}})
	put(map[string]any{"eni-a": &vpc.NetworkInterface{ID: "eni-a", VpcID: "vpc-a", Description: "later"}})
	has("held VPC A's objects and the cloud's", func(st *vpc.State) bool {
		e := st.NetworkInterfaces["eni-a"]
		return e != nil && e.Description == "later" && st.Vpcs["vpc-a"] != nil && st.Accounts["111122223333"] != nil
	})
	m.mu.RLock()
	if st := m.st; st.Vpcs["vpc-b"] != nil || st.NetworkInterfaces["eni-b"] != nil {
		t.Error("the mirror holds VPC B's objects, which has no port on its host")
	}
	m.mu.RUnlock()

	p := pb.(*topology.Port)
	p.HostID, p.Interface = host.GetMeta().ID, "tap-b"
	if _, err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	has("took VPC B's objects once a port of B was bound", func(st *vpc.State) bool {
		return st.Vpcs["vpc-b"] != nil && st.NetworkInterfaces["eni-b"] != nil
	})
	p.HostID, p.Interface, p.Revision = "", "", 0
	if _, err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	has("dropped VPC B's objects once its port was unbound", func(st *vpc.State) bool {
		return st.Vpcs["vpc-b"] == nil && st.NetworkInterfaces["eni-b"] == nil && st.Vpcs["vpc-a"] != nil
	})
}

// Widening and narrowing: host a holds VPC A's VM and follows, besides the
// cloud, only VPC A. The edge (a cloud router) routes VPC B's public
// address into VPC B's router; that route is VPC B's, copied into the cloud
// partition:
//
//	vmA 10.0.1.5 ─ bA ─ (10.0.1.1) edge (169.254.0.1) ─ (169.254.0.2) rB (10.1.0.1) ─ bB ─ vmB 10.1.0.5 on host b
//	                          203.0.113.10/32 via 169.254.0.2 [vpc-b]      203.0.113.10/32 via 10.1.0.5
//
// One packet from vmA to 203.0.113.10 (nothing resent): its simulation
// stops at the route into VPC B, the agent follows VPC B and simulates the
// parked packet again, which installs the flow through VPC B to host b.
// Once that flow has expired and nothing else goes there, VPC B is dropped.
func TestPartialReplicaWidensAndNarrows(t *testing.T) {
	s, ecfg := nsdbtest.OpenEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	eps := []string{ecfg.ClientURL}
	wa, wb := newWire(), newWire()
	ag, idA, _, _ := runAgent(t, eps, "a", netip.MustParseAddr("127.0.0.1"), wa, func(c *Config) { c.Replica, c.FlowTTL = ReplicaPartial, 4*time.Second })
	_, idB, _, _ := runAgent(t, eps, "b", netip.MustParseAddr("127.0.0.1"), wb, func(c *Config) { c.Replica = ReplicaPartial })
	waitFor(t, "the hosts registered", func() bool {
		for _, id := range []string{idA, idB} {
			if _, err := s.Get(ctx, topology.KindHost, id); err != nil {
				return false
			}
		}
		return true
	})
	create := func(vpc string, o topology.Object) topology.Object {
		t.Helper()
		if vpc != "" {
			o.GetMeta().Labels = map[string]string{topology.LabelVPC: vpc}
		}
		o, err := s.Create(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	link := func(x, y topology.Object) {
		t.Helper()
		if err := s.Link(ctx, x.GetMeta().ID, y.GetMeta().ID); err != nil {
			t.Fatal(err)
		}
	}
	eMAC, vmAMAC, vmBMAC := topology.MAC{2, 0xee, 0, 0, 0, 1}, topology.MAC{2, 0, 0, 0, 1, 5}, topology.MAC{2, 0, 0, 0, 2, 5}
	vmAIP, vmBIP, pub := netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.1.0.5"), netip.MustParseAddr("203.0.113.10")
	edge := create("", &topology.Router{Meta: topology.Meta{Name: "edge"}})
	eA := create("", &topology.Port{DeviceKind: topology.KindRouter, DeviceID: edge.GetMeta().ID, MAC: eMAC, Address: netip.MustParsePrefix("10.0.1.1/24")})
	eT := create("", &topology.Port{DeviceKind: topology.KindRouter, DeviceID: edge.GetMeta().ID, MAC: topology.MAC{2, 0xee, 0, 0, 0, 2},
		Address: netip.MustParsePrefix("169.254.0.1/24")})
	bA := create("vpc-a", &topology.Bridge{})
	link(create("vpc-a", &topology.Port{DeviceKind: topology.KindBridge, DeviceID: bA.GetMeta().ID}), eA)
	vmA := create("vpc-a", &topology.Port{DeviceKind: topology.KindBridge, DeviceID: bA.GetMeta().ID, MAC: vmAMAC,
		IPs: []netip.Addr{vmAIP}, HostID: idA, Interface: "vmA"}).(*topology.Port)
	rB := create("vpc-b", &topology.Router{})
	rBT := create("vpc-b", &topology.Port{DeviceKind: topology.KindRouter, DeviceID: rB.GetMeta().ID, MAC: topology.MAC{2, 0xbb, 0, 0, 0, 1},
		Address: netip.MustParsePrefix("169.254.0.2/24")})
	link(rBT, eT)
	rBB := create("vpc-b", &topology.Port{DeviceKind: topology.KindRouter, DeviceID: rB.GetMeta().ID, MAC: topology.MAC{2, 0xbb, 0, 0, 0, 2},
		Address: netip.MustParsePrefix("10.1.0.1/24")})
	bB := create("vpc-b", &topology.Bridge{})
	link(create("vpc-b", &topology.Port{DeviceKind: topology.KindBridge, DeviceID: bB.GetMeta().ID}), rBB)
	vmB := create("vpc-b", &topology.Port{DeviceKind: topology.KindBridge, DeviceID: bB.GetMeta().ID, MAC: vmBMAC,
		IPs: []netip.Addr{vmBIP}, HostID: idB, Interface: "vmB"}).(*topology.Port)
	create("vpc-b", &topology.Route{RouterID: rB.GetMeta().ID, Type: topology.RouteNormal, DstPrefix: netip.PrefixFrom(pub, 32),
		NextHopPort: rBB.GetMeta().ID, NextHopGateway: vmBIP})
	door := create("vpc-b", &topology.Route{RouterID: edge.GetMeta().ID, Type: topology.RouteNormal, DstPrefix: netip.PrefixFrom(pub, 32),
		NextHopPort: eT.GetMeta().ID, NextHopGateway: netip.MustParseAddr("169.254.0.2")})

	vm, _ := wa.vm(t, "vmA")
	// Plugged is not yet published: frames from a port are read once it is.
	waitFor(t, "vmA's port published", func() bool { return len(ag.ports.Load().list) == 1 })
	holdsB := func(rd topology.Reader) bool { return rd.Get(topology.KindRouter, rB.GetMeta().ID) != nil }
	// The route into VPC B, copied into the edge's partition, is held as a
	// far route (replica.far), outside the index.
	isFar := func(rd topology.Reader) bool {
		_, far := ag.rep.far[door.GetMeta().ID]
		return far && rd.Get(topology.KindRoute, door.GetMeta().ID) == nil
	}
	if err := ag.rep.waitUntil(ctx, func(rd topology.Reader) bool {
		return isFar(rd) && rd.Get(topology.KindPort, vmA.ID) != nil
	}); err != nil {
		t.Fatalf("the replica never held the route into VPC B as a far route: %v", err)
	}
	ag.rep.mu.Lock()
	if holdsB(ag.rep.idx) {
		t.Error("host a follows VPC B before any flow went there")
	}
	ag.rep.mu.Unlock()

	resumed := parkedCount(t, ag, "resumed")
	f := (&packet.Spec{EthSrc: vmAMAC, EthDst: eMAC, Src: packet.U32(vmAIP), Dst: packet.U32(pub),
		Proto: packet.ProtoUDP, SrcPort: 4000, DstPort: 53, TTL: 64, Payload: []byte("to b")}).Build()
	send(t, vm, f)
	waitFor(t, "the parked packet's flow, through VPC B to host b", func() bool {
		e := flowFor(ag, vmA.TunnelKey, f)
		if e == nil {
			return false
		}
		last := e.Actions[len(e.Actions)-1]
		return last.Kind == flow.Tunnel && last.Host == idB && last.Key == vmB.TunnelKey
	})
	ag.rep.mu.Lock()
	if _, far := ag.rep.far[door.GetMeta().ID]; far || ag.rep.idx.Get(topology.KindRoute, door.GetMeta().ID) == nil {
		t.Error("VPC B is followed but the route into it is not held in full")
	}
	ag.rep.mu.Unlock()
	if got := parkedCount(t, ag, "resumed"); got != resumed+1 {
		t.Errorf("parked packets resumed: %v, want %v", got, resumed+1)
	}
	// Narrowing: the flow expires (FlowTTL 4 s) and nothing else needs VPC
	// B; VPC A, bound here, stays.
	if err := ag.rep.waitUntil(ctx, func(rd topology.Reader) bool { return !holdsB(rd) }); err != nil {
		t.Fatalf("host a still follows VPC B once no flow goes there: %v", err)
	}
	ag.rep.mu.Lock()
	if ag.rep.idx.Get(topology.KindPort, vmA.ID) == nil || !isFar(ag.rep.idx) {
		t.Error("narrowing dropped VPC A's objects, or the cloud's copy of the route into VPC B is not a far route again")
	}
	ag.rep.mu.Unlock()
}

// A Host object's change invalidates nothing (the simulation reads no
// host), so it does not retire the flows a restarted agent adopted: its
// controller rewrites a host's interfaces at every agent restart. A port's
// change taints the port and its device.
func TestHostChangeTaintsNothing(t *testing.T) {
	r := newReplica()
	host := &topology.Host{Meta: topology.Meta{ID: "h1", Name: "h1", Revision: 1}}
	port := &topology.Port{Meta: topology.Meta{ID: "p1", Revision: 1}, DeviceKind: topology.KindBridge, DeviceID: "b1", HostID: "h1"}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.putLocked(topology.KindHost, host.ID, host, "")
	moved := topology.Clone(host).(*topology.Host)
	moved.Revision = 2
	moved.Interfaces = []topology.HostInterface{{Name: "canopy-vx", MTU: 1450}}
	r.putLocked(topology.KindHost, moved.ID, moved, "")
	r.removeLocked(topology.KindHost, moved.ID, "")
	if len(r.changed) != 0 {
		t.Fatalf("a host's creation, change and removal tainted %d tags, want none", len(r.changed))
	}
	r.putLocked(topology.KindPort, port.ID, port, "")
	for _, want := range []flow.Tag{flow.TagOf(string(topology.KindPort), "p1"), flow.TagOf(string(topology.KindBridge), "b1")} {
		if _, ok := r.changed[want]; !ok {
			t.Errorf("a port's change did not taint %v: %v", want, r.changed)
		}
	}
}

// A partial replica keeps a route copied into the edge's partition whose
// own partition it does not follow (an elastic IP's /32) as a far route:
// outside the index, compact, given to the snapshot (sim.WithRoutes:
// sim's TestRouteElsewhere shows such a route leads elsewhere).
// It is held in full once its partition loads, far again once that is
// dropped, forgotten when deleted; on a host with an uplink of its router
// it is held in full (the gateway advertises it).
func TestFarRoutes(t *testing.T) {
	const edge, uplink, rid = "e0000000-0000-4000-8000-000000000001", "e0000000-0000-4000-8000-000000000002", "e0000000-0000-4000-8000-000000000003"
	kv := func(part string, o topology.Object) nsdb.KV {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return nsdb.KV{Key: "/canopy/part/" + part + "/" + string(o.Kind()) + "/" + o.GetMeta().ID, Value: b, ModRevision: 7}
	}
	route := &topology.Route{Meta: topology.Meta{ID: rid, Name: "eipalloc-1 edge", Labels: map[string]string{topology.LabelVPC: "vpc-0000000000000000b", "canopy.owner": "translate"}},
		RouterID: edge, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("198.18.0.1/32"), NextHopPort: uplink}
	cloud := []nsdb.KV{
		kv("-", &topology.Router{Meta: topology.Meta{ID: edge}}),
		kv("-", &topology.Port{Meta: topology.Meta{ID: uplink}, DeviceKind: topology.KindRouter, DeviceID: edge, Address: netip.MustParsePrefix("192.0.2.2/24"),
			HostID: "gw", Interface: "eth1"}),
		kv("-", route),
	}
	r := newReplica()
	r.partial = true
	held := func() (far, full bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, far = r.far[rid]
		return far, r.idx.Get(topology.KindRoute, rid) != nil
	}
	r.handler(nsdb.CloudPartition).Reset(cloud, 7)
	if far, full := held(); !far || full {
		t.Fatalf("the edge's route into an unfollowed VPC: far %v, in the index %v; want far only", far, full)
	}
	r.mu.Lock()
	c := r.far[rid].rt
	if c.Name != "" || nsdb.PartitionOf(c) != "vpc-0000000000000000b" || c.DstPrefix != route.DstPrefix || c.NextHopPort != uplink {
		t.Errorf("far route %+v: want no name, its partition, its prefix and next hop", c)
	}
	if got := r.farRoutesLocked(); len(got) != 1 || got[0] != c {
		t.Errorf("the far routes given to the snapshot: %v, want the one", got)
	}
	r.mu.Unlock()

	r.handler("vpc-0000000000000000b").Reset([]nsdb.KV{kv("vpc-0000000000000000b", route)}, 8)
	if far, full := held(); far || !full {
		t.Fatalf("with its VPC loaded: far %v, in the index %v; want in the index only", far, full)
	}
	r.dropPartition("vpc-0000000000000000b")
	if far, full := held(); !far || full {
		t.Fatalf("with its VPC dropped again: far %v, in the index %v; want far only", far, full)
	}
	r.mu.Lock()
	r.changed = map[flow.Tag]struct{}{}
	r.mu.Unlock()
	r.handler(nsdb.CloudPartition).Events([]nsdb.Event{{Delete: true, KV: nsdb.KV{Key: cloud[2].Key}}}, 9)
	if far, full := held(); far || full {
		t.Fatalf("deleted: far %v, in the index %v; want neither", far, full)
	}
	if _, ok := r.changed[flow.TagOf(string(topology.KindRoute), rid)]; !ok {
		t.Error("deleting a far route tainted nothing")
	}

	// The gateway host: the route comes far, the first build holds it in full.
	r.handler(nsdb.CloudPartition).Reset(cloud, 10)
	r.mu.Lock()
	r.doorsLocked("gw")
	r.mu.Unlock()
	if far, full := held(); far || !full {
		t.Fatalf("on the gateway host: far %v, in the index %v; want in the index only", far, full)
	}
	r.mu.Lock()
	gw := r.gwParts["vpc-0000000000000000b"]
	r.mu.Unlock()
	if !gw {
		t.Error("the gateway host does not follow the VPC its uplink routes to")
	}
}
