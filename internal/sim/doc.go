// Package sim simulates a packet's whole path through the virtual topology:
// ports, bridges, routers and their rule chains, with connection tracking,
// NAT, ARP and ICMP, the way MidoNet's agent does on a flow miss (DESIGN.md §5).
//
// Simulate is pure: no I/O, no goroutines, no blocking, no clock (time is an
// input). What it cannot decide yet — a next-hop MAC nobody has resolved —
// yields VerdictNotYet and an ARP request to send, never a wait. The topology
// arrives as an immutable, pre-indexed Snapshot built once per topology
// version; learned MAC/ARP entries arrive as Tables; connection and NAT state
// lives in a flow.State owned by the caller.
//
// The known-MAC bridging path allocates nothing (a test guards it): a caller
// reuses one Result, and tracing costs nothing unless asked for.
package sim
