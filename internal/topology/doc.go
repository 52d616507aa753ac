// Package topology is the pure data model of Canopy's virtual network (DESIGN.md §3):
// routers, bridges, ports, routes, chains and rules, IP address and port groups,
// hosts, tunnel zones, DHCP subnets and BGP settings.
//
// It defines the objects, validates every field of each one (Validate), declares
// the references between them (Refs) and what happens to a referrer when its
// target is deleted (OnDelete: cascade, clear or restrict). Integrity checks over
// a whole set of objects (Check, PlanDelete) are pure functions over a Reader, so
// the store (internal/nsdb) only has to run them and commit the result.
//
// It must not do I/O, start goroutines or import anything outside the standard
// library.
package topology
