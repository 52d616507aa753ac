package translate

import (
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The desired topology splits into partitions the controller can translate
// and diff one at a time, so that a change costs work in proportion to the
// change and not to the size of the cloud:
//
//   - the cloud partition: the objects without LabelVPC (edge router, its
//     uplinks and pool routes, the transit bridge). They depend only on the
//     CloudConfig and on the hosts its gateways name.
//   - one partition per VPC: the objects with LabelVPC = the VPC's id,
//     including the edge routes of its elastic IPs and NAT gateways.
//
// Translate(st) is exactly the union of TranslateCloud (with a host for
// every gateway) and TranslateVPC for every VPC of st (a test holds this).

// TranslateCloud computes the cloud partition: the objects of Translate that
// carry no LabelVPC, with each gateway resolved against hosts
// (ResolveGateway). A gateway whose host is missing or ambiguous gets an
// unbound uplink port; Desired.Gateways says which.
func TranslateCloud(cloud CloudConfig, hosts []*topology.Host) *Desired {
	cfg := cloud.withDefaults()
	b := &builder{st: vpc.NewState(), cfg: cfg, objs: map[topology.ObjectKey]topology.Object{}, vmMTU: cfg.UnderlayMTU - VXLANOverhead,
		hosts: hosts, resolve: true}
	b.edge()
	return b.result()
}

// TranslateVPC computes the partition of one VPC: the objects of
// Translate(st, cloud) labelled LabelVPC = vpcID (none when st has no such
// VPC). st need only hold that VPC, the objects inside it and the objects
// they name (its DHCP option set, the security groups its rules reference,
// the internet gateways attached to it, the addresses of its interfaces and
// the instances they are attached to): the translation of a VPC reads
// nothing else.
func TranslateVPC(st *vpc.State, cloud CloudConfig, vpcID string) *Desired {
	cfg := cloud.withDefaults()
	b := &builder{st: st, cfg: cfg, objs: map[topology.ObjectKey]topology.Object{}, vmMTU: cfg.UnderlayMTU - VXLANOverhead}
	// The edge is built for the addresses and ids a VPC links to, then
	// dropped: it belongs to the cloud partition.
	b.edge()
	for k, o := range b.objs {
		if o.GetMeta().Labels[LabelVPC] == "" {
			delete(b.objs, k)
		}
	}
	b.gwStatus = nil
	if v := st.Vpcs[vpcID]; v != nil {
		b.vpc(v)
	}
	return b.result()
}

// Partition is the partition an object belongs to: its LabelVPC, "" for
// the cloud partition.
func Partition(o topology.Object) string { return o.GetMeta().Labels[LabelVPC] }
