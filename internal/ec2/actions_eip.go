package ec2

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("AllocateAddress", allocateAddress)
	register("AssociateAddress", associateAddress)
	register("DisassociateAddress", disassociateAddress)
	register("ReleaseAddress", releaseAddress)
	register("DescribeAddresses", describeAddresses)
	register("CreateNatGateway", createNatGateway)
	register("DeleteNatGateway", deleteNatGateway)
	register("DescribeNatGateways", describeNatGateways)
}

func allocateAddress(c *call) (*node, error) {
	if d := c.p.str("Domain"); d != "" && d != "vpc" {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "Only Domain=vpc addresses are offered."}
	}
	if c.p.str("Address") != "" || c.p.str("PublicIpv4Pool") != "" || c.p.str("CustomerOwnedIpv4Pool") != "" || c.p.str("IpamPoolId") != "" {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "Choosing the address or pool is not supported."}
	}
	tags, err := c.p.tagSpecs("elastic-ip")
	if err != nil {
		return nil, err
	}
	var a *vpc.Address
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if len(ownedIDs(elasticIPs(st, c.acct), c.acct, func(a *vpc.Address) string { return a.OwnerID })) >= c.s.cfg.Limits.AddressesPerAccount {
			return &vpc.Error{Code: vpc.CodeAddressLimitExceeded, Message: "The maximum number of addresses has been reached."}
		}
		ip, err := c.s.allocPublicIP(st)
		if err != nil {
			return err
		}
		a = &vpc.Address{AllocationID: newID(vpc.KindAllocation), OwnerID: c.acct, PublicIP: ip, Domain: "vpc", Tags: tags}
		return tx.Put(a.AllocationID, a)
	})
	if err != nil {
		return nil, err
	}
	res := newNode("").s("publicIp", a.PublicIP.String()).s("domain", "vpc").s("allocationId", a.AllocationID)
	res.s("publicIpv4Pool", "canopy").s("networkBorderGroup", c.s.cfg.Region)
	return res, nil
}

// addressByParam resolves AllocationId (or the legacy PublicIp).
func addressByParam(c *call, st *vpc.State) (*vpc.Address, error) {
	if id := c.p.str("AllocationId"); id != "" {
		if err := vpc.ParseID(vpc.KindAllocation, id); err != nil {
			return nil, err
		}
		return st.Address(c.acct, id)
	}
	if ip := c.p.str("PublicIp"); ip != "" {
		for _, a := range st.OwnedAddresses(c.acct) {
			if a.PublicIP.String() == ip {
				return a, nil
			}
		}
		return nil, &vpc.Error{Code: vpc.CodeInvalidAddressNotFound, Message: fmt.Sprintf("Address '%s' not found.", ip)}
	}
	return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter AllocationId"}
}

