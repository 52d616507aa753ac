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
	register("CreateSecurityGroup", createSecurityGroup)
	register("DeleteSecurityGroup", deleteSecurityGroup)
	register("DescribeSecurityGroups", describeSecurityGroups)
	register("DescribeSecurityGroupRules", describeSecurityGroupRules)
	register("AuthorizeSecurityGroupIngress", func(c *call) (*node, error) { return authorize(c, false) })
	register("AuthorizeSecurityGroupEgress", func(c *call) (*node, error) { return authorize(c, true) })
	register("RevokeSecurityGroupIngress", func(c *call) (*node, error) { return revoke(c, false) })
	register("RevokeSecurityGroupEgress", func(c *call) (*node, error) { return revoke(c, true) })
}

// defaultVpcOf returns the caller's default VPC id, or "".
func defaultVpcOf(st *vpc.State, owner string) string {
	for _, v := range st.SortedVpcs() {
		if v.OwnerID == owner && v.IsDefault {
			return v.ID
		}
	}
	return ""
}

func createSecurityGroup(c *call) (*node, error) {
	name, err := c.p.required("GroupName")
	if err != nil {
		return nil, err
	}
	desc, err := c.p.required("GroupDescription")
	if err != nil {
		return nil, err
	}
	if len(name) > 255 || len(desc) > 255 || strings.HasPrefix(name, "sg-") {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "Group names and descriptions are up to 255 characters, and a name may not start with sg-."}
	}
	vpcID := c.p.str("VpcId")
	if vpcID != "" {
		if err := vpc.ParseID(vpc.KindVpc, vpcID); err != nil {
			return nil, err
		}
	}
	tags, err := c.p.tagSpecs("security-group")
	if err != nil {
		return nil, err
	}
	var sg *vpc.SecurityGroup
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		vid := vpcID
		if vid == "" {
			if vid = defaultVpcOf(st, c.acct); vid == "" {
				return &vpc.Error{Code: vpc.CodeVPCIDNotSpecified, Message: "No default VPC for this user."}
			}
		}
		if _, err := st.Vpc(c.acct, vid); err != nil {
			return err
		}
		groups := st.SecurityGroupsOf(vid)
		for _, g := range groups {
			if g.GroupName == name {
				return &vpc.Error{Code: vpc.CodeInvalidGroupDuplicate, Message: fmt.Sprintf("The security group '%s' already exists for VPC '%s'", name, vid)}
			}
		}
		if len(groups) >= c.s.cfg.Limits.SecurityGroupsPerVpc {
			return &vpc.Error{Code: vpc.CodeSecurityGroupLimitExceeded, Message: "The maximum number of security groups for the VPC has been reached."}
		}
		sg = &vpc.SecurityGroup{ID: newID(vpc.KindSecurityGroup), OwnerID: c.acct, VpcID: vid, GroupName: name, Description: desc, Tags: tags,
			Egress: []vpc.SecurityGroupRule{{ID: newID(vpc.KindSGRule), IsEgress: true, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: allIPv4}}}
		return tx.Put(sg.ID, sg)
	})
	if err != nil {
		return nil, err
	}
	res := newNode("").s("groupId", sg.ID)
	res.s("securityGroupArn", c.s.arn(c.acct, "security-group/"+sg.ID))
	res.tagSet(sg.Tags)
	return res, nil
}

func (s *Server) arn(owner, rest string) string {
	return "arn:aws:ec2:" + s.cfg.Region + ":" + owner + ":" + rest
}

// groupByIDOrName resolves GroupId, or GroupName in the default VPC.
func groupByIDOrName(c *call, st *vpc.State) (*vpc.SecurityGroup, error) {
	if id := c.p.str("GroupId"); id != "" {
		if err := vpc.ParseID(vpc.KindSecurityGroup, id); err != nil {
			return nil, err
		}
		return st.SecurityGroup(c.acct, id)
	}
	name := c.p.str("GroupName")
	if name == "" {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter groupId or groupName"}
	}
	dv := defaultVpcOf(st, c.acct)
	for _, g := range st.SecurityGroupsOf(dv) {
		if g.GroupName == name && dv != "" {
			return g, nil
		}
	}
	return nil, &vpc.Error{Code: vpc.CodeInvalidGroupNotFound, Message: fmt.Sprintf("The security group '%s' does not exist in default VPC '%s'", name, dv)}
}

