// Package reach is an independent model of what an AWS VPC delivers: given
// the EC2 objects alone (vpc.State), it answers "is this packet delivered,
// and as what?" for a frame an instance sends out of one of its network
// interfaces, or for a packet arriving from the internet at the cloud's
// edge.
//
// It exists to be compared with the real data path (translate, then
// sim.Simulate) on random states and packets: the two must agree on every
// verdict. So it must never share code with them: it imports neither
// internal/translate nor internal/sim nor internal/packet (test/arch
// enforces it), and it says what AWS does in VPC words — security groups,
// network ACLs, route tables, elastic IPs, NAT gateways — not how Canopy
// builds it out of routers, bridges and chains.
//
// The semantics it encodes (docs/security.md lists them for operators):
//
//   - An interface sends only frames with its own MAC as source, no 802.1Q
//     tag, and IPv4 or ARP. ARP must carry the interface's own MAC and one
//     of its addresses as sender, requests and replies alike. With
//     source/destination check on, IPv4 must come from one of its addresses
//     (and is delivered to it only when addressed to one of them). UDP to
//     port 67 is the VPC's DHCP service's, never another instance's, and
//     DHCP server replies (UDP from port 67) from an instance are dropped:
//     the VPC is the only DHCP server.
//   - A VPC carries no broadcast, multicast or flooded frame between
//     instances: an instance receives a frame only when it is addressed to
//     its MAC. ARP requests for addresses the subnet knows are answered by
//     the VPC itself.
//   - Security groups are stateful, per interface: a packet leaves if an
//     egress rule of one of the interface's groups allows it or it returns
//     on a connection the interface has seen; it arrives likewise with
//     ingress rules. Group references match the private addresses of the
//     group's members. A later fragment has no ports: only rules that name
//     none (all traffic, or a protocol with every port) match it.
//   - Network ACLs are stateless and ordered by rule number (first match
//     wins, then deny); they apply where traffic crosses a subnet's border,
//     including a NAT gateway's traffic to and from the internet.
//   - Route tables: the subnets of the VPC first, the rest of the VPC
//     nowhere, then the subnet's table (longest prefix): internet gateway,
//     NAT gateway, an interface or instance, blackhole.
//   - The internet gateway translates an address with an elastic IP 1:1
//     and drops traffic from any other; from outside only elastic IPs and
//     NAT gateways' addresses are reachable. A NAT gateway translates its
//     VPC's sources (TCP, UDP and ICMP; nothing else) to its public address
//     with a port of its choosing (the
//     caller learns it from the real run, Delivery.Bind) and lets only the
//     replies back. VPCs share nothing but the internet: another VPC's
//     private address is not reachable, its public ones are.
//
// A Model is not safe for concurrent use; it does no I/O and starts no
// goroutines.
package reach
