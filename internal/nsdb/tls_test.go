package nsdb_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/pki"
)

// TestOpenTLSRefused: against an external etcd serving TLS with client
// certificates required, Open fails with the TLS cause — the CA, or the
// client certificate — instead of retrying until its deadline; with the
// right credentials it opens.
func TestOpenTLSRefused(t *testing.T) {
	c, _ := nsdbtest.StartTLSCluster(t, 1)
	dir := t.TempDir()
	other, err := pki.LoadOrCreateCA(filepath.Join(dir, "ca"), "another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := other.Issue(dir, "root", pki.IssueOptions{CommonName: nsdb.RootUser, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		creds nsdb.Credentials
		want  string
	}{
		{"wrong CA", nsdb.Credentials{CAFile: other.CertFile(), CertFile: c.Root.CertFile, KeyFile: c.Root.KeyFile}, "unknown authority"},
		{"no client certificate", nsdb.Credentials{CAFile: c.Root.CAFile}, "client certificate"},
		{"client certificate of another CA", nsdb.Credentials{CAFile: c.Root.CAFile, CertFile: otherCert, KeyFile: otherKey}, "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The deadline is the budget of a wait that never ends, not a
			// bound on speed: a refusal returns as soon as the probe does.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := nsdb.Open(ctx, nsdb.Config{Endpoints: c.Endpoints, Credentials: tc.creds})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if ctx.Err() != nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "etcd") {
				t.Fatalf("want an error saying %q, got %v", tc.want, err)
			}
		})
	}
	nsdbtest.Open(t, nsdb.Config{Endpoints: c.Endpoints, Credentials: c.Root})
}
