package server

import (
	"path/filepath"
	"testing"

	"github.com/canopy-sdn/canopy/internal/pki"
)

// TestStoreConfigExternalAuth: against an external cluster the server
// turns etcd's authentication on when its client certificate is etcd's
// root, and leaves it alone with another user's certificate or none.
func TestStoreConfigExternalAuth(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string) (string, string) {
		c, k, err := ca.Issue(dir, cn, pki.IssueOptions{CommonName: cn, Client: true})
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	rootCert, rootKey := issue(RootUser)
	otherCert, otherKey := issue("canopy")
	for _, tc := range []struct {
		name       string
		cert, key  string
		enableAuth bool
	}{
		{"root", rootCert, rootKey, true},
		{"another user", otherCert, otherKey, false},
		{"no certificate", "", "", false},
	} {
		c := DefaultConfig()
		c.EtcdEndpoints = []string{"https://127.0.0.1:2379"}
		c.EtcdCA, c.EtcdCert, c.EtcdKey = ca.CertFile(), tc.cert, tc.key
		cfg, err := c.StoreConfig()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if cfg.EnableAuth != tc.enableAuth {
			t.Errorf("%s: EnableAuth %v, want %v", tc.name, cfg.EnableAuth, tc.enableAuth)
		}
	}
	c := DefaultConfig()
	c.EtcdEndpoints = []string{"https://127.0.0.1:2379"}
	c.EtcdCA, c.EtcdCert, c.EtcdKey = ca.CertFile(), filepath.Join(dir, "missing.crt"), rootKey
	if _, err := c.StoreConfig(); err == nil {
		t.Error("a missing --etcd-cert was accepted")
	}
}
