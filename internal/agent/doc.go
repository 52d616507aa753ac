// Package agent is `canopy agent`, the per-host role (DESIGN.md §1, §5): it
// announces its host under its own etcd keys (the server's controller makes
// the Host object and tunnel-zone membership from that: the agent's etcd
// user may write no topology), keeps it alive with an etcd lease, follows the topology (list at R, watch from R+1, re-list after a
// compaction or an outage) into an immutable sim.Snapshot swapped
// atomically, plugs the ports bound to this host into TAP devices, and
// forwards their traffic.
//
// The packet path: a port's reader (one locked OS thread per port, batched
// reads with the virtio-net header) decodes a frame once and looks it up in
// an exact-match flow cache keyed by ingress port and header fields. A hit
// executes the cached actions (header rewrites, output to a local TAP with
// the offload header kept, or VXLAN to the egress port's host with the
// egress port's tunnel key as VNI) without allocating. A miss is simulated
// on the reader's thread when nothing else is simulating and the port has
// no miss queued (no hand-off: under a flood of new flows the wake-ups
// cost more than the simulations); otherwise it goes to the port's bounded
// queue, and one simulation goroutine serves the queues round-robin (a
// port flooding new flows takes its share, the excess is dropped and
// counted). Simulations run one at a time (missQueue.run): sim.Simulate,
// new connection and NAT state sent to the egress host before the data
// (VNI StateVNI), the flow installed with its tags (hard expiry; short for
// drops) and executed. Tunnel output goes out in batches (one sendmmsg per
// read batch or per round of the queues). A snapshot change invalidates the
// flows tagged with what changed. The flow table is internal/flow's Table
// (its cost per new flow does not grow with its size).
//
// A simulation that answers VerdictNotYet (the next hop's MAC is unknown)
// sends its ARP request and parks a copy of the packet, by the address
// asked for, instead of waiting (park.go; DESIGN.md §5 step 3). The entry
// learned from the reply — on this host, or on the host whose port the
// request left by, through the store — re-simulates the packets waiting
// for that address, in order, so the first packets of a flow are
// delivered without the VM retransmitting. Bounded: 8 per address, 256 per
// agent (more are dropped at once), and Config.ParkTTL (3 s) after which
// the housekeeping tick drops them; no negative entry is recorded, so the
// next packet asks again. Counted in canopy_agent_parked_total{outcome}.
//
// Learned MAC and ARP entries are shared through the store (learning.go):
// applied at once where learned, published under this host's prefix at a
// bounded rate, followed from every host's prefix, each change
// invalidating the flows tagged with the entry. Connection and NAT state
// goes to the hosts of every member of a stateful port group the flow
// crosses (state.go). New state, made here or imported, invalidates the
// flows that looked its keys up before it existed (drop flows, and replies
// forwarded untranslated). A packet from a member of a stateful port group
// (an uplink) that its simulation drops waits for the next state import
// (at most a housekeeping tick) and is simulated once more before its drop
// is final: the reply of a new connection can overtake the state message
// its peer sent first (park.go, parkForState).
//
// The receiving agent delivers tunnelled frames to the port named by the VNI
// without simulating, re-merging consecutive TCP segments into one GSO
// write (gro.go). Super-frames entering the tunnel are cut to segments that
// fit the underlay MTU with the VXLAN overhead (an MSS clamp), so nothing
// is fragmented or silently lost on a 1500-byte underlay.
//
// Services are answered at the VM's port before the flow lookup (services.go,
// DESIGN.md §5.6) and are never simulated or flooded: a DHCP request gets
// dhcp.Respond's reply from the port's snapshot info (its MAC and addresses,
// the DHCP subnets of its bridge, the MAC of the router port holding the
// subnet's gateway, MTU bounded by underlay MTU − VXLAN overhead), an ARP
// request for 169.254.169.254 is answered with that router MAC, and a frame
// to 169.254.169.254 goes to the metadata relay (mdrelay.go): one HTTP
// listener (internal/metadata) per agent, in an unnamed network namespace of
// its own (it dies with the agent) reached through a TAP the agent holds. The
// relay rewrites the VM's source to 10.0.0.0/8 + the port's tunnel key —
// unique per port on this host, so overlapping VPC CIDRs stay apart and no
// VM address needs to be routable on the host — and maps replies back to
// the port, the VM's address and MAC, with the router MAC as source. The
// listener resolves the source address to the port, the port to its ENI
// (the translator's canopy.vpc-object label, else the port name) and the ENI
// to its instance in the agent's read-only mirror of vpc/ (vpcmirror.go).
// IMDSv2 tokens are keyed by <state-dir>/metadata-secret, so they survive a
// restart.
//
// /metrics (Prometheus), /flows (the flow cache as JSON) and /healthz are
// served on Config.MetricsListen.
//
// What it must not do: import the API, EC2 or controller packages; log per
// packet; allocate per packet on the flow-hit path (TestFlowHitAllocs).
//
// The replica (replica.go) holds, by default, only what this host needs:
// the cloud partition, the VPCs of its ports and those its flows go into;
// the routes into other VPCs (elastic IPs on the edge) compactly, as far
// routes. Config.Replica full holds the whole topology.
//
// Not built yet: flows are exact-match (no wildcarding by the
// fields a simulation read); the IMDSv2
// PUT response hop limit (HttpPutResponseHopLimit) is not applied to the
// replies' TTL; a TAP the agent created dies with the agent,
// so after a crash the hypervisor re-plugs it (a TAP the hypervisor made
// persistent is re-attached by name).
package agent
