// Package ec2cli runs vpc.sh, a script of Debian's awscli calls, against a
// Canopy EC2 endpoint on loopback backed by an embedded store.
package ec2cli

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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
	hs := httptest.NewServer(srv)
	defer hs.Close()
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

	cmd := exec.CommandContext(ctx, "bash", "vpc.sh")
	cmd.Env = append(os.Environ(),
		"AWS="+awsBinary, "EC2_ENDPOINT="+hs.URL,
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
}
