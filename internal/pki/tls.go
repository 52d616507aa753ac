package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// ServerTLS is the TLS configuration of a listener serving certFile and
// keyFile. The pair is loaded now (so a bad file fails at start) and loaded
// again when either file changes, so a renewed certificate is served without
// a restart; if a changed pair does not load, the previous one stays.
func ServerTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("pki: a TLS server needs both a certificate and a key file")
	}
	r := &reloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return r.get()
	}}, nil
}

type reloader struct {
	certFile, keyFile string

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded [2]os.FileInfo // of certFile and keyFile when cert was loaded
}

func (r *reloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.stat()
	if same(now[0], r.loaded[0]) && same(now[1], r.loaded[1]) {
		return r.cert, nil
	}
	if c, err := r.loadLocked(now); err == nil {
		return c, nil
	}
	return r.cert, nil
}

func (r *reloader) load() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loadLocked(r.stat())
}

func (r *reloader) loadLocked(fis [2]os.FileInfo) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: TLS certificate %s, key %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.loaded = &pair, fis
	return r.cert, nil
}

func (r *reloader) stat() (fis [2]os.FileInfo) {
	fis[0], _ = os.Stat(r.certFile)
	fis[1], _ = os.Stat(r.keyFile)
	return fis
}

// same reports whether two stats are of the same, unchanged file: Issue and
// most tools replace a file by renaming a new one over it.
func same(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// ClientTLS is the TLS configuration of a client that trusts only the CA
// certificates in caFile (as curl --cacert and AWS_CA_BUNDLE do).
func ClientTLS(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("pki: CA file %s holds no PEM certificate", caFile)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}
