package ec2

import (
	"fmt"
	"slices"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The read-one-attribute calls clients make after a create (terraform's
// read paths), the CPU credit option of burstable instances, and where
// each instance type is offered.
func init() {
	register("DescribeAddressesAttribute", describeAddressesAttribute)
	register("DescribeNetworkInterfaceAttribute", describeNetworkInterfaceAttribute)
	register("ModifyInstanceCreditSpecification", modifyInstanceCreditSpecification)
	register("DescribeInstanceTypeOfferings", describeInstanceTypeOfferings)
}

// describeAddressesAttribute answers the domain-name attribute of elastic
// IPs: none has a reverse DNS record set (ModifyAddressAttribute is not
// offered), so each is listed without ptrRecord.
func describeAddressesAttribute(c *call) (*node, error) {
	attr, err := c.p.required("Attribute")
	if err != nil {
		return nil, err
	}
	if attr != "domain-name" {
		return nil, invalidValue("Attribute", attr)
	}
	ids, err := c.ids("AllocationId", vpc.KindAllocation)
	if err != nil {
		return nil, err
	}
	res := newNode("")
	err = c.read(func(st *vpc.State) error {
		set := res.set("addressSet")
		eips := elasticIPs(st, c.acct)
		if len(ids) == 0 {
			for _, a := range eips {
				if a.OwnerID == c.acct {
					ids = append(ids, a.AllocationID)
				}
			}
			slices.Sort(ids)
		}
		for _, id := range ids {
			a := eips[id]
			if a == nil || a.OwnerID != c.acct {
				return vpc.KindAllocation.NotFoundError(id)
			}
			set.item().s("publicIp", a.PublicIP.String()).s("allocationId", a.AllocationID)
		}
		return nil
	})
	return res, err
}

func describeNetworkInterfaceAttribute(c *call) (*node, error) {
	id, err := c.requiredID("NetworkInterfaceId", vpc.KindInterface)
	if err != nil {
		return nil, err
	}
	attr, err := c.p.required("Attribute")
	if err != nil {
		return nil, err
	}
	if !slices.Contains([]string{"description", "groupSet", "sourceDestCheck", "attachment", "associatePublicIpAddress"}, attr) {
		return nil, invalidValue("Attribute", attr)
	}
	res := newNode("")
	err = c.read(func(st *vpc.State) error {
		e, err := st.NetworkInterface(c.acct, id)
		if err != nil {
			return err
		}
		res.s("networkInterfaceId", e.ID)
		switch attr {
		case "description":
			res.el("description").s("value", e.Description)
		case "sourceDestCheck":
			res.el("sourceDestCheck").b("value", e.SourceDestCheck)
		case "groupSet":
			gs := res.set("groupSet")
			for _, g := range e.Groups {
				it := gs.item().s("groupId", g)
				if sg := st.SecurityGroups[g]; sg != nil {
					it.s("groupName", sg.GroupName)
				}
			}
		case "attachment":
			renderAttachment(res, e, c.s.now())
		case "associatePublicIpAddress":
			res.b("associatePublicIpAddress", len(st.AddressesOfInterface(e.ID)) > 0)
		}
		return nil
	})
	return res, err
}

// cpuCredits is a burstable instance's credit option: what it was launched
// or last modified with, else the t3 default, unlimited.
func cpuCredits(i *vpc.Instance) string {
	if i.CPUCredits != "" {
		return i.CPUCredits
	}
	return "unlimited"
}

func modifyInstanceCreditSpecification(c *call) (*node, error) {
	type change struct{ id, credits string }
	var want []change
	for _, n := range c.p.indexes("InstanceCreditSpecification") {
		s := c.p.sub("InstanceCreditSpecification", n)
		id := s.str("InstanceId")
		if err := vpc.ParseID(vpc.KindInstance, id); err != nil {
			return nil, err
		}
		cr := s.str("CpuCredits")
		if cr != "standard" && cr != "unlimited" {
			return nil, invalidValue("CpuCredits", cr)
		}
		want = append(want, change{id, cr})
	}
	if len(want) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter InstanceCreditSpecification"}
	}
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, w := range want {
			i, err := st.Instance(c.acct, w.id)
			if err != nil {
				return err
			}
			if t, ok := lookupInstanceType(i.InstanceType); !ok || !t.burstable {
				return combination(fmt.Sprintf("The instance %s of type %s has no CPU credit option.", i.ID, i.InstanceType))
			}
			i = clone(i)
			i.CPUCredits = w.credits
			if err := tx.Put(i.ID, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	ok := res.set("successfulInstanceCreditSpecificationSet")
	for _, w := range want {
		ok.item().s("instanceId", w.id)
	}
	res.set("unsuccessfulInstanceCreditSpecificationSet")
	return res, nil
}

// offering is one instance type in one location.
type offering struct{ typ, location string }

var offeringResource = resource[offering]{
	id:    func(o *offering) string { return o.location + "/" + o.typ },
	owner: func(*offering) string { return "" },
	fields: func(o *offering) fields {
		return fields{"instance-type": {o.typ}, "location": {o.location}}
	},
	tags:    func(*offering) vpc.Tags { return nil },
	maxPage: 1000,
}

// describeInstanceTypeOfferings lists every offered type in the region or
// in each zone (LocationType region | availability-zone |
// availability-zone-id): every zone offers every type.
func describeInstanceTypeOfferings(c *call) (*node, error) {
	if c.dryRun {
		return nil, errDryRun
	}
	lt := c.p.str("LocationType")
	var locations []string
	switch lt {
	case "", "region":
		lt, locations = "region", []string{c.s.cfg.Region}
	case "availability-zone":
		locations = c.s.cfg.Zones
	case "availability-zone-id":
		for _, z := range c.s.cfg.Zones {
			locations = append(locations, c.s.zoneID(z))
		}
	default:
		return nil, invalidValue("LocationType", lt)
	}
	all := map[string]*offering{}
	for _, l := range locations {
		for _, t := range instanceTypes {
			o := &offering{typ: t.name, location: l}
			all[offeringResource.id(o)] = o
		}
	}
	cc := *c
	cc.acct = ""
	os, next, err := describe(&cc, all, offeringResource)
	if err != nil {
		return nil, err
	}
	res := newNode("")
	set := res.set("instanceTypeOfferingSet")
	for _, o := range os {
		set.item().s("instanceType", o.typ).s("locationType", lt).s("location", o.location)
	}
	res.opt("nextToken", next)
	return res, nil
}

// detachedShown is how long a detached interface still shows its last
// attachment as "detached" (terraform waits for that state on destroy).
const detachedShown = time.Minute

// shownAttachment is the attachment describe calls show: the current one,
// or for a short while after a detach the last one, "detached".
func shownAttachment(e *vpc.NetworkInterface, now time.Time) *vpc.ENIAttachment {
	if e.Attachment != nil {
		return e.Attachment
	}
	if e.Detached != nil && now.Sub(e.DetachedAt) < detachedShown {
		return e.Detached
	}
	return nil
}

func renderAttachment(n *node, e *vpc.NetworkInterface, now time.Time) {
	if a := shownAttachment(e, now); a != nil {
		n.el("attachment").s("attachmentId", a.ID).s("instanceId", a.InstanceID).s("instanceOwnerId", e.OwnerID).
			i("deviceIndex", a.DeviceIndex).s("status", a.Status).b("deleteOnTermination", a.DeleteOnTermination)
	}
}
