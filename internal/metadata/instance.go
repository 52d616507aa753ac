package metadata

import (
	"net/netip"
	"time"
)

// HTTP token modes of an instance (EC2 MetadataOptions.HttpTokens).
const (
	TokensOptional = "optional" // IMDSv1 and v2 both answered
	TokensRequired = "required" // only requests carrying a valid v2 token
)

// Instance is what the metadata service tells one instance about itself. The
// agent fills it from the VPC objects (instance, ENIs, subnet, VPC, groups).
type Instance struct {
	ID             string // i-…
	ImageID        string // ami-…
	InstanceType   string
	ReservationID  string // r-…; omitted when empty
	AccountID      string // owner-id of the interfaces, accountId of the identity document
	Region         string
	Zone           string // availability zone
	Hostname       string // the private DNS name, e.g. ip-10-0-1-10.ec2.internal
	PublicHostname string // omitted when empty
	LaunchTime     time.Time
	Architecture   string // identity document; "x86_64" when empty
	// KeyName and PublicKey are the launch key pair (public-keys/0/openssh-key).
	KeyName, PublicKey string
	// UserData is served raw at /latest/user-data; nil means none (404).
	UserData []byte
	// HTTPTokens is TokensOptional (or empty) or TokensRequired.
	HTTPTokens string
	// Interfaces are the attached ENIs; the one with device number 0 is the
	// primary and gives mac, local-ipv4, public-ipv4 and security-groups.
	Interfaces []Interface
}

// Interface is one ENI as network/interfaces/macs/<mac>/ shows it.
type Interface struct {
	MAC           string // lower-case, colon-separated
	DeviceNumber  int
	ID            string // eni-…
	SubnetID      string
	SubnetCIDR    netip.Prefix
	VPCID         string
	VPCCIDRs      []netip.Prefix // the first is the VPC's primary block
	PrivateIPs    []netip.Addr   // the first is the primary private address
	LocalHostname string         // omitted when empty
	// Associations are the elastic or auto-assigned public addresses mapped
	// 1:1 onto private addresses of this interface.
	Associations   []Association
	SecurityGroups []SecurityGroup
}

// Association maps a public IPv4 address onto a private one.
type Association struct {
	Public, Private netip.Addr
}

// SecurityGroup names a group an interface is in.
type SecurityGroup struct {
	ID, Name string
}

// primary is the interface with device number 0 (or the first one).
func (in *Instance) primary() *Interface {
	for i := range in.Interfaces {
		if in.Interfaces[i].DeviceNumber == 0 {
			return &in.Interfaces[i]
		}
	}
	if len(in.Interfaces) > 0 {
		return &in.Interfaces[0]
	}
	return nil
}

// localIPv4 is the primary private address of the interface.
func (nic *Interface) localIPv4() (netip.Addr, bool) {
	if len(nic.PrivateIPs) == 0 {
		return netip.Addr{}, false
	}
	return nic.PrivateIPs[0], true
}

// publicIPv4 is the public address mapped onto the primary private address.
func (nic *Interface) publicIPv4() (netip.Addr, bool) {
	local, ok := nic.localIPv4()
	if !ok {
		return netip.Addr{}, false
	}
	for _, a := range nic.Associations {
		if a.Private == local {
			return a.Public, true
		}
	}
	return netip.Addr{}, false
}
