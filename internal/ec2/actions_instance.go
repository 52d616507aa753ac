package ec2

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("RunInstances", runInstances)
	register("DescribeInstances", describeInstances)
	register("TerminateInstances", terminateInstances)
	register("StopInstances", stopInstances)
	register("StartInstances", startInstances)
	register("RebootInstances", rebootInstances)
	register("DescribeInstanceStatus", describeInstanceStatus)
}

// kindReservation is the id kind of RunInstances reservations.
var kindReservation = vpc.IDKind{Prefix: "r", NotFound: vpc.CodeInvalidReservationIDNotFound, Malformed: vpc.CodeInvalidReservationIDMalformed}

// maxUserData is AWS's limit on user data (16 KB, before base64).
const maxUserData = 16 << 10

// eniSpec is one interface of a RunInstances call: NetworkInterface.N, or
// the one the top-level SubnetId/SecurityGroupId/PrivateIpAddress describe.
type eniSpec struct {
	index      int
	subnetID   string
	groups     []string // ids
	groupNames []string // SecurityGroup.N (names, top level only)
	explicit   []netip.Addr
	extra      int   // addresses to allocate besides explicit ones
	public     *bool // AssociatePublicIpAddress
	dot        *bool // DeleteOnTermination
	existing   string
	desc       string
}

// runRequest is a parsed RunInstances call.
type runRequest struct {
	image       Image
	itype       instanceType
	min, max    int
	keyName     string
	userData    string
	md          vpc.MetadataOptions
	tags        map[string]vpc.Tags // by resource type
	zone        string              // Placement.AvailabilityZone
	token       string
	disableTerm bool
	disableStop bool
	shutdown    string
	rootSize    int
	credits     string
	enis        []eniSpec // sorted by device index, [0] is index 0
}

func combination(msg string) error {
	return &vpc.Error{Code: vpc.CodeInvalidParameterCombination, Message: msg}
}

// tagSpecsByType reads TagSpecification.N for the resource types a call
// may tag.
func tagSpecsByType(p params, allowed ...string) (map[string]vpc.Tags, error) {
	out := map[string]vpc.Tags{}
	for _, n := range p.indexes("TagSpecification") {
		s := p.sub("TagSpecification", n)
		rt := s.str("ResourceType")
		if !slices.Contains(allowed, rt) {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("'%s' is not a valid taggable resource type for this operation.", rt)}
		}
		t, err := s.tags("Tag")
		if err != nil {
			return nil, err
		}
		if out[rt] == nil {
			out[rt] = vpc.Tags{}
		}
		for k, v := range t {
			out[rt][k] = v
		}
	}
	return out, nil
}

