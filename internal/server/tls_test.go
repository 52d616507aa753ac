package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/pki"
)

// tlsServer is a canopy server with TLS on both listeners.
type tlsServer struct {
	rest, ec2 string // https://host:port
	token     string
	ca        *tls.Config
}

func startTLSServer(t *testing.T) *tlsServer {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "pki"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(filepath.Join(dir, "pki"), "server", pki.IssueOptions{CommonName: "server", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Listen, cfg.EC2.Listen = "127.0.0.1:0", "127.0.0.1:0"
	// The embedded etcd serves TLS only.
	cfg.EtcdClientURL = strings.Replace(nsdbtest.FreeURL(t), "http://", "https://", 1)
	cfg.EtcdPeerURL = strings.Replace(nsdbtest.FreeURL(t), "http://", "https://", 1)
	cfg.TLSCert, cfg.TLSKey = cert, key
	cfg.LogLevel = "warn"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	rest, ec2Addr := make(chan string, 1), make(chan string, 1)
	s.Ready = func(addr, _ string) { rest <- addr }
	s.EC2Ready = func(addr string) { ec2Addr <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
	})
	ts := &tlsServer{}
	for ts.rest == "" || ts.ec2 == "" {
		select {
		case a := <-rest:
			ts.rest = "https://" + a
		case a := <-ec2Addr:
			ts.ec2 = "https://" + a
		case err := <-done:
			t.Fatalf("server stopped: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("server not listening within 60 s")
		}
	}
	tok, err := readToken(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	ts.token = tok
	if ts.ca, err = pki.ClientTLS(ca.CertFile()); err != nil {
		t.Fatal(err)
	}
	return ts
}

func readToken(dataDir string) (string, error) {
	b, err := os.ReadFile(TokenFile(dataDir))
	return strings.TrimSpace(string(b)), err
}

// do sends a request with the admin token through client and returns the
// status and body.
func (ts *tlsServer) do(t *testing.T, client *http.Client, method, url, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func (ts *tlsServer) client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: ts.ca.Clone()}}
}

func (ts *tlsServer) accounts(t *testing.T) int {
	t.Helper()
	code, body, err := ts.do(t, ts.client(), "GET", ts.rest+"/accounts", "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /accounts: %d %s %v", code, body, err)
	}
	var as []json.RawMessage
	if err := json.Unmarshal([]byte(body), &as); err != nil {
		t.Fatal(err)
	}
	return len(as)
}

// TestTLSListeners: with --tls-cert, the REST API and the EC2 endpoint
// answer HTTPS to a client trusting the CA (the AWS SDK included), refuse
// plain HTTP before any handler runs, and a client not trusting the CA
// does not get through.
func TestTLSListeners(t *testing.T) {
	ts := startTLSServer(t)
	code, body, err := ts.do(t, ts.client(), "POST", ts.rest+"/accounts", `{"name":"alice"}`)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("POST /accounts over HTTPS: %d %s %v", code, body, err)
	}
	var nc struct {
		AccountID       string `json:"account_id"`
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if err := json.Unmarshal([]byte(body), &nc); err != nil || nc.SecretAccessKey == "" {
		t.Fatalf("POST /accounts answer %s: %v", body, err)
	}

	// The AWS SDK over HTTPS, trusting the CA as AWS_CA_BUNDLE does.
	client := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.ec2), HTTPClient: ts.client(), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(nc.AccessKeyID, nc.SecretAccessKey, "")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(out.Vpcs) != 1 || !aws.ToBool(out.Vpcs[0].IsDefault) {
		t.Fatalf("DescribeVpcs over HTTPS: %+v %v", out, err)
	}

	// Plain HTTP: refused by the listener, nothing created.
	before := ts.accounts(t)
	for _, url := range []string{ts.rest + "/accounts", ts.ec2 + "/"} {
		plain := strings.Replace(url, "https://", "http://", 1)
		code, body, err := ts.do(t, http.DefaultClient, "POST", plain, `{"name":"plain"}`)
		if err != nil || code != http.StatusBadRequest || !strings.Contains(body, "HTTP request to an HTTPS server") {
			t.Errorf("plain HTTP POST %s: %d %q %v", plain, code, body, err)
		}
	}
	if after := ts.accounts(t); after != before {
		t.Errorf("plain HTTP created an account: %d accounts, was %d", after, before)
	}

	// A client that does not trust the CA.
	for _, url := range []string{ts.rest + "/healthz", ts.ec2 + "/"} {
		_, _, err := ts.do(t, &http.Client{Timeout: 10 * time.Second}, "GET", url, "")
		var uae x509.UnknownAuthorityError
		if err == nil || !errors.As(err, &uae) {
			t.Errorf("GET %s without the CA: %v, want an unknown authority error", url, err)
		}
	}
}

// TestAdminTokenNotOnEC2: the admin token that mints account secrets is
// accepted on the REST listener only; the tenant-facing EC2 listener treats
// it as what it is there, a request without a SigV4 signature.
func TestAdminTokenNotOnEC2(t *testing.T) {
	ts := startTLSServer(t)
	before := ts.accounts(t)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/canopy/accounts", `{"name":"mallory"}`},
		{"GET", "/canopy/accounts", ""},
		{"POST", "/accounts", `{"name":"mallory"}`},
		{"DELETE", "/canopy/accounts/123456789012", ""},
	} {
		code, body, err := ts.do(t, ts.client(), tc.method, ts.ec2+tc.path, tc.body)
		if err != nil || code != http.StatusUnauthorized || !strings.Contains(body, "<Code>AuthFailure</Code>") {
			t.Errorf("%s %s with the admin token on the EC2 listener: %d %s %v", tc.method, tc.path, code, body, err)
		}
	}
	if after := ts.accounts(t); after != before {
		t.Fatalf("the EC2 listener created an account with the admin token")
	}
	// On the REST listener: only with the token.
	req, _ := http.NewRequest("POST", ts.rest+"/accounts", bytes.NewReader([]byte(`{"name":"x"}`)))
	resp, err := ts.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /accounts without the token: %d", resp.StatusCode)
	}
	if after := ts.accounts(t); after != before {
		t.Fatalf("an account was created without the token")
	}
}
