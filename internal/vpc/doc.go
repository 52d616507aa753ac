// Package vpc is the pure data model of Canopy's tenant-facing objects, in the
// shapes of the EC2 VPC API (DESIGN.md §6, §7): VPCs, subnets, internet and NAT
// gateways, route tables, security groups, network ACLs, network interfaces,
// elastic IPs, DHCP option sets, a minimal instance, and accounts.
//
// It also holds the validation the EC2 actions run before they change
// anything, answering with AWS's error codes (*Error), and the id generator
// (which takes its randomness as an argument).
//
// State is the whole VPC view of the cloud; internal/translate turns it into
// topology objects. The package does no I/O, starts no goroutines and imports
// only the standard library.
package vpc
