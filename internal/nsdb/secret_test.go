package nsdb_test

import (
	"context"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
)

// The first value proposed for a shared secret is kept; later proposals
// get it back.
func TestSharedSecret(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	got, err := s.SharedSecret(ctx, nsdb.SecretAdminToken, "first")
	if err != nil || got != "first" {
		t.Fatalf("first proposal: %q, %v", got, err)
	}
	got, err = s.SharedSecret(ctx, nsdb.SecretAdminToken, "second")
	if err != nil || got != "first" {
		t.Fatalf("second proposal: %q, %v; want the first", got, err)
	}
	if _, err := s.SharedSecret(ctx, nsdb.SecretEC2Key, ""); err == nil {
		t.Error("an empty secret was stored")
	}
}