func deleteSecurityGroup(c *call) (*node, error) {
	var id string
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := groupByIDOrName(c, st)
		if err != nil {
			return err
		}
		if err := vpc.CheckDeleteSecurityGroup(st, g); err != nil {
			return err
		}
		id = g.ID
		return tx.Delete("security_groups", g.ID)
	})
	if err != nil {
		return nil, err
	}
	return returnTrue().s("groupId", id), nil
}

// permissions reads IpPermissions.N (or the legacy top-level CidrIp,
// IpProtocol, FromPort, ToPort, SourceSecurityGroupName) into rules, one
// per source, resolving group names in sg's VPC.
func permissions(c *call, st *vpc.State, sg *vpc.SecurityGroup, egress bool) ([]vpc.SecurityGroupRule, error) {
	var perms []params
	for _, n := range c.p.indexes("IpPermissions") {
		perms = append(perms, c.p.sub("IpPermissions", n))
	}
	if len(perms) == 0 && (c.p.has("IpProtocol") || c.p.has("CidrIp") || c.p.has("SourceSecurityGroupName")) {
		legacy := params{"IpProtocol": c.p.str("IpProtocol"), "FromPort": c.p.str("FromPort"), "ToPort": c.p.str("ToPort")}
		if legacy["IpProtocol"] == "" {
			legacy["IpProtocol"] = "-1"
		}
		if v := c.p.str("CidrIp"); v != "" {
			legacy["IpRanges.1.CidrIp"] = v
		}
		if v := c.p.str("SourceSecurityGroupName"); v != "" {
			legacy["Groups.1.GroupName"] = v
		}
		perms = append(perms, legacy)
	}
	if len(perms) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter ipPermissions"}
	}
	var out []vpc.SecurityGroupRule
	for _, p := range perms {
		proto, err := vpc.NormalizeProtocol(p.str("IpProtocol"))
		if err != nil {
			return nil, err
		}
		from, err := p.integer("FromPort", -1)
		if err != nil {
			return nil, err
		}
		to, err := p.integer("ToPort", -1)
		if err != nil {
			return nil, err
		}
		if proto != "tcp" && proto != "udp" && proto != "icmp" {
			from, to = -1, -1
		}
		if len(p.indexes("PrefixListIds")) > 0 {
			// Prefix lists name AWS services' and managed address sets,
			// which do not exist here.
			return nil, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "Prefix lists are not supported in rules: this cloud has none."}
		}
		base := vpc.SecurityGroupRule{IsEgress: egress, IPProtocol: proto, FromPort: from, ToPort: to}
		n := 0
		for _, i := range p.indexes("IpRanges") {
			r := p.sub("IpRanges", i)
			cidr, err := vpc.ParseCIDR("cidrIp", r.str("CidrIp"))
			if err != nil {
				return nil, err
			}
			rule := base
			rule.CidrIPv4, rule.Description = cidr, r.str("Description")
			out = append(out, rule)
			n++
		}
		for _, i := range p.indexes("Ipv6Ranges") {
			r := p.sub("Ipv6Ranges", i)
			cidr, err := vpc.ParseCIDR6("cidrIpv6", r.str("CidrIpv6"))
			if err != nil {
				return nil, err
			}
			rule := base
			rule.CidrIPv6, rule.Description = cidr, r.str("Description")
			out = append(out, rule)
			n++
		}
		for _, i := range p.indexes("Groups") {
			g := p.sub("Groups", i)
			gid := g.str("GroupId")
			if gid == "" && g.str("GroupName") != "" {
				for _, o := range st.SecurityGroupsOf(sg.VpcID) {
					if o.GroupName == g.str("GroupName") {
						gid = o.ID
					}
				}
				if gid == "" {
					return nil, &vpc.Error{Code: vpc.CodeInvalidGroupNotFound, Message: fmt.Sprintf("The security group '%s' does not exist in VPC '%s'", g.str("GroupName"), sg.VpcID)}
				}
			}
			if err := vpc.ParseID(vpc.KindSecurityGroup, gid); err != nil {
				return nil, err
			}
			rule := base
			rule.ReferencedGroupID, rule.Description = gid, g.str("Description")
			out = append(out, rule)
			n++
		}
		if n == 0 {
			return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "A permission must name at least one IP range or security group."}
		}
	}
	return out, nil
}

