package pki

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServerTLSServesARenewedCertificate: a server built with ServerTLS
// answers a client built with ClientTLS, serves a reissued certificate
// without a restart, and refuses plain HTTP.
func TestServerTLSServesARenewedCertificate(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := IssueOptions{CommonName: "srv", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}
	certFile, keyFile, err := ca.Issue(dir, "srv", opts)
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := ServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{TLSConfig: scfg, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	})}
	go hs.ServeTLS(ln, "", "")
	defer hs.Close()
	url := "https://" + ln.Addr().String()

	ccfg, err := ClientTLS(ca.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: ccfg.Clone(), DisableKeepAlives: true}}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET over TLS: %v", err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	first := serial()

	// Reissue for more names; the next handshake gets the new certificate.
	opts.DNSNames = []string{"localhost"}
	if _, _, err := ca.Issue(dir, "srv", opts); err != nil {
		t.Fatal(err)
	}
	if second := serial(); second == first {
		t.Error("the server still serves the old certificate after it was reissued")
	}

	// A broken pair on disk: the last good certificate stays in service.
	if err := os.WriteFile(filepath.Join(dir, "srv.crt"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	serial()

	// Plain HTTP to the TLS listener never reaches the handler.
	before := reached.Load()
	resp, err := http.Get(strings.Replace(url, "https://", "http://", 1))
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
			t.Errorf("plain HTTP: %d %s", resp.StatusCode, b)
		}
	}
	if reached.Load() != before {
		t.Error("a plain HTTP request reached the handler")
	}

	if _, err := ServerTLS(certFile, ""); err == nil {
		t.Error("ServerTLS without a key file accepted")
	}
	if _, err := ClientTLS(filepath.Join(dir, "srv.key")); err == nil {
		t.Error("ClientTLS with a key file as CA accepted")
	}
}