func parseAddrs(p params, single, list string) ([]netip.Addr, error) {
	var out []netip.Addr
	if v := p.str(single); v != "" {
		a, err := vpc.ParseIP("privateIpAddress", v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	for _, n := range p.indexes(list) {
		s := p.sub(list, n)
		a, err := vpc.ParseIP("privateIpAddresses", s.str("PrivateIpAddress"))
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, a) {
			continue // the primary named twice, as clients do
		}
		if ok, _ := s.boolean("Primary", false); ok {
			out = append([]netip.Addr{a}, out...)
		} else {
			out = append(out, a)
		}
	}
	return out, nil
}

func parseRun(c *call) (*runRequest, error) {
	p := c.p
	r := &runRequest{}
	imageID, err := p.required("ImageId")
	if err != nil {
		return nil, err
	}
	if r.image, err = c.s.image(imageID); err != nil {
		return nil, err
	}
	tn := p.str("InstanceType")
	if tn == "" {
		tn = DefaultInstanceType
	}
	var ok bool
	if r.itype, ok = lookupInstanceType(tn); !ok {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Invalid value '%s' for InstanceType.", tn)}
	}
	for _, name := range []string{"MinCount", "MaxCount"} {
		if _, err := p.required(name); err != nil {
			return nil, err
		}
	}
	if r.min, err = p.integer("MinCount", 1); err != nil || r.min < 1 {
		return nil, invalidValue("MinCount", p.str("MinCount"))
	}
	if r.max, err = p.integer("MaxCount", 1); err != nil || r.max < r.min {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter maxCount is invalid. Expecting a value greater than or equal to minCount.", p.str("MaxCount"))}
	}
	r.keyName = p.str("KeyName")
	if ud := p.str("UserData"); ud != "" {
		raw, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "Invalid BASE64 encoding of user data."}
		}
		if len(raw) > maxUserData {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "User data is limited to 16384 bytes."}
		}
		r.userData = ud
	}
	r.md = vpc.MetadataOptions{HttpTokens: "optional", HttpPutResponseHopLimit: 1, HttpEndpoint: "enabled"}
	if v := p.str("MetadataOptions.HttpTokens"); v != "" {
		if v != "optional" && v != "required" {
			return nil, invalidValue("MetadataOptions.HttpTokens", v)
		}
		r.md.HttpTokens = v
	}
	if p.has("MetadataOptions.HttpPutResponseHopLimit") {
		n, err := p.integer("MetadataOptions.HttpPutResponseHopLimit", 1)
		if err != nil || n < 1 || n > 64 {
			return nil, invalidValue("MetadataOptions.HttpPutResponseHopLimit", p.str("MetadataOptions.HttpPutResponseHopLimit"))
		}
		r.md.HttpPutResponseHopLimit = n
	}
	if v := p.str("MetadataOptions.HttpEndpoint"); v != "" {
		if v != "enabled" && v != "disabled" {
			return nil, invalidValue("MetadataOptions.HttpEndpoint", v)
		}
		r.md.HttpEndpoint = v
	}
	if p.str("MetadataOptions.HttpProtocolIpv6") == "enabled" || p.str("MetadataOptions.InstanceMetadataTags") == "enabled" {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "IPv6 metadata and instance tags in metadata are not supported."}
	}
	if r.tags, err = tagSpecsByType(p, "instance", "network-interface", "volume"); err != nil {
		return nil, err
	}
	r.zone = p.str("Placement.AvailabilityZone")
	if r.token = p.str("ClientToken"); len(r.token) > 64 {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "ClientToken is longer than 64 characters."}
	}
	if r.disableTerm, err = p.boolean("DisableApiTermination", false); err != nil {
		return nil, err
	}
	if r.disableStop, err = p.boolean("DisableApiStop", false); err != nil {
		return nil, err
	}
	r.shutdown = p.str("InstanceInitiatedShutdownBehavior")
	if r.shutdown == "" {
		r.shutdown = "stop"
	} else if r.shutdown != "stop" && r.shutdown != "terminate" {
		return nil, invalidValue("InstanceInitiatedShutdownBehavior", r.shutdown)
	}
	if v := p.str("CreditSpecification.CpuCredits"); v != "" {
		if v != "standard" && v != "unlimited" {
			return nil, invalidValue("CreditSpecification.CpuCredits", v)
		}
		if !r.itype.burstable {
			return nil, combination(fmt.Sprintf("The parameter creditSpecification is not supported for instance type %s.", r.itype.name))
		}
		r.credits = v
	}
	if on, _ := p.boolean("Monitoring.Enabled", false); on {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "Detailed monitoring is not offered."}
	}
	if t := p.str("Placement.Tenancy"); t != "" && t != "default" {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "Only default tenancy is offered."}
	}
	if p.has("Ipv6AddressCount") || len(p.indexes("Ipv6Address")) > 0 {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "IPv6 addresses are not supported."}
	}
	r.rootSize = r.image.RootSizeGiB
	for _, n := range p.indexes("BlockDeviceMapping") {
		s := p.sub("BlockDeviceMapping", n)
		if s.str("DeviceName") != rootDevice || s.has("Ebs.SnapshotId") {
			return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "Only the root volume (" + rootDevice + ") can be given, and no storage is provisioned for it."}
		}
		if s.has("Ebs.VolumeSize") {
			sz, err := s.integer("Ebs.VolumeSize", 0)
			if err != nil || sz < r.image.RootSizeGiB || sz > 16384 {
				return nil, invalidValue("BlockDeviceMapping.Ebs.VolumeSize", s.str("Ebs.VolumeSize"))
			}
			r.rootSize = sz
		}
	}
	if err := parseNetwork(c, r); err != nil {
		return nil, err
	}
	return r, nil
}