// sameRule is AWS's duplicate test: everything but the description and id.
func sameRule(a, b *vpc.SecurityGroupRule) bool {
	af, at, bf, bt := a.FromPort, a.ToPort, b.FromPort, b.ToPort
	if a.IPProtocol == "-1" {
		af, at = -1, -1
	}
	if b.IPProtocol == "-1" {
		bf, bt = -1, -1
	}
	return a.IsEgress == b.IsEgress && a.IPProtocol == b.IPProtocol && af == bf && at == bt &&
		a.CidrIPv4 == b.CidrIPv4 && a.CidrIPv6 == b.CidrIPv6 && a.ReferencedGroupID == b.ReferencedGroupID
}

func authorize(c *call, egress bool) (*node, error) {
	var added []vpc.SecurityGroupRule
	var sg *vpc.SecurityGroup
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := groupByIDOrName(c, st)
		if err != nil {
			return err
		}
		rules, err := permissions(c, st, g, egress)
		if err != nil {
			return err
		}
		if err := vpc.CheckAddRules(st, g, rules, c.s.cfg.Limits); err != nil {
			return err
		}
		g = clone(g)
		for i := range rules {
			rules[i].ID = newID(vpc.KindSGRule)
		}
		if egress {
			g.Egress = append(g.Egress, rules...)
		} else {
			g.Ingress = append(g.Ingress, rules...)
		}
		added, sg = rules, g
		return tx.Put(g.ID, g)
	})
	if err != nil {
		return nil, err
	}
	res := returnTrue()
	set := res.set("securityGroupRuleSet")
	for i := range added {
		c.s.renderRule(set.item(), sg, &added[i])
	}
	return res, nil
}

func revoke(c *call, egress bool) (*node, error) {
	var gone []vpc.SecurityGroupRule
	var sg *vpc.SecurityGroup
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := groupByIDOrName(c, st)
		if err != nil {
			return err
		}
		rules := &g.Ingress
		if egress {
			rules = &g.Egress
		}
		var drop []int
		if ids := c.p.list("SecurityGroupRuleId"); len(ids) > 0 {
			for _, id := range ids {
				i := slices.IndexFunc(*rules, func(r vpc.SecurityGroupRule) bool { return r.ID == id })
				if i < 0 {
					return &vpc.Error{Code: vpc.CodeInvalidSecurityGroupRuleIDNotFound, Message: fmt.Sprintf("The security group rule ID '%s' does not exist", id)}
				}
				drop = append(drop, i)
			}
		} else {
			want, err := permissions(c, st, g, egress)
			if err != nil {
				return err
			}
			for i := range want {
				j := slices.IndexFunc(*rules, func(r vpc.SecurityGroupRule) bool { return sameRule(&r, &want[i]) })
				if j < 0 {
					return &vpc.Error{Code: vpc.CodeInvalidPermissionNotFound, Message: "The specified rule does not exist in this security group."}
				}
				drop = append(drop, j)
			}
		}
		g = clone(g)
		rules = &g.Ingress
		if egress {
			rules = &g.Egress
		}
		var keep []vpc.SecurityGroupRule
		for i, r := range *rules {
			if slices.Contains(drop, i) {
				gone = append(gone, r)
			} else {
				keep = append(keep, r)
			}
		}
		*rules = keep
		sg = g
		return tx.Put(g.ID, g)
	})
	if err != nil {
		return nil, err
	}
	res := returnTrue()
	set := res.set("revokedSecurityGroupRuleSet")
	for _, r := range gone {
		it := set.item().s("securityGroupRuleId", r.ID).s("groupId", sg.ID).b("isEgress", r.IsEgress).s("ipProtocol", r.IPProtocol)
		it.i("fromPort", r.FromPort).i("toPort", r.ToPort)
		if r.CidrIPv4.IsValid() {
			it.s("cidrIpv4", r.CidrIPv4.String())
		}
		if r.CidrIPv6.IsValid() {
			it.s("cidrIpv6", r.CidrIPv6.String())
		}
		it.opt("referencedGroupId", r.ReferencedGroupID).opt("description", r.Description)
	}
	return res, nil
}

