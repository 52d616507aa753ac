// Package ec2 is the tenant-facing EC2 Query API of `canopy server`: the
// wire protocol (form or query parameters in, XML in the EC2 namespace out,
// AWS's error document), SigV4 verification by re-signing with
// aws-sdk-go-v2's signer, STS GetCallerIdentity, accounts with encrypted
// access keys and a default VPC, filters, pagination, DryRun, tags and
// ClientToken, and the VPC actions listed in docs/ec2-api.md.
//
// Actions validate with internal/vpc's checks before they change anything
// and commit through nsdb.VPCStore in one transaction, so a refused call
// changes nothing. It never answers a fake success: an action it does not
// implement answers UnsupportedOperation. It does not translate VPC objects
// into topology (internal/controller does, from the stored objects).
package ec2
