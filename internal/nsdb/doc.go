// Package nsdb is Canopy's network state database: a typed store of topology
// objects on etcd (embedded by default, an external cluster when endpoints are
// configured).
//
// Layout (all under Config.Prefix, default "/canopy/v1/"):
//
//	topo/<kind>/<id>            JSON of a topology.Object
//	topo-seq                    put by every topology transaction (Sync's read barrier)
//	index/ref/<kind>/<id>/<referrer-kind>/<referrer-id>   one per reference, written with the referrer
//	index/tunnel-key/<key>      the port holding a tunnel key (claimed at create)
//	state/host/<id>             lease-bound: the host's agent is alive
//	state/hosts/<id>/info       lease-bound: what the agent announces of its host (HostInfo)
//	state/hosts/<id>/port/<port>/active        lease-bound: the port is plugged on the host
//	state/hosts/<id>/instance/<instance>       lease-bound: an instance runs on the host
//	state/hosts/<id>/bgp/routes lease-bound: routes the host's BGP speaker learned (gateway.go)
//	state/hosts/<id>/bgp/status lease-bound: its sessions, advertised prefixes, uplinks
//	state/learned/<id>/…        learned MAC/ARP entries of the host's agent (learned.go)
//
// Everything an agent writes is under its own host's keys: with etcd's
// authentication on (Config.EnableAuth) an agent is the etcd user
// HostUser(id), whose role may read topo, vpc and state and write only those
// keys (auth.go). TLS: Config.Credentials (the client's) and Config.Serve
// (the embedded etcd's listeners, client certificates required).
//
// Writers validate against an in-memory cache that mirrors topo/ (list at
// revision R, watch from R+1) and commit with a transaction guarded by what
// they read, object by object: every object read or written is still at the
// mod revision seen (or still absent); every referrer set read (a delete's
// cascade, a check for a duplicate binding) is unchanged, which the
// referrer index keys under index/ref/ make one prefix compare; a tunnel key
// handed out is unclaimed. A write based on a stale view fails and is retried
// after the cache catches up, and writers of disjoint objects commit in
// parallel (there is no global guard). Integrity rules (references, cascades, cycles)
// are the pure functions of package topology; this package runs them and
// commits their result atomically.
//
// Reads (Get, List, Read) come from the cache and return copies; a Store has
// seen every write it made before the write returns (read-your-writes), and
// Sync waits for every other process's earlier writes too.
//
// Watch is the one list-then-watch mechanism: the cache runs on it, and agents
// use it for whatever prefix they follow. It never delivers a gap or a
// duplicate, and re-lists by itself (Handler.Reset) after a compaction.
//
// State keys are bound to leases (GrantLease, KeepHostAlive): when an agent
// stops refreshing, its liveness and learned entries expire with it.
//
// A Store opened with Endpoints embeds nothing and behaves the same. An
// external cluster must allow transactions of MaxTxnOps operations
// (etcd --max-txn-ops, and --max-request-bytes of 64 MiB): deleting a device
// removes all its ports in one transaction.
//
// Failing clearly: every unary etcd call made through a Store's client
// (Store.Client included) has a deadline (CallTimeout, or the caller's
// earlier one, e.g. an API request's RequestTimeout) and requires a leader,
// and every error meaning "etcd cannot answer now" — no quorum, no leader,
// deadline, unreachable — wraps ErrUnavailable (errors.go), which the API
// boundaries answer with 503. Health probes the store with a linearizable
// read. Reads from the cache keep answering while etcd is unavailable: they
// show the last state this process saw.
//
// It must not import the API, EC2 or controller packages.
package nsdb
