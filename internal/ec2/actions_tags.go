package ec2

import (
	"fmt"
	"sort"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("CreateTags", createTags)
	register("DeleteTags", deleteTags)
	register("DescribeTags", describeTags)
	register("CreateDhcpOptions", createDhcpOptions)
	register("DeleteDhcpOptions", deleteDhcpOptions)
	register("DescribeDhcpOptions", describeDhcpOptions)
	register("AssociateDhcpOptions", associateDhcpOptions)
}

// tagged is a taggable object: a copy of it, its tags, its resource type.
type tagged struct {
	id    string
	obj   any
	tags  *vpc.Tags
	rtype string
}

// findTagged returns a copy of the caller's object id, ready to re-tag.
func findTagged(st *vpc.State, owner, id string) (*tagged, error) {
	kind, _, _ := strings.Cut(id, "-")
	switch kind {
	case "vpc":
		v, err := st.Vpc(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "vpc"}, nil
	case "subnet":
		v, err := st.Subnet(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "subnet"}, nil
	case "igw":
		v, err := st.InternetGateway(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "internet-gateway"}, nil
	case "rtb":
		v, err := st.RouteTable(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "route-table"}, nil
	case "sg":
		v, err := st.SecurityGroup(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "security-group"}, nil
	case "acl":
		v, err := st.NetworkACL(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "network-acl"}, nil
	case "eni":
		v, err := st.NetworkInterface(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "network-interface"}, nil
	case "eipalloc":
		v, err := st.Address(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "elastic-ip"}, nil
	case "nat":
		v, err := st.NatGateway(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "natgateway"}, nil
	case "dopt":
		v, err := st.DhcpOptionSet(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "dhcp-options"}, nil
	case "key":
		v, err := st.KeyPair(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "key-pair"}, nil
	case "i":
		v, err := st.Instance(owner, id)
		if err != nil {
			return nil, err
		}
		v = clone(v)
		return &tagged{id, v, &v.Tags, "instance"}, nil
	}
	return nil, &vpc.Error{Code: vpc.CodeInvalidID, Message: fmt.Sprintf("The ID '%s' is not valid", id)}
}

func retag(c *call, add bool) (*node, error) {
	ids := c.p.list("ResourceId")
	if len(ids) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter resourceIdSet"}
	}
	tags, err := c.p.tags("Tag")
	if err != nil {
		return nil, err
	}
	if add && len(tags) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter tagSet"}
	}
	// DeleteTags: a tag given with a value only goes if the value matches.
	withValue := map[string]bool{}
	for _, n := range c.p.indexes("Tag") {
		if c.p.sub("Tag", n).has("Value") {
			withValue[c.p.sub("Tag", n).str("Key")] = true
		}
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, id := range ids {
			t, err := findTagged(tx.State(), c.acct, id)
			if err != nil {
				return err
			}
			if *t.tags == nil {
				*t.tags = vpc.Tags{}
			}
			switch {
			case add:
				for k, v := range tags {
					(*t.tags)[k] = v
				}
				if len(*t.tags) > 50 {
					return &vpc.Error{Code: vpc.CodeTagLimitExceeded, Message: "The maximum number of tags (50) has been reached for " + id}
				}
			case len(tags) == 0:
				*t.tags = nil
			default:
				for k, v := range tags {
					if !withValue[k] || (*t.tags)[k] == v {
						delete(*t.tags, k)
					}
				}
			}
			if len(*t.tags) == 0 {
				*t.tags = nil
			}
			if err := tx.Put(t.id, t.obj); err != nil {
				return err
			}
		}
		return nil
	})
}

func createTags(c *call) (*node, error) { return retag(c, true) }
func deleteTags(c *call) (*node, error) { return retag(c, false) }

// tagRow is one tag of one resource, the unit of DescribeTags.
type tagRow struct{ id, rtype, key, value string }

var tagResource = resource[tagRow]{
	id:    func(r *tagRow) string { return r.id + "\x00" + r.key },
	owner: func(*tagRow) string { return "" },
	fields: func(r *tagRow) fields {
		return fields{"resource-id": {r.id}, "resource-type": {r.rtype}, "key": {r.key}, "value": {r.value}}
	},
	tags:    func(r *tagRow) vpc.Tags { return vpc.Tags{r.key: r.value} },
	maxPage: 1000,
}