func sgFields(g *vpc.SecurityGroup) fields {
	f := fields{"group-id": {g.ID}, "group-name": {g.GroupName}, "description": {g.Description},
		"vpc-id": {g.VpcID}, "owner-id": {g.OwnerID},
		"ip-permission.cidr": nil, "ip-permission.protocol": nil, "ip-permission.from-port": nil, "ip-permission.to-port": nil,
		"ip-permission.group-id": nil, "egress.ip-permission.cidr": nil, "egress.ip-permission.protocol": nil,
		"egress.ip-permission.group-id": nil, "ip-permission.ipv6-cidr": nil, "egress.ip-permission.ipv6-cidr": nil}
	for _, r := range g.Ingress {
		if r.CidrIPv4.IsValid() {
			f["ip-permission.cidr"] = append(f["ip-permission.cidr"], r.CidrIPv4.String())
		}
		if r.ReferencedGroupID != "" {
			f["ip-permission.group-id"] = append(f["ip-permission.group-id"], r.ReferencedGroupID)
		}
		if r.CidrIPv6.IsValid() {
			f["ip-permission.ipv6-cidr"] = append(f["ip-permission.ipv6-cidr"], r.CidrIPv6.String())
		}
		f["ip-permission.protocol"] = append(f["ip-permission.protocol"], r.IPProtocol)
		f["ip-permission.from-port"] = append(f["ip-permission.from-port"], strconv.Itoa(r.FromPort))
		f["ip-permission.to-port"] = append(f["ip-permission.to-port"], strconv.Itoa(r.ToPort))
	}
	for _, r := range g.Egress {
		if r.CidrIPv4.IsValid() {
			f["egress.ip-permission.cidr"] = append(f["egress.ip-permission.cidr"], r.CidrIPv4.String())
		}
		if r.ReferencedGroupID != "" {
			f["egress.ip-permission.group-id"] = append(f["egress.ip-permission.group-id"], r.ReferencedGroupID)
		}
		if r.CidrIPv6.IsValid() {
			f["egress.ip-permission.ipv6-cidr"] = append(f["egress.ip-permission.ipv6-cidr"], r.CidrIPv6.String())
		}
		f["egress.ip-permission.protocol"] = append(f["egress.ip-permission.protocol"], r.IPProtocol)
	}
	return f
}

var sgResource = resource[vpc.SecurityGroup]{
	kind: vpc.KindSecurityGroup, idParam: "GroupId",
	id:     func(v *vpc.SecurityGroup) string { return v.ID },
	owner:  func(v *vpc.SecurityGroup) string { return v.OwnerID },
	fields: sgFields, tags: func(v *vpc.SecurityGroup) vpc.Tags { return v.Tags }, maxPage: 1000,
}

