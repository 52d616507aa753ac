// Package packet decodes Ethernet frames once into a caller-owned Packet
// (no allocation), builds the packets a virtual device answers with (ARP,
// ICMP echo replies and errors) and rewrites headers in place with
// incremental checksum updates (RFC 1624).
//
// It is pure: no I/O, no goroutines, no logging. Parsing never fails with an
// error value; a frame that is too short or malformed leaves the packet with
// the layers it could decode and a flag saying where it stopped.
package packet
