package ec2

import (
	"fmt"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("CreateRouteTable", createRouteTable)
	register("DeleteRouteTable", deleteRouteTable)
	register("DescribeRouteTables", describeRouteTables)
	register("CreateRoute", func(c *call) (*node, error) { return putRoute(c, false) })
	register("ReplaceRoute", func(c *call) (*node, error) { return putRoute(c, true) })
	register("DeleteRoute", deleteRoute)
	register("AssociateRouteTable", associateRouteTable)
	register("DisassociateRouteTable", disassociateRouteTable)
	register("ReplaceRouteTableAssociation", replaceRouteTableAssociation)
}

func createRouteTable(c *call) (*node, error) {
	vpcID, err := c.requiredID("VpcId", vpc.KindVpc)
	if err != nil {
		return nil, err
	}
	tags, err := c.p.tagSpecs("route-table")
	if err != nil {
		return nil, err
	}
	out, err := createOnce(c, func(st *vpc.State, id string) (*vpc.RouteTable, error) { return st.RouteTable(c.acct, id) },
		func(st *vpc.State, tx *nsdb.VPCTx) (*vpc.RouteTable, string, error) {
			v, err := st.Vpc(c.acct, vpcID)
			if err != nil {
				return nil, "", err
			}
			if err := vpc.CheckCreateRouteTable(st, vpcID, c.s.cfg.Limits); err != nil {
				return nil, "", err
			}
			t := &vpc.RouteTable{ID: newID(vpc.KindRouteTable), OwnerID: c.acct, VpcID: vpcID, Tags: tags,
				Routes: []vpc.Route{{DestinationCidrBlock: v.CidrBlock, GatewayID: vpc.LocalGateway, Origin: vpc.OriginCreateRouteTable, State: vpc.RouteActive}}}
			return t, t.ID, tx.Put(t.ID, t)
		})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	renderRouteTable(res.el("routeTable"), out)
	res.opt("clientToken", c.p.str("ClientToken"))
	return res, nil
}

func deleteRouteTable(c *call) (*node, error) {
	id, err := c.requiredID("RouteTableId", vpc.KindRouteTable)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		t, err := st.RouteTable(c.acct, id)
		if err != nil {
			return err
		}
		if err := vpc.CheckDeleteRouteTable(t); err != nil {
			return err
		}
		return tx.Delete("route_tables", id)
	})
}

var rtbResource = resource[vpc.RouteTable]{
	kind: vpc.KindRouteTable, idParam: "RouteTableId",
	id:    func(v *vpc.RouteTable) string { return v.ID },
	owner: func(v *vpc.RouteTable) string { return v.OwnerID },
	fields: func(t *vpc.RouteTable) fields {
		f := fields{"route-table-id": {t.ID}, "vpc-id": {t.VpcID}, "owner-id": {t.OwnerID},
			"association.main": nil, "association.route-table-association-id": nil, "association.route-table-id": nil,
			"association.subnet-id": nil, "association.association-state": nil,
			"route.destination-cidr-block": nil, "route.gateway-id": nil, "route.nat-gateway-id": nil,
			"route.network-interface-id": nil, "route.instance-id": nil, "route.origin": nil, "route.state": nil}
		main := false
		for _, a := range t.Associations {
			main = main || a.Main
			f["association.route-table-association-id"] = append(f["association.route-table-association-id"], a.ID)
			f["association.route-table-id"] = append(f["association.route-table-id"], t.ID)
			f["association.association-state"] = append(f["association.association-state"], a.State)
			if a.SubnetID != "" {
				f["association.subnet-id"] = append(f["association.subnet-id"], a.SubnetID)
			}
		}
		if t.ID != "" {
			f["association.main"] = []string{boolStr(main)}
		}
		for _, r := range t.Routes {
			f["route.destination-cidr-block"] = append(f["route.destination-cidr-block"], r.DestinationCidrBlock.String())
			add := func(k, v string) {
				if v != "" {
					f[k] = append(f[k], v)
				}
			}
			add("route.gateway-id", r.GatewayID)
			add("route.nat-gateway-id", r.NatGatewayID)
			add("route.network-interface-id", r.NetworkInterfaceID)
			add("route.instance-id", r.InstanceID)
			add("route.origin", r.Origin)
			add("route.state", r.State)
		}
		return f
	},
	tags: func(v *vpc.RouteTable) vpc.Tags { return v.Tags }, maxPage: 100,
}

