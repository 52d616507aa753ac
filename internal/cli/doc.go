// Package cli is the canopy command line: the server roles (`canopy server`,
// `canopy up`) and the operator client (`canopy <noun> <verb>`) over the
// REST topology API of docs/rest-api.md.
//
// The client speaks only HTTP to the API; it never opens the store. It uses
// the topology types to build and read bodies, resolves names to ids with
// the API's `?name=` filter, prints tables for people and the API's own JSON
// (`-o json`) for scripts.
package cli
