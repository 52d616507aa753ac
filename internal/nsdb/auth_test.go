package nsdb_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const (
	hostA = "0c6a3f5e-8f0e-4c0a-9d59-6a7c2d3e4f01"
	hostB = "0c6a3f5e-8f0e-4c0a-9d59-6a7c2d3e4f02"
)

// TestAgentCredentials opens a store as `canopy server` runs it (TLS with
// client certificates, etcd's authentication on, the server root) — the
// embedded etcd, and an external etcd (Debian's etcd-server) serving TLS —
// and acts as host A's agent with the credentials canopy host enroll gives
// it: it reads the topology and writes its own state; it cannot write host
// B's state, any topology object, any VPC object, nor read the EC2 keys.
func TestAgentCredentials(t *testing.T) {
	t.Run("Embedded", func(t *testing.T) {
		sec := nsdbtest.OpenSecure(t)
		testAgentCredentials(t, sec.Store, func(user string) nsdb.Config { return sec.ClientConfig(t, user) })
	})
	t.Run("External", func(t *testing.T) {
		c, ca := nsdbtest.StartTLSCluster(t, 1)
		root := nsdbtest.Open(t, nsdb.Config{Endpoints: c.Endpoints, Credentials: c.Root, EnableAuth: true})
		dir := t.TempDir()
		testAgentCredentials(t, root, func(user string) nsdb.Config {
			cert, key, err := ca.Issue(dir, user, pki.IssueOptions{CommonName: user, Client: true})
			if err != nil {
				t.Fatal(err)
			}
			return nsdb.Config{Endpoints: c.Endpoints, Credentials: nsdb.Credentials{CAFile: ca.CertFile(), CertFile: cert, KeyFile: key}}
		})
	})
}

func testAgentCredentials(t *testing.T, root *nsdb.Store, agentConfig func(user string) nsdb.Config) {
	ctx := ctxT(t)
	for _, id := range []string{hostA, hostB} {
		if _, err := root.Create(ctx, &topology.Host{Meta: topology.Meta{ID: id, Name: "h-" + id[len(id)-2:]}}); err != nil {
			t.Fatal(err)
		}
	}
	br, err := root.Create(ctx, &topology.Bridge{Meta: topology.Meta{Name: "br"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.PutKeyForTest(ctx, "ec2/keys/AKIATEST", "secret"); err != nil {
		t.Fatal(err)
	}
	user, err := root.GrantHost(ctx, hostA)
	if err != nil {
		t.Fatal(err)
	}
	if user != nsdb.HostUser(hostA) {
		t.Fatalf("user %q", user)
	}
	// Granting again (a re-enrollment) is fine, and takes back what an
	// older role held beyond the current permissions.
	if _, err := root.Client().RoleGrantPermission(ctx, user, root.Prefix()+"topo/bridge/", clientv3.GetPrefixRangeEnd(root.Prefix()+"topo/bridge/"),
		clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
		t.Fatal(err)
	}
	if _, err := root.GrantHost(ctx, hostA); err != nil {
		t.Fatal(err)
	}

	// The agent opens the store: it reads the whole topology.
	ag := nsdbtest.Open(t, agentConfig(user))
	if _, err := ag.Get(ctx, topology.KindBridge, br.GetMeta().ID); err != nil {
		t.Fatalf("agent cannot read the topology: %v", err)
	}
	if err := ag.Sync(ctx); err != nil {
		t.Fatalf("agent cannot sync: %v", err)
	}

	// Its own keys: liveness, info, ports, instances.
	l, err := ag.GrantLease(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ok := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	ok("alive", ag.MarkHostAlive(ctx, hostA, l))
	ok("info", ag.PutHostInfo(ctx, hostA, nsdb.HostInfo{Name: "a", TunnelZone: "tz", TunnelIP: netip.MustParseAddr("10.0.0.1")}, l))
	ok("port active", ag.SetPortActive(ctx, hostA, "p1", l))
	ok("instance", ag.PutInstanceState(ctx, hostA, "i-1", []byte(`{}`), l))
	ok("port inactive", ag.ClearPortActive(ctx, hostA, "p1"))
	alive, err := ag.AliveHosts(ctx)
	ok("read liveness", err)
	if !alive[hostA] {
		t.Fatal("host A not alive")
	}

	denied := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, rpctypes.ErrPermissionDenied) {
			t.Errorf("%s: want permission denied, got %v", what, err)
		}
	}
	// Another host's state.
	denied("B alive", ag.MarkHostAlive(ctx, hostB, l))
	denied("B info", ag.PutHostInfo(ctx, hostB, nsdb.HostInfo{Name: "b"}, l))
	denied("B port", ag.SetPortActive(ctx, hostB, "p1", l))
	denied("B port clear", ag.ClearPortActive(ctx, hostB, "p1"))
	denied("B instance", ag.PutInstanceState(ctx, hostB, "i-1", []byte(`{}`), l))
	// Topology: its own Host object, a tunnel zone, a port on the bridge.
	h, _ := ag.Get(ctx, topology.KindHost, hostA)
	h.GetMeta().Name = "renamed"
	_, err = ag.Update(ctx, h)
	denied("update own host", err)
	_, err = ag.Create(ctx, &topology.TunnelZone{Meta: topology.Meta{Name: "tz"}, Type: topology.TunnelVXLAN})
	denied("create tunnel zone", err)
	_, err = ag.Create(ctx, &topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID, HostID: hostA, Interface: "tap0"})
	denied("create port", err)
	_, err = ag.Delete(ctx, topology.KindBridge, br.GetMeta().ID, 0)
	denied("delete bridge", err)
	// VPC objects, through the VPC store and by hand.
	vs, err := nsdb.OpenVPCStore(ctx, ag)
	ok("agent reads the VPC objects", err)
	defer vs.Close()
	_, err = vs.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		return tx.Put("vpc-1", &vpc.Vpc{ID: "vpc-1", OwnerID: "111122223333", CidrBlock: netip.MustParsePrefix("10.0.0.0/16"), State: "available"})
	})
	denied("VPC write", err)
	_, err = ag.Client().Put(ctx, ag.Prefix()+"vpc/vpcs/vpc-2", "{}")
	denied("raw VPC put", err)
	_, err = ag.Client().Put(ctx, ag.Prefix()+"topo-seq", "")
	denied("topo-seq", err)
	_, err = ag.Client().Put(ctx, ag.Prefix()+"topo/bridge/x", "{}")
	denied("raw topology put (a permission the role held before its re-enrollment)", err)
	// The EC2 secret keys are not even readable.
	_, err = ag.Client().Get(ctx, ag.Prefix()+"ec2/keys/AKIATEST")
	denied("read EC2 keys", err)

	// Revoked, its certificate opens nothing any more.
	ok("revoke", root.RevokeHost(ctx, hostA))
	_, err = ag.Client().Get(ctx, ag.Prefix()+"topo-seq")
	if err == nil {
		t.Error("revoked agent still reads")
	}
	// The server (root) sees host A's writes.
	if on, err := root.HostAlive(ctx, hostA); err != nil || !on {
		t.Errorf("root: host A alive %v, %v", on, err)
	}
}