func describeTags(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		rows := map[string]*tagRow{}
		add := func(owner, id, rtype string, tags vpc.Tags) {
			if owner != c.acct {
				return
			}
			for k, v := range tags {
				r := &tagRow{id, rtype, k, v}
				rows[tagResource.id(r)] = r
			}
		}
		for _, v := range st.OwnedVpcs(c.acct) {
			add(v.OwnerID, v.ID, "vpc", v.Tags)
		}
		for _, v := range st.OwnedSubnets(c.acct) {
			add(v.OwnerID, v.ID, "subnet", v.Tags)
		}
		for _, v := range st.OwnedInternetGateways(c.acct) {
			add(v.OwnerID, v.ID, "internet-gateway", v.Tags)
		}
		for _, v := range st.OwnedRouteTables(c.acct) {
			add(v.OwnerID, v.ID, "route-table", v.Tags)
		}
		for _, v := range st.OwnedSecurityGroups(c.acct) {
			add(v.OwnerID, v.ID, "security-group", v.Tags)
		}
		for _, v := range st.OwnedNetworkACLs(c.acct) {
			add(v.OwnerID, v.ID, "network-acl", v.Tags)
		}
		for _, v := range st.OwnedInterfaces(c.acct) {
			add(v.OwnerID, v.ID, "network-interface", v.Tags)
		}
		for _, v := range st.OwnedAddresses(c.acct) {
			add(v.OwnerID, v.AllocationID, "elastic-ip", v.Tags)
		}
		for _, v := range st.OwnedNatGateways(c.acct) {
			add(v.OwnerID, v.ID, "natgateway", v.Tags)
		}
		for _, v := range st.OwnedDhcpOptions(c.acct) {
			add(v.OwnerID, v.ID, "dhcp-options", v.Tags)
		}
		for _, v := range st.OwnedInstances(c.acct) {
			add(v.OwnerID, v.ID, "instance", v.Tags)
		}
		cc := *c
		cc.acct = "" // rows were already limited to the caller
		rs, next, err := describe(&cc, rows, tagResource)
		if err != nil {
			return err
		}
		set := res.set("tagSet")
		for _, r := range rs {
			set.item().s("resourceId", r.id).s("resourceType", r.rtype).s("key", r.key).s("value", r.value)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

// DHCP options.

var dhcpKeys = map[string]bool{vpc.DhcpDomainName: true, vpc.DhcpDomainNameServers: true, vpc.DhcpNTPServers: true,
	vpc.DhcpNetbiosServers: true, vpc.DhcpNetbiosNodeType: true, "ipv6-address-preferred-lease-time": false}

func createDhcpOptions(c *call) (*node, error) {
	conf := map[string][]string{}
	for _, n := range c.p.indexes("DhcpConfiguration") {
		s := c.p.sub("DhcpConfiguration", n)
		k := s.str("Key")
		if !dhcpKeys[k] {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Value (%s) for parameter name is invalid. Unknown DHCP option", k)}
		}
		vals := s.list("Value")
		if len(vals) == 0 {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The DHCP option %s has no value.", k)}
		}
		if k == vpc.DhcpDomainNameServers || k == vpc.DhcpNTPServers || k == vpc.DhcpNetbiosServers {
			for _, v := range vals {
				if k == vpc.DhcpDomainNameServers && v == vpc.AmazonProvidedDNS {
					continue
				}
				if _, err := vpc.ParseIP(k, v); err != nil {
					return nil, err
				}
			}
			if len(vals) > 4 {
				return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("At most 4 values for %s.", k)}
			}
		}
		conf[k] = append(conf[k], vals...)
	}
	if len(conf) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter DhcpConfiguration"}
	}
	tags, err := c.p.tagSpecs("dhcp-options")
	if err != nil {
		return nil, err
	}
	d := &vpc.DhcpOptions{ID: newID(vpc.KindDhcpOptions), OwnerID: c.acct, Config: conf, Tags: tags}
	if err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error { return tx.Put(d.ID, d) }); err != nil {
		return nil, err
	}
	res := newNode("")
	renderDhcp(res.el("dhcpOptions"), d)
	return res, nil
}

func renderDhcp(n *node, d *vpc.DhcpOptions) {
	n.s("dhcpOptionsId", d.ID).s("ownerId", d.OwnerID)
	set := n.set("dhcpConfigurationSet")
	keys := make([]string, 0, len(d.Config))
	for k := range d.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		it := set.item().s("key", k)
		vs := it.set("valueSet")
		for _, v := range d.Config[k] {
			vs.item().s("value", v)
		}
	}
	n.tagSet(d.Tags)
}

func deleteDhcpOptions(c *call) (*node, error) {
	id, err := c.requiredID("DhcpOptionsId", vpc.KindDhcpOptions)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		d, err := st.DhcpOptionSet(c.acct, id)
		if err != nil {
			return err
		}
		if err := vpc.CheckDeleteDhcpOptions(st, d); err != nil {
			return err
		}
		return tx.Delete("dhcp_options", id)
	})
}

func associateDhcpOptions(c *call) (*node, error) {
	id, err := c.p.required("DhcpOptionsId")
	if err != nil {
		return nil, err
	}
	if id != vpc.DefaultDhcpOptions {
		if err := vpc.ParseID(vpc.KindDhcpOptions, id); err != nil {
			return nil, err
		}
	}
	vpcID, err := c.requiredID("VpcId", vpc.KindVpc)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		v, err := st.Vpc(c.acct, vpcID)
		if err != nil {
			return err
		}
		if id != vpc.DefaultDhcpOptions {
			if _, err := st.DhcpOptionSet(c.acct, id); err != nil {
				return err
			}
		}
		v = cloneVpc(v)
		v.DhcpOptionsID = id
		return tx.Put(v.ID, v)
	})
}

var dhcpResource = resource[vpc.DhcpOptions]{
	kind: vpc.KindDhcpOptions, idParam: "DhcpOptionsId",
	id:    func(d *vpc.DhcpOptions) string { return d.ID },
	owner: func(d *vpc.DhcpOptions) string { return d.OwnerID },
	fields: func(d *vpc.DhcpOptions) fields {
		f := fields{"dhcp-options-id": {d.ID}, "owner-id": {d.OwnerID}, "key": nil, "value": nil}
		for k, vs := range d.Config {
			f["key"] = append(f["key"], k)
			f["value"] = append(f["value"], vs...)
		}
		return f
	},
	tags: func(d *vpc.DhcpOptions) vpc.Tags { return d.Tags }, maxPage: 1000,
}

func describeDhcpOptions(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		ds, next, err := describeOwned(c, st.DhcpOptions, st.OwnedDhcpOptions, dhcpResource)
		if err != nil {
			return err
		}
		set := res.set("dhcpOptionsSet")
		for _, d := range ds {
			renderDhcp(set.item(), d)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}
