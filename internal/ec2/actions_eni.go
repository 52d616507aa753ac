package ec2

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("CreateNetworkInterface", createNetworkInterface)
	register("DeleteNetworkInterface", deleteNetworkInterface)
	register("DescribeNetworkInterfaces", describeNetworkInterfaces)
	register("AttachNetworkInterface", attachNetworkInterface)
	register("DetachNetworkInterface", detachNetworkInterface)
	register("ModifyNetworkInterfaceAttribute", modifyNetworkInterfaceAttribute)
	register("AssignPrivateIpAddresses", assignPrivateIPs)
	register("UnassignPrivateIpAddresses", unassignPrivateIPs)
}

func newMAC() string {
	var r [5]byte
	_, _ = rand.Read(r[:])
	return vpc.NewMAC(r)
}

// newInterface builds an ENI in sub with the asked addresses (explicit ones
// checked, the rest allocated lowest-first).
func (s *Server) newInterface(st *vpc.State, owner string, sub *vpc.Subnet, explicit []netip.Addr, extra int, groups []string) (*vpc.NetworkInterface, error) {
	for i, a := range explicit {
		if err := vpc.CheckPrivateIP(st, sub, a); err != nil {
			return nil, err
		}
		if slices.Contains(explicit[:i], a) {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Address %s is given twice.", a)}
		}
	}
	if err := vpc.CheckPrivateIPCount(len(explicit)+extra, s.cfg.Limits); err != nil {
		return nil, err
	}
	if err := vpc.CheckInterfaceGroups(st, owner, sub.VpcID, groups, s.cfg.Limits); err != nil {
		return nil, err
	}
	more, err := st.AllocPrivateIPs(sub, extra, explicit...)
	if err != nil {
		return nil, err
	}
	e := &vpc.NetworkInterface{ID: newID(vpc.KindInterface), OwnerID: owner, VpcID: sub.VpcID, SubnetID: sub.ID,
		AvailabilityZone: sub.AvailabilityZone, MacAddress: newMAC(), Groups: groups, SourceDestCheck: true,
		Status: vpc.StateAvailable, InterfaceType: vpc.InterfaceTypeInterface}
	for i, a := range append(slices.Clone(explicit), more...) {
		e.PrivateIPs = append(e.PrivateIPs, vpc.PrivateIP{Address: a, Primary: i == 0})
	}
	return e, nil
}

func createNetworkInterface(c *call) (*node, error) {
	subID, err := c.requiredID("SubnetId", vpc.KindSubnet)
	if err != nil {
		return nil, err
	}
	groups, err := c.ids("SecurityGroupId", vpc.KindSecurityGroup)
	if err != nil {
		return nil, err
	}
	var explicit []netip.Addr
	if v := c.p.str("PrivateIpAddress"); v != "" {
		a, err := vpc.ParseIP("privateIpAddress", v)
		if err != nil {
			return nil, err
		}
		explicit = append(explicit, a)
	}
	for _, n := range c.p.indexes("PrivateIpAddresses") {
		s := c.p.sub("PrivateIpAddresses", n)
		a, err := vpc.ParseIP("privateIpAddresses", s.str("PrivateIpAddress"))
		if err != nil {
			return nil, err
		}
		if ok, _ := s.boolean("Primary", false); ok {
			explicit = append([]netip.Addr{a}, explicit...)
		} else {
			explicit = append(explicit, a)
		}
	}
	extra, err := c.p.integer("SecondaryPrivateIpAddressCount", 0)
	if err != nil || extra < 0 {
		return nil, invalidValue("SecondaryPrivateIpAddressCount", c.p.str("SecondaryPrivateIpAddressCount"))
	}
	if len(explicit) == 0 {
		extra++ // the primary
	}
	if c.p.has("Ipv6AddressCount") || len(c.p.indexes("Ipv6Addresses")) > 0 || c.p.has("InterfaceType") {
		return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "IPv6 addresses and special interface types are not supported."}
	}
	tags, err := c.p.tagSpecs("network-interface")
	if err != nil {
		return nil, err
	}
	out, err := createOnce(c, func(st *vpc.State, id string) (*vpc.NetworkInterface, error) { return st.NetworkInterface(c.acct, id) },
		func(st *vpc.State, tx *nsdb.VPCTx) (*vpc.NetworkInterface, string, error) {
			sub, err := st.Subnet(c.acct, subID)
			if err != nil {
				return nil, "", err
			}
			gs := groups
			if len(gs) == 0 { // the VPC's default group, as AWS does
				for _, g := range st.SecurityGroupsOf(sub.VpcID) {
					if g.GroupName == vpc.DefaultGroupName {
						gs = []string{g.ID}
					}
				}
			}
			e, err := c.s.newInterface(st, c.acct, sub, explicit, extra, gs)
			if err != nil {
				return nil, "", err
			}
			e.Description, e.Tags = c.p.str("Description"), tags
			return e, e.ID, tx.Put(e.ID, e)
		})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	// Rendered under the read lock: the state's maps change in place.
	c.s.store.Read(func(st *vpc.State) { renderENI(res.el("networkInterface"), st, out, c.s.now()) })
	res.opt("clientToken", c.p.str("ClientToken"))
	return res, nil
}

