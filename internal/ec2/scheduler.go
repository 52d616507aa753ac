package ec2

import (
	"context"
	"fmt"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// ZoneLabel is the label on a topology Host naming its availability zone
// (`canopy agent --availability-zone`). A host without it serves every zone.
const ZoneLabel = topology.LabelZone

// candidateHosts reads the alive, registered hosts. It does I/O, so it runs
// before the Update whose function picks among them.
func (s *Server) candidateHosts(ctx context.Context) ([]vpc.HostCandidate, error) {
	alive, err := s.store.Store().AliveHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	return s.store.Store().HostCandidates(alive), nil
}

// pickHost returns the least-loaded candidate serving zone (vpc.PickHost),
// or InsufficientInstanceCapacity.
func pickHost(hosts []vpc.HostCandidate, load map[string]int, zone, instanceType string) (string, error) {
	best, ok := vpc.PickHost(hosts, load, zone)
	if !ok {
		return "", &vpc.Error{Code: vpc.CodeInsufficientInstanceCapacity,
			Message: fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s): no host is alive there.", instanceType, zone)}
	}
	return best, nil
}
