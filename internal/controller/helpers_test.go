package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	pfx = netip.MustParsePrefix
	ip  = netip.MustParseAddr
)

const (
	acct   = "111122223333"
	gwHost = "7d3c0c1e-0000-4000-8000-0000000000a1"
	vmHost = "7d3c0c1e-0000-4000-8000-0000000000a2"
)

func testCloud() translate.CloudConfig {
	return translate.CloudConfig{
		Gateways:    []translate.Gateway{{HostID: gwHost, Interface: "eth1", Address: pfx("192.0.2.2/24"), NextHop: ip("192.0.2.1")}},
		PublicPools: []netip.Prefix{pfx("203.0.113.0/24")},
		DNSServers:  []netip.Addr{ip("192.0.2.53")},
	}
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// env is a real embedded store, the hosts an operator registered, and the
// VPC state the test wrote (to compare the topology with its translation).
type env struct {
	t     *testing.T
	store *nsdb.Store
	st    *vpc.State
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, _ := nsdbtest.OpenEmbedded(t)
	e := &env{t: t, store: s, st: vpc.NewState()}
	for _, h := range []string{gwHost, vmHost} {
		if _, err := s.Create(context.Background(), &topology.Host{Meta: topology.Meta{ID: h, Name: "host"}}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// collOf returns the collection and id of a vpc object.
func collOf(obj any) (string, string) {
	switch o := obj.(type) {
	case *vpc.Account:
		return collAccounts, o.ID
	case *vpc.Vpc:
		return collVpcs, o.ID
	case *vpc.Subnet:
		return collSubnets, o.ID
	case *vpc.InternetGateway:
		return collIGWs, o.ID
	case *vpc.RouteTable:
		return collRTBs, o.ID
	case *vpc.SecurityGroup:
		return collSGs, o.ID
	case *vpc.NetworkACL:
		return collACLs, o.ID
	case *vpc.NetworkInterface:
		return collENIs, o.ID
	case *vpc.Address:
		return collAddresses, o.AllocationID
	case *vpc.NatGateway:
		return collNATs, o.ID
	case *vpc.DhcpOptions:
		return collDHCP, o.ID
	case *vpc.Instance:
		return collInstances, o.ID
	}
	panic(fmt.Sprintf("not a VPC object: %T", obj))
}

// vpcWrite commits puts and deletes of VPC keys in one transaction that
// also bumps vpc-seq, as the EC2 server's store does, and returns its
// revision.
func vpcWrite(ctx context.Context, store *nsdb.Store, puts []any, dels [][2]string) (int64, error) {
	var ops []clientv3.Op
	for _, o := range puts {
		coll, id := collOf(o)
		b, err := json.Marshal(o)
		if err != nil {
			return 0, err
		}
		ops = append(ops, clientv3.OpPut(store.Prefix()+"vpc/"+coll+"/"+id, string(b)))
	}
	for _, d := range dels {
		ops = append(ops, clientv3.OpDelete(store.Prefix()+"vpc/"+d[0]+"/"+d[1]))
	}
	ops = append(ops, clientv3.OpPut(store.Prefix()+"vpc-seq", strconv.FormatInt(time.Now().UnixNano(), 10)))
	resp, err := store.Client().Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// put writes objects and mirrors them into e.st.
func (e *env) put(objs ...any) int64 {
	e.t.Helper()
	rev, err := vpcWrite(context.Background(), e.store, objs, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	m := &mirror{st: e.st}
	for _, o := range objs {
		coll, id := collOf(o)
		m.set(coll, id, o)
	}
	return rev
}

// del deletes objects (collection, id) and mirrors it into e.st.
func (e *env) del(keys ...[2]string) int64 {
	e.t.Helper()
	rev, err := vpcWrite(context.Background(), e.store, nil, keys)
	if err != nil {
		e.t.Fatal(err)
	}
	m := &mirror{st: e.st}
	for _, k := range keys {
		m.set(k[0], k[1], nil)
	}
	return rev
}

// start starts a controller on e's store and stops it when the test ends.
func (e *env) start(opts ...func(*Controller)) *Controller {
	e.t.Helper()
	c := New(e.store, testCloud(), testLogger())
	for _, o := range opts {
		o(c)
	}
	if err := c.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(c.Stop)
	return c
}

// wait waits for the controller to apply VPC revision rev.
func (e *env) wait(c *Controller, rev int64) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t, err := c.WaitApplied(ctx, rev)
	if err != nil {
		e.t.Fatalf("WaitApplied(%d): %v (applied %+v, stats %+v)", rev, err, c.Applied(), c.Stats())
	}
	return t
}

// owned returns the objects the translator owns in the store.
func (e *env) owned() map[topology.ObjectKey]topology.Object {
	out := map[topology.ObjectKey]topology.Object{}
	for _, k := range topology.Kinds {
		objs, err := e.store.List(context.Background(), k)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, o := range objs {
			if translate.Owned(o) {
				out[topology.Key(o)] = o
			}
		}
	}
	return out
}

// assertRealizes checks that the owned topology is exactly the translation
// of what the test wrote, and that every stored object passes the store's
// integrity checks against the others.
func (e *env) assertRealizes() {
	e.t.Helper()
	want := translate.Translate(e.st, testCloud())
	got := e.owned()
	for _, d := range want.Objects {
		k := topology.Key(d)
		g, ok := got[k]
		if !ok {
			e.t.Errorf("missing %s (%s)", k, d.GetMeta().Name)
			continue
		}
		if !translate.Equal(d, g) {
			a, _ := json.Marshal(d)
			b, _ := json.Marshal(g)
			e.t.Errorf("%s differs:\nwant %s\n got %s", k, a, b)
		}
		delete(got, k)
	}
	for k, o := range got {
		e.t.Errorf("left over: %s (%s)", k, o.GetMeta().Name)
	}
	e.store.Read(func(r topology.Reader) {
		for _, k := range topology.Kinds {
			for _, o := range r.List(k) {
				if err := o.Validate(); err != nil {
					e.t.Errorf("%s: %v", topology.Key(o), err)
				}
				if err := topology.Check(r, o, o); err != nil {
					e.t.Errorf("%s: integrity: %v", topology.Key(o), err)
				}
			}
		}
	})
}

// fixture is one VPC with most of what a tenant builds: two subnets, an
// internet gateway, the main route table with a default route, a default
// ACL, two security groups (one referencing the other), an interface on
// an instance placed on vmHost, an elastic IP and a DHCP option set.
func fixture(n int) []any {
	v := fmt.Sprintf("vpc-%017d", n)
	id := func(kind string) string { return fmt.Sprintf("%s-%017d", kind, n) }
	sub := func(i int) string { return fmt.Sprintf("subnet-%d%016d", i, n) }
	sgDef, sgWeb := fmt.Sprintf("sg-d%016d", n), fmt.Sprintf("sg-w%016d", n)
	eni := fmt.Sprintf("eni-%017d", n)
	inst := fmt.Sprintf("i-%017d", n)
	dopt := fmt.Sprintf("dopt-%017d", n)
	mac := fmt.Sprintf("02:00:00:00:%02x:01", n)
	return []any{
		&vpc.Account{ID: acct, Name: "tenant"},
		&vpc.DhcpOptions{ID: dopt, OwnerID: acct, Config: map[string][]string{
			vpc.DhcpDomainName: {"example.internal"}, vpc.DhcpDomainNameServers: {vpc.AmazonProvidedDNS}}},
		&vpc.Vpc{ID: v, OwnerID: acct, CidrBlock: pfx("10.0.0.0/16"), DhcpOptionsID: dopt, State: vpc.StateAvailable,
			EnableDNSSupport: true, TransitIndex: 1 + n},
		&vpc.Subnet{ID: sub(1), OwnerID: acct, VpcID: v, CidrBlock: pfx("10.0.1.0/24"), State: vpc.StateAvailable},
		&vpc.Subnet{ID: sub(2), OwnerID: acct, VpcID: v, CidrBlock: pfx("10.0.2.0/24"), State: vpc.StateAvailable},
		&vpc.InternetGateway{ID: id("igw"), OwnerID: acct, Attachments: []vpc.IGWAttachment{{VpcID: v, State: vpc.StateAvailable}}},
		&vpc.RouteTable{ID: id("rtb"), OwnerID: acct, VpcID: v,
			Routes: []vpc.Route{
				{DestinationCidrBlock: pfx("10.0.0.0/16"), GatewayID: vpc.LocalGateway, Origin: vpc.OriginCreateRouteTable, State: vpc.RouteActive},
				{DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: id("igw"), Origin: vpc.OriginCreateRoute, State: vpc.RouteActive}},
			Associations: []vpc.RouteTableAssociation{{ID: id("rtbassoc"), Main: true, State: "associated"}}},
		&vpc.NetworkACL{ID: id("acl"), OwnerID: acct, VpcID: v, IsDefault: true,
			Entries: []vpc.NetworkACLEntry{
				{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: pfx("0.0.0.0/0")},
				{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: pfx("0.0.0.0/0")}},
			Associations: []vpc.NetworkACLAssociation{{ID: "aclassoc-1", SubnetID: sub(1)}, {ID: "aclassoc-2", SubnetID: sub(2)}}},
		&vpc.SecurityGroup{ID: sgDef, OwnerID: acct, VpcID: v, GroupName: "default",
			Ingress: []vpc.SecurityGroupRule{{ID: "sgr-d1", IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: sgDef}},
			Egress:  []vpc.SecurityGroupRule{{ID: "sgr-d2", IsEgress: true, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: pfx("0.0.0.0/0")}}},
		&vpc.SecurityGroup{ID: sgWeb, OwnerID: acct, VpcID: v, GroupName: "web",
			Ingress: []vpc.SecurityGroupRule{{ID: "sgr-w1", IPProtocol: "tcp", FromPort: 80, ToPort: 80, CidrIPv4: pfx("0.0.0.0/0")}}},
		&vpc.Instance{ID: inst, OwnerID: acct, VpcID: v, SubnetID: sub(1), State: "running", HostID: vmHost},
		&vpc.NetworkInterface{ID: eni, OwnerID: acct, VpcID: v, SubnetID: sub(1), MacAddress: mac,
			PrivateIPs: []vpc.PrivateIP{{Address: ip("10.0.1.10"), Primary: true}}, Groups: []string{sgDef, sgWeb},
			SourceDestCheck: true, Status: vpc.StateInUse, InterfaceType: vpc.InterfaceTypeInterface,
			Attachment: &vpc.ENIAttachment{ID: "eni-attach-1", InstanceID: inst, Status: vpc.StateAttached}},
		&vpc.Address{AllocationID: fmt.Sprintf("eipalloc-%017d", n), OwnerID: acct, PublicIP: netip.AddrFrom4([4]byte{203, 0, 113, byte(n)}),
			Domain: "vpc", AssociationID: "eipassoc-1", NetworkInterfaceID: eni, PrivateIPAddress: ip("10.0.1.10")},
	}
}

// find returns the fixture object of type T (the first).
func find[T any](objs []any) T {
	for _, o := range objs {
		if v, ok := o.(T); ok {
			return v
		}
	}
	panic("no such fixture object")
}

// waitFor polls cond (a test of the store's state after something not
// driven by a VPC write, such as an operator's change) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ruleIDs(c *topology.Chain) []string {
	var ids []string
	for _, r := range c.Rules {
		ids = append(ids, r.ID)
	}
	return ids
}
