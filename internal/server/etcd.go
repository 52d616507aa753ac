package server

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
)

// EtcdCAName is the common name of the etcd CA a data dir keeps.
const EtcdCAName = "Canopy etcd CA"

// EtcdCADir is where a data dir keeps the CA of its etcd: it signs the
// embedded etcd's certificates, the server's root client certificate and
// the agents' certificates (canopy host enroll). It is not the CA of the
// HTTPS listeners (<data-dir>/pki), which tenants are told to trust: a
// certificate for etcd is no use there, nor the other way round.
func EtcdCADir(dataDir string) string { return filepath.Join(dataDir, "etcd-ca") }

// etcdTLSDir holds the embedded etcd's certificate and the root client's.
func etcdTLSDir(dataDir string) string { return filepath.Join(dataDir, "etcd-tls") }

// RootUser is the etcd user of the server (and of canopy up's and canopy
// host enroll's own connections): the common name of its client certificate.
const RootUser = nsdb.RootUser

// StoreConfig is how the server opens the store. With the embedded etcd it
// (re)issues, from the data dir's CA, the etcd server certificate (for the
// hosts of --etcd-client-url and --etcd-peer-url) and the root client
// certificate, and the embedded etcd serves TLS only, requires a client
// certificate and runs with authentication on. With --etcd-endpoints it
// presents the --etcd-* credentials.
func (c *Config) StoreConfig() (nsdb.Config, error) {
	if !c.Embedded() {
		cfg := nsdb.Config{Endpoints: c.EtcdEndpoints,
			Credentials: nsdb.Credentials{CAFile: c.EtcdCA, CertFile: c.EtcdCert, KeyFile: c.EtcdKey}}
		// With etcd's root certificate the server turns etcd's
		// authentication on (idempotent), as it does on the embedded
		// etcd: without it every enrolled agent's certificate could
		// write anything. With another user's certificate it leaves
		// etcd's authentication to the operator.
		if c.EtcdCert != "" {
			cn, err := certCommonName(c.EtcdCert)
			if err != nil {
				return nsdb.Config{}, fmt.Errorf("--etcd-cert: %w", err)
			}
			cfg.EnableAuth = cn == RootUser
		}
		return cfg, nil
	}
	ca, err := pki.LoadOrCreateCA(EtcdCADir(c.DataDir), EtcdCAName)
	if err != nil {
		return nsdb.Config{}, err
	}
	var o pki.IssueOptions
	o.CommonName, o.Server, o.Client = "canopy-etcd", true, true // peers dial each other with it
	o.DNSNames = []string{"localhost"}
	o.IPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, raw := range []string{c.EtcdClientURL, c.EtcdPeerURL} {
		u, err := url.Parse(raw)
		if err != nil {
			return nsdb.Config{}, fmt.Errorf("etcd url %q: %w", raw, err)
		}
		if ip := net.ParseIP(u.Hostname()); ip != nil {
			o.IPs = appendIP(o.IPs, ip)
		} else if h := u.Hostname(); h != "localhost" {
			o.DNSNames = append(o.DNSNames, h)
		}
	}
	dir := etcdTLSDir(c.DataDir)
	srvCert, srvKey, err := ca.Issue(dir, "etcd-server", o)
	if err != nil {
		return nsdb.Config{}, err
	}
	root, err := rootCredentials(ca, c.DataDir)
	if err != nil {
		return nsdb.Config{}, err
	}
	return nsdb.Config{
		DataDir: filepath.Join(c.DataDir, "etcd"), ClientURL: c.EtcdClientURL, PeerURL: c.EtcdPeerURL,
		Credentials: root,
		Serve:       &nsdb.ServeTLS{CAFile: ca.CertFile(), CertFile: srvCert, KeyFile: srvKey},
		EnableAuth:  true,
	}, nil
}

// ClientStoreConfig is how another command on the server's machine (canopy
// up's own checks, canopy host enroll) reaches the running server's store,
// with the server's root credentials. It issues nothing but the root
// client certificate (the running etcd's own is left alone).
func (c *Config) ClientStoreConfig() (nsdb.Config, error) {
	if !c.Embedded() {
		return c.StoreConfig()
	}
	creds, err := RootCredentials(c.DataDir)
	if err != nil {
		return nsdb.Config{}, err
	}
	return nsdb.Config{Endpoints: []string{c.EtcdClientURL}, Credentials: creds}, nil
}

// RootCredentials are the embedded etcd's CA and the root client
// certificate of dataDir (issued if missing or stale).
func RootCredentials(dataDir string) (nsdb.Credentials, error) {
	ca, err := pki.LoadOrCreateCA(EtcdCADir(dataDir), EtcdCAName)
	if err != nil {
		return nsdb.Credentials{}, err
	}
	return rootCredentials(ca, dataDir)
}

func rootCredentials(ca *pki.CA, dataDir string) (nsdb.Credentials, error) {
	cert, key, err := ca.Issue(etcdTLSDir(dataDir), "root", pki.IssueOptions{CommonName: RootUser, Client: true})
	if err != nil {
		return nsdb.Credentials{}, err
	}
	return nsdb.Credentials{CAFile: ca.CertFile(), CertFile: cert, KeyFile: key}, nil
}

func appendIP(ips []net.IP, ip net.IP) []net.IP {
	for _, x := range ips {
		if x.Equal(ip) {
			return ips
		}
	}
	return append(ips, ip)
}

// certCommonName is the subject common name of the first certificate in
// the PEM file path.
func certCommonName(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s: no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return cert.Subject.CommonName, nil
}
