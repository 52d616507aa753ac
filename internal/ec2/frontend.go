package ec2

import (
	"context"
	"crypto/subtle"
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The OpenStack front end (internal/neutron, internal/keystone) serves the
// same accounts and VPC objects as this endpoint. What follows is what it
// shares with the EC2 actions instead of keeping a copy: the store, the
// zones, how a VPC is made and deleted with its defaults, ids and MACs, and
// the check of an access key's secret.

// VPCStore is the store of VPC objects the endpoint writes through.
func (s *Server) VPCStore() *nsdb.VPCStore { return s.store }

// Zones are the endpoint's availability zones.
func (s *Server) Zones() []string { return s.cfg.Zones }

// NewVpc creates in tx a VPC of owner with block cidr (which may be the
// zero prefix: a Neutron network has none until its first subnet) and
// what CreateVpc creates with it: the main route table, the default group
// and the default ACL.
func (s *Server) NewVpc(tx *nsdb.VPCTx, owner string, cidr netip.Prefix, tags vpc.Tags) (*vpc.Vpc, error) {
	return s.putNewVpc(tx, owner, cidr, false, tags)
}

// DeleteVpc deletes v in tx with its defaults, or answers what DeleteVpc
// answers while something else depends on it.
func DeleteVpc(st *vpc.State, tx *nsdb.VPCTx, v *vpc.Vpc) error {
	if err := vpc.CheckDeleteVpc(st, v); err != nil {
		return err
	}
	return deleteVpcObjects(st, tx, v.ID)
}

// DeleteSubnet deletes sub in tx with its route table and ACL
// associations, or answers DeleteSubnet's DependencyViolation.
func DeleteSubnet(st *vpc.State, tx *nsdb.VPCTx, sub *vpc.Subnet) error {
	return deleteSubnetObjects(st, tx, sub)
}

// DeleteInterface deletes an interface in tx (its elastic IPs
// disassociated), or answers DeleteNetworkInterface's error.
func DeleteInterface(st *vpc.State, tx *nsdb.VPCTx, e *vpc.NetworkInterface) error {
	return deleteInterfaceObjects(st, tx, e)
}

// NewID mints a resource id of kind k.
func NewID(k vpc.IDKind) string { return newID(k) }

// NewMAC mints an interface's MAC address.
func NewMAC() string { return newMAC() }

// Authenticate returns the account of an access key whose secret is
// secret, or AuthFailure.
func (s *Server) Authenticate(ctx context.Context, accessKey, secret string) (string, error) {
	rec, err := s.lookupKey(ctx, accessKey)
	if err != nil {
		return "", err
	}
	want, err := s.sealer.open(accessKey, rec.SealedSecret)
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		return "", authFailure("The access key's secret does not match")
	}
	return rec.AccountID, nil
}

// Limits are the endpoint's quotas.
func (s *Server) Limits() vpc.Limits { return s.cfg.Limits }

// PublicPool is the pool elastic IPs come from (the cloud's public
// addresses; empty when none is configured).
func (s *Server) PublicPool() []AddrRange { return s.cfg.PublicPool }

// AllocPublicIP returns the lowest pool address no account holds, or
// InsufficientAddressCapacity.
func (s *Server) AllocPublicIP(st *vpc.State) (netip.Addr, error) { return s.allocPublicIP(st) }