func deleteNetworkInterface(c *call) (*node, error) {
	id, err := c.requiredID("NetworkInterfaceId", vpc.KindInterface)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		e, err := st.NetworkInterface(c.acct, id)
		if err != nil {
			return err
		}
		return deleteInterfaceObjects(st, tx, e)
	})
}

// deleteInterfaceObjects deletes an interface CheckDeleteInterface lets
// go; its elastic IPs are disassociated, as on AWS.
func deleteInterfaceObjects(st *vpc.State, tx *nsdb.VPCTx, e *vpc.NetworkInterface) error {
	if err := vpc.CheckDeleteInterface(e); err != nil {
		return err
	}
	for _, a := range st.AddressesOfInterface(e.ID) {
		a = clone(a)
		a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress, a.InstanceID = "", "", netip.Addr{}, ""
		if err := tx.Put(a.AllocationID, a); err != nil {
			return err
		}
	}
	return tx.Delete("network_interfaces", e.ID)
}

func eniResource(st *vpc.State, now time.Time) resource[vpc.NetworkInterface] {
	return resource[vpc.NetworkInterface]{
		kind: vpc.KindInterface, idParam: "NetworkInterfaceId",
		id:    func(v *vpc.NetworkInterface) string { return v.ID },
		owner: func(v *vpc.NetworkInterface) string { return v.OwnerID },
		fields: func(e *vpc.NetworkInterface) fields {
			f := fields{"network-interface-id": {e.ID}, "subnet-id": {e.SubnetID}, "vpc-id": {e.VpcID},
				"availability-zone": {e.AvailabilityZone}, "mac-address": {e.MacAddress}, "status": {e.Status},
				"description": {e.Description}, "owner-id": {e.OwnerID}, "source-dest-check": {boolStr(e.SourceDestCheck)},
				"interface-type": {e.InterfaceType}, "requester-managed": {boolStr(e.RequesterManaged)},
				"group-id": e.Groups, "private-ip-address": nil, "addresses.private-ip-address": nil,
				"attachment.attachment-id": nil, "attachment.instance-id": nil, "attachment.status": nil,
				"association.public-ip": nil, "association.allocation-id": nil, "association.association-id": nil}
			for _, p := range e.PrivateIPs {
				f["private-ip-address"] = append(f["private-ip-address"], p.Address.String())
				f["addresses.private-ip-address"] = append(f["addresses.private-ip-address"], p.Address.String())
			}
			if a := shownAttachment(e, now); a != nil {
				f["attachment.attachment-id"] = []string{a.ID}
				f["attachment.instance-id"] = []string{a.InstanceID}
				f["attachment.status"] = []string{a.Status}
			}
			if e.ID != "" {
				for _, a := range st.AddressesOfInterface(e.ID) {
					f["association.public-ip"] = append(f["association.public-ip"], a.PublicIP.String())
					f["association.allocation-id"] = append(f["association.allocation-id"], a.AllocationID)
					f["association.association-id"] = append(f["association.association-id"], a.AssociationID)
				}
			}
			return f
		},
		tags: func(v *vpc.NetworkInterface) vpc.Tags { return v.Tags }, maxPage: 1000,
	}
}