func associateAddress(c *call) (*node, error) {
	assoc := newID(vpc.KindEIPAssociation)
	reassoc, err := c.p.boolean("AllowReassociation", false)
	if err != nil {
		return nil, err
	}
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		a, err := addressByParam(c, st)
		if err != nil {
			return err
		}
		var e *vpc.NetworkInterface
		switch {
		case c.p.str("NetworkInterfaceId") != "":
			id := c.p.str("NetworkInterfaceId")
			if err := vpc.ParseID(vpc.KindInterface, id); err != nil {
				return err
			}
			if e, err = st.NetworkInterface(c.acct, id); err != nil {
				return err
			}
		case c.p.str("InstanceId") != "":
			id := c.p.str("InstanceId")
			if err := vpc.ParseID(vpc.KindInstance, id); err != nil {
				return err
			}
			if _, err := st.Instance(c.acct, id); err != nil {
				return err
			}
			if e = st.PrimaryInterface(id); e == nil {
				return &vpc.Error{Code: vpc.CodeInvalidInstanceID, Message: fmt.Sprintf("Instance %s has no network interface.", id)}
			}
		default:
			return &vpc.Error{Code: vpc.CodeMissingParameter, Message: "Either an instance ID or a network interface ID must be specified."}
		}
		priv := e.PrimaryIP()
		if v := c.p.str("PrivateIpAddress"); v != "" {
			if priv, err = vpc.ParseIP("privateIpAddress", v); err != nil {
				return err
			}
			if !slices.ContainsFunc(e.PrivateIPs, func(p vpc.PrivateIP) bool { return p.Address == priv }) {
				return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The private address %s is not on interface %s.", priv, e.ID)}
			}
		}
		if st.InternetGatewayOf(e.VpcID) == nil {
			return &vpc.Error{Code: vpc.CodeGatewayNotAttached, Message: fmt.Sprintf("Network %s is not attached to any internet gateway.", e.VpcID)}
		}
		if a.AssociationID != "" && !reassoc {
			return &vpc.Error{Code: vpc.CodeResourceAlreadyAssociated, Message: fmt.Sprintf("resource %s is already associated with associate-id %s", a.AllocationID, a.AssociationID)}
		}
		for _, o := range st.AddressesOfInterface(e.ID) {
			if o.AllocationID != a.AllocationID && o.PrivateIPAddress == priv && o.AutoAssigned {
				// An instance's auto-assigned public IP makes way for the
				// elastic IP and goes back to the pool, as on AWS.
				if err := tx.Delete("addresses", o.AllocationID); err != nil {
					return err
				}
				continue
			}
			if o.AllocationID != a.AllocationID && o.PrivateIPAddress == priv {
				if !reassoc {
					return &vpc.Error{Code: vpc.CodeResourceAlreadyAssociated, Message: fmt.Sprintf("The address %s already has elastic IP %s.", priv, o.PublicIP)}
				}
				o = clone(o)
				o.AssociationID, o.NetworkInterfaceID, o.PrivateIPAddress, o.InstanceID = "", "", netip.Addr{}, ""
				if err := tx.Put(o.AllocationID, o); err != nil {
					return err
				}
			}
		}
		a = clone(a)
		a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress = assoc, e.ID, priv
		if e.Attachment != nil {
			a.InstanceID = e.Attachment.InstanceID
		}
		return tx.Put(a.AllocationID, a)
	})
	if err != nil {
		return nil, err
	}
	return newNode("").s("associationId", assoc), nil
}

func disassociateAddress(c *call) (*node, error) {
	id := c.p.str("AssociationId")
	if id == "" && c.p.str("PublicIp") == "" {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter AssociationId"}
	}
	if id != "" {
		if err := vpc.ParseID(vpc.KindEIPAssociation, id); err != nil {
			return nil, err
		}
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, a := range st.OwnedAddresses(c.acct) {
			if a.AssociationID == "" || (id != "" && a.AssociationID != id) || (id == "" && a.PublicIP.String() != c.p.str("PublicIp")) {
				continue
			}
			if e := st.NetworkInterfaces[a.NetworkInterfaceID]; e != nil && e.InterfaceType == vpc.InterfaceTypeNatGateway {
				return &vpc.Error{Code: vpc.CodeOperationNotPermitted, Message: "The address is used by a NAT gateway."}
			}
			a = clone(a)
			a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress, a.InstanceID = "", "", netip.Addr{}, ""
			return tx.Put(a.AllocationID, a)
		}
		return vpc.KindEIPAssociation.NotFoundError(id)
	})
}

func releaseAddress(c *call) (*node, error) {
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		a, err := addressByParam(c, st)
		if err != nil {
			return err
		}
		if err := vpc.CheckReleaseAddress(st, a); err != nil {
			return err
		}
		return tx.Delete("addresses", a.AllocationID)
	})
}

var addrResource = resource[vpc.Address]{
	kind: vpc.KindAllocation, idParam: "AllocationId",
	id:    func(a *vpc.Address) string { return a.AllocationID },
	owner: func(a *vpc.Address) string { return a.OwnerID },
	fields: func(a *vpc.Address) fields {
		f := fields{"allocation-id": {a.AllocationID}, "association-id": nil, "domain": {"vpc"}, "public-ip": {a.PublicIP.String()},
			"network-interface-id": nil, "private-ip-address": nil, "instance-id": nil, "network-interface-owner-id": nil}
		if a.AssociationID != "" {
			f["association-id"] = []string{a.AssociationID}
			f["network-interface-id"] = []string{a.NetworkInterfaceID}
			f["private-ip-address"] = []string{a.PrivateIPAddress.String()}
			f["network-interface-owner-id"] = []string{a.OwnerID}
		}
		if a.InstanceID != "" {
			f["instance-id"] = []string{a.InstanceID}
		}
		return f
	},
	tags: func(a *vpc.Address) vpc.Tags { return a.Tags },
}

