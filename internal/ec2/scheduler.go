package ec2

import (
	"context"
	"fmt"
	"sort"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// ZoneLabel is the label on a topology Host naming its availability zone
// (`canopy agent --availability-zone`). A host without it serves every zone.
const ZoneLabel = topology.LabelZone

// candidateHost is a host the scheduler may place an instance on: alive
// (its agent holds its liveness lease) and registered (a topology Host, which
// the instance's ports will reference).
type candidateHost struct {
	id   string
	zone string // "" = every zone
}

// candidateHosts reads the alive, registered hosts. It does I/O, so it runs
// before the Update whose function picks among them.
func (s *Server) candidateHosts(ctx context.Context) ([]candidateHost, error) {
	alive, err := s.store.Store().AliveHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	var out []candidateHost
	s.store.Store().Read(func(r topology.Reader) {
		for id := range alive {
			h, ok := r.Get(topology.KindHost, id).(*topology.Host)
			if !ok || h == nil {
				continue
			}
			out = append(out, candidateHost{id: id, zone: h.Labels[ZoneLabel]})
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// hostLoad counts the placed instances (pending or running) per host.
func hostLoad(st *vpc.State) map[string]int {
	load := map[string]int{}
	for _, i := range st.Instances {
		if i.Placed() {
			load[i.HostID]++
		}
	}
	return load
}

// pickHost returns the least-loaded candidate serving zone (ties broken by
// host id, so the choice is deterministic), or InsufficientInstanceCapacity.
func pickHost(hosts []candidateHost, load map[string]int, zone, instanceType string) (string, error) {
	best := ""
	for _, h := range hosts {
		if h.zone != "" && h.zone != zone {
			continue
		}
		if best == "" || load[h.id] < load[best] || (load[h.id] == load[best] && h.id < best) {
			best = h.id
		}
	}
	if best == "" {
		return "", &vpc.Error{Code: vpc.CodeInsufficientInstanceCapacity,
			Message: fmt.Sprintf("We currently do not have sufficient %s capacity in the Availability Zone you requested (%s): no host is alive there.", instanceType, zone)}
	}
	return best, nil
}
