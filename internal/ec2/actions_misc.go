package ec2

import (
	"fmt"
	"slices"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("DescribeAvailabilityZones", describeAvailabilityZones)
	register("DescribeRegions", describeRegions)
	register("DescribeAccountAttributes", describeAccountAttributes)
}

type zone struct{ name, id, region string }

var zoneResource = resource[zone]{
	id:    func(z *zone) string { return z.name },
	owner: func(*zone) string { return "" },
	fields: func(z *zone) fields {
		return fields{"zone-name": {z.name}, "zone-id": {z.id}, "region-name": {z.region}, "state": {"available"},
			"zone-type": {"availability-zone"}, "group-name": {z.region}, "opt-in-status": {"opt-in-not-required"}}
	},
	tags: func(*zone) vpc.Tags { return nil },
}

func describeAvailabilityZones(c *call) (*node, error) {
	if c.dryRun {
		return nil, errDryRun
	}
	all := map[string]*zone{}
	for _, z := range c.s.cfg.Zones {
		all[z] = &zone{name: z, id: c.s.zoneID(z), region: c.s.cfg.Region}
	}
	// Zones belong to nobody: describe() filters by owner, so run it as "".
	cc := *c
	cc.acct = ""
	zs, _, err := describe(&cc, all, zoneResource)
	if err != nil {
		return nil, err
	}
	names, ids := c.p.list("ZoneName"), c.p.list("ZoneId")
	for _, n := range names {
		if all[n] == nil {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The availability zone '%s' is not available in the current region (%s)", n, c.s.cfg.Region)}
		}
	}
	res := newNode("")
	set := res.set("availabilityZoneInfo")
	for _, z := range zs {
		if (len(names) > 0 || len(ids) > 0) && !slices.Contains(names, z.name) && !slices.Contains(ids, z.id) {
			continue
		}
		it := set.item().s("zoneName", z.name).s("zoneId", z.id).s("zoneState", "available").s("regionName", z.region)
		it.s("groupName", z.region).s("networkBorderGroup", z.region).s("optInStatus", "opt-in-not-required").s("zoneType", "availability-zone")
		it.set("messageSet")
	}
	return res, nil
}

func describeRegions(c *call) (*node, error) {
	if c.dryRun {
		return nil, errDryRun
	}
	for _, n := range c.p.list("RegionName") {
		if n != c.s.cfg.Region {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Invalid region: %s", n)}
		}
	}
	res := newNode("")
	set := res.set("regionInfo")
	set.item().s("regionName", c.s.cfg.Region).s("regionEndpoint", "ec2."+c.s.cfg.Region+".amazonaws.com").s("optInStatus", "opt-in-not-required")
	return res, nil
}

func describeAccountAttributes(c *call) (*node, error) {
	if c.dryRun {
		return nil, errDryRun
	}
	var def string
	c.s.store.Read(func(st *vpc.State) { def = defaultVpcOf(st, c.acct) })
	if def == "" {
		def = "none"
	}
	attrs := []struct {
		name   string
		values []string
	}{
		{"supported-platforms", []string{"VPC"}},
		{"default-vpc", []string{def}},
		{"max-instances", []string{"20"}},
		{"vpc-max-security-groups-per-interface", []string{fmt.Sprint(c.s.cfg.Limits.SecurityGroupsPerInterface)}},
		{"max-elastic-ips", []string{fmt.Sprint(c.s.cfg.Limits.AddressesPerAccount)}},
		{"vpc-max-elastic-ips", []string{fmt.Sprint(c.s.cfg.Limits.AddressesPerAccount)}},
	}
	want := c.p.list("AttributeName")
	res := newNode("")
	set := res.set("accountAttributeSet")
	for _, a := range attrs {
		if len(want) > 0 && !slices.Contains(want, a.name) {
			continue
		}
		it := set.item().s("attributeName", a.name)
		vs := it.set("attributeValueSet")
		for _, v := range a.values {
			vs.item().s("attributeValue", v)
		}
	}
	return res, nil
}