func describeAddresses(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		as, _, err := describe(c, elasticIPs(st, c.acct), addrResource)
		if err != nil {
			return err
		}
		if ips := c.p.list("PublicIp"); len(ips) > 0 {
			var keep []*vpc.Address
			for _, ip := range ips {
				i := slices.IndexFunc(as, func(a *vpc.Address) bool { return a.PublicIP.String() == ip })
				if i < 0 {
					return &vpc.Error{Code: vpc.CodeInvalidAddressNotFound, Message: fmt.Sprintf("Address '%s' not found.", ip)}
				}
				keep = append(keep, as[i])
			}
			as = keep
		}
		set := res.set("addressesSet")
		for _, a := range as {
			it := set.item().s("publicIp", a.PublicIP.String()).s("allocationId", a.AllocationID).s("domain", "vpc")
			if a.AssociationID != "" {
				it.s("associationId", a.AssociationID).s("networkInterfaceId", a.NetworkInterfaceID).s("networkInterfaceOwnerId", a.OwnerID)
				it.s("privateIpAddress", a.PrivateIPAddress.String()).opt("instanceId", a.InstanceID)
			}
			it.s("publicIpv4Pool", "canopy").s("networkBorderGroup", c.s.cfg.Region)
			it.tagSet(a.Tags)
		}
		return nil
	})
	return res, err
}

// NAT gateways.

func createNatGateway(c *call) (*node, error) {
	subID, err := c.requiredID("SubnetId", vpc.KindSubnet)
	if err != nil {
		return nil, err
	}
	if ct := c.p.str("ConnectivityType"); ct != "" && ct != "public" {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "Only public NAT gateways are supported."}
	}
	allocID, err := c.requiredID("AllocationId", vpc.KindAllocation)
	if err != nil {
		return nil, err
	}
	tags, err := c.p.tagSpecs("natgateway")
	if err != nil {
		return nil, err
	}
	out, err := createOnce(c, func(st *vpc.State, id string) (*vpc.NatGateway, error) { return st.NatGateway(c.acct, id) },
		func(st *vpc.State, tx *nsdb.VPCTx) (*vpc.NatGateway, string, error) {
			sub, err := st.Subnet(c.acct, subID)
			if err != nil {
				return nil, "", err
			}
			a, err := st.Address(c.acct, allocID)
			if err != nil {
				return nil, "", err
			}
			if err := vpc.CheckReleaseAddress(st, a); err != nil { // the same test: free for use
				return nil, "", &vpc.Error{Code: vpc.CodeResourceAlreadyAssociated, Message: fmt.Sprintf("Elastic IP address [%s] is already associated", allocID)}
			}
			n := 0
			for _, g := range st.OwnedNatGateways(c.acct) {
				if g.State != vpc.StateDeleted && st.Subnets[g.SubnetID] != nil && st.Subnets[g.SubnetID].AvailabilityZone == sub.AvailabilityZone {
					n++
				}
			}
			if n >= c.s.cfg.Limits.NatGatewaysPerAZ {
				return nil, "", &vpc.Error{Code: vpc.CodeNatGatewayLimitExceeded, Message: "The maximum number of NAT gateways in this zone has been reached."}
			}
			idx := st.AllocTransitIndex()
			if idx == 0 {
				return nil, "", &vpc.Error{Code: vpc.CodeNatGatewayLimitExceeded, Message: "The cloud has no room for another NAT gateway router."}
			}
			var explicit []netip.Addr
			if v := c.p.str("PrivateIpAddress"); v != "" {
				ip, err := vpc.ParseIP("privateIpAddress", v)
				if err != nil {
					return nil, "", err
				}
				explicit = append(explicit, ip)
			}
			e, err := c.s.newInterface(st, c.acct, sub, explicit, 1-len(explicit), nil)
			if err != nil {
				return nil, "", err
			}
			out := &vpc.NatGateway{ID: newID(vpc.KindNatGateway), OwnerID: c.acct, VpcID: sub.VpcID, SubnetID: sub.ID,
				State: vpc.StatePending, ConnectivityType: "public", AllocationID: a.AllocationID, PublicIP: a.PublicIP,
				PrivateIP: e.PrimaryIP(), NetworkInterfaceID: e.ID, CreateTime: c.s.now().UTC().Truncate(time.Second), Tags: tags, TransitIndex: idx}
			e.InterfaceType, e.RequesterManaged, e.Status = vpc.InterfaceTypeNatGateway, true, vpc.StateInUse
			e.Description = "Interface for NAT Gateway " + out.ID
			e.SourceDestCheck = false
			a = clone(a)
			a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress = newID(vpc.KindEIPAssociation), e.ID, e.PrimaryIP()
			for _, o := range []struct {
				id  string
				obj any
			}{{e.ID, e}, {a.AllocationID, a}, {out.ID, out}} {
				if err := tx.Put(o.id, o.obj); err != nil {
					return nil, "", err
				}
			}
			return out, out.ID, nil
		})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	c.s.store.Read(func(st *vpc.State) { renderNat(res.el("natGateway"), st, out) })
	res.opt("clientToken", c.p.str("ClientToken"))
	return res, nil
}

