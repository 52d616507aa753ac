package agent

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
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
