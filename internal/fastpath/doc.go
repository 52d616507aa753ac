// Package fastpath is the kernel fast path (issue 12): the agent's cached
// flows executed by an eBPF program at TC ingress of every port's
// host-side netdev (a veth's host end, a hypervisor's TAP, an uplink), with
// kernel VXLAN between hosts.
//
// The program is attached with tcx where the kernel has it (Linux 6.6 and
// later), else as a direct-action cls_bpf filter on a clsact qdisc
// (attach_linux.go; Debian 12's 6.1), or as Options.Attach forces. Both
// outlive the agent: a tcx link is pinned, a filter holds the program.
//
// The program (bpf/fastpath.c, compiled with clang through bpf2go; the
// object and its Go bindings are committed and TestGeneratedObjectsMatchSource
// keeps them in step with the C) looks the frame's exact-match key up in a
// hash map and runs the flow's actions — DESIGN.md §5.8's fixed vocabulary:
// MAC, address and port rewrites with incremental checksums, TTL decrement,
// output to a local port (bpf_redirect_peer into a veth's namespace,
// bpf_redirect otherwise), output to a remote host through the one VXLAN
// device in external (collect_md) mode with the egress port's tunnel key as
// VNI, drop. On the VXLAN device the same program delivers by VNI to the
// port it names: the receiving host does not simulate.
//
// The miss path is a BPF ring buffer. A frame that misses is copied (its
// first 2 KB with the key the program computed and the port it came from;
// a frame of up to 128 bytes in a record of that size, so that the ring
// holds ten times as many first packets of new flows) into the ring and
// dropped in the kernel; the agent simulates it, writes the
// flow into the map and only then re-injects the frame. Why a ring rather
// than the alternatives: a per-host miss device would lose which port the
// frame came from (the mark does not cross into a packet socket's view) or
// need an encapsulation to carry it; AF_XDP needs XDP on every port and a
// UMEM per queue, far more than the first packets of new flows need. The ring
// carries the metadata with the frame, costs one copy per miss, and is
// pinned, so misses queued while the agent restarts are read by the next one.
// The agent takes what the ring holds as a batch (MissReader.ReadBatch, no
// system call past the first): the batch's flows are queued (QueueFlow) and
// written in one BPF_MAP_UPDATE_BATCH, its frames re-injected with one
// sendmmsg (Injector.Send), which writes the queued flows first.
//
// Re-injection goes the other way through a veth pair (Devices.Inject,
// Devices.InjectTx): the agent writes the frame with a packet socket, marked with
// the slot of a one-action list (an output or a tunnel) in the inject map;
// the program on the inject device runs that list. The agent's generated answers
// (ARP, DHCP, ICMP errors) and its connection-state messages to peers take
// the same way, so the kernel owns the VXLAN port alone. State messages from
// peers (the reserved VNI) are passed to the host stack, where a packet
// socket bound to their EtherType on the VXLAN device reads them; the
// program writes the sender's underlay address into their unused inner
// source MAC. A tunnelled frame whose VNI no kernel port has goes to the
// agent through the ring (a port it serves in userspace, or an unknown key).
//
// Maps and tcx links are pinned under PinRoot/<host>: when the agent dies
// the program keeps forwarding established flows, and a restarted agent
// adopts the maps (Open) and the attachments (attach: a pinned link moved
// to its program, a classic filter replaced) and reconciles them.
//
// This package does not decide anything: what a flow does is the
// simulation's (internal/sim) and which flows exist is the agent's.
package fastpath