// deleteNatGateway records the intent: the gateway reads deleting until
// the controller has taken it out of the topology, then deleted (it stays
// visible, as on AWS), its interface deleted and its address free again.
// Deleting a gateway already deleting answers as the first call did.
func deleteNatGateway(c *call) (*node, error) {
	id, err := c.requiredID("NatGatewayId", vpc.KindNatGateway)
	if err != nil {
		return nil, err
	}
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		n, err := st.NatGateway(c.acct, id)
		if err != nil {
			return err
		}
		switch n.State {
		case vpc.StateDeleted:
			return vpc.KindNatGateway.NotFoundError(id)
		case vpc.StateDeleting:
			return nil
		}
		n = clone(n)
		n.State = vpc.StateDeleting
		return tx.Put(n.ID, n)
	})
	if err != nil {
		return nil, err
	}
	return newNode("").s("natGatewayId", id), nil
}

var natResource = resource[vpc.NatGateway]{
	kind: vpc.KindNatGateway, idParam: "NatGatewayId",
	id:    func(n *vpc.NatGateway) string { return n.ID },
	owner: func(n *vpc.NatGateway) string { return n.OwnerID },
	fields: func(n *vpc.NatGateway) fields {
		return fields{"nat-gateway-id": {n.ID}, "state": {n.State}, "subnet-id": {n.SubnetID}, "vpc-id": {n.VpcID}}
	},
	tags: func(n *vpc.NatGateway) vpc.Tags { return n.Tags }, maxPage: 1000,
}

func describeNatGateways(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		ns, next, err := describeOwned(c, st.NatGateways, st.OwnedNatGateways, natResource)
		if err != nil {
			return err
		}
		set := res.set("natGatewaySet")
		for _, n := range ns {
			renderNat(set.item(), st, n)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func renderNat(n *node, st *vpc.State, g *vpc.NatGateway) {
	n.s("natGatewayId", g.ID).s("subnetId", g.SubnetID).s("vpcId", g.VpcID).s("state", g.State).s("connectivityType", g.ConnectivityType)
	n.s("createTime", g.CreateTime.Format(time.RFC3339))
	if !g.DeleteTime.IsZero() {
		n.s("deleteTime", g.DeleteTime.Format(time.RFC3339))
	}
	it := n.set("natGatewayAddressSet").item()
	it.s("allocationId", g.AllocationID).s("publicIp", g.PublicIP.String()).s("privateIp", g.PrivateIP.String()).s("networkInterfaceId", g.NetworkInterfaceID)
	if a := st.Addresses[g.AllocationID]; a != nil && a.NetworkInterfaceID == g.NetworkInterfaceID {
		it.opt("associationId", a.AssociationID)
	}
	it.b("isPrimary", true).s("status", "succeeded")
	n.opt("failureCode", g.FailureCode).opt("failureMessage", g.FailureMessage)
	n.tagSet(g.Tags)
}
