package neutron

import (
	"encoding/json"
	"net/netip"
	"strconv"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Security groups are the VPC groups: each network has its default group
// (ingress from its members, egress to all), which its ports get. A group
// belongs to one network here, where Neutron's belong to a project, so new
// groups cannot be made through this API yet (POST answers 400); their
// rules are Neutron's security group rules.

func sgNotFound(id string) *Error { return notFound("SecurityGroupNotFound", "Security group", id) }
func ruleNotFound(id string) *Error {
	return notFound("SecurityGroupRuleNotFound", "Security group rule", id)
}

func (s *Server) securityGroups() *resource {
	return &resource{
		collection: "security_groups", path: "security-groups", member: "security_group", notFound: sgNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			err := c.read(func(st *vpc.State) error {
				for _, v := range st.SortedVpcs() {
					for _, g := range st.SecurityGroupsOf(v.ID) {
						if c.sees(g.OwnerID) {
							out = append(out, renderGroup(g))
						}
					}
				}
				return nil
			})
			return out, err
		},
		create: func(c *call, a attrs) (string, error) {
			return "", badRequest("Creating security groups is not supported yet: a group belongs to one network on Canopy, and each network has its default group (add rules to it).")
		},
		update: func(c *call, id string, a attrs) error {
			return badRequest("Security groups cannot be changed yet; add or delete their rules.")
		},
		del: func(c *call, id string) error {
			return badRequest("A network's default group goes with its network.")
		},
	}
}

func renderGroup(g *vpc.SecurityGroup) obj {
	rules := []obj{}
	for _, rs := range [][]vpc.SecurityGroupRule{g.Ingress, g.Egress} {
		for i := range rs {
			rules = append(rules, renderRule(g, &rs[i]))
		}
	}
	return obj{"id": g.ID, "name": g.GroupName, "description": g.Description,
		"tenant_id": g.OwnerID, "project_id": g.OwnerID, "stateful": true,
		"security_group_rules": rules, "tags": []string{}}
}

func renderRule(g *vpc.SecurityGroup, r *vpc.SecurityGroupRule) obj {
	dir := "ingress"
	if r.IsEgress {
		dir = "egress"
	}
	o := obj{"id": r.ID, "security_group_id": g.ID, "direction": dir, "ethertype": "IPv4",
		"protocol": nil, "port_range_min": nil, "port_range_max": nil,
		"remote_ip_prefix": nil, "remote_group_id": nil, "remote_address_group_id": nil,
		"description": r.Description, "tenant_id": g.OwnerID, "project_id": g.OwnerID}
	if r.IPProtocol != "-1" {
		o["protocol"] = r.IPProtocol
		if r.FromPort >= 0 {
			o["port_range_min"] = r.FromPort
		}
		if r.ToPort >= 0 {
			o["port_range_max"] = r.ToPort
		}
	}
	switch {
	case r.ReferencedGroupID != "":
		o["remote_group_id"] = r.ReferencedGroupID
	case r.CidrIPv4.IsValid():
		o["remote_ip_prefix"] = r.CidrIPv4.String()
	}
	return o
}

func (s *Server) securityGroupRules() *resource {
	return &resource{
		collection: "security_group_rules", path: "security-group-rules", member: "security_group_rule", notFound: ruleNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			err := c.read(func(st *vpc.State) error {
				for _, v := range st.SortedVpcs() {
					for _, g := range st.SecurityGroupsOf(v.ID) {
						if c.sees(g.OwnerID) {
							out = append(out, renderGroup(g)["security_group_rules"].([]obj)...)
						}
					}
				}
				return nil
			})
			return out, err
		},
		create: s.createRule,
		update: func(c *call, id string, a attrs) error {
			return &Error{405, "HTTPMethodNotAllowed", "Security group rules cannot be updated; delete and create."}
		},
		del: s.deleteRule,
	}
}

// optInt reads an integer attribute that may be absent or null (-1).
func (a attrs) optInt(k string) (int, error) {
	raw, ok := a[k]
	if !ok || string(raw) == "null" {
		return -1, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, badRequest("Invalid input for %s. Reason: '%s' is not an integer.", k, raw)
		}
		if n, err = strconv.Atoi(s); err != nil {
			return 0, badRequest("Invalid input for %s. Reason: '%s' is not an integer.", k, raw)
		}
	}
	return n, nil
}