func describeRouteTables(c *call) (*node, error) {
	// A well-formed id of another kind (terraform's aws_default_route_table
	// given a VPC id) names no route table: AWS answers NotFound, not
	// Malformed.
	for _, id := range c.p.list("RouteTableId") {
		if vpc.ParseID(vpc.KindRouteTable, id) != nil && otherKindID(id) {
			return nil, vpc.KindRouteTable.NotFoundError(id)
		}
	}
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		ts, next, err := describeOwned(c, st.RouteTables, st.OwnedRouteTables, rtbResource)
		if err != nil {
			return err
		}
		set := res.set("routeTableSet")
		for _, t := range ts {
			renderRouteTable(set.item(), t)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func renderRouteTable(n *node, t *vpc.RouteTable) {
	n.s("routeTableId", t.ID).s("vpcId", t.VpcID).s("ownerId", t.OwnerID)
	rs := n.set("routeSet")
	for _, r := range t.Routes {
		it := rs.item().s("destinationCidrBlock", r.DestinationCidrBlock.String())
		it.opt("gatewayId", r.GatewayID).opt("natGatewayId", r.NatGatewayID).opt("networkInterfaceId", r.NetworkInterfaceID).opt("instanceId", r.InstanceID)
		if r.InstanceID != "" {
			it.s("instanceOwnerId", t.OwnerID)
		}
		it.s("state", r.State).s("origin", r.Origin)
	}
	as := n.set("associationSet")
	for _, a := range t.Associations {
		it := as.item().s("routeTableAssociationId", a.ID).s("routeTableId", t.ID)
		it.opt("subnetId", a.SubnetID).b("main", a.Main)
		it.el("associationState").s("state", a.State)
	}
	n.set("propagatingVgwSet")
	n.tagSet(t.Tags)
}

// routeParams reads a route's destination and target.
func routeParams(c *call) (string, vpc.Route, error) {
	id, err := c.requiredID("RouteTableId", vpc.KindRouteTable)
	if err != nil {
		return "", vpc.Route{}, err
	}
	for _, k := range []string{"DestinationIpv6CidrBlock", "DestinationPrefixListId", "EgressOnlyInternetGatewayId", "VpcPeeringConnectionId", "TransitGatewayId", "LocalGatewayId", "CarrierGatewayId", "VpcEndpointId", "CoreNetworkArn"} {
		if c.p.str(k) != "" {
			return "", vpc.Route{}, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: fmt.Sprintf("Routes with %s are not supported.", k)}
		}
	}
	d, err := c.p.cidr("DestinationCidrBlock")
	if err != nil {
		return "", vpc.Route{}, err
	}
	r := vpc.Route{DestinationCidrBlock: d, GatewayID: c.p.str("GatewayId"), NatGatewayID: c.p.str("NatGatewayId"),
		NetworkInterfaceID: c.p.str("NetworkInterfaceId"), InstanceID: c.p.str("InstanceId"),
		Origin: vpc.OriginCreateRoute, State: vpc.RouteActive}
	if g := r.GatewayID; g != "" && g != vpc.LocalGateway {
		if err := vpc.ParseID(vpc.KindInternetGW, g); err != nil {
			return "", vpc.Route{}, &vpc.Error{Code: vpc.CodeInvalidGatewayIDNotFound, Message: fmt.Sprintf("The gateway ID '%s' does not exist", g)}
		}
	}
	if ok, _ := c.p.boolean("LocalTarget", false); ok {
		r.GatewayID = vpc.LocalGateway
	}
	return id, r, nil
}

func putRoute(c *call, replace bool) (*node, error) {
	id, r, err := routeParams(c)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		t, err := st.RouteTable(c.acct, id)
		if err != nil {
			return err
		}
		if err := vpc.CheckRoute(st, t, r, replace, c.s.cfg.Limits); err != nil {
			return err
		}
		t = clone(t)
		if i := slices.IndexFunc(t.Routes, func(x vpc.Route) bool { return x.DestinationCidrBlock == r.DestinationCidrBlock }); i >= 0 {
			t.Routes[i] = r
		} else {
			t.Routes = append(t.Routes, r)
		}
		return tx.Put(t.ID, t)
	})
}

