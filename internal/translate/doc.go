// Package translate turns the VPC view of the cloud (internal/vpc) into the
// virtual topology that realizes it (internal/topology), as DESIGN.md §6
// lays out: an edge router with the uplinks, a transit bridge on a
// link-local /17, a router per VPC, a bridge per subnet, chains for security
// groups, network ACLs and anti-spoofing, NAT rules for elastic IPs and a
// router per NAT gateway.
//
// Translate is pure and deterministic: the same state gives byte-identical
// output, whatever order the state was built in. Object ids are UUIDv5s of
// the VPC object ids, so an object keeps its id across runs and the
// controller can diff. Every object carries LabelOwner=OwnerValue and
// LabelObject (the VPC object it realizes); Diff never touches an object
// without the owner label. Store-assigned fields (revision, tunnel keys)
// are left zero.
//
// The package does no I/O and starts no goroutines.
package translate
