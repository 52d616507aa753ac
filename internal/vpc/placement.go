package vpc

import (
	"slices"
	"strings"
)

// HostCandidate is a host an instance may be placed on: alive (its agent
// holds its liveness lease) and registered (a topology Host, which the
// instance's ports reference). Zone "" serves every zone.
type HostCandidate struct {
	ID   string
	Zone string
}

// HostLoad counts the placed instances (pending or running) per host.
func HostLoad(st *State) map[string]int {
	load := map[string]int{}
	for _, i := range st.Instances {
		if i.Placed() {
			load[i.HostID]++
		}
	}
	return load
}

// PickHost returns the least-loaded candidate serving zone, ties broken by
// host id so that every server choosing from the same view chooses the
// same host; ok is false when no candidate serves the zone. Both the
// scheduler (RunInstances, StartInstances) and instance recovery place
// instances with it.
func PickHost(hosts []HostCandidate, load map[string]int, zone string) (id string, ok bool) {
	for _, h := range hosts {
		if h.Zone != "" && h.Zone != zone {
			continue
		}
		if id == "" || load[h.ID] < load[id] || (load[h.ID] == load[id] && h.ID < id) {
			id = h.ID
		}
	}
	return id, id != ""
}

// InstanceInterfaces returns the interfaces attached to instance id in
// device index order.
func (s *State) InstanceInterfaces(id string) []*NetworkInterface {
	out := lookup(s, s.NetworkInterfaces, interfacesOfInstance, id, func(e *NetworkInterface) bool {
		return e.Attachment != nil && e.Attachment.InstanceID == id
	})
	slices.SortStableFunc(out, func(a, b *NetworkInterface) int { return a.Attachment.DeviceIndex - b.Attachment.DeviceIndex })
	return out
}

// SortedInstances returns every instance ordered by id.
func (s *State) SortedInstances() []*Instance {
	out := make([]*Instance, 0, len(s.Instances))
	for _, i := range s.Instances {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b *Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Auto-recovery settings of an instance (ModifyInstanceMaintenanceOptions
// AutoRecovery, DescribeInstances maintenanceOptions.autoRecovery).
const (
	AutoRecoveryDefault  = "default"
	AutoRecoveryDisabled = "disabled"
)

// Recoverable reports whether the instance may be restarted on another
// host when its host dies: the cloud must have recovery on, and the
// instance must not have opted out.
func (i *Instance) Recoverable(cloudWide bool) bool {
	return cloudWide && i.AutoRecovery != AutoRecoveryDisabled
}
