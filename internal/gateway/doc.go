// Package gateway is the BGP side of a gateway host (DESIGN.md §8): the
// speaker (GoBGP v4 embedded as a library, one per gateway host) and its
// ports, the TAPs that give the speaker's sockets the uplinks' addresses.
//
// The agent owns the role (internal/agent/gateway.go): it derives Settings
// from the topology (the edge router's BGP settings and the uplinks bound
// to its host), relays the speaker's frames between the uplinks and the
// ports (Claim, Relayed), and publishes what the speaker learned as its
// host's state, from which the controller makes the edge router's learned
// routes. docs/gateways.md is the operator's guide.
//
// It must not write the store, and it must not import the API, EC2 or
// controller packages.
package gateway
