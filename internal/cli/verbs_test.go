package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/canopy-sdn/canopy/internal/api"
	"github.com/canopy-sdn/canopy/internal/controller"
	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const verbsToken = "verbs-test-token-0123456789"

// cliEnv is a real REST API (with the EC2 side's accounts) over an embedded
// store, the controller realizing VPCs as topology, and the EC2 endpoint;
// the CLI runs through Main against it, as the binary does.
type cliEnv struct {
	t      *testing.T
	store  *nsdb.Store
	ctl    *controller.Controller
	url    string // REST
	ec2URL string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	store, _ := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	vs, err := nsdb.OpenVPCStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vs.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	accounts, err := canopyec2.New(vs, canopyec2.Config{Key: make([]byte, 32), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ec2hs := httptest.NewServer(accounts)
	t.Cleanup(ec2hs.Close)
	hs := httptest.NewServer(api.New(store, api.Options{Token: verbsToken, Logger: log, Accounts: accounts}))
	t.Cleanup(hs.Close)
	ctl := controller.New(store, translate.CloudConfig{}, log)
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	return &cliEnv{t: t, store: store, ctl: ctl, url: hs.URL, ec2URL: ec2hs.URL}
}

// run runs the CLI with args and returns its output, failing the test
// when it fails.
func (e *cliEnv) run(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	if err != "" {
		e.t.Fatalf("canopy %s: %s", strings.Join(args, " "), err)
	}
	return out
}

// try runs the CLI with args and returns stdout and stderr (empty when it
// succeeded).
func (e *cliEnv) try(args ...string) (string, string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append(append([]string{}, args...), "--url", e.url, "--token", verbsToken)
	if code := Main(ctx, full, &out, &errb); code != 0 && errb.Len() == 0 {
		errb.WriteString("exit code without a message")
	}
	return out.String(), errb.String()
}

func (e *cliEnv) get(k topology.Kind, id string) (topology.Object, error) {
	return e.store.Get(context.Background(), k, id)
}

// id reads the id out of a `-o json` answer.
func (e *cliEnv) id(js string) string {
	e.t.Helper()
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(js), &m); err != nil || m.ID == "" {
		e.t.Fatalf("no id in %q: %v", js, err)
	}
	return m.ID
}

// TestCLIVerbs runs the CLI verbs no other test ran against a real server
// and checks what each did in the store: port unlink, route add --weight
// and route delete (by name and by id), bridge dhcp (host) add/list/delete
// and dhcp delete, router bgp set --router-id, trace --ttl, the nested
// member deletes (tunnel zone, port group, IP address group) and the
// delete of every top-level noun.
func TestCLIVerbs(t *testing.T) {
	e := newCLIEnv(t)
	gone := func(k topology.Kind, id string) {
		t.Helper()
		if _, err := e.get(k, id); !errors.Is(err, nsdb.ErrNotFound) {
			t.Errorf("%s %s still in the store (%v)", k, id, err)
		}
	}

	r1 := e.id(e.run("router", "create", "r1", "-o", "json"))
	b1 := e.id(e.run("bridge", "create", "b1", "-o", "json"))
	rp := e.id(e.run("router", "port", "add", "r1", "--name", "rp", "--address", "10.0.0.1/24", "-o", "json"))
	bp := e.id(e.run("bridge", "port", "add", "b1", "--name", "bp", "-o", "json"))
	vm := e.id(e.run("bridge", "port", "add", "b1", "--name", "vm", "--ip", "10.0.0.7", "--mac", "02:00:00:00:00:07", "-o", "json"))
	e.run("router", "port", "add", "r1", "--name", "up", "--address", "10.1.0.1/24")
	b2 := e.id(e.run("bridge", "create", "b2", "-o", "json"))
	e.run("bridge", "port", "add", "b2", "--name", "b2p")
	vm2 := e.id(e.run("bridge", "port", "add", "b2", "--name", "vm2", "--ip", "10.1.0.9", "--mac", "02:00:00:00:01:09", "-o", "json"))
	e.run("port", "link", "rp", "bp")
	e.run("port", "link", "r1:up", "b2p")

	// trace --ttl: a packet to the other bridge through r1 is routed
	// with the default TTL; with --ttl 1 the router answers time exceeded.
	ok := e.run("trace", "vm", "--proto", "icmp", "--src", "10.0.0.7", "--dst", "10.1.0.9", "-o", "json")
	exp := e.run("trace", "vm", "--proto", "icmp", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--ttl", "1", "-o", "json")
	var okRes, expRes struct {
		Verdict string `json:"verdict"`
		Reason  string `json:"reason"`
		Text    string `json:"text"`
	}
	if err := json.Unmarshal([]byte(ok), &okRes); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(exp), &expRes); err != nil {
		t.Fatal(err)
	}
	// vm2 is bound to no host, so the packet ends there: what matters is
	// that the router let it through.
	if !strings.Contains(okRes.Text, "port-out up") || !strings.Contains(okRes.Text, "port-out vm2") {
		t.Errorf("trace with the default TTL does not reach vm2 (%s):\n%s", vm2, okRes.Text)
	}
	if strings.Contains(expRes.Text, "port-out up") || !strings.Contains(strings.ToLower(expRes.Reason), "ttl") {
		t.Errorf("trace --ttl 1 left the router or did not say why: %s (%s)\n%s", expRes.Verdict, expRes.Reason, expRes.Text)
	}
	if txt := e.run("trace", "vm", "--proto", "icmp", "--src", "10.0.0.7", "--dst", "10.1.0.9", "--ttl", "1"); !strings.Contains(strings.ToLower(txt), "ttl") {
		t.Errorf("trace --ttl 1 as text does not name the TTL:\n%s", txt)
	}

	// port unlink: both sides at once; a second unlink is refused.
	e.run("port", "unlink", "rp")
	for _, id := range []string{rp, bp} {
		o, err := e.get(topology.KindPort, id)
		if err != nil {
			t.Fatal(err)
		}
		if p := o.(*topology.Port); p.PeerID != "" {
			t.Errorf("port %s still linked to %s after unlink", p.Name, p.PeerID)
		}
	}
	if _, msg := e.try("port", "unlink", "bp"); !strings.Contains(msg, "not linked") {
		t.Errorf("unlinking an unlinked port: %q", msg)
	}

	// route add --weight, route delete by name and by id.
	w := e.id(e.run("route", "add", "r1", "--dst", "10.9.0.0/16", "--port", "rp", "--gateway", "10.0.0.5", "--weight", "50", "--name", "w50", "-o", "json"))
	o, err := e.get(topology.KindRoute, w)
	if err != nil {
		t.Fatal(err)
	}
	if rt := o.(*topology.Route); rt.Weight != 50 || rt.RouterID != r1 || rt.NextHopGateway.String() != "10.0.0.5" {
		t.Errorf("route added with --weight 50: %+v", rt)
	}
	if _, msg := e.try("route", "add", "r1", "--dst", "10.8.0.0/16", "--port", "rp", "--weight", "-1"); msg == "" {
		t.Error("route add --weight -1 accepted")
	}
	e.run("route", "delete", "r1", "w50")
	gone(topology.KindRoute, w)
	out := e.id(e.run("route", "add", "r1", "--dst", "10.10.0.0/16", "--type", "blackhole", "-o", "json"))
	e.run("route", "delete", out)
	gone(topology.KindRoute, out)

	// bridge dhcp: a subnet, a static host listed then deleted, the subnet
	// deleted (by name).
	d1 := e.id(e.run("bridge", "dhcp", "add", "b1", "--subnet", "10.0.0.0/24", "--gateway", "10.0.0.1", "--name", "d1", "-o", "json"))
	e.run("bridge", "dhcp", "host", "add", "b1", "d1", "--mac", "02:00:00:00:00:07", "--ip", "10.0.0.7", "--name", "seven")
	if l := e.run("bridge", "dhcp", "host", "list", "b1", "d1"); !strings.Contains(l, "02:00:00:00:00:07") || !strings.Contains(l, "10.0.0.7") || !strings.Contains(l, "seven") {
		t.Errorf("dhcp host list:\n%s", l)
	}
	e.run("bridge", "dhcp", "host", "delete", "b1", "d1", "02:00:00:00:00:07")
	if l := e.run("bridge", "dhcp", "host", "list", "b1", "d1"); strings.Contains(l, "02:00:00:00:00:07") {
		t.Errorf("dhcp host list after the delete:\n%s", l)
	}
	o, err = e.get(topology.KindDHCP, d1)
	if err != nil {
		t.Fatal(err)
	}
	if hs := o.(*topology.DHCPSubnet).Hosts; len(hs) != 0 {
		t.Errorf("static hosts left in the store: %+v", hs)
	}
	if _, msg := e.try("bridge", "dhcp", "host", "delete", "b1", "d1", "02:00:00:00:00:07"); msg == "" {
		t.Error("deleting a static host that is not there succeeded")
	}
	e.run("bridge", "dhcp", "delete", "b1", "d1")
	gone(topology.KindDHCP, d1)

	// router bgp set --router-id.
	e.run("router", "bgp", "set", "r1", "--asn", "64512", "--router-id", "192.0.2.1", "--peer", "address=192.0.2.254,asn=64496", "--network", "10.0.0.0/24")
	o, err = e.get(topology.KindRouter, r1)
	if err != nil {
		t.Fatal(err)
	}
	if b := o.(*topology.Router).BGP; b == nil || b.RouterID.String() != "192.0.2.1" || b.ASN != 64512 || len(b.Peers) != 1 {
		t.Errorf("bgp after set --router-id: %+v", b)
	}
	if _, msg := e.try("router", "bgp", "set", "r1", "--asn", "64512", "--router-id", "not-an-ip"); msg == "" {
		t.Error("--router-id not-an-ip accepted")
	}

	// Hosts, tunnel zones, port groups, IP address groups: made, a member
	// added and deleted (memberVerbs' delete), then the object deleted.
	h1 := e.id(e.run("host", "create", "h1", "-o", "json"))
	tz := e.id(e.run("tunnel-zone", "create", "tz", "-o", "json"))
	e.run("tunnel-zone", "member", "add", "tz", "h1", "192.0.2.10")
	pg := e.id(e.run("port-group", "create", "pg", "-o", "json"))
	e.run("port-group", "member", "add", "pg", "bp")
	ig := e.id(e.run("ip-address-group", "create", "ig", "--address", "10.1.1.2", "-o", "json"))
	e.run("ip-address-group", "address", "add", "ig", "10.1.1.1")
	for _, c := range []struct {
		del  []string
		kind topology.Kind
		id   string
		left func(topology.Object) int
	}{
		{[]string{"tunnel-zone", "member", "delete", "tz", "h1"}, topology.KindTunnelZone, tz, func(o topology.Object) int { return len(o.(*topology.TunnelZone).Members) }},
		{[]string{"port-group", "member", "delete", "pg", "bp"}, topology.KindPortGroup, pg, func(o topology.Object) int { return len(o.(*topology.PortGroup).Ports) }},
		{[]string{"ip-address-group", "address", "delete", "ig", "10.1.1.1"}, topology.KindIPGroup, ig, func(o topology.Object) int { return len(o.(*topology.IPAddrGroup).Addresses) - 1 }},
	} {
		o, err := e.get(c.kind, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if c.left(o) != 1 {
			t.Fatalf("%s before the member delete: %+v", c.kind, o)
		}
		e.run(c.del...)
		if o, err = e.get(c.kind, c.id); err != nil {
			t.Fatal(err)
		}
		if n := c.left(o); n != 0 {
			t.Errorf("%s: %d members left after %s: %+v", c.kind, n, strings.Join(c.del, " "), o)
		}
		// A second delete of the same member is refused: it is not there.
		if _, msg := e.try(c.del...); msg == "" {
			t.Errorf("%s twice succeeded", strings.Join(c.del, " "))
		}
	}
	if _, msg := e.try("port-group", "member", "delete", "nope", "bp"); !strings.Contains(msg, "nope") {
		t.Errorf("member delete on an unknown group: %q", msg)
	}

	// The top-level deletes, by name.
	for _, c := range []struct {
		noun, name string
		kind       topology.Kind
		id         string
	}{
		{"tunnel-zone", "tz", topology.KindTunnelZone, tz},
		{"host", "h1", topology.KindHost, h1},
		{"port-group", "pg", topology.KindPortGroup, pg},
		{"ip-address-group", "ig", topology.KindIPGroup, ig},
	} {
		e.run(c.noun, "delete", c.name)
		gone(c.kind, c.id)
	}
	e.run("router", "port", "delete", "r1:rp")
	e.run("router", "port", "delete", "r1:up")
	e.run("router", "delete", "r1")
	gone(topology.KindRouter, r1)
	gone(topology.KindPort, rp)
	e.run("bridge", "delete", "b1")
	gone(topology.KindBridge, b1)
	gone(topology.KindPort, bp)
	gone(topology.KindPort, vm)
	e.run("bridge", "delete", "b2")
	gone(topology.KindBridge, b2)
	gone(topology.KindPort, vm2)
}

// TestCLIAccountDelete: `canopy account delete` removes everything the
// account owns — its VPC objects (default VPC included), key pairs,
// addresses — and the topology the controller made of its VPCs; its access
// key is refused afterwards; another account is untouched.
func TestCLIAccountDelete(t *testing.T) {
	e := newCLIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var acct, other newAccount
	if err := json.Unmarshal([]byte(e.run("account", "create", "carol", "-o", "json")), &acct); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(e.run("account", "create", "dave", "-o", "json")), &other); err != nil {
		t.Fatal(err)
	}
	client := func(na newAccount) *ec2.Client {
		return ec2.NewFromConfig(aws.Config{Region: "us-east-1", RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(na.AccessKeyID, na.SecretAccessKey, "")},
			func(o *ec2.Options) { o.BaseEndpoint = aws.String(e.ec2URL) })
	}
	carol, dave := client(acct), client(other)
	v, err := carol.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String("10.0.1.0/24")}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: v.Vpc.VpcId, GroupName: aws.String("web"), Description: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("ops")}); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("ops")}); err != nil {
		t.Fatal(err)
	}
	vpcs, err := carol.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) != 2 {
		t.Fatalf("carol's VPCs: %v %v", vpcs, err)
	}
	applied := func() {
		t.Helper()
		resp, err := e.store.Client().Get(ctx, e.store.Prefix()+"vpc-seq")
		if err != nil || len(resp.Kvs) == 0 {
			t.Fatalf("vpc-seq: %v", err)
		}
		if _, err := e.ctl.WaitApplied(ctx, resp.Kvs[0].ModRevision); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// realized counts the topology objects labelled with one of carol's VPCs.
	realized := func() int {
		t.Helper()
		n := 0
		for _, k := range topology.Kinds {
			objs, err := e.store.List(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				for _, vp := range vpcs.Vpcs {
					if o.GetMeta().Labels[translate.LabelVPC] == *vp.VpcId {
						n++
					}
				}
			}
		}
		return n
	}
	applied()
	if realized() == 0 {
		t.Fatal("the controller realized none of carol's VPCs")
	}
	// owned lists the keys under vpc/ and ec2/ whose value names carol's
	// account or access key.
	owned := func() []string {
		t.Helper()
		resp, err := e.store.Client().Get(ctx, e.store.Prefix(), clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, kv := range resp.Kvs {
			k := strings.TrimPrefix(string(kv.Key), e.store.Prefix())
			if (strings.HasPrefix(k, "vpc/") || strings.HasPrefix(k, "ec2/")) &&
				(strings.Contains(string(kv.Value), acct.AccountID) || strings.Contains(k, acct.AccountID) || strings.Contains(k, acct.AccessKeyID)) {
				out = append(out, k)
			}
		}
		return out
	}
	if len(owned()) == 0 {
		t.Fatal("no key names carol's account before the delete")
	}

	if msg := e.run("account", "delete", acct.AccountID); !strings.Contains(msg, acct.AccountID) {
		t.Errorf("account delete said %q", msg)
	}
	if left := owned(); len(left) != 0 {
		t.Errorf("keys of the deleted account left in the store:\n%s", strings.Join(left, "\n"))
	}
	applied()
	if n := realized(); n != 0 {
		t.Errorf("%d topology objects of the deleted account's VPCs left", n)
	}
	var ae smithy.APIError
	if _, err := carol.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); !errors.As(err, &ae) || ae.ErrorCode() != "AuthFailure" {
		t.Errorf("the deleted account's key: %v, want AuthFailure", err)
	}
	if l := e.run("account", "list"); strings.Contains(l, acct.AccountID) || !strings.Contains(l, other.AccountID) {
		t.Errorf("account list after the delete:\n%s", l)
	}
	if _, msg := e.try("account", "delete", acct.AccountID); msg == "" {
		t.Error("deleting the account twice succeeded")
	}
	// Dave keeps everything, his key pair of the same name included.
	kp, err := dave.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil || len(kp.KeyPairs) != 1 {
		t.Errorf("dave's key pairs: %v %v", kp, err)
	}
	dv, err := dave.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(dv.Vpcs) != 1 {
		t.Errorf("dave's VPCs: %v %v", dv, err)
	}
	// The name is free again: an account made anew gets a default VPC of
	// its own and no leftover.
	if _, msg := e.try("account", "create", "carol"); msg != "" {
		t.Errorf("re-creating carol: %s", msg)
	}
}
