package ec2

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("CreateSubnet", createSubnet)
	register("DeleteSubnet", deleteSubnet)
	register("DescribeSubnets", describeSubnets)
	register("ModifySubnetAttribute", modifySubnetAttribute)
	register("CreateInternetGateway", createInternetGateway)
	register("DeleteInternetGateway", deleteInternetGateway)
	register("AttachInternetGateway", attachInternetGateway)
	register("DetachInternetGateway", detachInternetGateway)
	register("DescribeInternetGateways", describeInternetGateways)
}

// zoneID is the AZ id AWS shows next to a zone name ("use1-az1").
func (s *Server) zoneID(zone string) string {
	i := slices.Index(s.cfg.Zones, zone)
	if i < 0 {
		return ""
	}
	return s.cfg.Region + "-az" + strconv.Itoa(i+1)
}

func (s *Server) zoneByID(id string) string {
	for _, z := range s.cfg.Zones {
		if s.zoneID(z) == id {
			return z
		}
	}
	return ""
}

func createSubnet(c *call) (*node, error) {
	vpcID, err := c.requiredID("VpcId", vpc.KindVpc)
	if err != nil {
		return nil, err
	}
	cidr, err := c.p.cidr("CidrBlock")
	if err != nil {
		return nil, err
	}
	az := c.p.str("AvailabilityZone")
	if azID := c.p.str("AvailabilityZoneId"); azID != "" {
		if az != "" {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterCombination, Message: "Give AvailabilityZone or AvailabilityZoneId, not both."}
		}
		if az = c.s.zoneByID(azID); az == "" {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter availabilityZoneId is invalid. Subnets can currently only be created in the following availability zones: %v.", azID, c.s.cfg.Zones)}
		}
	}
	if az != "" && !slices.Contains(c.s.cfg.Zones, az) {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: %v.", az, c.s.cfg.Zones)}
	}
	tags, err := c.p.tagSpecs("subnet")
	if err != nil {
		return nil, err
	}
	var out *vpc.Subnet
	var avail int
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		v, err := st.Vpc(c.acct, vpcID)
		if err != nil {
			return err
		}
		if err := vpc.CheckCreateSubnet(st, v, cidr, c.s.cfg.Limits); err != nil {
			return err
		}
		zone := az
		if zone == "" { // AWS picks one; spread by count
			zone = c.s.cfg.Zones[len(st.SubnetsOf(vpcID))%len(c.s.cfg.Zones)]
		}
		out = &vpc.Subnet{ID: newID(vpc.KindSubnet), OwnerID: c.acct, VpcID: vpcID, CidrBlock: cidr,
			AvailabilityZone: zone, State: vpc.StateAvailable, Tags: tags}
		avail = tx.State().AvailableIPAddressCount(out)
		return tx.Put(out.ID, out)
	})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	c.s.renderSubnet(res.el("subnet"), out, avail)
	return res, nil
}

func deleteSubnet(c *call) (*node, error) {
	id, err := c.requiredID("SubnetId", vpc.KindSubnet)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		sub, err := st.Subnet(c.acct, id)
		if err != nil {
			return err
		}
		return deleteSubnetObjects(st, tx, sub)
	})
}

// deleteSubnetObjects deletes a subnet in tx with its route table and ACL
// associations, or answers DependencyViolation while something is in it.
func deleteSubnetObjects(st *vpc.State, tx *nsdb.VPCTx, sub *vpc.Subnet) error {
	id := sub.ID
	if err := vpc.CheckDeleteSubnet(st, sub); err != nil {
		return err
	}
	// Its route table and ACL associations go with it.
	for _, t := range st.RouteTablesOf(sub.VpcID) {
		if i := slices.IndexFunc(t.Associations, func(a vpc.RouteTableAssociation) bool { return a.SubnetID == id }); i >= 0 {
			t = clone(t)
			t.Associations = slices.Delete(t.Associations, i, i+1)
			if err := tx.Put(t.ID, t); err != nil {
				return err
			}
		}
	}
	for _, a := range st.NetworkACLsOf(sub.VpcID) {
		if i := slices.IndexFunc(a.Associations, func(x vpc.NetworkACLAssociation) bool { return x.SubnetID == id }); i >= 0 {
			a = clone(a)
			a.Associations = slices.Delete(a.Associations, i, i+1)
			if err := tx.Put(a.ID, a); err != nil {
				return err
			}
		}
	}
	return tx.Delete("subnets", id)
}

