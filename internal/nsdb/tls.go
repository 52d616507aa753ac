package nsdb

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

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
