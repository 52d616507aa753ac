// Package api is Canopy's REST topology API (docs/rest-api.md): JSON over
// HTTP for operators and the CLI, with token authentication and an OpenAPI
// document generated from the same route table the request router is built
// from, so the two cannot drift apart.
//
// Handlers are thin: decode the body strictly, fill the fields the path
// implies, call the store (internal/nsdb) and encode the answer. Validation
// and referential integrity belong to internal/topology and the store; this
// package only maps their errors to HTTP statuses, in one table (errors.go).
// Changes to lists embedded in an object (chain rules, tunnel-zone members,
// DHCP static hosts, group members, BGP settings) are read-modify-write inside
// one store transaction, so concurrent edits never lose each other.
//
// It must not hold topology state of its own: the store is the only truth.
package api