func subnetResource(st *vpc.State, zoneID func(string) string, arn func(owner, rest string) string) resource[vpc.Subnet] {
	return resource[vpc.Subnet]{
		kind: vpc.KindSubnet, idParam: "SubnetId",
		id:    func(v *vpc.Subnet) string { return v.ID },
		owner: func(v *vpc.Subnet) string { return v.OwnerID },
		fields: func(s *vpc.Subnet) fields {
			f := fields{
				"subnet-id": {s.ID}, "vpc-id": {s.VpcID}, "cidr-block": {s.CidrBlock.String()},
				"cidr": {s.CidrBlock.String()}, "cidrBlock": {s.CidrBlock.String()},
				"availability-zone": {s.AvailabilityZone}, "availabilityZone": {s.AvailabilityZone},
				"default-for-az": {boolStr(s.DefaultForAz)}, "defaultForAz": {boolStr(s.DefaultForAz)},
				"map-public-ip-on-launch": {boolStr(s.MapPublicIPOnLaunch)},
				"owner-id":                {s.OwnerID}, "state": {s.State},
				"available-ip-address-count": nil, "availability-zone-id": nil, "subnet-arn": nil,
			}
			if s.ID != "" {
				f["availability-zone-id"] = []string{zoneID(s.AvailabilityZone)}
				f["subnet-arn"] = []string{arn(s.OwnerID, "subnet/"+s.ID)}
			}
			if s.ID != "" {
				f["available-ip-address-count"] = []string{strconv.Itoa(st.AvailableIPAddressCount(s))}
			}
			return f
		},
		tags: func(v *vpc.Subnet) vpc.Tags { return v.Tags }, maxPage: 1000,
	}
}

func describeSubnets(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		subs, next, err := describeOwned(c, st.Subnets, st.OwnedSubnets, subnetResource(st, c.s.zoneID, c.s.arn))
		if err != nil {
			return err
		}
		set := res.set("subnetSet")
		for _, s := range subs {
			c.s.renderSubnet(set.item(), s, st.AvailableIPAddressCount(s))
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func (s *Server) renderSubnet(n *node, sub *vpc.Subnet, avail int) {
	n.s("subnetId", sub.ID).s("subnetArn", "arn:aws:ec2:"+s.cfg.Region+":"+sub.OwnerID+":subnet/"+sub.ID)
	n.s("state", sub.State).s("ownerId", sub.OwnerID).s("vpcId", sub.VpcID).s("cidrBlock", sub.CidrBlock.String())
	n.set("ipv6CidrBlockAssociationSet")
	n.i("availableIpAddressCount", avail).s("availabilityZone", sub.AvailabilityZone).s("availabilityZoneId", s.zoneID(sub.AvailabilityZone))
	n.b("defaultForAz", sub.DefaultForAz).b("mapPublicIpOnLaunch", sub.MapPublicIPOnLaunch)
	n.b("mapCustomerOwnedIpOnLaunch", false).b("assignIpv6AddressOnCreation", false).b("ipv6Native", false).b("enableDns64", false)
	n.el("privateDnsNameOptionsOnLaunch").s("hostnameType", "ip-name").b("enableResourceNameDnsARecord", false).b("enableResourceNameDnsAAAARecord", false)
	n.el("blockPublicAccessStates").s("internetGatewayBlockMode", "off")
	n.tagSet(sub.Tags)
}

func modifySubnetAttribute(c *call) (*node, error) {
	id, err := c.requiredID("SubnetId", vpc.KindSubnet)
	if err != nil {
		return nil, err
	}
	mapPublic, err := c.p.optBool("MapPublicIpOnLaunch.Value")
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"AssignIpv6AddressOnCreation.Value", "MapCustomerOwnedIpOnLaunch.Value", "EnableDns64.Value", "EnableLniAtDeviceIndex", "PrivateDnsHostnameTypeOnLaunch"} {
		if c.p.has(k) {
			return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: fmt.Sprintf("The subnet attribute %s is not supported.", k)}
		}
	}
	if mapPublic == nil {
		// Terraform sends these with their default values; accept them as no-ops.
		return returnTrue(), c.read(func(st *vpc.State) error { _, err := st.Subnet(c.acct, id); return err })
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		sub, err := st.Subnet(c.acct, id)
		if err != nil {
			return err
		}
		sub = clone(sub)
		sub.MapPublicIPOnLaunch = *mapPublic
		return tx.Put(sub.ID, sub)
	})
}

// Internet gateways.

func createInternetGateway(c *call) (*node, error) {
	tags, err := c.p.tagSpecs("internet-gateway")
	if err != nil {
		return nil, err
	}
	var g *vpc.InternetGateway
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if len(ownedIDs(st.InternetGateways, c.acct, func(g *vpc.InternetGateway) string { return g.OwnerID })) >= c.s.cfg.Limits.InternetGatewaysPerAccount {
			return &vpc.Error{Code: vpc.CodeInternetGatewayLimitExceeded, Message: "The maximum number of internet gateways has been reached."}
		}
		g = &vpc.InternetGateway{ID: newID(vpc.KindInternetGW), OwnerID: c.acct, Tags: tags}
		return tx.Put(g.ID, g)
	})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	renderIGW(res.el("internetGateway"), g)
	return res, nil
}

