package translate

import (
	"crypto/sha1"
	"encoding/hex"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// Labels the translator puts on every object it produces.
const (
	// LabelOwner marks objects the translator owns; Diff ignores the rest.
	LabelOwner = "canopy.owner"
	// OwnerValue is LabelOwner's value.
	OwnerValue = "translate"
	// LabelObject is the id of the VPC object an object realizes (vpc-…,
	// subnet-…, sg-…, eni-…, eipalloc-…, nat-…, rtb-…, acl-…) or "cloud"
	// for the edge router and the transit bridge.
	LabelObject = "canopy.vpc-object"
	// LabelVPC is the VPC an object belongs to (absent on cloud objects),
	// so the controller can diff one VPC at a time.
	LabelVPC = topology.LabelVPC
	// CloudObject is LabelObject's value on the edge and transit objects.
	CloudObject = "cloud"
)

// namespace is the UUIDv5 namespace of every id the translator derives
// (a fixed random UUID: changing it would re-create every object).
var namespace = [16]byte{0x6f, 0x1c, 0x3a, 0x52, 0x9d, 0x4e, 0x4b, 0x0a, 0x8e, 0x21, 0x5c, 0x77, 0x0d, 0x93, 0xa4, 0x11}

// ObjectID returns the topology id of the object playing role for a VPC
// object: the UUIDv5 (RFC 9562) of "<vpcObject>/<role>" in the translator's
// namespace. The controller and `canopy trace` can recompute it.
func ObjectID(vpcObject, role string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(vpcObject + "/" + role))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// routerMAC derives a stable locally administered unicast MAC for a router
// port from its id.
func routerMAC(portID string) topology.MAC {
	s := sha1.Sum([]byte("mac/" + portID))
	return topology.MAC{0x02, s[0], s[1], s[2], s[3], s[4]}
}

// GatewayMAC is the MAC of a subnet's gateway: the VPC router's port on
// the subnet's bridge (what the Neutron API shows as the router
// interface's port).
func GatewayMAC(subnetID string) topology.MAC {
	return routerMAC(ObjectID(subnetID, "gateway/router-port"))
}
