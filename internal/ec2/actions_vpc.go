package ec2

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("CreateVpc", createVpc)
	register("DeleteVpc", deleteVpc)
	register("DescribeVpcs", describeVpcs)
	register("ModifyVpcAttribute", modifyVpcAttribute)
	register("DescribeVpcAttribute", describeVpcAttribute)
}

// clone deep-copies a vpc object. The store's objects are shared with
// readers, so a change is always made to a copy that is then Put.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ec2: clone %T: %v", v, err))
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("ec2: clone %T: %v", v, err))
	}
	return out
}

func cloneVpc(v *vpc.Vpc) *vpc.Vpc                      { return clone(v) }
func cloneRouteTable(t *vpc.RouteTable) *vpc.RouteTable { return clone(t) }

var (
	allIPv4    = netip.MustParsePrefix("0.0.0.0/0")
	allowAllIn = vpc.NetworkACLEntry{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: allIPv4}
)

// putNewVpc creates a VPC with what AWS creates along with it: the main
// route table (local route), the default security group (ingress from
// itself, egress to all) and the default network ACL (rule 100 allow all,
// 32767 deny all, both directions).
func (s *Server) putNewVpc(tx *nsdb.VPCTx, owner string, cidr netip.Prefix, isDefault bool, tags vpc.Tags) (*vpc.Vpc, error) {
	st := tx.State()
	idx := st.AllocTransitIndex()
	if idx == 0 {
		return nil, &vpc.Error{Code: vpc.CodeVpcLimitExceeded, Message: "The cloud has no room for another VPC router."}
	}
	dopt := vpc.DefaultDhcpOptions
	for _, o := range st.OwnedVpcs(owner) {
		if o.IsDefault {
			dopt = o.DhcpOptionsID
		}
	}
	v := &vpc.Vpc{ID: newID(vpc.KindVpc), OwnerID: owner, CidrBlock: cidr, DhcpOptionsID: dopt,
		State: vpc.StateAvailable, IsDefault: isDefault, InstanceTenancy: "default",
		EnableDNSSupport: true, Tags: tags, TransitIndex: idx}
	rt := &vpc.RouteTable{ID: newID(vpc.KindRouteTable), OwnerID: owner, VpcID: v.ID,
		Routes:       []vpc.Route{{DestinationCidrBlock: cidr, GatewayID: vpc.LocalGateway, Origin: vpc.OriginCreateRouteTable, State: vpc.RouteActive}},
		Associations: []vpc.RouteTableAssociation{{ID: newID(vpc.KindRTBAssoc), Main: true, State: "associated"}}}
	sg := &vpc.SecurityGroup{ID: newID(vpc.KindSecurityGroup), OwnerID: owner, VpcID: v.ID,
		GroupName: vpc.DefaultGroupName, Description: "default VPC security group"}
	sg.Ingress = []vpc.SecurityGroupRule{{ID: newID(vpc.KindSGRule), IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: sg.ID}}
	sg.Egress = []vpc.SecurityGroupRule{{ID: newID(vpc.KindSGRule), IsEgress: true, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: allIPv4}}
	acl := &vpc.NetworkACL{ID: newID(vpc.KindNetworkACL), OwnerID: owner, VpcID: v.ID, IsDefault: true, Entries: defaultACLEntries(true)}
	for _, o := range []struct {
		id  string
		obj any
	}{{v.ID, v}, {rt.ID, rt}, {sg.ID, sg}, {acl.ID, acl}} {
		if err := tx.Put(o.id, o.obj); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// defaultACLEntries are a new ACL's entries: the default VPC ACL allows all
// (rule 100) before the final deny; a custom ACL has only the denies.
func defaultACLEntries(allowAll bool) []vpc.NetworkACLEntry {
	var out []vpc.NetworkACLEntry
	for _, eg := range []bool{false, true} {
		if allowAll {
			e := allowAllIn
			e.Egress = eg
			out = append(out, e)
		}
		out = append(out, vpc.NetworkACLEntry{RuleNumber: vpc.DefaultRuleNumber, Egress: eg, Protocol: "-1", RuleAction: vpc.ACLDeny, CidrBlock: allIPv4})
	}
	return out
}

func createVpc(c *call) (*node, error) {
	cidr, err := c.p.cidr("CidrBlock")
	if err != nil {
		return nil, err
	}
	if t := c.p.str("InstanceTenancy"); t != "" && t != "default" {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter instanceTenancy is invalid: only default tenancy is offered.", t)}
	}
	if ok, _ := c.p.boolean("AmazonProvidedIpv6CidrBlock", false); ok || c.p.has("Ipv6CidrBlock") || c.p.has("Ipv4IpamPoolId") {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "IPv6 blocks and IPAM pools are not supported."}
	}
	tags, err := c.p.tagSpecs("vpc")
	if err != nil {
		return nil, err
	}
	var out *vpc.Vpc
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if err := vpc.CheckCreateVpc(st, c.acct, cidr, c.s.cfg.Limits); err != nil {
			return err
		}
		v, err := c.s.putNewVpc(tx, c.acct, cidr, false, tags)
		out = v
		return err
	})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	renderVpc(res.el("vpc"), out)
	return res, nil
}

func deleteVpc(c *call) (*node, error) {
	id, err := c.requiredID("VpcId", vpc.KindVpc)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		v, err := st.Vpc(c.acct, id)
		if err != nil {
			return err
		}
		if err := vpc.CheckDeleteVpc(st, v); err != nil {
			return err
		}
		return deleteVpcObjects(st, tx, id)
	})
}

