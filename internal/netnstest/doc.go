// Package netnstest builds the network namespaces, veth pairs and
// addresses that tests of the datapath, DHCP and metadata packages run real
// tools in. Every namespace it makes is removed when the test ends, so a
// failing test leaves nothing behind; it never touches the host's own
// namespace beyond creating the pair ends it moves away at once.
//
// It is for tests only (Linux, root). A test that lacks root or a program
// stops through RequireRoot, RequireTool or Missing: a skip on a
// developer's machine, a failure under CI=true.
package netnstest
