// Package pki keeps a small certificate authority on disk and issues the
// certificates Canopy's own channels need: the REST and EC2 listeners of
// `canopy up` and `canopy server`, and etcd peers and clients.
//
// It uses the standard library's crypto only (ECDSA P-256) and never talks to
// the network. Keys are written 0600 and replaced atomically (write, then
// rename), so a reader never sees half a file; a lock file serialises two
// processes issuing in the same directory.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// CAValidity is how long a CA made by LoadOrCreateCA is valid.
const CAValidity = 10 * 365 * 24 * time.Hour

// DefaultValidity is the validity of an issued certificate when IssueOptions
// does not say.
const DefaultValidity = 365 * 24 * time.Hour

// clockSkew backdates NotBefore so that a machine whose clock is a little
// behind still accepts a certificate issued just now.
const clockSkew = time.Hour

// CA is a certificate authority kept as ca.crt and ca.key (0600) in Dir.
type CA struct {
	Dir  string
	Cert *x509.Certificate
	Key  crypto.Signer
}

// IssueOptions says what an issued certificate is for.
type IssueOptions struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	// Server and Client select the extended key usages (TLS server
	// authentication, TLS client authentication); at least one is required.
	Server, Client bool
	// Validity defaults to DefaultValidity.
	Validity time.Duration
}

// LoadOrCreateCA loads the CA kept in dir, or creates one named commonName
// (and dir, 0700) when dir holds none. A CA whose certificate and key do not
// match, or that is not a CA, is an error: it is never silently replaced,
// since every certificate and trust bundle made from it would break.
func LoadOrCreateCA(dir, commonName string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	ca := &CA{Dir: dir}
	certPEM, certErr := os.ReadFile(ca.CertFile())
	keyPEM, keyErr := os.ReadFile(ca.keyFile())
	switch {
	case certErr == nil && keyErr == nil:
		cert, key, err := parsePair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("pki: CA in %s: %w", dir, err)
		}
		if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("pki: %s is not a CA certificate", ca.CertFile())
		}
		ca.Cert, ca.Key = cert, key
		return ca, nil
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		// A fresh directory: make the CA below.
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return nil, fmt.Errorf("pki: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return nil, fmt.Errorf("pki: %w", keyErr)
	default:
		return nil, fmt.Errorf("pki: %s holds only one of ca.crt and ca.key", dir)
	}

	if commonName == "" {
		return nil, errors.New("pki: a new CA needs a common name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	// The key first: a crash between the two writes leaves a lone key, which
	// the next call reports instead of minting a CA nobody trusts.
	if err := writeKey(ca.keyFile(), key); err != nil {
		return nil, err
	}
	if err := writeAtomic(ca.CertFile(), pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return nil, err
	}
	ca.Cert, ca.Key = cert, key
	return ca, nil
}

// CertFile is the CA certificate's path (Dir/ca.crt), the trust bundle that
// clients are given (AWS_CA_BUNDLE, --ca-file, etcd --trusted-ca-file).
func (ca *CA) CertFile() string { return filepath.Join(ca.Dir, "ca.crt") }

func (ca *CA) keyFile() string { return filepath.Join(ca.Dir, "ca.key") }

// Pool is a certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Issue writes dir/name.crt and dir/name.key (0600), signed by ca, unless they
// exist and are still valid for the same names; returns the two paths.
//
// "Still valid" means: signed by this CA, the same common name, DNS names,
// IP addresses and key usages, the key matching the certificate, and more
// than a third of its lifetime left. Anything else is replaced, so a caller
// can run Issue at every start and get a certificate that fits.
func (ca *CA) Issue(dir, name string, o IssueOptions) (certFile, keyFile string, err error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return "", "", fmt.Errorf("pki: invalid certificate name %q", name)
	}
	if !o.Server && !o.Client {
		return "", "", errors.New("pki: a certificate must be for a server, a client or both")
	}
	if o.CommonName == "" {
		return "", "", errors.New("pki: a certificate needs a common name")
	}
	if o.Server && len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		return "", "", errors.New("pki: a server certificate needs a DNS name or an IP address")
	}
	if o.Validity < 0 {
		return "", "", fmt.Errorf("pki: negative validity %s", o.Validity)
	}
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return "", "", err
	}
	defer unlock()

	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if ca.fits(certFile, keyFile, o, time.Now()) {
		return certFile, keyFile, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("pki: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return "", "", err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	notAfter := now.Add(o.Validity)
	if notAfter.After(ca.Cert.NotAfter) {
		// A leaf outliving its CA fails verification at the CA's expiry anyway.
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.CommonName},
		DNSNames:              slices.Clone(o.DNSNames),
		IPAddresses:           slices.Clone(o.IPs),
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           extKeyUsage(o),
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return "", "", fmt.Errorf("pki: issue %s: %w", name, err)
	}
	if err := writeKey(keyFile, key); err != nil {
		return "", "", err
	}
	if err := writeAtomic(certFile, pemBytes("CERTIFICATE", der), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// fits reports whether certFile and keyFile already hold what Issue would make.
func (ca *CA) fits(certFile, keyFile string, o IssueOptions, now time.Time) bool {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return false
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return false
	}
	cert, _, err := parsePair(certPEM, keyPEM)
	if err != nil {
		return false
	}
	if cert.CheckSignatureFrom(ca.Cert) != nil {
		return false
	}
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	if now.Before(cert.NotBefore) || cert.NotAfter.Sub(now) < lifetime/3 {
		return false
	}
	return cert.Subject.CommonName == o.CommonName &&
		sameStrings(cert.DNSNames, o.DNSNames) &&
		sameIPs(cert.IPAddresses, o.IPs) &&
		slices.Equal(cert.ExtKeyUsage, extKeyUsage(o))
}

func extKeyUsage(o IssueOptions) []x509.ExtKeyUsage {
	var u []x509.ExtKeyUsage
	if o.Server {
		u = append(u, x509.ExtKeyUsageServerAuth)
	}
	if o.Client {
		u = append(u, x509.ExtKeyUsageClientAuth)
	}
	return u
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func sameIPs(a, b []net.IP) bool {
	norm := func(ips []net.IP) []string {
		s := make([]string, 0, len(ips))
		for _, ip := range ips {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			s = append(s, string(ip))
		}
		return s
	}
	return sameStrings(norm(a), norm(b))
}

// parsePair parses a PEM certificate and its PEM private key and checks that
// they belong together.
func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("private key of type %T cannot sign", pair.PrivateKey)
	}
	return pair.Leaf, signer, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return writeAtomic(path, pemBytes("PRIVATE KEY", der), 0o600)
}

func pemBytes(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

// writeAtomic writes data to a temporary file created with perm (so a key is
// never readable by others, not even for an instant) and renames it into place.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}

// lockDir takes an exclusive flock on dir/.lock, released by the returned func.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("pki: lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}

// subjectKeyID derives a key identifier from the public key (a SHA-1 of its
// PKIX encoding); Go sets one for CAs by itself but leaves leaves without.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	sum := sha1.Sum(der)
	return sum[:], nil
}
