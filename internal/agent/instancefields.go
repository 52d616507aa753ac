package agent

import (
	"github.com/canopy-sdn/canopy/internal/metadata"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// fillInstance copies the instance's own fields into what metadata shows.
func fillInstance(in *metadata.Instance, vi *vpc.Instance) {
	in.ID, in.AccountID = vi.ID, vi.OwnerID
}
