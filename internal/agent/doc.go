// Package agent is `canopy agent`, the per-host role (DESIGN.md §1, §5): it
// registers its host and keeps it alive with an etcd lease, joins its tunnel
// zone, follows the topology (list at R, watch from R+1) into an immutable
// sim.Snapshot swapped atomically, plugs the ports bound to this host into
// TAP devices, and forwards their traffic: a frame is decoded once, looked up
// in an exact-match flow cache, and on a miss simulated (sim.Simulate) on one
// simulation goroutine fed by bounded per-port queues served round-robin; the
// result is installed as a tagged flow and executed (header rewrites, output
// to a local TAP, or VXLAN to the egress port's host with the egress port's
// tunnel key as VNI). The receiving agent delivers tunnelled frames to the
// port named by the VNI without simulating again. New connection-tracking
// and NAT state is sent to the egress host before the data, on the reserved
// VNI StateVNI.
//
// What it must not do: import the API, EC2 or controller packages; log per
// packet; allocate per packet on the flow-hit path.
//
// Not built yet (said so where it matters): the replica holds the whole
// topology rather than only what this host's ports can reach; learned MAC
// and ARP entries stay local (not published as state-table entries); a
// packet whose next hop is unresolved is dropped after the ARP request goes
// out rather than parked; DHCP and metadata are not answered.
package agent
