package agent

import (
	"encoding/base64"

	"github.com/canopy-sdn/canopy/internal/metadata"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// fillInstance copies the instance's own fields into what metadata shows.
func fillInstance(in *metadata.Instance, vi *vpc.Instance) {
	in.ID, in.AccountID = vi.ID, vi.OwnerID
	in.ImageID, in.InstanceType, in.ReservationID = vi.ImageID, vi.InstanceType, vi.ReservationID
	in.Zone, in.LaunchTime, in.KeyName, in.PublicKey = vi.AvailabilityZone, vi.LaunchTime, vi.KeyName, vi.PublicKey
	in.HTTPTokens = vi.MetadataOptions.HttpTokens
	if vi.UserData != "" {
		// EC2 keeps user data base64 as sent; the instance reads it raw.
		// Data that is not base64 is served as it is rather than lost.
		if b, err := base64.StdEncoding.DecodeString(vi.UserData); err == nil {
			in.UserData = b
		} else {
			in.UserData = []byte(vi.UserData)
		}
	}
}
