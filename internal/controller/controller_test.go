package controller

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func chain(t *testing.T, e *env, vpcObject, role string) *topology.Chain {
	t.Helper()
	o, err := e.store.Get(context.Background(), topology.KindChain, translate.ObjectID(vpcObject, role))
	if err != nil {
		t.Fatalf("chain %s/%s: %v", vpcObject, role, err)
	}
	return o.(*topology.Chain)
}

func exists(e *env, k topology.Kind, vpcObject, role string) bool {
	_, err := e.store.Get(context.Background(), k, translate.ObjectID(vpcObject, role))
	return err == nil
}

// TestRealizeAndFollow: the controller realizes a VPC, then follows an
// added rule, a deleted subnet and a deleted VPC, and the status key
// records its progress.
func TestRealizeAndFollow(t *testing.T) {
	e := newEnv(t)
	fx := fixture(1)
	rev := e.put(fx...)
	c := e.start()
	topoRev := e.wait(c, rev)
	e.assertRealizes()

	v := find[*vpc.Vpc](fx)
	for _, w := range []struct {
		k         topology.Kind
		obj, role string
	}{
		{topology.KindRouter, v.ID, "router"},
		{topology.KindRouter, translate.CloudObject, "edge-router"},
		{topology.KindBridge, translate.CloudObject, "transit-bridge"},
		{topology.KindBridge, "subnet-10000000000000001", "bridge"},
		{topology.KindBridge, "subnet-20000000000000001", "bridge"},
		{topology.KindDHCP, "subnet-10000000000000001", "dhcp"},
		{topology.KindPort, "eni-00000000000000001", "port"},
		{topology.KindIPGroup, "sg-d0000000000000001", "members"},
	} {
		if !exists(e, w.k, w.obj, w.role) {
			t.Errorf("no %s for %s/%s", w.k, w.obj, w.role)
		}
	}
	if got := c.Applied(); got.VPCRevision < rev || got.TopologyRevision != topoRev {
		t.Errorf("Applied = %+v, want vpc ≥ %d, topology %d", got, rev, topoRev)
	}
	waitFor(t, "the status key", func() bool {
		a, err := ReadStatus(context.Background(), e.store)
		return err == nil && a == c.Applied()
	})

	// Authorize a rule: the group's ingress chain gains it.
	sg := clone(find[*vpc.SecurityGroup](fx[len(fx)-4:]))
	if sg.GroupName != "web" {
		t.Fatalf("fixture order changed: %s", sg.GroupName)
	}
	sg.Ingress = append(sg.Ingress, vpc.SecurityGroupRule{ID: "sgr-w2", IPProtocol: "tcp", FromPort: 443, ToPort: 443, CidrIPv4: pfx("10.9.0.0/16")})
	e.wait(c, e.put(sg))
	if ids := ruleIDs(chain(t, e, sg.ID, "ingress")); !slices.Contains(ids, "sgr-w2") {
		t.Errorf("ingress chain rules %v lack sgr-w2", ids)
	}
	e.assertRealizes()

	// Delete subnet 2 (and its ACL association, as the EC2 server does).
	acl := clone(find[*vpc.NetworkACL](fx))
	acl.Associations = acl.Associations[:1]
	e.put(acl)
	e.wait(c, e.del([2]string{collSubnets, "subnet-20000000000000001"}))
	if exists(e, topology.KindBridge, "subnet-20000000000000001", "bridge") {
		t.Error("the deleted subnet's bridge is still there")
	}
	e.assertRealizes()

	// Delete everything: only the cloud's edge stays.
	var keys [][2]string
	for _, o := range fx {
		coll, id := collOf(o)
		if id != "subnet-20000000000000001" {
			keys = append(keys, [2]string{coll, id})
		}
	}
	e.wait(c, e.del(keys...))
	e.assertRealizes()
	for k, o := range e.owned() {
		if translate.Partition(o) != "" {
			t.Errorf("left behind: %s", k)
		}
	}
}