// parseNetwork reads the interfaces: NetworkInterface.N.*, or the top-level
// SubnetId / SecurityGroupId.N / SecurityGroup.N / PrivateIpAddress. AWS
// refuses mixing the two forms, and so does Canopy.
func parseNetwork(c *call, r *runRequest) error {
	p := c.p
	topGroups, err := c.ids("SecurityGroupId", vpc.KindSecurityGroup)
	if err != nil {
		return err
	}
	topNames := p.list("SecurityGroup")
	nis := p.indexes("NetworkInterface")
	if len(nis) == 0 {
		s := eniSpec{groups: topGroups, groupNames: topNames}
		if v := p.str("SubnetId"); v != "" {
			if err := vpc.ParseID(vpc.KindSubnet, v); err != nil {
				return err
			}
			s.subnetID = v
		}
		if s.explicit, err = parseAddrs(p, "PrivateIpAddress", "PrivateIpAddresses"); err != nil {
			return err
		}
		if len(s.explicit) == 0 {
			s.extra = 1
		}
		r.enis = []eniSpec{s}
	} else {
		if p.str("SubnetId") != "" {
			return combination("Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		if len(topGroups) > 0 || len(topNames) > 0 {
			return combination("Network interfaces and an instance-level security groups may not be specified on the same request")
		}
		if p.str("PrivateIpAddress") != "" {
			return combination("Network interfaces and an instance-level private IP address may not be specified on the same request")
		}
		seen := map[int]bool{}
		for _, n := range nis {
			sp := p.sub("NetworkInterface", n)
			var s eniSpec
			if _, err := sp.required("DeviceIndex"); err != nil {
				return &vpc.Error{Code: vpc.CodeMissingParameter, Message: "Each network interface requires a device index."}
			}
			if s.index, err = sp.integer("DeviceIndex", 0); err != nil || s.index < 0 || seen[s.index] {
				return invalidValue(fmt.Sprintf("NetworkInterface.%d.DeviceIndex", n), sp.str("DeviceIndex"))
			}
			seen[s.index] = true
			s.existing = sp.str("NetworkInterfaceId")
			s.subnetID = sp.str("SubnetId")
			s.desc = sp.str("Description")
			if s.groups, err = (&call{p: sp}).ids("SecurityGroupId", vpc.KindSecurityGroup); err != nil {
				return err
			}
			if s.explicit, err = parseAddrs(sp, "PrivateIpAddress", "PrivateIpAddresses"); err != nil {
				return err
			}
			if s.extra, err = sp.integer("SecondaryPrivateIpAddressCount", 0); err != nil || s.extra < 0 {
				return invalidValue("SecondaryPrivateIpAddressCount", sp.str("SecondaryPrivateIpAddressCount"))
			}
			if len(s.explicit) == 0 {
				s.extra++
			}
			if s.public, err = sp.optBool("AssociatePublicIpAddress"); err != nil {
				return err
			}
			if s.dot, err = sp.optBool("DeleteOnTermination"); err != nil {
				return err
			}
			if s.existing != "" {
				if err := vpc.ParseID(vpc.KindInterface, s.existing); err != nil {
					return err
				}
				if s.subnetID != "" || len(s.groups) > 0 || len(s.explicit) > 0 || sp.has("SecondaryPrivateIpAddressCount") {
					return combination("A network interface ID cannot be combined with a subnet, security groups or private addresses for the same interface.")
				}
				if s.public != nil && *s.public {
					return combination("The associatePublicIPAddress parameter cannot be specified for an existing network interface.")
				}
			} else if s.subnetID == "" {
				return &vpc.Error{Code: vpc.CodeMissingParameter, Message: fmt.Sprintf("NetworkInterface.%d needs a SubnetId or a NetworkInterfaceId.", n)}
			} else if err := vpc.ParseID(vpc.KindSubnet, s.subnetID); err != nil {
				return err
			}
			if s.public != nil && s.index != 0 {
				return combination("The associatePublicIPAddress parameter can only be specified for the network interface with DeviceIndex 0.")
			}
			r.enis = append(r.enis, s)
		}
		sort.Slice(r.enis, func(i, j int) bool { return r.enis[i].index < r.enis[j].index })
		if r.enis[0].index != 0 {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "A network interface with DeviceIndex 0 is required."}
		}
		if len(r.enis) > 1 && r.enis[0].public != nil && *r.enis[0].public {
			return combination("The associatePublicIPAddress parameter cannot be specified when launching with multiple network interfaces.")
		}
	}
	if len(r.enis) > r.itype.maxENIs {
		return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("%d network interfaces exceed the %d an instance of type %s can have.", len(r.enis), r.itype.maxENIs, r.itype.name)}
	}
	if r.max > 1 {
		for _, s := range r.enis {
			if len(s.explicit) > 0 {
				return combination("A private IP address cannot be given when launching more than one instance.")
			}
			if s.existing != "" {
				return combination("An existing network interface cannot be given when launching more than one instance.")
			}
		}
	}
	return nil
}

// defaultSubnet is the caller's default subnet in zone (any zone when
// ""): the subnet RunInstances uses when given none, as AWS does.
func defaultSubnet(st *vpc.State, owner, zone string) (*vpc.Subnet, error) {
	var best *vpc.Subnet
	for _, s := range st.OwnedSubnets(owner) {
		if !s.DefaultForAz || (zone != "" && s.AvailabilityZone != zone) {
			continue
		}
		if best == nil || s.AvailabilityZone < best.AvailabilityZone {
			best = s
		}
	}
	if best == nil {
		return nil, &vpc.Error{Code: vpc.CodeVPCIDNotSpecified, Message: "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC."}
	}
	return best, nil
}

// resolveGroups returns the group ids of a spec in vpcID: the ids given,
// the names given (SecurityGroup.N), or the VPC's default group.
func resolveGroups(st *vpc.State, owner, vpcID string, s eniSpec) ([]string, error) {
	groups := slices.Clone(s.groups)
	for _, name := range s.groupNames {
		found := ""
		for _, g := range st.SecurityGroupsOf(vpcID) {
			if g.OwnerID == owner && g.GroupName == name {
				found = g.ID
			}
		}
		if found == "" {
			return nil, &vpc.Error{Code: vpc.CodeInvalidGroupNotFound, Message: fmt.Sprintf("The security group '%s' does not exist in VPC '%s'", name, vpcID)}
		}
		groups = append(groups, found)
	}
	if len(groups) == 0 {
		for _, g := range st.SecurityGroupsOf(vpcID) {
			if g.GroupName == vpc.DefaultGroupName {
				groups = []string{g.ID}
			}
		}
	}
	return groups, nil
}

func runInstances(c *call) (*node, error) {
	r, err := parseRun(c)
	if err != nil {
		return nil, err
	}
	hosts, err := c.s.candidateHosts(c.ctx)
	if err != nil {
		return nil, err
	}
	var out []*vpc.Instance
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		out = nil
		if r.token != "" {
			for _, i := range st.OwnedInstances(c.acct) {
				if i.ClientToken == r.token {
					out = append(out, i)
				}
			}
			if len(out) > 0 {
				sort.Slice(out, func(a, b int) bool { return out[a].AmiLaunchIndex < out[b].AmiLaunchIndex })
				return nil
			}
		}
		return c.launch(st, tx, r, hosts, &out)
	})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	c.s.store.Read(func(st *vpc.State) { renderReservation(res, c.s, st, out) })
	return res, nil
}

