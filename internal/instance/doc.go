// Package instance is the agent's built-in `netns` instance driver (issue 6,
// contract item 5): the lightweight instance for demos and tests. For every
// instance the VPC objects place on this host (pending or running) it keeps
// a network namespace named ci-<last 13 hex of the instance id> holding,
// for each of the instance's ENIs, the instance end of a veth pair as
// eth<device index> with the ENI's MAC, and runs Debian's busybox udhcpc on
// eth0 there, whose script (udhcpc.sh, embedded) sets address, mask,
// routes, MTU and resolv.conf from the agent's DHCP answer. Once eth0 holds
// the ENI's address it writes the instance's state key
// (nsdb.PutInstanceState, under its host's own keys), bound to the agent's
// host lease, from which the EC2 server moves the instance to running. A
// stopped or terminated instance is torn down: its processes killed, its
// namespace and veth pairs deleted, its state key removed.
//
// The host end of each pair stays in the host namespace under the name the
// translator binds the ENI's port to (vpc.HostInterfaceName(eni)), and the
// agent plugs it like any port's device: an AF_PACKET socket on the host
// side (datapath.Netdev), exactly as it plugs a hypervisor's TAP. Nothing
// of the pair belongs to the agent's process, so stopping or restarting the
// agent leaves instances running and wired (their namespaces are recorded
// in the state dir and re-adopted; the next agent plugs the same host
// ends). Purge removes everything the driver made (canopy up's exit, canopy
// down).
//
// What it must not do: touch namespaces, devices or processes it did not
// record (several agents may share one machine in tests), write any key but
// its own instances' state, or block the agent's packet path.
package instance