func describeNetworkInterfaces(c *call) (*node, error) {
	if c.p.has("MaxResults") && len(c.p.list("NetworkInterfaceId")) > 0 {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterCombination, Message: "The parameter NetworkInterfaceIds cannot be used with the parameter MaxResults"}
	}
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		es, next, err := describeOwned(c, st.NetworkInterfaces, st.OwnedInterfaces, eniResource(st, c.s.now()))
		if err != nil {
			return err
		}
		set := res.set("networkInterfaceSet")
		for _, e := range es {
			renderENI(set.item(), st, e, c.s.now())
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func renderENI(n *node, st *vpc.State, e *vpc.NetworkInterface, now time.Time) {
	n.s("networkInterfaceId", e.ID).s("subnetId", e.SubnetID).s("vpcId", e.VpcID).s("availabilityZone", e.AvailabilityZone)
	n.s("description", e.Description).s("ownerId", e.OwnerID).b("requesterManaged", e.RequesterManaged)
	n.s("status", e.Status).s("macAddress", e.MacAddress).s("privateIpAddress", e.PrimaryIP().String())
	n.b("sourceDestCheck", e.SourceDestCheck).s("interfaceType", e.InterfaceType)
	gs := n.set("groupSet")
	for _, g := range e.Groups {
		it := gs.item().s("groupId", g)
		if sg := st.SecurityGroups[g]; sg != nil {
			it.s("groupName", sg.GroupName)
		}
	}
	addrs := map[netip.Addr]*vpc.Address{}
	for _, a := range st.AddressesOfInterface(e.ID) {
		addrs[a.PrivateIPAddress] = a
	}
	assoc := func(n *node, a *vpc.Address) {
		n.el("association").s("publicIp", a.PublicIP.String()).s("ipOwnerId", a.OwnerID).s("allocationId", a.AllocationID).s("associationId", a.AssociationID)
	}
	renderAttachment(n, e, now)
	if a := addrs[e.PrimaryIP()]; a != nil {
		assoc(n, a)
	}
	ps := n.set("privateIpAddressesSet")
	for _, p := range e.PrivateIPs {
		it := ps.item().s("privateIpAddress", p.Address.String()).b("primary", p.Primary)
		if a := addrs[p.Address]; a != nil {
			assoc(it, a)
		}
	}
	n.set("ipv6AddressesSet")
	n.tagSet(e.Tags)
}

func attachNetworkInterface(c *call) (*node, error) {
	id, err := c.requiredID("NetworkInterfaceId", vpc.KindInterface)
	if err != nil {
		return nil, err
	}
	inst, err := c.requiredID("InstanceId", vpc.KindInstance)
	if err != nil {
		return nil, err
	}
	if _, err := c.p.required("DeviceIndex"); err != nil {
		return nil, err
	}
	idx, err := c.p.integer("DeviceIndex", 0)
	if err != nil || idx < 0 {
		return nil, invalidValue("DeviceIndex", c.p.str("DeviceIndex"))
	}
	attach := newID(vpc.KindENIAttachment)
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		e, err := st.NetworkInterface(c.acct, id)
		if err != nil {
			return err
		}
		i, err := st.Instance(c.acct, inst)
		if err != nil {
			return err
		}
		if e.Attachment != nil {
			return &vpc.Error{Code: vpc.CodeInvalidNetworkInterfaceUse, Message: fmt.Sprintf("Interface: [%s] in use.", id)}
		}
		if i.VpcID != e.VpcID {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "The instance and the interface are in different VPCs."}
		}
		if !i.Active() {
			return incorrectState(i.ID, i.State, "attached to")
		}
		if i.AvailabilityZone != "" && i.AvailabilityZone != e.AvailabilityZone {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "The instance and the interface are in different availability zones."}
		}
		for _, o := range st.InstanceInterfaces(inst) {
			if o.Attachment.DeviceIndex == idx {
				return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Instance '%s' already has an interface attached at device index '%d'.", inst, idx)}
			}
		}
		e = clone(e)
		e.Detached, e.DetachedAt = nil, time.Time{}
		e.Attachment = &vpc.ENIAttachment{ID: attach, InstanceID: inst, DeviceIndex: idx, Status: vpc.StateAttached}
		e.Status = vpc.StateInUse
		return tx.Put(e.ID, e)
	})
	if err != nil {
		return nil, err
	}
	return newNode("").s("attachmentId", attach).i("networkCardIndex", 0), nil
}

func detachNetworkInterface(c *call) (*node, error) {
	id, err := c.requiredID("AttachmentId", vpc.KindENIAttachment)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, e := range st.OwnedInterfaces(c.acct) {
			if e.Attachment != nil && e.Attachment.ID == id {
				if e.Attachment.DeviceIndex == 0 {
					return &vpc.Error{Code: vpc.CodeOperationNotPermitted, Message: "The network interface at device index 0 cannot be detached."}
				}
				e = clone(e)
				detached := *e.Attachment
				detached.Status = "detached"
				e.Detached, e.DetachedAt = &detached, c.s.now()
				e.Attachment, e.Status = nil, vpc.StateAvailable
				return tx.Put(e.ID, e)
			}
		}
		return vpc.KindENIAttachment.NotFoundError(id)
	})
}