// launch creates the instances of a RunInstances call in tx.
func (c *call) launch(st *vpc.State, tx *nsdb.VPCTx, r *runRequest, hosts []vpc.HostCandidate, out *[]*vpc.Instance) error {
	p0 := r.enis[0]
	var sub0 *vpc.Subnet
	var err error
	switch {
	case p0.existing != "":
		e, err := st.NetworkInterface(c.acct, p0.existing)
		if err != nil {
			return err
		}
		if sub0, err = st.Subnet(c.acct, e.SubnetID); err != nil {
			return err
		}
	case p0.subnetID != "":
		if sub0, err = st.Subnet(c.acct, p0.subnetID); err != nil {
			return err
		}
	default:
		if sub0, err = defaultSubnet(st, c.acct, r.zone); err != nil {
			return err
		}
	}
	if r.zone != "" && r.zone != sub0.AvailabilityZone {
		return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The subnet %s is in %s, not in the requested zone %s.", sub0.ID, sub0.AvailabilityZone, r.zone)}
	}
	publicKey := ""
	if r.keyName != "" {
		kp := keyPairByName(st, c.acct, r.keyName)
		if kp == nil {
			return keyPairNotFound(r.keyName)
		}
		publicKey = kp.PublicKey
	}
	active := 0
	for _, i := range st.OwnedInstances(c.acct) {
		if i.Active() {
			active++
		}
	}
	n := min(r.max, c.s.cfg.Limits.InstancesPerAccount-active)
	if n < r.min {
		return &vpc.Error{Code: vpc.CodeInstanceLimitExceeded, Message: fmt.Sprintf("You have requested more instances (%d) than your current instance limit of %d allows (%d are in use).", r.min, c.s.cfg.Limits.InstancesPerAccount, active)}
	}
	load := vpc.HostLoad(st)
	resID := newID(kindReservation)
	now := c.s.now().UTC().Truncate(time.Second)
	for k := range n {
		host, err := pickHost(hosts, load, sub0.AvailabilityZone, r.itype.name)
		if err != nil {
			return err
		}
		load[host]++
		inst := &vpc.Instance{ID: newID(vpc.KindInstance), OwnerID: c.acct, VpcID: sub0.VpcID, SubnetID: sub0.ID,
			State: vpc.InstancePending, HostID: host, ImageID: r.image.ID, InstanceType: r.itype.name,
			AvailabilityZone: sub0.AvailabilityZone, LaunchTime: now, UserData: r.userData, KeyName: r.keyName,
			MetadataOptions: r.md, ClientToken: r.token, Tags: r.tags["instance"], ReservationID: resID, AmiLaunchIndex: k,
			DisableAPITermination: r.disableTerm, DisableAPIStop: r.disableStop, ShutdownBehavior: r.shutdown, RootVolumeSize: r.rootSize,
			CPUCredits: r.credits, VolumeTags: r.tags["volume"], PublicKey: publicKey}
		for _, s := range r.enis {
			e, err := c.instanceENI(st, tx, r, s, sub0, inst)
			if err != nil {
				return err
			}
			if s.index == 0 {
				inst.PrivateIP = e.PrimaryIP()
			}
		}
		if err := tx.Put(inst.ID, inst); err != nil {
			return err
		}
		*out = append(*out, inst)
	}
	return nil
}

