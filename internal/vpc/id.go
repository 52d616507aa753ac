package vpc

import (
	"encoding/hex"
	"strings"
)

// IDKind describes one kind of EC2 resource id: its prefix and the codes AWS
// answers for an id that is malformed or names nothing.
type IDKind struct {
	Prefix    string
	NotFound  Code
	Malformed Code
}

// The resource id kinds. AWS ids are "<prefix>-" followed by 17 hex digits
// (older ones by 8); Canopy mints 17 and accepts both.
var (
	KindVpc            = IDKind{"vpc", CodeInvalidVpcIDNotFound, CodeInvalidVpcIDMalformed}
	KindSubnet         = IDKind{"subnet", CodeInvalidSubnetIDNotFound, CodeInvalidSubnetIDMalformed}
	KindInternetGW     = IDKind{"igw", CodeInvalidInternetGatewayIDNotFound, CodeInvalidInternetGatewayIDMalformed}
	KindRouteTable     = IDKind{"rtb", CodeInvalidRouteTableIDNotFound, CodeInvalidRouteTableIDMalformed}
	KindRTBAssoc       = IDKind{"rtbassoc", CodeInvalidAssociationIDNotFound, CodeInvalidAssociationIDMalformed}
	KindSecurityGroup  = IDKind{"sg", CodeInvalidGroupNotFound, CodeInvalidGroupIDMalformed}
	KindSGRule         = IDKind{"sgr", CodeInvalidSecurityGroupRuleIDNotFound, CodeInvalidSecurityGroupRuleIDMalformed}
	KindNetworkACL     = IDKind{"acl", CodeInvalidNetworkACLIDNotFound, CodeInvalidNetworkACLIDMalformed}
	KindACLAssoc       = IDKind{"aclassoc", CodeInvalidAssociationIDNotFound, CodeInvalidAssociationIDMalformed}
	KindInterface      = IDKind{"eni", CodeInvalidNetworkInterfaceIDNotFound, CodeInvalidNetworkInterfaceIDMalformed}
	KindENIAttachment  = IDKind{"eni-attach", CodeInvalidAttachmentIDNotFound, CodeInvalidAttachmentIDMalformed}
	KindAllocation     = IDKind{"eipalloc", CodeInvalidAllocationIDNotFound, CodeInvalidAllocationIDMalformed}
	KindEIPAssociation = IDKind{"eipassoc", CodeInvalidAssociationIDNotFound, CodeInvalidAssociationIDMalformed}
	KindNatGateway     = IDKind{"nat", CodeNatGatewayNotFound, CodeNatGatewayMalformed}
	KindDhcpOptions    = IDKind{"dopt", CodeInvalidDhcpOptionIDNotFound, CodeInvalidDhcpOptionsIDMalformed}
	KindInstance       = IDKind{"i", CodeInvalidInstanceIDNotFound, CodeInvalidInstanceIDMalformed}
	KindKeyPair        = IDKind{"key", CodeInvalidKeyPairNotFound, CodeInvalidKeyPairMalformed}
	// KindSubnetPool is a Neutron subnet pool's (no EC2 API names it).
	KindSubnetPool = IDKind{"subnetpool", CodeInvalidParameterValue, CodeInvalidParameterValue}
)

// IDRandomBytes is how many random bytes NewID consumes.
const IDRandomBytes = 9

// NewID returns a fresh id of kind k, "vpc-0a1b2c3d4e5f60718": the prefix and
// 17 hex digits taken from random. The caller supplies the randomness
// (crypto/rand in the server, fixed bytes in tests), so this stays pure.
func NewID(k IDKind, random [IDRandomBytes]byte) string {
	return k.Prefix + "-" + hex.EncodeToString(random[:])[:17]
}

// ParseID checks that s is a well-formed id of kind k (8 or 17 lowercase hex
// digits after the prefix) and answers k's Malformed code otherwise.
func ParseID(k IDKind, s string) error {
	hexPart, ok := strings.CutPrefix(s, k.Prefix+"-")
	if ok && (len(hexPart) == 8 || len(hexPart) == 17) && isLowerHex(hexPart) {
		return nil
	}
	return errorf(k.Malformed, "Invalid id: %q (expecting %q)", s, k.Prefix+"-...")
}

// NotFoundError is k's error for an id that names nothing the caller may see.
func (k IDKind) NotFoundError(id string) *Error {
	return errorf(k.NotFound, "The %s ID '%s' does not exist", k.Prefix, id)
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// NewMAC returns a locally administered unicast MAC ("02:…") for a new
// network interface, from caller-supplied randomness.
func NewMAC(random [5]byte) string {
	b := append([]byte{0x02}, random[:]...)
	return formatMAC(b)
}

func formatMAC(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 17)
	for i, x := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[x>>4], digits[x&0xf])
	}
	return string(out)
}

// HostInterfaceName is the name of the host interface (tap) an ENI is bound
// to on its instance's host: "vn" and the last 13 hex digits of the ENI id,
// which fits Linux's 15-byte limit. The instance driver creates it, the
// translator binds the ENI's port to it.
func HostInterfaceName(eniID string) string {
	h := strings.TrimPrefix(eniID, KindInterface.Prefix+"-")
	if len(h) > 13 {
		h = h[len(h)-13:]
	}
	return "vn" + h
}