func (s *Server) createRule(c *call, a attrs) (string, error) {
	if err := a.only("security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
		"remote_ip_prefix", "remote_group_id", "description", "tenant_id", "project_id"); err != nil {
		return "", err
	}
	sgID, err := a.str("security_group_id", "", 255)
	if err != nil {
		return "", err
	}
	dir, err := a.str("direction", "", 16)
	if err != nil {
		return "", err
	}
	if sgID == "" || dir == "" {
		return "", badRequest("Failed to parse request. Required attributes 'security_group_id' and 'direction' not specified")
	}
	if dir != "ingress" && dir != "egress" {
		return "", badRequest("Invalid input for direction. Reason: %s is not in [ingress, egress].", dir)
	}
	if err := a.fixed("ethertype", "IPv4", "IPv6 is not supported"); err != nil {
		return "", err
	}
	proto := "-1"
	if raw, ok := a["protocol"]; ok && string(raw) != "null" {
		var p string
		if err := json.Unmarshal(raw, &p); err != nil {
			var n int
			if json.Unmarshal(raw, &n) != nil {
				return "", &Error{400, "SecurityGroupRuleInvalidProtocol", "Security group rule protocol " + string(raw) + " not supported."}
			}
			p = strconv.Itoa(n)
		}
		if p != "any" && p != "" {
			if proto, err = vpc.NormalizeProtocol(p); err != nil {
				return "", &Error{400, "SecurityGroupRuleInvalidProtocol", "Security group rule protocol " + p + " not supported."}
			}
		}
	}
	from, err := a.optInt("port_range_min")
	if err != nil {
		return "", err
	}
	to, err := a.optInt("port_range_max")
	if err != nil {
		return "", err
	}
	switch proto {
	case "tcp", "udp":
		if from == -1 && to == -1 {
			from, to = 0, 65535
		} else if from == -1 || to == -1 {
			return "", &Error{400, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max and both given"}
		}
		if from > to || from < 0 || to > 65535 {
			return "", &Error{400, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max"}
		}
	case "icmp":
	default:
		if from != -1 || to != -1 {
			return "", &Error{400, "SecurityGroupInvalidPortRange", "Ports are only for TCP, UDP and ICMP (type and code)"}
		}
	}
	desc, err := a.str("description", "", 255)
	if err != nil {
		return "", err
	}
	r := vpc.SecurityGroupRule{ID: ec2.NewID(vpc.KindSGRule), IsEgress: dir == "egress", IPProtocol: proto, FromPort: from, ToPort: to, Description: desc}
	prefix, err := a.str("remote_ip_prefix", "", 64)
	if err != nil {
		return "", err
	}
	remote, err := a.str("remote_group_id", "", 255)
	if err != nil {
		return "", err
	}
	switch {
	case prefix != "" && remote != "":
		return "", badRequest("Only remote_ip_prefix or remote_group_id may be provided.")
	case prefix != "":
		p, err := netip.ParsePrefix(prefix)
		if err != nil || !p.Addr().Is4() {
			return "", badRequest("Invalid input for remote_ip_prefix. Reason: '%s' is not a valid IPv4 CIDR.", prefix)
		}
		r.CidrIPv4 = p.Masked()
	case remote != "":
		r.ReferencedGroupID = remote
	default:
		r.CidrIPv4 = netip.MustParsePrefix("0.0.0.0/0")
	}
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g := st.SecurityGroups[sgID]
		if g == nil || !c.sees(g.OwnerID) {
			return sgNotFound(sgID)
		}
		if remote != "" {
			if ref := st.SecurityGroups[remote]; ref == nil || ref.OwnerID != g.OwnerID {
				return sgNotFound(remote)
			}
		}
		if err := vpc.CheckAddRules(st, g, []vpc.SecurityGroupRule{r}, s.cfg.EC2.Limits()); err != nil {
			return err
		}
		g = clone(g)
		if r.IsEgress {
			g.Egress = append(g.Egress, r)
		} else {
			g.Ingress = append(g.Ingress, r)
		}
		return tx.Put(g.ID, g)
	})
	return r.ID, err
}

func (s *Server) deleteRule(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, g := range st.SecurityGroups {
			if !c.sees(g.OwnerID) {
				continue
			}
			for _, eg := range []bool{false, true} {
				rs := g.Ingress
				if eg {
					rs = g.Egress
				}
				for i := range rs {
					if rs[i].ID != id {
						continue
					}
					g = clone(g)
					if eg {
						g.Egress = append(g.Egress[:i:i], g.Egress[i+1:]...)
					} else {
						g.Ingress = append(g.Ingress[:i:i], g.Ingress[i+1:]...)
					}
					return tx.Put(g.ID, g)
				}
			}
		}
		return ruleNotFound(id)
	})
}
