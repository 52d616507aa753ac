// Package flow holds the vocabulary and the state of cached flows: the small
// fixed set of actions a simulation result is expressed in (so a userspace
// datapath and a later kernel fast path execute the same flows), the tags that
// invalidate them, the exact-match flow table an agent caches simulation
// results in (Table: keys, tag index, expiry wheel), and the
// connection-tracking and NAT tables the simulator consults and fills.
//
// It is pure: no I/O, no goroutines, no clock. Time is an input: every call
// that creates or checks an entry takes "now" as Unix nanoseconds. A State is
// owned by one caller (an agent's simulation loop) and has no locks; share it
// across goroutines only by handing it over. A Table is shared by every port
// reader of an agent, so it locks (lookups take the read lock only).
package flow
