// Package ec2cli runs vpc.sh, a script of Debian's awscli calls, against a
// Canopy EC2 endpoint on loopback (HTTPS, trusted through AWS_CA_BUNDLE)
// backed by an embedded store.
package ec2cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/controller"
	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// awsBinary is Debian's awscli (apt-get install awscli). Other installs
// (pyenv shims) may shadow it on $PATH, so the path is fixed.
const awsBinary = "/usr/bin/aws"

func TestAWSCLIBuildsAndTearsDownAVpc(t *testing.T) {
	if _, err := os.Stat(awsBinary); err != nil {
		msg := "no " + awsBinary + ": install Debian's awscli (apt-get install -y awscli)"
		if os.Getuid() == 0 && os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	store, _ := nsdbtest.OpenEmbedded(t)
	// A guard against a hang, not a speed bound: vpc.sh starts about 85 aws
	// CLI processes (Python), 1-3 s each on a busy 2-core machine; at load
	// 20 it took over 5 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	vs, err := nsdb.OpenVPCStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	pool, _ := canopyec2.ParsePool("203.0.113.10-203.0.113.20")
	srv, err := canopyec2.New(vs, canopyec2.Config{Key: make([]byte, 32), PublicPool: pool})
	if err != nil {
		t.Fatal(err)
	}
	// Over HTTPS with a certificate of a local CA, as canopy up serves it:
	// the AWS CLI trusts it through AWS_CA_BUNDLE.
	pkiDir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(pkiDir, "ec2cli test CA")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue(pkiDir, "ec2", pki.IssueOptions{CommonName: "ec2", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.ServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second}
	go hs.ServeTLS(ln, "", "")
	defer hs.Close()
	endpoint := "https://" + ln.Addr().String()
	nc, err := srv.CreateAccount(ctx, "cli")
	if err != nil {
		t.Fatal(err)
	}
	dump := func() string {
		resp, err := store.Client().Get(ctx, store.Prefix()+nsdb.VPCPrefix, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, kv := range resp.Kvs {
			lines = append(lines, string(kv.Key)+"="+string(kv.Value))
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	before := dump()

	// The controller realizes the VPC objects as topology, as in canopy
	// server. Wait until it has applied everything so far, then take the
	// topology as it stands (the cloud's edge and the default VPC).
	ctl := controller.New(store, translate.CloudConfig{}, nil)
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer ctl.Stop()
	applied := func() {
		t.Helper()
		resp, err := store.Client().Get(ctx, store.Prefix()+"vpc-seq")
		if err != nil || len(resp.Kvs) == 0 {
			t.Fatalf("vpc-seq: %v", err)
		}
		if _, err := ctl.WaitApplied(ctx, resp.Kvs[0].ModRevision); err != nil {
			t.Fatal(err)
		}
		if err := store.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	topo := func() string {
		var lines []string
		for _, k := range topology.Kinds {
			objs, err := store.List(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				o.GetMeta().Revision = 0
				if p, ok := o.(*topology.Port); ok {
					p.TunnelKey = 0
				}
				b, _ := json.Marshal(o)
				lines = append(lines, string(k)+" "+string(b))
			}
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	applied()
	topoBefore := topo()
	// While the script runs, record which VPCs the topology realizes: the
	// script's VPC must appear there, not only in the EC2 view.
	var mu sync.Mutex
	vpcsSeen := map[string]bool{}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for wr := range store.Client().Watch(wctx, store.Prefix()+"topo/router/", clientv3.WithPrefix()) {
			for _, ev := range wr.Events {
				var r topology.Router
				if json.Unmarshal(ev.Kv.Value, &r) == nil && r.Labels[translate.LabelVPC] != "" {
					mu.Lock()
					vpcsSeen[r.Labels[translate.LabelVPC]] = true
					mu.Unlock()
				}
			}
		}
	}()

	cmd := exec.CommandContext(ctx, "bash", "vpc.sh")
	cmd.Env = append(os.Environ(),
		"AWS="+awsBinary, "EC2_ENDPOINT="+endpoint, "AWS_CA_BUNDLE="+ca.CertFile(),
		"AWS_ACCESS_KEY_ID="+nc.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+nc.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	t.Logf("vpc.sh:\n%s", out)
	if err != nil {
		t.Fatalf("vpc.sh: %v", err)
	}
	if !strings.Contains(string(out), "ec2cli: OK") {
		t.Fatal("vpc.sh did not finish")
	}
	// Nothing left behind: the vpc/ prefix holds exactly the account and
	// its default VPC objects again.
	if after := dump(); after != before {
		t.Fatalf("the vpc/ prefix changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// ... and in the topology: the script's VPC was realized (a router of
	// its own), and after the teardown the topology is what it was.
	applied()
	stopWatch()
	mu.Lock()
	realized := 0
	for id := range vpcsSeen {
		if !strings.Contains(before, id) { // not the default VPC
			realized++
		}
	}
	mu.Unlock()
	if realized == 0 {
		t.Error("no VPC router was written to the topology while the script ran")
	}
	if after := topo(); after != topoBefore {
		t.Errorf("the topology changed:\nbefore:\n%s\nafter:\n%s", topoBefore, after)
	}
}
