package nsdb

import "github.com/canopy-sdn/canopy/internal/topology"

// TopologyRel is the store-relative prefix of every topology object
// (topo/<kind>/<id>), for watches that follow the whole topology.
const TopologyRel = "topo/"

// TopologyKindRel is the store-relative prefix of the topology objects of
// kind k.
func TopologyKindRel(k topology.Kind) string { return TopologyRel + string(k) + "/" }