func describeSecurityGroups(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		gs, next, err := describeOwned(c, st.SecurityGroups, st.OwnedSecurityGroups, sgResource)
		if err != nil {
			return err
		}
		if names := c.p.list("GroupName"); len(names) > 0 {
			dv := defaultVpcOf(st, c.acct)
			var keep []*vpc.SecurityGroup
			for _, n := range names {
				i := slices.IndexFunc(gs, func(g *vpc.SecurityGroup) bool { return g.GroupName == n && g.VpcID == dv })
				if i < 0 {
					return &vpc.Error{Code: vpc.CodeInvalidGroupNotFound, Message: fmt.Sprintf("The security group '%s' does not exist in default VPC '%s'", n, dv)}
				}
				keep = append(keep, gs[i])
			}
			gs = keep
		}
		set := res.set("securityGroupInfo")
		for _, g := range gs {
			renderSG(set.item(), g)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}

func renderSG(n *node, g *vpc.SecurityGroup) {
	n.s("ownerId", g.OwnerID).s("groupId", g.ID).s("groupName", g.GroupName).s("groupDescription", g.Description).s("vpcId", g.VpcID)
	renderPerms(n.set("ipPermissions"), g, g.Ingress)
	renderPerms(n.set("ipPermissionsEgress"), g, g.Egress)
	n.tagSet(g.Tags)
}

// renderPerms groups rules into IpPermissions: one per protocol and port
// range, listing its CIDRs and groups.
func renderPerms(set *node, g *vpc.SecurityGroup, rules []vpc.SecurityGroupRule) {
	type key struct {
		proto    string
		from, to int
	}
	var order []key
	byKey := map[key][]vpc.SecurityGroupRule{}
	for _, r := range rules {
		k := key{r.IPProtocol, r.FromPort, r.ToPort}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r)
	}
	for _, k := range order {
		it := set.item().s("ipProtocol", k.proto)
		if k.proto != "-1" {
			it.i("fromPort", k.from).i("toPort", k.to)
		}
		groups, ranges, ranges6 := it.set("groups"), it.set("ipRanges"), it.set("ipv6Ranges")
		for _, r := range byKey[k] {
			switch {
			case r.ReferencedGroupID != "":
				groups.item().s("groupId", r.ReferencedGroupID).s("userId", g.OwnerID).opt("description", r.Description)
			case r.CidrIPv6.IsValid():
				ranges6.item().s("cidrIpv6", r.CidrIPv6.String()).opt("description", r.Description)
			default:
				ranges.item().s("cidrIp", r.CidrIPv4.String()).opt("description", r.Description)
			}
		}
		it.set("prefixListIds")
	}
}

func (s *Server) renderRule(n *node, g *vpc.SecurityGroup, r *vpc.SecurityGroupRule) {
	n.s("securityGroupRuleId", r.ID).s("groupId", g.ID).s("groupOwnerId", g.OwnerID).b("isEgress", r.IsEgress)
	n.s("ipProtocol", r.IPProtocol).i("fromPort", r.FromPort).i("toPort", r.ToPort)
	if r.CidrIPv4.IsValid() {
		n.s("cidrIpv4", r.CidrIPv4.String())
	}
	if r.CidrIPv6.IsValid() {
		n.s("cidrIpv6", r.CidrIPv6.String())
	}
	if r.ReferencedGroupID != "" {
		n.el("referencedGroupInfo").s("groupId", r.ReferencedGroupID).s("userId", g.OwnerID)
	}
	n.opt("description", r.Description)
	n.s("securityGroupRuleArn", s.arn(g.OwnerID, "security-group-rule/"+r.ID))
	n.set("tagSet")
}

// sgRule is one rule with its group, the unit of DescribeSecurityGroupRules.
type sgRule struct {
	g *vpc.SecurityGroup
	r *vpc.SecurityGroupRule
}

var sgRuleResource = resource[sgRule]{
	kind: vpc.KindSGRule, idParam: "SecurityGroupRuleId",
	id:    func(x *sgRule) string { return x.r.ID },
	owner: func(x *sgRule) string { return x.g.OwnerID },
	fields: func(x *sgRule) fields {
		if x.r == nil {
			return fields{"group-id": nil, "security-group-rule-id": nil}
		}
		return fields{"group-id": {x.g.ID}, "security-group-rule-id": {x.r.ID}}
	},
	tags: func(*sgRule) vpc.Tags { return nil }, maxPage: 1000,
}

func describeSecurityGroupRules(c *call) (*node, error) {
	res := newNode("")
	err := c.read(func(st *vpc.State) error {
		all := map[string]*sgRule{}
		for _, g := range st.OwnedSecurityGroups(c.acct) {
			for _, rs := range [][]vpc.SecurityGroupRule{g.Ingress, g.Egress} {
				for i := range rs {
					all[rs[i].ID] = &sgRule{g: g, r: &rs[i]}
				}
			}
		}
		rules, next, err := describe(c, all, sgRuleResource)
		if err != nil {
			return err
		}
		set := res.set("securityGroupRuleSet")
		for _, x := range rules {
			c.s.renderRule(set.item(), x.g, x.r)
		}
		res.opt("nextToken", next)
		return nil
	})
	return res, err
}
