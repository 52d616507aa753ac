package ec2

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("CreateNetworkAcl", createNetworkACL)
	register("DeleteNetworkAcl", deleteNetworkACL)
	register("DescribeNetworkAcls", describeNetworkACLs)
	register("CreateNetworkAclEntry", func(c *call) (*node, error) { return putACLEntry(c, false) })
	register("ReplaceNetworkAclEntry", func(c *call) (*node, error) { return putACLEntry(c, true) })
	register("DeleteNetworkAclEntry", deleteACLEntry)
	register("ReplaceNetworkAclAssociation", replaceACLAssociation)
}

func createNetworkACL(c *call) (*node, error) {
	vpcID, err := c.requiredID("VpcId", vpc.KindVpc)
	if err != nil {
		return nil, err
	}
	tags, err := c.p.tagSpecs("network-acl")
	if err != nil {
		return nil, err
	}
	out, err := createOnce(c, func(st *vpc.State, id string) (*vpc.NetworkACL, error) { return st.NetworkACL(c.acct, id) },
		func(st *vpc.State, tx *nsdb.VPCTx) (*vpc.NetworkACL, string, error) {
			if _, err := st.Vpc(c.acct, vpcID); err != nil {
				return nil, "", err
			}
			if len(st.NetworkACLsOf(vpcID)) >= c.s.cfg.Limits.NetworkACLsPerVpc {
				return nil, "", &vpc.Error{Code: vpc.CodeNetworkACLLimitExceeded, Message: "The maximum number of network ACLs has been reached."}
			}
			a := &vpc.NetworkACL{ID: newID(vpc.KindNetworkACL), OwnerID: c.acct, VpcID: vpcID, Entries: defaultACLEntries(false), Tags: tags}
			return a, a.ID, tx.Put(a.ID, a)
		})
	if err != nil {
		return nil, err
	}
	res := newNode("")
	renderACL(res.el("networkAcl"), out)
	res.opt("clientToken", c.p.str("ClientToken"))
	return res, nil
}

func deleteNetworkACL(c *call) (*node, error) {
	id, err := c.requiredID("NetworkAclId", vpc.KindNetworkACL)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		a, err := st.NetworkACL(c.acct, id)
		if err != nil {
			return err
		}
		if err := vpc.CheckDeleteNetworkACL(a); err != nil {
			return err
		}
		return tx.Delete("network_acls", id)
	})
}

// aclEntryParams reads a Create/ReplaceNetworkAclEntry request.
func aclEntryParams(c *call) (string, vpc.NetworkACLEntry, error) {
	var e vpc.NetworkACLEntry
	id, err := c.requiredID("NetworkAclId", vpc.KindNetworkACL)
	if err != nil {
		return "", e, err
	}
	if c.p.str("Ipv6CidrBlock") != "" {
		return "", e, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "IPv6 ACL entries are not supported."}
	}
	for _, k := range []string{"RuleNumber", "Protocol", "RuleAction", "Egress", "CidrBlock"} {
		if _, err := c.p.required(k); err != nil {
			return "", e, err
		}
	}
	if e.RuleNumber, err = c.p.integer("RuleNumber", 0); err != nil {
		return "", e, err
	}
	if e.Egress, err = c.p.boolean("Egress", false); err != nil {
		return "", e, err
	}
	if e.Protocol, err = vpc.ACLProtocol(c.p.str("Protocol")); err != nil {
		return "", e, err
	}
	e.RuleAction = c.p.str("RuleAction")
	if e.CidrBlock, err = vpc.ParseCIDR("cidrBlock", c.p.str("CidrBlock")); err != nil {
		return "", e, err
	}
	switch e.Protocol {
	case "6", "17":
		if !c.p.has("PortRange.From") || !c.p.has("PortRange.To") {
			return "", e, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "TCP and UDP entries need PortRange.From and PortRange.To."}
		}
		e.PortFrom, _ = c.p.integer("PortRange.From", 0)
		e.PortTo, _ = c.p.integer("PortRange.To", 0)
	case "1":
		if e.ICMPType, err = c.p.integer("Icmp.Type", -1); err != nil {
			return "", e, err
		}
		if e.ICMPCode, err = c.p.integer("Icmp.Code", -1); err != nil {
			return "", e, err
		}
	}
	return id, e, nil
}

