// Package dhcp is the DHCPv4 server the agent runs at every VM port
// (DESIGN.md §5.6): it turns a client's frame into the reply frame that goes
// back out of the same port, from the DHCP subnet configuration of the port's
// bridge (internal/topology.DHCPSubnet).
//
// Addresses are never allocated from a pool: a port's address is fixed by
// the VPC (the static host entry for its MAC, else the port's own IP), so the
// server keeps no lease state and a reply is a pure function of the request
// and the configuration. That is also why a request is never flooded: only the
// ingress port's configuration is consulted, and the reply goes back to it.
//
// It must not do I/O, start goroutines or log per packet: Respond returns a
// Verdict the caller counts. Message parsing and encoding use
// github.com/insomniacslk/dhcp/dhcpv4; the Ethernet/IPv4/UDP envelope is
// built here with internal/packet's checksums.
package dhcp