// TestWithVPCStore drives the controller through the EC2 server's own
// writer (nsdb.VPCStore), as the server will: write, then wait for applied.
func TestWithVPCStore(t *testing.T) {
	e := newEnv(t)
	c := e.start()
	vs, err := nsdb.OpenVPCStore(context.Background(), e.store)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	fx := fixture(3)
	rev, err := vs.Update(context.Background(), func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, o := range fx {
			_, id := collOf(o)
			if err := tx.Put(id, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range fx {
		coll, id := collOf(o)
		(&mirror{st: e.st}).set(coll, id, o)
	}
	e.wait(c, rev)
	e.assertRealizes()
}

// TestIncremental: a change in one VPC translates that VPC only, and a
// change that no translation reads (an account) none.
func TestIncremental(t *testing.T) {
	e := newEnv(t)
	var rev int64
	for n := 1; n <= 3; n++ {
		rev = e.put(fixture(n)...)
	}
	c := e.start()
	e.wait(c, rev)
	e.assertRealizes()
	before := c.Stats()
	if before.Translated != 4 { // the cloud and three VPCs
		t.Errorf("full resync translated %d partitions, want 4", before.Translated)
	}

	fx := fixture(2)
	sg := clone(find[*vpc.SecurityGroup](fx[len(fx)-4:]))
	sg.Ingress = append(sg.Ingress, vpc.SecurityGroupRule{ID: "sgr-w9", IPProtocol: "udp", FromPort: 53, ToPort: 53, CidrIPv4: pfx("10.0.0.0/8")})
	e.wait(c, e.put(sg))
	after := c.Stats()
	if n := after.Translated - before.Translated; n != 1 {
		t.Errorf("one group's change translated %d partitions, want 1", n)
	}
	if n := after.Updates - before.Updates; n != 1 || after.Creates != before.Creates || after.Deletes != before.Deletes {
		t.Errorf("one rule cost %d updates, %d creates, %d deletes; want 1, 0, 0",
			n, after.Creates-before.Creates, after.Deletes-before.Deletes)
	}
	e.assertRealizes()

	// The DHCP option set is read by VPC 2 only.
	dopt := clone(find[*vpc.DhcpOptions](fx))
	dopt.Config[vpc.DhcpDomainName] = []string{"changed.internal"}
	before = c.Stats()
	e.wait(c, e.put(dopt))
	if n := c.Stats().Translated - before.Translated; n != 1 {
		t.Errorf("a DHCP option set's change translated %d partitions, want 1", n)
	}
	e.assertRealizes()

	before = c.Stats()
	e.wait(c, e.put(&vpc.Account{ID: acct, Name: "renamed"}))
	if n := c.Stats().Translated - before.Translated; n != 0 {
		t.Errorf("an account's change translated %d partitions, want 0", n)
	}
}

// TestRestartNoChurn: a controller started on a topology that already
// realizes the VPC objects writes nothing.
func TestRestartNoChurn(t *testing.T) {
	e := newEnv(t)
	rev := e.put(fixture(1)...)
	rev = max(rev, e.put(fixture(2)...))
	c := e.start()
	e.wait(c, rev)
	if s := c.Stats(); s.Creates == 0 {
		t.Fatalf("first start created nothing: %+v", s)
	}
	c.Stop()
	topoRev := e.store.Revision()

	c2 := e.start()
	if got := e.wait(c2, rev); got != topoRev {
		t.Errorf("applied at topology revision %d, want the unchanged %d", got, topoRev)
	}
	s := c2.Stats()
	if s.Txns != 0 || s.Creates+s.Updates+s.Deletes != 0 || s.Resyncs != 1 {
		t.Errorf("restart wrote: %+v", s)
	}
	if e.store.Revision() != topoRev {
		t.Errorf("the topology moved from %d to %d", topoRev, e.store.Revision())
	}
	e.assertRealizes()
}

// TestOperatorObjectsUntouched: objects without the owner label are never
// updated or deleted, even when they sit on the controller's devices, and
// an operator's object holding a wanted id is left alone.
func TestOperatorObjectsUntouched(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	fx := fixture(1)
	c := e.start()
	e.wait(c, e.put(fx...))

	mine, err := e.store.Create(ctx, &topology.Bridge{Meta: topology.Meta{Name: "operator-bridge", Labels: map[string]string{"team": "net"}}})
	if err != nil {
		t.Fatal(err)
	}
	// A port the operator put on the controller's subnet bridge.
	onSubnet, err := e.store.Create(ctx, &topology.Port{Meta: topology.Meta{Name: "operator-port"},
		DeviceKind: topology.KindBridge, DeviceID: translate.ObjectID("subnet-20000000000000001", "bridge")})
	if err != nil {
		t.Fatal(err)
	}
	// An operator's object holding the id the controller wants for a new
	// VPC's router.
	squat, err := e.store.Create(ctx, &topology.Router{Meta: topology.Meta{ID: translate.ObjectID("vpc-00000000000000002", "router"), Name: "squatter"}})
	if err != nil {
		t.Fatal(err)
	}

	// Delete subnet 2: its bridge's cascade would take the operator's port.
	acl := clone(find[*vpc.NetworkACL](fx))
	acl.Associations = acl.Associations[:1]
	e.put(acl)
	e.wait(c, e.del([2]string{collSubnets, "subnet-20000000000000001"}))
	if c.Stats().Refused == 0 {
		t.Error("no write was refused")
	}
	// And a second VPC whose router id is taken.
	e.wait(c, e.put(fixture(2)...))

	for _, o := range []topology.Object{mine, onSubnet, squat} {
		got, err := e.store.Get(ctx, o.Kind(), o.GetMeta().ID)
		if err != nil {
			t.Errorf("operator's %s %s: %v", o.Kind(), o.GetMeta().Name, err)
			continue
		}
		if got.GetMeta().Revision != o.GetMeta().Revision || !translate.Equal(got, o) {
			t.Errorf("operator's %s %s was changed", o.Kind(), o.GetMeta().Name)
		}
	}
	// The rest of the first VPC still follows: its subnet 2 router port is
	// gone even though the bridge stays.
	if exists(e, topology.KindPort, "subnet-20000000000000001", "gateway/router-port") {
		t.Error("the deleted subnet's router port is still there")
	}
}

// TestFaults: a failing store write is retried; an operator deleting or
// editing an owned object, or adding one the controller does not want,
// is undone.
func TestFaults(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rev := e.put(fixture(1)...)
	var fails atomic.Int32
	fails.Store(1)
	c := e.start(func(c *Controller) {
		next := c.txn
		c.txn = func(ctx context.Context, f func(tx *nsdb.Tx) error) (int64, error) {
			if fails.Add(-1) >= 0 {
				return 0, errors.New("injected: etcd unavailable")
			}
			return next(ctx, f)
		}
	})
	e.wait(c, rev)
	if s := c.Stats(); s.Errors != 1 || s.Resyncs != 1 {
		t.Errorf("after one injected failure: %+v, want 1 error and 1 resync", s)
	}
	e.assertRealizes()

	// The operator deletes the VPC router (its ports and routes go with it).
	routerID := translate.ObjectID("vpc-00000000000000001", "router")
	if _, err := e.store.Delete(ctx, topology.KindRouter, routerID, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router to come back", func() bool {
		_, err := e.store.Get(ctx, topology.KindRouter, routerID)
		return err == nil
	})
	waitFor(t, "the topology to realize the VPC again", func() bool { return len(e.owned()) == len(translate.Translate(e.st, testCloud()).Objects) })
	e.assertRealizes()

	// The operator empties an owned chain.
	ch := chain(t, e, "sg-w0000000000000001", "ingress")
	ch.Rules = nil
	if _, err := e.store.Update(ctx, ch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the chain to be restored", func() bool { return len(chain(t, e, "sg-w0000000000000001", "ingress").Rules) > 0 })

	// Someone writes an object with the owner label the translation does
	// not want.
	junk, err := e.store.Create(ctx, &topology.Chain{Meta: topology.Meta{Name: "junk", Labels: map[string]string{
		translate.LabelOwner: translate.OwnerValue, translate.LabelVPC: "vpc-00000000000000001"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unwanted owned chain to go", func() bool {
		_, err := e.store.Get(ctx, topology.KindChain, junk.GetMeta().ID)
		return errors.Is(err, nsdb.ErrNotFound)
	})
	e.assertRealizes()
}

// TestChunked: with tiny transactions, every piece is accepted by the
// store (references valid per piece) and the result is the same.
func TestChunked(t *testing.T) {
	e := newEnv(t)
	rev := e.put(fixture(1)...)
	rev = max(rev, e.put(fixture(2)...))
	c := e.start(func(c *Controller) { c.chunk = 3 })
	e.wait(c, rev)
	e.assertRealizes()
	s := c.Stats()
	if s.Refused != 0 || s.Txns < s.Creates/3 {
		t.Errorf("chunked resync: %+v", s)
	}
	// And a teardown in pieces.
	var keys [][2]string
	for _, o := range fixture(1) {
		coll, id := collOf(o)
		keys = append(keys, [2]string{coll, id})
	}
	e.wait(c, e.del(keys...))
	e.assertRealizes()
	if s := c.Stats(); s.Refused != 0 {
		t.Errorf("chunked teardown refused writes: %+v", s)
	}
}

// TestStopNoLeak: Stop ends every goroutine the controller started, and
// WaitApplied returns.
func TestStopNoLeak(t *testing.T) {
	e := newEnv(t)
	rev := e.put(fixture(1)...)
	c := New(e.store, testCloud(), testLogger())
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.wait(c, rev)
	waited := make(chan error, 1)
	go func() {
		_, err := c.WaitApplied(context.Background(), rev+1000)
		waited <- err
	}()
	c.Stop()
	if err := <-waited; !errors.Is(err, ErrStopped) {
		t.Errorf("WaitApplied after Stop: %v", err)
	}
	// No goroutine runs a Controller method or was started by one (the
	// stacks name their creator), whatever else the store runs meanwhile.
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var left []string
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "controller.(*Controller)") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the controller left after Stop:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	}
	if err := c.Start(context.Background()); err == nil {
		t.Error("a stopped controller started again")
	}
}
