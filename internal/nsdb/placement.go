package nsdb

import (
	"sort"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// HostCandidates returns the hosts of alive that are registered (a
// topology Host in the cache), each with its zone label, ordered by id:
// where the scheduler and instance recovery may place an instance.
func (s *Store) HostCandidates(alive map[string]bool) []vpc.HostCandidate {
	var out []vpc.HostCandidate
	s.Read(func(r topology.Reader) {
		for id := range alive {
			h, ok := r.Get(topology.KindHost, id).(*topology.Host)
			if !ok || h == nil {
				continue
			}
			out = append(out, vpc.HostCandidate{ID: id, Zone: h.Labels[topology.LabelZone]})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
