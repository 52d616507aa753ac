// Package cli is the canopy command line: the operator client
// (`canopy <noun> <verb>`) over the REST topology API of docs/rest-api.md,
// and the thin commands of the roles (`canopy server`, `agent`, `up`,
// `down`, `host enroll`), which parse their flags, make the role's logger
// and call internal/role — the composition root — to run them.
//
// It never opens the store, builds an agent or starts a server itself
// (test/arch forbids it those imports). The client speaks only HTTP to the
// API; it uses the topology types to build and read bodies, resolves names
// to ids with the API's `?name=` filter, prints tables for people and the
// API's own JSON (`-o json`) for scripts.
package cli
