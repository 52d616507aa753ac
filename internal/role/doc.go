// Package role is the composition root of canopy's roles: it builds and
// runs the server (internal/server: store, REST and EC2 APIs, controller),
// the agent (internal/agent, with the netns instance driver of
// internal/instance when asked) and the all-in-one `canopy up` (both, its
// local CA, an enrolled agent, the demo account and the outside uplink of
// internal/upstream), and the operator's store-side acts that need etcd as
// root (host enrollment).
//
// It is the one place where these pieces meet: internal/cli, the command
// line, parses flags and prints, and calls this package for every role; it
// never opens the store or starts an agent itself (test/arch forbids it the
// imports). Each role is handed its *slog.Logger in its configuration and
// passes it down to every piece it builds, the store included; nothing here
// replaces the process's default logger.
//
// It must not print to the user: what a role has to show (canopy up's
// endpoints and credentials) is handed back to the caller.
package role