func modifyNetworkInterfaceAttribute(c *call) (*node, error) {
	id, err := c.requiredID("NetworkInterfaceId", vpc.KindInterface)
	if err != nil {
		return nil, err
	}
	sdc, err := c.p.optBool("SourceDestCheck.Value")
	if err != nil {
		return nil, err
	}
	groups, err := c.ids("SecurityGroupId", vpc.KindSecurityGroup)
	if err != nil {
		return nil, err
	}
	desc, hasDesc := c.p["Description.Value"]
	dot, err := c.p.optBool("Attachment.DeleteOnTermination")
	if err != nil {
		return nil, err
	}
	n := len(slices.DeleteFunc([]bool{sdc != nil, len(groups) > 0, hasDesc, dot != nil}, func(b bool) bool { return !b }))
	if n != 1 {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterCombination, Message: "Exactly one attribute must be modified per call (SourceDestCheck, SecurityGroupId, Description, Attachment)."}
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		e, err := st.NetworkInterface(c.acct, id)
		if err != nil {
			return err
		}
		e = clone(e)
		switch {
		case sdc != nil:
			e.SourceDestCheck = *sdc
		case len(groups) > 0:
			if err := vpc.CheckInterfaceGroups(st, c.acct, e.VpcID, groups, c.s.cfg.Limits); err != nil {
				return err
			}
			e.Groups = groups
		case hasDesc:
			e.Description = desc
		case dot != nil:
			if e.Attachment == nil || e.Attachment.ID != c.p.str("Attachment.AttachmentId") {
				return vpc.KindENIAttachment.NotFoundError(c.p.str("Attachment.AttachmentId"))
			}
			e.Attachment.DeleteOnTermination = *dot
		}
		return tx.Put(e.ID, e)
	})
}

func assignPrivateIPs(c *call) (*node, error) {
	id, err := c.requiredID("NetworkInterfaceId", vpc.KindInterface)
	if err != nil {
		return nil, err
	}
	var explicit []netip.Addr
	for _, v := range c.p.list("PrivateIpAddress") {
		a, err := vpc.ParseIP("privateIpAddress", v)
		if err != nil {
			return nil, err
		}
		explicit = append(explicit, a)
	}
	count, err := c.p.integer("SecondaryPrivateIpAddressCount", 0)
	if err != nil || count < 0 {
		return nil, invalidValue("SecondaryPrivateIpAddressCount", c.p.str("SecondaryPrivateIpAddressCount"))
	}
	if (len(explicit) > 0) == (count > 0) {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterCombination, Message: "Give either PrivateIpAddress.N or SecondaryPrivateIpAddressCount."}
	}
	var added []netip.Addr
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		e, err := st.NetworkInterface(c.acct, id)
		if err != nil {
			return err
		}
		sub, err := st.Subnet(c.acct, e.SubnetID)
		if err != nil {
			return err
		}
		for _, a := range explicit {
			if err := vpc.CheckPrivateIP(st, sub, a); err != nil {
				return err
			}
		}
		if err := vpc.CheckPrivateIPCount(len(e.PrivateIPs)+len(explicit)+count, c.s.cfg.Limits); err != nil {
			return err
		}
		more, err := st.AllocPrivateIPs(sub, count, explicit...)
		if err != nil {
			return err
		}
		added = append(slices.Clone(explicit), more...)
		e = clone(e)
		for _, a := range added {
			e.PrivateIPs = append(e.PrivateIPs, vpc.PrivateIP{Address: a})
		}
		return tx.Put(e.ID, e)
	})
	if err != nil {
		return nil, err
	}
	res := returnTrue().s("networkInterfaceId", id)
	set := res.set("assignedPrivateIpAddressesSet")
	for _, a := range added {
		set.item().s("privateIpAddress", a.String())
	}
	return res, nil
}

func unassignPrivateIPs(c *call) (*node, error) {
	id, err := c.requiredID("NetworkInterfaceId", vpc.KindInterface)
	if err != nil {
		return nil, err
	}
	addrs := c.p.list("PrivateIpAddress")
	if len(addrs) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter PrivateIpAddress"}
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		e, err := st.NetworkInterface(c.acct, id)
		if err != nil {
			return err
		}
		e = clone(e)
		for _, v := range addrs {
			a, err := vpc.ParseIP("privateIpAddress", v)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(e.PrivateIPs, func(p vpc.PrivateIP) bool { return p.Address == a })
			if i < 0 {
				return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Some of the specified addresses (%s) are not assigned to interface %s", a, id)}
			}
			if e.PrivateIPs[i].Primary {
				return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The primary address %s cannot be unassigned.", a)}
			}
			for _, x := range st.AddressesOfInterface(id) {
				if x.PrivateIPAddress == a {
					return &vpc.Error{Code: vpc.CodeInvalidIPAddressInUse, Message: fmt.Sprintf("Address %s is associated with elastic IP %s.", a, x.PublicIP)}
				}
			}
			e.PrivateIPs = slices.Delete(e.PrivateIPs, i, i+1)
		}
		return tx.Put(e.ID, e)
	})
}
