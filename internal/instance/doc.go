// Package instance is the agent's built-in `netns` instance driver (issue 6,
// contract item 5): the lightweight instance for demos and tests. For every
// instance the VPC objects place on this host (pending or running) it keeps
// a network namespace named ci-<last 13 hex of the instance id> holding the
// instance's ENI TAPs as eth<device index> with the ENI's MAC, and runs
// Debian's busybox udhcpc on eth0 there, whose script (udhcpc.sh, embedded)
// sets address, mask, routes, MTU and resolv.conf from the agent's DHCP
// answer. Once eth0 holds the ENI's address it writes the instance's state
// key (nsdb.PutInstanceState, under its host's own keys), bound to the agent's host lease, from which the
// EC2 server moves the instance to running. A stopped or terminated instance
// is torn down: its processes killed, its namespace and TAPs deleted, its
// state key removed.
//
// The agent plugs the ENI ports (the translator binds them to
// vpc.HostInterfaceName(eni) on this host) through Driver.OpenPort: the TAP
// is made persistent and created in the host namespace, then the driver
// moves it into the instance's namespace; the agent's descriptor keeps
// working across the move (datapath-notes pitfall 8). Because the TAP is
// persistent it outlives an agent restart, and the next agent attaches to it
// inside the namespace: stopping or restarting the agent leaves instances
// running (their namespaces are recorded in the state dir and re-adopted).
// Purge removes everything the driver made (canopy up's exit, canopy down).
//
// What it must not do: touch namespaces, TAPs or processes it did not record
// (several agents may share one machine in tests), write any key but its own
// instances' state, or block the agent's packet path.
package instance
