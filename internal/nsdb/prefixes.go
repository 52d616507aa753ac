package nsdb

import (
	"context"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// TopologyRel is the store-relative prefix of every topology object
// (topo/<kind>/<id>), for watches that follow the whole topology.
const TopologyRel = "topo/"

// TopologyKindRel is the store-relative prefix of the topology objects of
// kind k.
func TopologyKindRel(k topology.Kind) string { return TopologyRel + string(k) + "/" }

// WatchVPCObjects is Watch over every VPC object (DecodeVPCState and
// ApplyVPCEvents read what it hands over).
func (s *Store) WatchVPCObjects(ctx context.Context, h Handler) error {
	return s.Watch(ctx, VPCPrefix, h)
}

// WatchHostStates is Watch over every host's state keys (HostStateKey
// reads a key it hands over).
func (s *Store) WatchHostStates(ctx context.Context, h Handler) error {
	return s.Watch(ctx, HostStatesRel, h)
}