func deleteRoute(c *call) (*node, error) {
	id, err := c.requiredID("RouteTableId", vpc.KindRouteTable)
	if err != nil {
		return nil, err
	}
	d, err := c.p.cidr("DestinationCidrBlock")
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		t, err := st.RouteTable(c.acct, id)
		if err != nil {
			return err
		}
		if err := vpc.CheckDeleteRoute(t, d); err != nil {
			return err
		}
		t = clone(t)
		t.Routes = slices.DeleteFunc(t.Routes, func(x vpc.Route) bool { return x.DestinationCidrBlock == d })
		return tx.Put(t.ID, t)
	})
}

func associateRouteTable(c *call) (*node, error) {
	id, err := c.requiredID("RouteTableId", vpc.KindRouteTable)
	if err != nil {
		return nil, err
	}
	if c.p.str("GatewayId") != "" {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "Gateway route table associations are not supported."}
	}
	subID, err := c.requiredID("SubnetId", vpc.KindSubnet)
	if err != nil {
		return nil, err
	}
	assoc := newID(vpc.KindRTBAssoc)
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		t, err := st.RouteTable(c.acct, id)
		if err != nil {
			return err
		}
		sub, err := st.Subnet(c.acct, subID)
		if err != nil {
			return err
		}
		if err := vpc.CheckAssociateRouteTable(st, t, sub); err != nil {
			return err
		}
		t = clone(t)
		t.Associations = append(t.Associations, vpc.RouteTableAssociation{ID: assoc, SubnetID: subID, State: "associated"})
		return tx.Put(t.ID, t)
	})
	if err != nil {
		return nil, err
	}
	res := newNode("").s("associationId", assoc)
	res.el("associationState").s("state", "associated")
	return res, nil
}

// findRTBAssoc finds the caller's route table holding association id.
func findRTBAssoc(st *vpc.State, owner, id string) (*vpc.RouteTable, int, error) {
	for _, t := range st.OwnedRouteTables(owner) {
		for i, a := range t.Associations {
			if a.ID == id {
				return t, i, nil
			}
		}
	}
	return nil, 0, vpc.KindRTBAssoc.NotFoundError(id)
}

func disassociateRouteTable(c *call) (*node, error) {
	id, err := c.requiredID("AssociationId", vpc.KindRTBAssoc)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		t, i, err := findRTBAssoc(st, c.acct, id)
		if err != nil {
			return err
		}
		if t.Associations[i].Main {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("cannot disassociate the main route table association %s", id)}
		}
		t = clone(t)
		t.Associations = slices.Delete(t.Associations, i, i+1)
		return tx.Put(t.ID, t)
	})
}

// replaceRouteTableAssociation moves an association (a subnet's, or the
// main one) to another table of the same VPC, under a new association id.
func replaceRouteTableAssociation(c *call) (*node, error) {
	id, err := c.requiredID("AssociationId", vpc.KindRTBAssoc)
	if err != nil {
		return nil, err
	}
	to, err := c.requiredID("RouteTableId", vpc.KindRouteTable)
	if err != nil {
		return nil, err
	}
	assoc := newID(vpc.KindRTBAssoc)
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		from, i, err := findRTBAssoc(st, c.acct, id)
		if err != nil {
			return err
		}
		dst, err := st.RouteTable(c.acct, to)
		if err != nil {
			return err
		}
		if dst.VpcID != from.VpcID {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Route table %s is not in the VPC of association %s.", to, id)}
		}
		a := from.Associations[i]
		a.ID = assoc
		from = clone(from)
		from.Associations = slices.Delete(from.Associations, i, i+1)
		if err := tx.Put(from.ID, from); err != nil {
			return err
		}
		dst = clone(tx.State().RouteTables[to]) // may be from itself
		dst.Associations = append(dst.Associations, a)
		return tx.Put(dst.ID, dst)
	})
	if err != nil {
		return nil, err
	}
	res := newNode("").s("newAssociationId", assoc)
	res.el("associationState").s("state", "associated")
	return res, nil
}

// otherKindID reports whether id looks like an EC2 id of some kind: a
// lowercase prefix, a dash, 8 or 17 lowercase hex digits.
func otherKindID(id string) bool {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return false
	}
	return vpc.ParseID(vpc.IDKind{Prefix: id[:i]}, id) == nil
}