// deleteVpcObjects deletes a VPC that CheckDeleteVpc let go, with the
// defaults that go with it.
func deleteVpcObjects(st *vpc.State, tx *nsdb.VPCTx, id string) error {
	// The defaults go with the VPC.
	for _, t := range st.RouteTablesOf(id) {
		if err := tx.Delete("route_tables", t.ID); err != nil {
			return err
		}
	}
	for _, a := range st.NetworkACLsOf(id) {
		if err := tx.Delete("network_acls", a.ID); err != nil {
			return err
		}
	}
	for _, g := range st.SecurityGroupsOf(id) {
		if err := tx.Delete("security_groups", g.ID); err != nil {
			return err
		}
	}
	for _, n := range st.NatGatewaysOf(id) { // only deleted ones remain
		if err := tx.Delete("nat_gateways", n.ID); err != nil {
			return err
		}
	}
	return tx.Delete("vpcs", id)
}

func vpcFields(v *vpc.Vpc) fields {
	return fields{
		"vpc-id":                                {v.ID},
		"cidr":                                  {v.CidrBlock.String()},
		"cidr-block":                            {v.CidrBlock.String()},
		"cidr-block-association.cidr-block":     {v.CidrBlock.String()},
		"cidr-block-association.state":          {"associated"},
		"cidr-block-association.association-id": {vpcCidrAssoc(v)},
		"dhcp-options-id":                       {v.DhcpOptionsID},
		"is-default":                            {boolStr(v.IsDefault)},
		"owner-id":                              {v.OwnerID},
		"state":                                 {v.State},
		"instance-tenancy":                      {v.InstanceTenancy},
	}
}

// vpcCidrAssoc is the association id of a VPC's primary block, derived
// from the VPC id so it is stable.
func vpcCidrAssoc(v *vpc.Vpc) string {
	if len(v.ID) < 4 {
		return ""
	}
	return "vpc-cidr-assoc-" + v.ID[4:]
}

var vpcResource = resource[vpc.Vpc]{
	kind: vpc.KindVpc, idParam: "VpcId",
	id:     func(v *vpc.Vpc) string { return v.ID },
	owner:  func(v *vpc.Vpc) string { return v.OwnerID },
	fields: vpcFields, tags: func(v *vpc.Vpc) vpc.Tags { return v.Tags }, maxPage: 1000,
}

func describeVpcs(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		vs, next, err := describeOwned(c, st.Vpcs, st.OwnedVpcs, vpcResource)
		if err != nil {
			return err
		}
		set := res.set("vpcSet")
		for _, v := range vs {
			renderVpc(set.item(), v)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func renderVpc(n *node, v *vpc.Vpc) {
	n.s("vpcId", v.ID).s("ownerId", v.OwnerID).s("state", v.State).s("cidrBlock", v.CidrBlock.String())
	a := n.set("cidrBlockAssociationSet").item()
	a.s("associationId", vpcCidrAssoc(v)).s("cidrBlock", v.CidrBlock.String())
	a.el("cidrBlockState").s("state", "associated")
	n.set("ipv6CidrBlockAssociationSet")
	n.s("dhcpOptionsId", v.DhcpOptionsID).s("instanceTenancy", v.InstanceTenancy).b("isDefault", v.IsDefault)
	n.el("blockPublicAccessStates").s("internetGatewayBlockMode", "off")
	n.tagSet(v.Tags)
}

func modifyVpcAttribute(c *call) (*node, error) {
	id, err := c.requiredID("VpcId", vpc.KindVpc)
	if err != nil {
		return nil, err
	}
	support, err := c.p.optBool("EnableDnsSupport.Value")
	if err != nil {
		return nil, err
	}
	hostnames, err := c.p.optBool("EnableDnsHostnames.Value")
	if err != nil {
		return nil, err
	}
	metrics, err := c.p.optBool("EnableNetworkAddressUsageMetrics.Value")
	if err != nil {
		return nil, err
	}
	n := 0
	for _, b := range []*bool{support, hostnames, metrics} {
		if b != nil {
			n++
		}
	}
	if n != 1 {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterCombination, Message: "Exactly one attribute (EnableDnsSupport, EnableDnsHostnames) must be given."}
	}
	if metrics != nil {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "enableNetworkAddressUsageMetrics is not supported."}
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		v, err := st.Vpc(c.acct, id)
		if err != nil {
			return err
		}
		v = cloneVpc(v)
		if support != nil {
			v.EnableDNSSupport = *support
		}
		if hostnames != nil {
			v.EnableDNSHostnames = *hostnames
		}
		return tx.Put(v.ID, v)
	})
}

func describeVpcAttribute(c *call) (*node, error) {
	id, err := c.requiredID("VpcId", vpc.KindVpc)
	if err != nil {
		return nil, err
	}
	attr, err := c.p.required("Attribute")
	if err != nil {
		return nil, err
	}
	res := newNode("")
	err = c.read(func(st *vpc.State) error {
		v, err := st.Vpc(c.acct, id)
		if err != nil {
			return err
		}
		res.s("vpcId", v.ID)
		switch attr {
		case "enableDnsSupport":
			res.el("enableDnsSupport").b("value", v.EnableDNSSupport)
		case "enableDnsHostnames":
			res.el("enableDnsHostnames").b("value", v.EnableDNSHostnames)
		case "enableNetworkAddressUsageMetrics":
			res.el("enableNetworkAddressUsageMetrics").b("value", false)
		default:
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)}
		}
		return nil
	})
	return res, err
}