func putACLEntry(c *call, replace bool) (*node, error) {
	id, e, err := aclEntryParams(c)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		a, err := st.NetworkACL(c.acct, id)
		if err != nil {
			return err
		}
		if err := vpc.CheckACLEntry(a, e, replace, c.s.cfg.Limits); err != nil {
			return err
		}
		a = clone(a)
		i := slices.IndexFunc(a.Entries, func(x vpc.NetworkACLEntry) bool { return x.Egress == e.Egress && x.RuleNumber == e.RuleNumber })
		if i >= 0 {
			a.Entries[i] = e
		} else {
			a.Entries = append(a.Entries, e)
		}
		sortEntries(a.Entries)
		return tx.Put(a.ID, a)
	})
}

func sortEntries(es []vpc.NetworkACLEntry) {
	slices.SortFunc(es, func(a, b vpc.NetworkACLEntry) int {
		if a.Egress != b.Egress {
			if a.Egress {
				return 1
			}
			return -1
		}
		return a.RuleNumber - b.RuleNumber
	})
}

func deleteACLEntry(c *call) (*node, error) {
	id, err := c.requiredID("NetworkAclId", vpc.KindNetworkACL)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"RuleNumber", "Egress"} {
		if _, err := c.p.required(k); err != nil {
			return nil, err
		}
	}
	num, err := c.p.integer("RuleNumber", 0)
	if err != nil {
		return nil, err
	}
	egress, err := c.p.boolean("Egress", false)
	if err != nil {
		return nil, err
	}
	return c.change(func(st *vpc.State, tx *nsdb.VPCTx) error {
		a, err := st.NetworkACL(c.acct, id)
		if err != nil {
			return err
		}
		if num == vpc.DefaultRuleNumber {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "The default rule 32767 cannot be deleted."}
		}
		i := slices.IndexFunc(a.Entries, func(x vpc.NetworkACLEntry) bool { return x.Egress == egress && x.RuleNumber == num })
		if i < 0 {
			return &vpc.Error{Code: vpc.CodeNetworkACLEntryNotFound, Message: fmt.Sprintf("The specified rule %d does not exist in this network ACL.", num)}
		}
		a = clone(a)
		a.Entries = slices.Delete(a.Entries, i, i+1)
		return tx.Put(a.ID, a)
	})
}

// aclAssocOf finds the caller's ACL association id: an explicit one, or a
// subnet's implicit association with its VPC's default ACL, which AWS also
// names (Canopy derives its id from the subnet's, so it is stable).
func aclAssocOf(st *vpc.State, owner, id string) (*vpc.NetworkACL, string, error) {
	for _, a := range st.OwnedNetworkACLs(owner) {
		for _, as := range a.Associations {
			if as.ID == id {
				return a, as.SubnetID, nil
			}
		}
	}
	// An implicit association's id names its subnet.
	if h, ok := strings.CutPrefix(id, "aclassoc-"); ok {
		if s := st.Subnets["subnet-"+h]; s != nil && s.OwnerID == owner && implicitACLAssoc(s.ID) == id {
			if a := st.NetworkACLFor(s); a != nil {
				return a, s.ID, nil
			}
		}
	}
	return nil, "", vpc.KindACLAssoc.NotFoundError(id)
}

// implicitACLAssoc is the association id of a subnet with its VPC's default
// ACL before any ReplaceNetworkAclAssociation.
func implicitACLAssoc(subnetID string) string {
	h := subnetID[len("subnet-"):]
	return "aclassoc-" + h
}

func replaceACLAssociation(c *call) (*node, error) {
	id, err := c.requiredID("AssociationId", vpc.KindACLAssoc)
	if err != nil {
		return nil, err
	}
	to, err := c.requiredID("NetworkAclId", vpc.KindNetworkACL)
	if err != nil {
		return nil, err
	}
	assoc := newID(vpc.KindACLAssoc)
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		from, subID, err := aclAssocOf(st, c.acct, id)
		if err != nil {
			return err
		}
		dst, err := st.NetworkACL(c.acct, to)
		if err != nil {
			return err
		}
		if dst.VpcID != from.VpcID {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("Network ACL %s is not in the VPC of association %s.", to, id)}
		}
		from = clone(from)
		from.Associations = slices.DeleteFunc(from.Associations, func(a vpc.NetworkACLAssociation) bool { return a.SubnetID == subID })
		if err := tx.Put(from.ID, from); err != nil {
			return err
		}
		dst = clone(tx.State().NetworkACLs[to])
		dst.Associations = append(dst.Associations, vpc.NetworkACLAssociation{ID: assoc, SubnetID: subID})
		return tx.Put(dst.ID, dst)
	})
	if err != nil {
		return nil, err
	}
	return newNode("").s("newAssociationId", assoc), nil
}

