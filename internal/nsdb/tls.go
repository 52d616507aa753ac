package nsdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
)

// Credentials are what a client presents to etcd.
type Credentials struct {
	// CAFile is the CA that signed etcd's server certificate. Setting it
	// turns TLS on; the endpoints must then be https://.
	CAFile string
	// CertFile and KeyFile are the client certificate. etcd with
	// --client-cert-auth refuses clients without one; with its
	// authentication on, the certificate's common name is the etcd user.
	CertFile, KeyFile string
	// Username and Password authenticate by password instead (etcd then
	// ignores the certificate's name).
	Username, Password string
}

// ServeTLS is the TLS of an embedded etcd. Both listeners use CertFile (a
// certificate for server and client authentication: peers dial each other
// with it) and require a client certificate signed by CAFile.
type ServeTLS struct {
	CAFile, CertFile, KeyFile string
}

// tlsConfig is the client TLS configuration, nil without TLS.
func (c Credentials) tlsConfig(endpoints []string) (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	if c.CAFile == "" {
		return nil, errors.New("etcd client certificate without a CA file: the CA that signed etcd's certificate is needed too")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("etcd client certificate and key go together: give both or neither")
	}
	for _, ep := range endpoints {
		if !strings.HasPrefix(ep, "https://") {
			return nil, fmt.Errorf("etcd endpoint %s: with TLS credentials the URL must be https://", ep)
		}
	}
	info := transport.TLSInfo{TrustedCAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS: %w", err)
	}
	return cfg, nil
}

// tlsInfo is the embedded server's listener TLS.
func (t *ServeTLS) tlsInfo() transport.TLSInfo {
	return transport.TLSInfo{CertFile: t.CertFile, KeyFile: t.KeyFile, TrustedCAFile: t.CAFile, ClientCertAuth: true}
}

// RootUser is etcd's superuser. With authentication on, the server connects
// as it (a client certificate with this common name).
const RootUser = "root"

// checkTLS asks each endpoint for etcd's /version over HTTPS with cfg, so
// that a TLS set-up etcd refuses — a CA that did not sign the members'
// certificates, a client certificate missing or from another CA — is said
// at once instead of as a timeout: the etcd client retries such failures
// like an unreachable member. It returns nil when any endpoint answers,
// or when none answered for another reason (a member down: the client
// waits for it as before).
func checkTLS(ctx context.Context, endpoints []string, cfg *tls.Config) error {
	tr := &http.Transport{TLSClientConfig: cfg.Clone(), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	errs := make([]error, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(ep, "/")+"/version", nil)
			if err != nil {
				errs[i] = err
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	var tlsErr error
	for i, err := range errs {
		if err == nil {
			return nil
		}
		if tlsErr == nil && tlsRefusal(err) {
			tlsErr = fmt.Errorf("etcd %s refused the TLS connection: %w (%s)", endpoints[i], err, tlsHint(err))
		}
	}
	return tlsErr
}

// tlsRefusal reports whether err is a TLS failure no retry will mend.
func tlsRefusal(err error) bool {
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) || errors.As(err, &alert) {
		return true
	}
	// A peer's alert arrives as "remote error: tls: …" (not a typed
	// error on the client side).
	return strings.Contains(err.Error(), "remote error: tls:")
}

// tlsHint says which flag to look at.
func tlsHint(err error) string {
	if strings.Contains(err.Error(), "remote error: tls:") {
		return "etcd requires a client certificate signed by a CA it trusts: check --etcd-cert and --etcd-key, or the enrollment's agent.crt"
	}
	return "etcd's server certificate was not accepted: check that --etcd-ca is the CA that signed the members' certificates, for the endpoints' host names"
}
