package metadata

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Versions are the API versions the service answers under besides "latest".
// Clients (cloud-init among them) pin a dated version and fall back to older
// ones; all are served from the same data, as each is a subset of latest.
var Versions = []string{
	"1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
	"2008-02-01", "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12",
	"2014-02-25", "2014-11-05", "2015-10-20", "2016-04-19", "2016-06-30", "2016-09-02",
	"2018-03-28", "2018-08-17", "2018-09-24", "2019-10-01", "2020-10-27", "2021-01-03",
	"2021-03-23", "2021-07-15", "2022-09-24", "latest",
}

// node is a file (value) or a directory (names in listing order, kids).
type node struct {
	value string
	dir   bool
	names []string
	list  []string // how each name appears in the listing
	kids  map[string]*node
}

func newDir() *node { return &node{dir: true, kids: map[string]*node{}} }

// file adds a leaf; an empty value means the item does not exist for this
// instance, and EC2 leaves such items out of its listings.
func (d *node) file(name, value string) {
	if value == "" {
		return
	}
	d.add(name, name, &node{value: value})
}

func (d *node) sub(name string) *node { return d.subAs(name, name+"/") }

func (d *node) subAs(name, list string) *node {
	n := newDir()
	d.add(name, list, n)
	return n
}

func (d *node) add(name, list string, n *node) {
	d.names = append(d.names, name)
	d.list = append(d.list, list)
	d.kids[name] = n
}

// listing is a directory as EC2 shows it: one entry a line, subtrees with a
// trailing slash, no final newline.
func (d *node) listing() string { return strings.Join(d.list, "\n") }

// walk follows a slash-separated path; empty segments (a trailing slash)
// are ignored, as EC2 does.
func (d *node) walk(path string) (*node, bool) {
	n := d
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" {
			continue
		}
		if !n.dir {
			return nil, false
		}
		k, ok := n.kids[seg]
		if !ok {
			return nil, false
		}
		n = k
	}
	return n, true
}

// tree is everything under /<version>/ for one instance.
func tree(in *Instance) *node {
	root := newDir()
	root.sub("dynamic").sub("instance-identity").file("document", identityDocument(in))
	md := root.sub("meta-data")
	if in.UserData != nil {
		root.add("user-data", "user-data", &node{value: string(in.UserData)})
	}

	md.file("ami-id", in.ImageID)
	md.file("ami-launch-index", "0")
	md.file("hostname", in.Hostname)
	md.file("instance-id", in.ID)
	md.file("instance-life-cycle", "on-demand")
	md.file("instance-type", in.InstanceType)
	md.file("local-hostname", in.Hostname)
	prim := in.primary()
	if prim != nil {
		if ip, ok := prim.localIPv4(); ok {
			md.file("local-ipv4", ip.String())
		}
		md.file("mac", prim.MAC)
	}
	if len(in.Interfaces) > 0 {
		macs := md.sub("network").sub("interfaces").sub("macs")
		for i := range in.Interfaces {
			nicTree(macs.sub(in.Interfaces[i].MAC), in, &in.Interfaces[i])
		}
	}
	pl := md.sub("placement")
	pl.file("availability-zone", in.Zone)
	pl.file("region", in.Region)
	md.file("public-hostname", in.PublicHostname)
	if prim != nil {
		if ip, ok := prim.publicIPv4(); ok {
			md.file("public-ipv4", ip.String())
		}
	}
	if in.PublicKey != "" {
		// EC2 lists a key as "<index>=<name>" and serves it under <index>/.
		md.sub("public-keys").subAs("0", "0="+in.KeyName).file("openssh-key", in.PublicKey)
	}
	md.file("reservation-id", in.ReservationID)
	if prim != nil {
		md.file("security-groups", joinGroups(prim.SecurityGroups, func(g SecurityGroup) string { return g.Name }))
	}
	svc := md.sub("services")
	svc.file("domain", "amazonaws.com")
	svc.file("partition", "aws")
	return root
}

func nicTree(d *node, in *Instance, nic *Interface) {
	d.file("device-number", strconv.Itoa(nic.DeviceNumber))
	d.file("interface-id", nic.ID)
	if len(nic.Associations) > 0 {
		as := d.sub("ipv4-associations")
		for _, a := range nic.Associations {
			as.file(a.Public.String(), a.Private.String())
		}
	}
	d.file("local-hostname", nic.LocalHostname)
	d.file("local-ipv4s", joinStrings(nic.PrivateIPs))
	d.file("mac", nic.MAC)
	d.file("owner-id", in.AccountID)
	var pubs []string
	for _, a := range nic.Associations {
		pubs = append(pubs, a.Public.String())
	}
	d.file("public-ipv4s", strings.Join(pubs, "\n"))
	d.file("security-group-ids", joinGroups(nic.SecurityGroups, func(g SecurityGroup) string { return g.ID }))
	d.file("security-groups", joinGroups(nic.SecurityGroups, func(g SecurityGroup) string { return g.Name }))
	d.file("subnet-id", nic.SubnetID)
	if nic.SubnetCIDR.IsValid() {
		d.file("subnet-ipv4-cidr-block", nic.SubnetCIDR.String())
	}
	d.file("vpc-id", nic.VPCID)
	if len(nic.VPCCIDRs) > 0 {
		d.file("vpc-ipv4-cidr-block", nic.VPCCIDRs[0].String())
		d.file("vpc-ipv4-cidr-blocks", joinStrings(nic.VPCCIDRs))
	}
}

func joinStrings[T interface{ String() string }](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, "\n")
}

func joinGroups(gs []SecurityGroup, f func(SecurityGroup) string) string {
	s := make([]string, 0, len(gs))
	for _, g := range gs {
		if v := f(g); v != "" {
			s = append(s, v)
		}
	}
	return strings.Join(s, "\n")
}

// identityDocument is /dynamic/instance-identity/document, field for field
// as EC2 writes it. It is not signed: the pkcs7/signature siblings are not
// offered rather than faked.
func identityDocument(in *Instance) string {
	arch := in.Architecture
	if arch == "" {
		arch = "x86_64"
	}
	var private string
	if p := in.primary(); p != nil {
		if ip, ok := p.localIPv4(); ok {
			private = ip.String()
		}
	}
	doc := struct {
		AccountID               string    `json:"accountId"`
		Architecture            string    `json:"architecture"`
		AvailabilityZone        string    `json:"availabilityZone"`
		BillingProducts         []string  `json:"billingProducts"`
		DevpayProductCodes      []string  `json:"devpayProductCodes"`
		MarketplaceProductCodes []string  `json:"marketplaceProductCodes"`
		ImageID                 string    `json:"imageId"`
		InstanceID              string    `json:"instanceId"`
		InstanceType            string    `json:"instanceType"`
		KernelID                *string   `json:"kernelId"`
		PendingTime             time.Time `json:"pendingTime"`
		PrivateIP               string    `json:"privateIp"`
		RamdiskID               *string   `json:"ramdiskId"`
		Region                  string    `json:"region"`
		Version                 string    `json:"version"`
	}{
		AccountID: in.AccountID, Architecture: arch, AvailabilityZone: in.Zone,
		ImageID: in.ImageID, InstanceID: in.ID, InstanceType: in.InstanceType,
		PendingTime: in.LaunchTime.UTC().Truncate(time.Second), PrivateIP: private,
		Region: in.Region, Version: "2017-09-30",
	}
	b, _ := json.MarshalIndent(doc, "", "  ") // cannot fail: plain fields
	return string(b)
}