func renderIGW(n *node, g *vpc.InternetGateway) {
	set := n.set("attachmentSet")
	for _, a := range g.Attachments {
		set.item().s("vpcId", a.VpcID).s("state", a.State)
	}
	n.s("internetGatewayId", g.ID).s("ownerId", g.OwnerID)
	n.tagSet(g.Tags)
}

func igwAndVpc(c *call) (string, string, error) {
	gid, err := c.requiredID("InternetGatewayId", vpc.KindInternetGW)
	if err != nil {
		return "", "", err
	}
	vid, err := c.requiredID("VpcId", vpc.KindVpc)
	return gid, vid, err
}

func attachInternetGateway(c *call) (*node, error) {
	gid, vid, err := igwAndVpc(c)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := st.InternetGateway(c.acct, gid)
		if err != nil {
			return err
		}
		v, err := st.Vpc(c.acct, vid)
		if err != nil {
			return err
		}
		if err := vpc.CheckAttachInternetGateway(st, g, v); err != nil {
			return err
		}
		g = clone(g)
		g.Attachments = append(g.Attachments, vpc.IGWAttachment{VpcID: vid, State: vpc.StateAvailable})
		// Routes left as blackholes by a detach of this gateway work again,
		// as on AWS.
		if err := setGatewayRoutes(st, tx, vid, gid, vpc.RouteActive); err != nil {
			return err
		}
		return tx.Put(g.ID, g)
	})
}

// setGatewayRoutes sets the state of every route in the VPC's route tables
// that targets gateway gid.
func setGatewayRoutes(st *vpc.State, tx *nsdb.VPCTx, vid, gid, state string) error {
	for _, t := range st.RouteTablesOf(vid) {
		if !slices.ContainsFunc(t.Routes, func(r vpc.Route) bool { return r.GatewayID == gid && r.State != state }) {
			continue
		}
		t2 := clone(t)
		for i := range t2.Routes {
			if t2.Routes[i].GatewayID == gid {
				t2.Routes[i].State = state
			}
		}
		if err := tx.Put(t2.ID, t2); err != nil {
			return err
		}
	}
	return nil
}

func detachInternetGateway(c *call) (*node, error) {
	gid, vid, err := igwAndVpc(c)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := st.InternetGateway(c.acct, gid)
		if err != nil {
			return err
		}
		if _, err := st.Vpc(c.acct, vid); err != nil {
			return err
		}
		if err := vpc.CheckDetachInternetGateway(st, g, vid); err != nil {
			return err
		}
		g = clone(g)
		g.Attachments = slices.DeleteFunc(g.Attachments, func(a vpc.IGWAttachment) bool { return a.VpcID == vid })
		// Routes through it stay, as blackholes, as on AWS.
		if err := setGatewayRoutes(st, tx, vid, gid, vpc.RouteBlackhole); err != nil {
			return err
		}
		return tx.Put(g.ID, g)
	})
}

func deleteInternetGateway(c *call) (*node, error) {
	gid, err := c.requiredID("InternetGatewayId", vpc.KindInternetGW)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := st.InternetGateway(c.acct, gid)
		if err != nil {
			return err
		}
		if err := vpc.CheckDeleteInternetGateway(g); err != nil {
			return err
		}
		return tx.Delete("internet_gateways", gid)
	})
}

var igwResource = resource[vpc.InternetGateway]{
	kind: vpc.KindInternetGW, idParam: "InternetGatewayId",
	id:    func(v *vpc.InternetGateway) string { return v.ID },
	owner: func(v *vpc.InternetGateway) string { return v.OwnerID },
	fields: func(g *vpc.InternetGateway) fields {
		f := fields{"internet-gateway-id": {g.ID}, "owner-id": {g.OwnerID}, "attachment.vpc-id": nil, "attachment.state": nil}
		for _, a := range g.Attachments {
			f["attachment.vpc-id"] = append(f["attachment.vpc-id"], a.VpcID)
			f["attachment.state"] = append(f["attachment.state"], a.State)
		}
		return f
	},
	tags: func(v *vpc.InternetGateway) vpc.Tags { return v.Tags }, maxPage: 1000,
}

func describeInternetGateways(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		gs, next, err := describeOwned(c, st.InternetGateways, st.OwnedInternetGateways, igwResource)
		if err != nil {
			return err
		}
		set := res.set("internetGatewaySet")
		for _, g := range gs {
			renderIGW(set.item(), g)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}
