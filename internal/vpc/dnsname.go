package vpc

import (
	"net/netip"
	"strings"
)

// PrivateDNSDomain is the domain of private host names in region: AWS's
// ec2.internal for us-east-1, <region>.compute.internal elsewhere.
func PrivateDNSDomain(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

// PublicDNSDomain is the domain of public host names in region, spelled as
// AWS does (compute-1.amazonaws.com for us-east-1).
func PublicDNSDomain(region string) string {
	if region == "us-east-1" {
		return "compute-1.amazonaws.com"
	}
	return region + ".compute.amazonaws.com"
}

// PrivateDNSName is an instance address's private host name,
// ip-10-0-1-5.ec2.internal ("" for no address).
func PrivateDNSName(region string, a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return "ip-" + strings.ReplaceAll(a.String(), ".", "-") + "." + PrivateDNSDomain(region)
}

// PublicDNSName is a public address's host name,
// ec2-203-0-113-5.compute-1.amazonaws.com ("" for no address).
func PublicDNSName(region string, a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return "ec2-" + strings.ReplaceAll(a.String(), ".", "-") + "." + PublicDNSDomain(region)
}
