// Package metadata is the EC2 instance metadata service (IMDS) the agent
// answers at 169.254.169.254 (DESIGN.md §5.6): the paths cloud-init and the
// AWS SDKs read, for the one instance behind the port a request came from.
//
// The package does not know about ports or packets. The caller supplies a
// Resolver that names the asking instance for each request (the agent maps
// the connection's source to the port it entered on); a request that does not
// resolve gets nothing. IMDSv2 session tokens are HMACs over the instance id
// and an expiry under a per-server secret, so no token state is kept and a
// token minted for one instance is worthless to another.
//
// It must not do network I/O of its own or log per request; it is an
// http.Handler the caller mounts on its own listener.
package metadata
