package ec2_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type env struct {
	t     *testing.T
	store *nsdb.Store
	vpcs  *nsdb.VPCStore
	srv   *canopyec2.Server
	url   string
}

func newEnv(t *testing.T, mod func(*canopyec2.Config)) *env {
	t.Helper()
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	vs, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vs.Close)
	pool, err := canopyec2.ParsePool("198.51.100.0/29")
	if err != nil {
		t.Fatal(err)
	}
	cfg := canopyec2.Config{Key: make([]byte, 32), PublicPool: pool}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := canopyec2.New(vs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, store: s, vpcs: vs, srv: srv, url: hs.URL}
}

// account creates an account and returns an EC2 client for it.
func (e *env) account(name string) (*ec2.Client, *canopyec2.NewCredentials) {
	e.t.Helper()
	nc, err := e.srv.CreateAccount(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.client(nc.AccessKeyID, nc.SecretAccessKey, nil), nc
}

func (e *env) cfg(key, secret string) aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, ""),
		// No retries: a test wants the first answer.
		RetryMaxAttempts: 1,
	}
}

func (e *env) client(key, secret string, mod func(*ec2.Options)) *ec2.Client {
	return ec2.NewFromConfig(e.cfg(key, secret), func(o *ec2.Options) {
		o.BaseEndpoint = aws.String(e.url)
		if mod != nil {
			mod(o)
		}
	})
}

func (e *env) sts(key, secret string) *sts.Client {
	return sts.NewFromConfig(e.cfg(key, secret), func(o *sts.Options) { o.BaseEndpoint = aws.String(e.url) })
}

// dump returns every key and value under the vpc/ prefix (and client
// tokens and access keys), sorted: the state a rejected call must not change.
func (e *env) dump() string {
	e.t.Helper()
	resp, err := e.store.Client().Get(context.Background(), e.store.Prefix(), clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	var lines []string
	for _, kv := range resp.Kvs {
		k := strings.TrimPrefix(string(kv.Key), e.store.Prefix())
		if !strings.HasPrefix(k, "vpc/") && !strings.HasPrefix(k, "ec2/") {
			continue // the controller's topology and status move on their own
		}
		lines = append(lines, k+"="+string(kv.Value))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// vpcKeys counts the keys under vpc/ by collection.
func (e *env) vpcKeys() map[string]int {
	e.t.Helper()
	resp, err := e.store.Client().Get(context.Background(), e.store.Prefix()+"vpc/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, kv := range resp.Kvs {
		coll, _, _ := strings.Cut(strings.TrimPrefix(string(kv.Key), e.store.Prefix()+"vpc/"), "/")
		out[coll]++
	}
	return out
}

// code returns the API error code of err ("" if none).
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "non-API error: " + err.Error()
	}
	return ""
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
