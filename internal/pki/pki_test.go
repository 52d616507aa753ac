package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca, err := LoadOrCreateCA(dir, "canopy test CA")
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.Subject.CommonName != "canopy test CA" {
		t.Fatalf("CA cert: IsCA=%v CN=%q", ca.Cert.IsCA, ca.Cert.Subject.CommonName)
	}
	pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("CA key is %T, want ECDSA P-256", ca.Cert.PublicKey)
	}
	if ca.CertFile() != filepath.Join(dir, "ca.crt") {
		t.Fatalf("CertFile = %s", ca.CertFile())
	}
	assertMode(t, filepath.Join(dir, "ca.key"), 0o600)
	assertMode(t, dir, 0o700|os.ModeDir)

	again, err := LoadOrCreateCA(dir, "ignored when the CA exists")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Fatal("second LoadOrCreateCA made a new CA instead of loading the first")
	}
}

func TestLoadOrCreateCARefusesHalfACA(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateCA(dir, "ca"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir, "ca"); err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Fatalf("a CA without its key: err = %v, want a refusal", err)
	}

	// A key that belongs to another CA.
	other := t.TempDir()
	if _, err := LoadOrCreateCA(other, "other"); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(other, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCA(dir, "ca"); err == nil {
		t.Fatal("a CA whose key does not match its certificate was accepted")
	}
}

func TestIssueServerCertificateVerifies(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "canopy test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := ca.Issue(dir, "server", IssueOptions{
		CommonName: "canopy server",
		DNSNames:   []string{"localhost"},
		IPs:        []net.IP{net.ParseIP("127.0.0.1")},
		Server:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if certFile != filepath.Join(dir, "server.crt") || keyFile != filepath.Join(dir, "server.key") {
		t.Fatalf("paths %s %s", certFile, keyFile)
	}
	assertMode(t, keyFile, 0o600)

	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	// A client trusting only the CA file, as AWS_CA_BUNDLE does.
	pem, err := os.ReadFile(ca.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("ca.crt holds no certificate")
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		url := strings.Replace(srv.URL, "127.0.0.1", host, 1)
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET %s with the CA bundle: %v", url, err)
		}
		resp.Body.Close()
	}

	// A name the certificate does not carry is refused.
	_, err = ca.Cert.Verify(x509.VerifyOptions{}) // self-signed, not in the system pool
	if err == nil {
		t.Fatal("the test CA verified against the system roots")
	}
	leaf := pair.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "example.com"}); err == nil {
		t.Fatal("server certificate verified for a name it does not carry")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("a server-only certificate verified for client authentication")
	}
}

func TestIssueClientCertificate(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue(t.TempDir(), "agent-h1", IssueOptions{CommonName: "agent-h1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate does not verify for client auth: %v", err)
	}
	if pair.Leaf.Subject.CommonName != "agent-h1" {
		t.Fatalf("CN = %q", pair.Leaf.Subject.CommonName)
	}
}

func TestIssueKeepsAFittingCertificateAndReplacesOthers(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := IssueOptions{CommonName: "s", DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}
	certFile, _, err := ca.Issue(dir, "s", opts)
	if err != nil {
		t.Fatal(err)
	}
	first := serialOf(t, certFile)

	// Same names, listed differently (an IPv4 address in 16-byte form): kept.
	same := opts
	same.IPs = []net.IP{net.ParseIP("127.0.0.1").To16()}
	if _, _, err := ca.Issue(dir, "s", same); err != nil {
		t.Fatal(err)
	}
	if serialOf(t, certFile) != first {
		t.Fatal("Issue replaced a certificate that still fits")
	}

	// Another name: replaced.
	more := opts
	more.DNSNames = []string{"localhost", "canopy.example"}
	if _, _, err := ca.Issue(dir, "s", more); err != nil {
		t.Fatal(err)
	}
	second := serialOf(t, certFile)
	if second == first {
		t.Fatal("Issue kept a certificate lacking a requested name")
	}

	// Another usage: replaced.
	both := more
	both.Client = true
	if _, _, err := ca.Issue(dir, "s", both); err != nil {
		t.Fatal(err)
	}
	third := serialOf(t, certFile)
	if third == second {
		t.Fatal("Issue kept a certificate lacking client authentication")
	}

	// Signed by another CA: replaced.
	other, err := LoadOrCreateCA(t.TempDir(), "other")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Issue(dir, "s", both); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Issue(dir, "s", both); err != nil {
		t.Fatal(err)
	}
	if !verifies(t, certFile, ca) {
		t.Fatal("Issue kept a certificate signed by another CA")
	}

	// Near the end of its life: replaced.
	if !ca.fits(certFile, filepath.Join(dir, "s.key"), both, time.Now().Add(200*24*time.Hour)) {
		t.Fatal("a certificate with more than a third of its life left does not fit")
	}
	if ca.fits(certFile, filepath.Join(dir, "s.key"), both, time.Now().Add(300*24*time.Hour)) {
		t.Fatal("a certificate with less than a third of its life left still fits")
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		name string
		o    IssueOptions
	}{
		"path in name":       {"../x", IssueOptions{CommonName: "x", Client: true}},
		"hidden name":        {".lock", IssueOptions{CommonName: "x", Client: true}},
		"no usage":           {"x", IssueOptions{CommonName: "x"}},
		"no common name":     {"x", IssueOptions{Client: true}},
		"server without SAN": {"x", IssueOptions{CommonName: "x", Server: true}},
		"negative validity":  {"x", IssueOptions{CommonName: "x", Client: true, Validity: -time.Hour}},
	} {
		if _, _, err := ca.Issue(dir, tc.name, tc.o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("a refused request left %s behind", e.Name())
		}
	}
}

func serialOf(t *testing.T, certFile string) string {
	t.Helper()
	return leafOf(t, certFile).SerialNumber.String()
}

func verifies(t *testing.T, certFile string, ca *CA) bool {
	t.Helper()
	_, err := leafOf(t, certFile).Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

func leafOf(t *testing.T, certFile string) *x509.Certificate {
	t.Helper()
	keyFile := strings.TrimSuffix(certFile, ".crt") + ".key"
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Fatalf("%s mode %v, want %v", path, fi.Mode(), want)
	}
}