// instanceENI makes (or attaches) one interface of a new instance and, for
// the primary one, its auto-assigned public address.
func (c *call) instanceENI(st *vpc.State, tx *nsdb.VPCTx, r *runRequest, s eniSpec, sub0 *vpc.Subnet, inst *vpc.Instance) (*vpc.NetworkInterface, error) {
	var e *vpc.NetworkInterface
	if s.existing != "" {
		cur, err := st.NetworkInterface(c.acct, s.existing)
		if err != nil {
			return nil, err
		}
		if cur.Attachment != nil || cur.InterfaceType != vpc.InterfaceTypeInterface {
			return nil, &vpc.Error{Code: vpc.CodeInvalidNetworkInterfaceUse, Message: fmt.Sprintf("Interface: [%s] in use.", cur.ID)}
		}
		if cur.AvailabilityZone != sub0.AvailabilityZone || cur.VpcID != sub0.VpcID {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Network interface %s is not in the instance's VPC and zone (%s, %s).", cur.ID, sub0.VpcID, sub0.AvailabilityZone)}
		}
		e = clone(cur)
	} else {
		sub := sub0
		if s.subnetID != "" && s.subnetID != sub0.ID {
			var err error
			if sub, err = st.Subnet(c.acct, s.subnetID); err != nil {
				return nil, err
			}
			if sub.VpcID != sub0.VpcID || sub.AvailabilityZone != sub0.AvailabilityZone {
				return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Subnet %s is not in the VPC and zone of the primary interface's subnet %s.", sub.ID, sub0.ID)}
			}
		}
		groups, err := resolveGroups(st, c.acct, sub.VpcID, s)
		if err != nil {
			return nil, err
		}
		if e, err = c.s.newInterface(st, c.acct, sub, s.explicit, s.extra, groups); err != nil {
			return nil, err
		}
		e.Description, e.Tags = s.desc, r.tags["network-interface"]
	}
	dot := s.existing == "" // new interfaces go with the instance, attached ones stay
	if s.dot != nil {
		dot = *s.dot
	}
	e.Attachment = &vpc.ENIAttachment{ID: newID(vpc.KindENIAttachment), InstanceID: inst.ID, DeviceIndex: s.index, Status: vpc.StateAttached, DeleteOnTermination: dot}
	e.Status = vpc.StateInUse
	if err := tx.Put(e.ID, e); err != nil {
		return nil, err
	}
	public := false
	if s.index == 0 {
		if s.public != nil {
			public = *s.public
		} else if sub := st.Subnets[e.SubnetID]; sub != nil {
			public = sub.MapPublicIPOnLaunch && s.existing == "" && len(r.enis) == 1
		}
	}
	if public {
		ip, err := c.s.allocPublicIP(st)
		if err != nil {
			return nil, err
		}
		a := &vpc.Address{AllocationID: newID(vpc.KindAllocation), OwnerID: c.acct, PublicIP: ip, Domain: "vpc", AutoAssigned: true,
			AssociationID: newID(vpc.KindEIPAssociation), NetworkInterfaceID: e.ID, PrivateIPAddress: e.PrimaryIP(), InstanceID: inst.ID}
		if err := tx.Put(a.AllocationID, a); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// instanceInterfaces returns the interfaces attached to an instance in
// device index order.
func instanceInterfaces(st *vpc.State, id string) []*vpc.NetworkInterface {
	return st.InstanceInterfaces(id)
}

// publicIPOf returns the public address associated with an interface's
// primary private address.
func publicIPOf(st *vpc.State, e *vpc.NetworkInterface) *vpc.Address {
	for _, a := range st.AddressesOfInterface(e.ID) {
		if a.PrivateIPAddress == e.PrimaryIP() {
			return a
		}
	}
	return nil
}

// privateDNSName is AWS's private host name of an address.
func (s *Server) privateDNSName(a netip.Addr) string { return vpc.PrivateDNSName(s.cfg.Region, a) }

// publicDNSName is AWS's public host name of an address.
func (s *Server) publicDNSName(a netip.Addr) string { return vpc.PublicDNSName(s.cfg.Region, a) }

// instancePublicDNS is an instance's public host name: its primary
// interface's public address, named when its VPC has DNS hostnames on.
func (s *Server) instancePublicDNS(st *vpc.State, i *vpc.Instance, primary *vpc.NetworkInterface) string {
	if primary == nil {
		return ""
	}
	v := st.Vpcs[i.VpcID]
	a := publicIPOf(st, primary)
	if v == nil || a == nil || !v.EnableDNSHostnames {
		return ""
	}
	return s.publicDNSName(a.PublicIP)
}

func renderState(n *node, name, state string) {
	n.el(name).i("code", vpc.InstanceStateCode(state)).s("name", state)
}

// renderReservation renders a RunInstances answer, or one item of
// DescribeInstances' reservationSet.
func renderReservation(n *node, s *Server, st *vpc.State, insts []*vpc.Instance) {
	if len(insts) == 0 {
		return
	}
	n.s("reservationId", insts[0].ReservationID).s("ownerId", insts[0].OwnerID)
	n.set("groupSet")
	set := n.set("instancesSet")
	for _, i := range insts {
		renderInstance(set.item(), s, st, i)
	}
}

func renderInstance(n *node, s *Server, st *vpc.State, i *vpc.Instance) {
	enis := instanceInterfaces(st, i.ID)
	n.s("instanceId", i.ID).s("imageId", i.ImageID)
	renderState(n, "instanceState", i.State)
	var primary *vpc.NetworkInterface
	if len(enis) > 0 && enis[0].Attachment.DeviceIndex == 0 {
		primary = enis[0]
	}
	n.s("privateDnsName", s.privateDNSName(i.PrivateIP)).s("dnsName", s.instancePublicDNS(st, i, primary)).s("reason", i.StateReason).opt("keyName", i.KeyName)
	n.i("amiLaunchIndex", i.AmiLaunchIndex).set("productCodes")
	n.s("instanceType", i.InstanceType).s("launchTime", i.LaunchTime.Format("2006-01-02T15:04:05.000Z"))
	n.el("placement").s("availabilityZone", i.AvailabilityZone).s("groupName", "").s("tenancy", "default")
	n.el("monitoring").s("state", "disabled")
	n.s("subnetId", i.SubnetID).s("vpcId", i.VpcID)
	if i.PrivateIP.IsValid() && i.State != vpc.InstanceTerminated {
		n.s("privateIpAddress", i.PrivateIP.String())
	}
	if primary != nil {
		if a := publicIPOf(st, primary); a != nil {
			n.s("ipAddress", a.PublicIP.String())
		}
		n.b("sourceDestCheck", primary.SourceDestCheck)
	}
	gs := n.set("groupSet")
	if primary != nil {
		for _, g := range primary.Groups {
			it := gs.item().s("groupId", g)
			if sg := st.SecurityGroups[g]; sg != nil {
				it.s("groupName", sg.GroupName)
			}
		}
	}
	if i.StateReason != "" {
		code, _, _ := strings.Cut(i.StateReason, ":")
		n.el("stateReason").s("code", code).s("message", i.StateReason)
	}
	n.s("architecture", "x86_64").s("rootDeviceType", "ebs").s("rootDeviceName", rootDevice)
	bdm := n.set("blockDeviceMapping")
	if i.State != vpc.InstanceTerminated {
		bdm.item().s("deviceName", rootDevice).el("ebs").s("volumeId", rootVolumeID(i.ID)).s("status", "attached").
			s("attachTime", i.LaunchTime.Format("2006-01-02T15:04:05.000Z")).b("deleteOnTermination", true)
	}
	n.s("virtualizationType", "hvm").opt("clientToken", i.ClientToken)
	n.tagSet(i.Tags)
	n.s("hypervisor", "xen")
	ns := n.set("networkInterfaceSet")
	for _, e := range enis {
		it := ns.item().s("networkInterfaceId", e.ID).s("subnetId", e.SubnetID).s("vpcId", e.VpcID).s("description", e.Description)
		it.s("ownerId", e.OwnerID).s("status", e.Status).s("macAddress", e.MacAddress).s("privateIpAddress", e.PrimaryIP().String())
		it.s("privateDnsName", s.privateDNSName(e.PrimaryIP())).b("sourceDestCheck", e.SourceDestCheck)
		g := it.set("groupSet")
		for _, id := range e.Groups {
			gi := g.item().s("groupId", id)
			if sg := st.SecurityGroups[id]; sg != nil {
				gi.s("groupName", sg.GroupName)
			}
		}
		a := e.Attachment
		it.el("attachment").s("attachmentId", a.ID).i("deviceIndex", a.DeviceIndex).s("status", a.Status).
			s("attachTime", i.LaunchTime.Format("2006-01-02T15:04:05.000Z")).b("deleteOnTermination", a.DeleteOnTermination).i("networkCardIndex", 0)
		addrs := map[netip.Addr]*vpc.Address{}
		for _, x := range st.AddressesOfInterface(e.ID) {
			addrs[x.PrivateIPAddress] = x
		}
		assoc := func(n *node, x *vpc.Address) {
			owner := x.OwnerID
			if x.AutoAssigned {
				owner = "amazon" // what AWS shows for an auto-assigned address
			}
			dns := ""
			if v := st.Vpcs[i.VpcID]; v != nil && v.EnableDNSHostnames {
				dns = s.publicDNSName(x.PublicIP)
			}
			n.el("association").s("publicIp", x.PublicIP.String()).s("publicDnsName", dns).s("ipOwnerId", owner)
		}
		if x := addrs[e.PrimaryIP()]; x != nil {
			assoc(it, x)
		}
		ps := it.set("privateIpAddressesSet")
		for _, p := range e.PrivateIPs {
			pi := ps.item().s("privateIpAddress", p.Address.String()).s("privateDnsName", s.privateDNSName(p.Address)).b("primary", p.Primary)
			if x := addrs[p.Address]; x != nil {
				assoc(pi, x)
			}
		}
		it.set("ipv6AddressesSet")
		it.s("interfaceType", e.InterfaceType)
	}
	n.b("ebsOptimized", false).b("enaSupport", true)
	n.el("cpuOptions").i("coreCount", 1).i("threadsPerCore", 2)
	n.el("capacityReservationSpecification").s("capacityReservationPreference", "open")
	n.el("hibernationOptions").b("configured", false)
	md := n.el("metadataOptions").s("state", "applied").s("httpTokens", i.MetadataOptions.HttpTokens)
	md.i("httpPutResponseHopLimit", i.MetadataOptions.HttpPutResponseHopLimit).s("httpEndpoint", i.MetadataOptions.HttpEndpoint)
	md.s("httpProtocolIpv6", "disabled").s("instanceMetadataTags", "disabled")
	n.el("enclaveOptions").b("enabled", false)
	n.s("platformDetails", "Linux/UNIX").s("usageOperation", "RunInstances")
	n.el("privateDnsNameOptions").s("hostnameType", "ip-name").b("enableResourceNameDnsARecord", false).b("enableResourceNameDnsAAAARecord", false)
	n.el("maintenanceOptions").s("autoRecovery", autoRecovery(i))
	n.s("currentInstanceBootMode", "legacy-bios")
}

// rootVolumeID is the id of an instance's root volume: vol- and the
// instance's hex digits, so it needs no storage of its own.
func rootVolumeID(instanceID string) string {
	return "vol-" + strings.TrimPrefix(instanceID, vpc.KindInstance.Prefix+"-")
}

func instanceResource(st *vpc.State, privateDNSName, publicDNSName func(netip.Addr) string) resource[vpc.Instance] {
	return resource[vpc.Instance]{
		kind: vpc.KindInstance, idParam: "InstanceId",
		id:    func(i *vpc.Instance) string { return i.ID },
		owner: func(i *vpc.Instance) string { return i.OwnerID },
		fields: func(i *vpc.Instance) fields {
			f := fields{"instance-id": {i.ID}, "instance-state-name": {i.State}, "instance-state-code": {fmt.Sprint(vpc.InstanceStateCode(i.State))},
				"subnet-id": {i.SubnetID}, "vpc-id": {i.VpcID}, "image-id": {i.ImageID}, "instance-type": {i.InstanceType},
				"availability-zone": {i.AvailabilityZone}, "reservation-id": {i.ReservationID}, "key-name": {i.KeyName},
				"client-token": {i.ClientToken}, "owner-id": {i.OwnerID}, "launch-index": {fmt.Sprint(i.AmiLaunchIndex)},
				"private-ip-address": nil, "ip-address": nil, "private-dns-name": nil, "group-id": nil, "instance.group-id": nil,
				"network-interface.network-interface-id": nil, "network-interface.subnet-id": nil, "network-interface.addresses.private-ip-address": nil,
				"architecture": {"x86_64"}, "root-device-type": {"ebs"}, "virtualization-type": {"hvm"}, "tenancy": {"default"},
				"metadata-options.http-tokens": {i.MetadataOptions.HttpTokens}, "launch-time": nil, "dns-name": nil}
			if i.ID == "" {
				return f
			}
			if i.PrivateIP.IsValid() && i.State != vpc.InstanceTerminated {
				f["private-ip-address"] = []string{i.PrivateIP.String()}
				f["private-dns-name"] = []string{privateDNSName(i.PrivateIP)}
			}
			f["launch-time"] = []string{i.LaunchTime.Format("2006-01-02T15:04:05.000Z")}
			for _, e := range instanceInterfaces(st, i.ID) {
				f["network-interface.network-interface-id"] = append(f["network-interface.network-interface-id"], e.ID)
				f["network-interface.subnet-id"] = append(f["network-interface.subnet-id"], e.SubnetID)
				for _, p := range e.PrivateIPs {
					f["network-interface.addresses.private-ip-address"] = append(f["network-interface.addresses.private-ip-address"], p.Address.String())
				}
				if e.Attachment.DeviceIndex == 0 {
					f["group-id"], f["instance.group-id"] = e.Groups, e.Groups
					if a := publicIPOf(st, e); a != nil {
						f["ip-address"] = []string{a.PublicIP.String()}
						if v := st.Vpcs[i.VpcID]; v != nil && v.EnableDNSHostnames {
							f["dns-name"] = []string{publicDNSName(a.PublicIP)}
						}
					}
				}
			}
			return f
		},
		tags: func(i *vpc.Instance) vpc.Tags { return i.Tags }, maxPage: 1000,
	}
}

func describeInstances(c *call) (*node, error) {
	if c.p.has("MaxResults") && len(c.p.list("InstanceId")) > 0 {
		return nil, combination("The parameter instancesSet cannot be used with the parameter maxResults")
	}
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		is, next, err := describeOwned(c, st.Instances, st.OwnedInstances, instanceResource(st, c.s.privateDNSName, c.s.publicDNSName))
		if err != nil {
			return err
		}
		// Group the page's instances by reservation, in page order.
		var order []string
		byRes := map[string][]*vpc.Instance{}
		for _, i := range is {
			if byRes[i.ReservationID] == nil {
				order = append(order, i.ReservationID)
			}
			byRes[i.ReservationID] = append(byRes[i.ReservationID], i)
		}
		set := res.set("reservationSet")
		for _, r := range order {
			renderReservation(set.item(), c.s, st, byRes[r])
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

// instanceIDs reads the required InstanceId.N list.
func (c *call) instanceIDs() ([]string, error) {
	ids, err := c.ids("InstanceId", vpc.KindInstance)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter InstanceId"}
	}
	return slices.Compact(ids), nil
}

func incorrectState(id, state, verb string) error {
	return &vpc.Error{Code: vpc.CodeIncorrectInstanceState, Message: fmt.Sprintf("The instance '%s' is not in a state from which it can be %s (it is %s).", id, verb, state)}
}

// transition is one instance's change in a state-changing call.
type transition struct{ id, prev, cur string }

// changeStates applies step to each named instance in one transaction and
// answers AWS's instancesSet of current and previous states. step returns
// the new state (the same one for a no-op) or an error that refuses the
// whole call.
func (c *call) changeStates(step func(st *vpc.State, i *vpc.Instance) (*vpc.Instance, error)) (*node, error) {
	ids, err := c.instanceIDs()
	if err != nil {
		return nil, err
	}
	var out []transition
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		out = out[:0]
		for _, id := range ids {
			i, err := st.Instance(c.acct, id)
			if err != nil {
				return err
			}
			next, err := step(st, i)
			if err != nil {
				return err
			}
			if next != i {
				if err := tx.Put(next.ID, next); err != nil {
					return err
				}
			}
			out = append(out, transition{id, i.State, next.State})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	set := res.set("instancesSet")
	for _, t := range out {
		it := set.item().s("instanceId", t.id)
		renderState(it, "currentState", t.cur)
		renderState(it, "previousState", t.prev)
	}
	return res, nil
}

func terminateInstances(c *call) (*node, error) {
	return c.changeStates(func(_ *vpc.State, i *vpc.Instance) (*vpc.Instance, error) {
		switch i.State {
		case vpc.InstanceShuttingDown, vpc.InstanceTerminated:
			return i, nil
		}
		if i.DisableAPITermination {
			return nil, &vpc.Error{Code: vpc.CodeOperationNotPermitted, Message: fmt.Sprintf("The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", i.ID)}
		}
		i = clone(i)
		i.State, i.StateReason = vpc.InstanceShuttingDown, "Client.UserInitiatedShutdown: User initiated shutdown"
		return i, nil
	})
}

func stopInstances(c *call) (*node, error) {
	if h, _ := c.p.boolean("Hibernate", false); h {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedHibernationConfiguration, Message: "Hibernation is not offered."}
	}
	return c.changeStates(func(_ *vpc.State, i *vpc.Instance) (*vpc.Instance, error) {
		switch i.State {
		case vpc.InstanceStopping, vpc.InstanceStopped:
			return i, nil
		case vpc.InstanceShuttingDown, vpc.InstanceTerminated:
			return nil, incorrectState(i.ID, i.State, "stopped")
		}
		if i.DisableAPIStop {
			return nil, &vpc.Error{Code: vpc.CodeOperationNotPermitted, Message: fmt.Sprintf("The instance '%s' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.", i.ID)}
		}
		i = clone(i)
		i.State, i.StateReason = vpc.InstanceStopping, "Client.UserInitiatedShutdown: User initiated shutdown"
		return i, nil
	})
}

func startInstances(c *call) (*node, error) {
	hosts, err := c.s.candidateHosts(c.ctx)
	if err != nil {
		return nil, err
	}
	var load map[string]int
	return c.changeStates(func(st *vpc.State, i *vpc.Instance) (*vpc.Instance, error) {
		switch i.State {
		case vpc.InstancePending, vpc.InstanceRunning:
			return i, nil
		case vpc.InstanceStopped:
		default:
			return nil, incorrectState(i.ID, i.State, "started")
		}
		if load == nil {
			load = vpc.HostLoad(st)
		}
		// A started instance is placed afresh, as AWS moves a stopped
		// instance to a new host.
		host, err := pickHost(hosts, load, i.AvailabilityZone, i.InstanceType)
		if err != nil {
			return nil, err
		}
		load[host]++
		i = clone(i)
		i.State, i.StateReason, i.HostID = vpc.InstancePending, "", host
		return i, nil
	})
}

func rebootInstances(c *call) (*node, error) {
	if _, err := c.changeStates(func(_ *vpc.State, i *vpc.Instance) (*vpc.Instance, error) {
		if i.State != vpc.InstanceRunning && i.State != vpc.InstancePending {
			return nil, incorrectState(i.ID, i.State, "rebooted")
		}
		i = clone(i)
		i.Reboots++
		return i, nil
	}); err != nil {
		return nil, err
	}
	return returnTrue(), nil
}

// instanceStatus is the status check AWS reports for a state.
func instanceStatus(state string) string {
	switch state {
	case vpc.InstanceRunning:
		return "ok"
	case vpc.InstancePending:
		return "initializing"
	}
	return "not-applicable"
}

func describeInstanceStatus(c *call) (*node, error) {
	all, err := c.p.boolean("IncludeAllInstances", false)
	if err != nil {
		return nil, err
	}
	// A running instance whose host's agent is not alive (its lease ran
	// out: the host died or lost the network) fails the system status
	// check, as EC2 reports a failed host.
	alive, err := c.s.store.Store().AliveHosts(c.ctx)
	if err != nil {
		return nil, err
	}
	status := func(i *vpc.Instance) (system, instance, reach string) {
		st := instanceStatus(i.State)
		if i.State == vpc.InstanceRunning && i.HostID != "" && !alive[i.HostID] {
			return "impaired", "insufficient-data", "failed"
		}
		return st, st, st
	}
	res := newNode("")
	err = c.read(func(st *vpc.State) error {
		r := instanceResource(st, c.s.privateDNSName, c.s.publicDNSName)
		base := r.fields
		r.fields = func(i *vpc.Instance) fields {
			f := base(i)
			sys, ins, reach := status(i)
			f["instance-status.status"] = []string{ins}
			f["system-status.status"] = []string{sys}
			f["instance-status.reachability"] = []string{ins}
			f["system-status.reachability"] = []string{reach}
			return f
		}
		owned := st.OwnedInstances
		if !all {
			owned = func(owner string) []*vpc.Instance {
				return slices.DeleteFunc(st.OwnedInstances(owner), func(i *vpc.Instance) bool { return i.State != vpc.InstanceRunning })
			}
		}
		is, next, err := describeOwned(c, st.Instances, owned, r)
		if err != nil {
			return err
		}
		set := res.set("instanceStatusSet")
		for _, i := range is {
			if !all && i.State != vpc.InstanceRunning {
				continue
			}
			it := set.item().s("instanceId", i.ID).s("availabilityZone", i.AvailabilityZone)
			renderState(it, "instanceState", i.State)
			sys, ins, _ := status(i)
			for _, x := range []struct{ name, st string }{{"systemStatus", sys}, {"instanceStatus", ins}} {
				s := it.el(x.name).s("status", x.st)
				if detail := map[string]string{"ok": "passed", "initializing": "initializing", "impaired": "failed"}[x.st]; detail != "" {
					s.set("details").item().s("name", "reachability").s("status", detail)
				}
			}
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

// elasticIPs returns owner's addresses that are elastic IPs: the ones it
// allocated, not the public IPs auto-assigned to its instances (which AWS
// does not list in DescribeAddresses nor count against the address limit).
func elasticIPs(st *vpc.State, owner string) map[string]*vpc.Address {
	out := map[string]*vpc.Address{}
	for _, a := range st.OwnedAddresses(owner) {
		if !a.AutoAssigned {
			out[a.AllocationID] = a
		}
	}
	return out
}
