// Package neutron is the OpenStack Networking API v2.0 of `canopy server`:
// Neutron's URLs, JSON bodies, error document, fields, filters and
// pagination, over the same VPC objects and store as the EC2 endpoint, so
// the controller's translator realizes both alike and a tenant sees one
// set of objects from either API.
//
// The mapping (docs/neutron-api.md): a network is a VPC without a block of
// its own (the smallest prefix covering its subnets), a subnet is a
// subnet, a port is a network interface, bound on a compute host by
// binding:host_id to the TAP Nova's libvirt driver names (tap + the first
// 11 characters of the port id); a security group is a project group
// without a VPC, copied into each network that uses it (secgroups.go); a
// router is an internet gateway, a floating IP an elastic IP, the
// external network the cloud's public pool (routers.go); ids are the EC2
// ids. Callers
// authenticate with tokens of internal/keystone; a project is an account.
//
// Requests are validated before anything changes and commit through
// nsdb.VPCStore in one transaction, so a refused request changes nothing.
// What Canopy does not implement answers an error naming it, never a fake
// success. The package does not translate to topology (internal/controller
// does).
package neutron