// TestTLSRefusesClientWithoutCertificate: the secure store's etcd answers
// nobody without a client certificate signed by its CA, nor over plain
// HTTP.
func TestTLSRefusesClientWithoutCertificate(t *testing.T) {
	sec := nsdbtest.OpenSecure(t)
	tryGet := func(cfg clientv3.Config) error {
		cfg.DialTimeout, cfg.Logger = 3*time.Second, zap.NewNop()
		cli, err := clientv3.New(cfg)
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = cli.Get(ctx, "/canopy/v1/topo-seq")
		return err
	}
	// No certificate (TLS, trusting the CA): refused.
	noCert := sec.ClientConfig(t, "")
	tlsCfg, err := nsdb.ClientTLSForTest(noCert)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryGet(clientv3.Config{Endpoints: noCert.Endpoints, TLS: tlsCfg}); err == nil {
		t.Error("a client without a certificate was answered")
	}
	// Plain HTTP to the TLS port: refused.
	plain := "http" + sec.Config.ClientURL[len("https"):]
	if err := tryGet(clientv3.Config{Endpoints: []string{plain}}); err == nil {
		t.Error("a plain-HTTP client was answered")
	}
	// nsdb.Open without a certificate fails clearly.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s, err := nsdb.Open(ctx, noCert); err == nil {
		s.Close()
		t.Error("nsdb.Open without a certificate succeeded")
	}
	// A certificate from another CA: refused.
	other := nsdbtest.OpenSecure(t)
	foreign := other.ClientConfig(t, nsdb.RootUser)
	foreign.Endpoints, foreign.CAFile = sec.ClientConfig(t, "").Endpoints, sec.CA.CertFile()
	tlsCfg, err = nsdb.ClientTLSForTest(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryGet(clientv3.Config{Endpoints: foreign.Endpoints, TLS: tlsCfg}); err == nil {
		t.Error("a root certificate from another CA was answered")
	}
	// The right certificate works.
	good := sec.ClientConfig(t, nsdb.RootUser)
	tlsCfg, err = nsdb.ClientTLSForTest(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryGet(clientv3.Config{Endpoints: good.Endpoints, TLS: tlsCfg}); err != nil {
		t.Errorf("root with its certificate: %v", err)
	}
}

// TestAuthEnabled: a user that is not root tells whether etcd's
// authentication is on (the server warns when it is off and it cannot turn
// it on), before and after root turns it on.
func TestAuthEnabled(t *testing.T) {
	ctx := ctxT(t)
	c, ca := nsdbtest.StartTLSCluster(t, 1)
	cert, key, err := ca.Issue(t.TempDir(), "canopy", pki.IssueOptions{CommonName: "canopy", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	other := nsdbtest.Open(t, nsdb.Config{Endpoints: c.Endpoints, NoTopology: true,
		Credentials: nsdb.Credentials{CAFile: ca.CertFile(), CertFile: cert, KeyFile: key}})
	if on, known, err := other.AuthEnabled(ctx); err != nil || !known || on {
		t.Fatalf("authentication off: AuthEnabled = %v, %v, %v; want false, true, nil", on, known, err)
	}
	nsdbtest.Open(t, nsdb.Config{Endpoints: c.Endpoints, Credentials: c.Root, EnableAuth: true, NoTopology: true})
	if on, known, err := other.AuthEnabled(ctx); err != nil || !known || !on {
		t.Fatalf("authentication on: AuthEnabled = %v, %v, %v; want true, true, nil", on, known, err)
	}
}