// aclAssociations are an ACL's associations as AWS shows them: the explicit
// ones, and for the default ACL every subnet that has no explicit one.
func aclAssociations(st *vpc.State, a *vpc.NetworkACL) []vpc.NetworkACLAssociation {
	out := slices.Clone(a.Associations)
	if a.IsDefault {
		for _, s := range st.SubnetsOf(a.VpcID) {
			if st.NetworkACLFor(s) == a && !slices.ContainsFunc(out, func(x vpc.NetworkACLAssociation) bool { return x.SubnetID == s.ID }) {
				out = append(out, vpc.NetworkACLAssociation{ID: implicitACLAssoc(s.ID), SubnetID: s.ID})
			}
		}
	}
	return out
}

func aclResource(st *vpc.State) resource[vpc.NetworkACL] {
	return resource[vpc.NetworkACL]{
		kind: vpc.KindNetworkACL, idParam: "NetworkAclId",
		id:    func(v *vpc.NetworkACL) string { return v.ID },
		owner: func(v *vpc.NetworkACL) string { return v.OwnerID },
		fields: func(a *vpc.NetworkACL) fields {
			f := fields{"network-acl-id": {a.ID}, "vpc-id": {a.VpcID}, "default": {boolStr(a.IsDefault)}, "owner-id": {a.OwnerID},
				"association.association-id": nil, "association.network-acl-id": nil, "association.subnet-id": nil,
				"entry.rule-number": nil, "entry.cidr": nil, "entry.protocol": nil, "entry.rule-action": nil, "entry.egress": nil}
			if a.ID == "" {
				return f
			}
			for _, as := range aclAssociations(st, a) {
				f["association.association-id"] = append(f["association.association-id"], as.ID)
				f["association.network-acl-id"] = append(f["association.network-acl-id"], a.ID)
				f["association.subnet-id"] = append(f["association.subnet-id"], as.SubnetID)
			}
			for _, e := range a.Entries {
				f["entry.rule-number"] = append(f["entry.rule-number"], strconv.Itoa(e.RuleNumber))
				f["entry.cidr"] = append(f["entry.cidr"], e.CidrBlock.String())
				f["entry.protocol"] = append(f["entry.protocol"], e.Protocol)
				f["entry.rule-action"] = append(f["entry.rule-action"], e.RuleAction)
				f["entry.egress"] = append(f["entry.egress"], boolStr(e.Egress))
			}
			return f
		},
		tags: func(v *vpc.NetworkACL) vpc.Tags { return v.Tags }, maxPage: 1000,
	}
}

func describeNetworkACLs(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		as, next, err := describeOwned(c, st.NetworkACLs, st.OwnedNetworkACLs, aclResource(st))
		if err != nil {
			return err
		}
		set := res.set("networkAclSet")
		for _, a := range as {
			renderACLWith(set.item(), a, aclAssociations(st, a))
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func renderACL(n *node, a *vpc.NetworkACL) { renderACLWith(n, a, a.Associations) }

func renderACLWith(n *node, a *vpc.NetworkACL, assocs []vpc.NetworkACLAssociation) {
	n.s("networkAclId", a.ID).s("vpcId", a.VpcID).s("ownerId", a.OwnerID).b("default", a.IsDefault)
	es := n.set("entrySet")
	for _, e := range a.Entries {
		it := es.item().i("ruleNumber", e.RuleNumber).s("protocol", e.Protocol).s("ruleAction", e.RuleAction).b("egress", e.Egress).s("cidrBlock", e.CidrBlock.String())
		switch e.Protocol {
		case "6", "17":
			it.el("portRange").i("from", e.PortFrom).i("to", e.PortTo)
		case "1":
			it.el("icmpTypeCode").i("code", e.ICMPCode).i("type", e.ICMPType)
		}
	}
	as := n.set("associationSet")
	for _, x := range assocs {
		as.item().s("networkAclAssociationId", x.ID).s("networkAclId", a.ID).s("subnetId", x.SubnetID)
	}
	n.tagSet(a.Tags)
}
