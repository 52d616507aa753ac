package ec2

import (
	"fmt"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func init() {
	register("ModifySecurityGroupRules", modifySecurityGroupRules)
}

// modifySecurityGroupRules replaces rules of one group in place, keeping
// their ids (SecurityGroupRule.N.SecurityGroupRuleId and
// SecurityGroupRule.N.SecurityGroupRule.*): terraform changes a rule's
// description this way.
func modifySecurityGroupRules(c *call) (*node, error) {
	gid, err := c.requiredID("GroupId", vpc.KindSecurityGroup)
	if err != nil {
		return nil, err
	}
	idx := c.p.indexes("SecurityGroupRule")
	if len(idx) == 0 {
		return nil, &vpc.Error{Code: vpc.CodeMissingParameter, Message: "The request must contain the parameter SecurityGroupRule"}
	}
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := st.SecurityGroup(c.acct, gid)
		if err != nil {
			return err
		}
		g = clone(g)
		for _, n := range idx {
			s := c.p.sub("SecurityGroupRule", n)
			rid, err := s.required("SecurityGroupRuleId")
			if err != nil {
				return err
			}
			if err := vpc.ParseID(vpc.KindSGRule, rid); err != nil {
				return err
			}
			rules, i := &g.Ingress, slices.IndexFunc(g.Ingress, func(r vpc.SecurityGroupRule) bool { return r.ID == rid })
			if i < 0 {
				rules, i = &g.Egress, slices.IndexFunc(g.Egress, func(r vpc.SecurityGroupRule) bool { return r.ID == rid })
			}
			if i < 0 {
				return &vpc.Error{Code: vpc.KindSGRule.NotFound, Message: fmt.Sprintf("The security group rule ID '%s' does not exist", rid)}
			}
			old := (*rules)[i]
			nr, err := ruleRequest(s.under("SecurityGroupRule"), old)
			if err != nil {
				return err
			}
			// Check the new rule against the group without the old one.
			rest := clone(g)
			if old.IsEgress {
				rest.Egress = slices.Delete(slices.Clone(rest.Egress), i, i+1)
			} else {
				rest.Ingress = slices.Delete(slices.Clone(rest.Ingress), i, i+1)
			}
			if err := vpc.CheckAddRules(st, rest, []vpc.SecurityGroupRule{nr}, c.s.cfg.Limits); err != nil {
				return err
			}
			(*rules)[i] = nr
		}
		return tx.Put(g.ID, g)
	})
	if err != nil {
		return nil, err
	}
	return returnTrue(), nil
}

// ruleRequest reads a SecurityGroupRuleRequest (IpProtocol, FromPort,
// ToPort, CidrIpv4, CidrIpv6, ReferencedGroupId, Description) as the new
// content of old, keeping its id and direction.
func ruleRequest(p params, old vpc.SecurityGroupRule) (vpc.SecurityGroupRule, error) {
	r := vpc.SecurityGroupRule{ID: old.ID, IsEgress: old.IsEgress}
	proto, err := vpc.NormalizeProtocol(p.str("IpProtocol"))
	if err != nil {
		return r, err
	}
	r.IPProtocol = proto
	if r.FromPort, err = p.integer("FromPort", -1); err != nil {
		return r, err
	}
	if r.ToPort, err = p.integer("ToPort", -1); err != nil {
		return r, err
	}
	if proto != "tcp" && proto != "udp" && proto != "icmp" {
		r.FromPort, r.ToPort = -1, -1
	}
	if p.str("PrefixListId") != "" {
		return r, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: "Prefix lists are not supported in rules: this cloud has none."}
	}
	if v := p.str("CidrIpv4"); v != "" {
		if r.CidrIPv4, err = vpc.ParseCIDR("cidrIpv4", v); err != nil {
			return r, err
		}
	}
	if v := p.str("CidrIpv6"); v != "" {
		if r.CidrIPv6, err = vpc.ParseCIDR6("cidrIpv6", v); err != nil {
			return r, err
		}
	}
	if v := p.str("ReferencedGroupId"); v != "" {
		if err := vpc.ParseID(vpc.KindSecurityGroup, v); err != nil {
			return r, err
		}
		r.ReferencedGroupID = v
	}
	r.Description = p.str("Description")
	return r, nil
}

// under returns the parameters under prefix. (a structure, not a list).
func (p params) under(prefix string) params {
	out := params{}
	for k, v := range p {
		if rest, ok := strings.CutPrefix(k, prefix+"."); ok {
			out[rest] = v
		}
	}
	return out
}
