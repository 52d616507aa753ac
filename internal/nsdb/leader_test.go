package nsdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestUpdateAsLeader: a write made as the leader commits while its term
// goes on; once the term ended (resigned, another leads) the same write
// answers ErrNotLeader and changes nothing.
func TestUpdateAsLeader(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vs, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	put := func(lead *nsdb.Leadership, name string) error {
		_, err := vs.UpdateAs(ctx, lead, func(_ *vpc.State, tx *nsdb.VPCTx) error {
			return tx.Put("111122223333", &vpc.Account{ID: "111122223333", Name: name})
		})
		return err
	}
	name := func() string {
		var n string
		vs.Read(func(st *vpc.State) {
			if a := st.Accounts["111122223333"]; a != nil {
				n = a.Name
			}
		})
		return n
	}
	first, err := s.CampaignController(ctx, "first", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := put(first, "a"); err != nil || name() != "a" {
		t.Fatalf("leader's write: %v, name %q", err, name())
	}
	if err := first.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := put(first, "b"); !errors.Is(err, nsdb.ErrNotLeader) || name() != "a" {
		t.Fatalf("write after resigning: %v, name %q", err, name())
	}
	second, err := s.CampaignController(ctx, "second", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := put(first, "c"); !errors.Is(err, nsdb.ErrNotLeader) || name() != "a" {
		t.Fatalf("old leader's write while another leads: %v, name %q", err, name())
	}
	if err := put(second, "d"); err != nil || name() != "d" {
		t.Fatalf("new leader's write: %v, name %q", err, name())
	}
}
