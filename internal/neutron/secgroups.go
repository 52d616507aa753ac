package neutron

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Security groups. A Neutron group belongs to a project and may guard
// ports on any of its networks; a Canopy group belongs to one VPC, whose
// translation realizes its chains and its members' address group. So a
// group made through this API is a project group: a vpc.SecurityGroup
// without a VPC (VpcID ""), which holds the rules and is never translated
// itself, and one copy of it in each network where a port uses it (or a
// rule of a group used there names it), tagged tagCopyOf with the project
// group's id. A copy's rules are the project group's, with each remote
// group replaced by that group's copy in the same network, so the
// translator realizes a copy as any VPC group. Every change to a project
// group rewrites its copies in the same transaction. Copies are not shown
// through this API (a port shows its project groups); they go when their
// network goes, or with their project group.
//
// Each project has a project group "default" (ingress from its members,
// egress to all), made with its first network or group; the ports of a
// Neutron network get it. A VPC's own groups (an EC2 VPC's, or ones made
// with the EC2 API) are shown too, and their rules can be changed, but
// they guard ports of their VPC only; the "default" group every VPC has
// is not shown for a Neutron network (its ports use the project's), and
// shows as "default-<vpc id>" for an EC2 VPC (whose ports it guards).

// tagCopyOf marks a network's copy of a project group (the value is the
// project group's id).
const tagCopyOf = "neutron:security-group"

func sgNotFound(id string) *Error { return notFound("SecurityGroupNotFound", "Security group", id) }
func ruleNotFound(id string) *Error {
	return notFound("SecurityGroupRuleNotFound", "Security group rule", id)
}

// projectGroup reports whether g is a project group (not tied to a VPC).
func projectGroup(g *vpc.SecurityGroup) bool { return g.VpcID == "" }

// copyOf is the project group g is a copy of ("" when none).
func copyOf(g *vpc.SecurityGroup) string { return g.Tags[tagCopyOf] }

// shownGroup reports whether the API shows g: project groups, and a VPC's
// groups except copies and a Neutron network's own default.
func shownGroup(st *vpc.State, g *vpc.SecurityGroup) bool {
	if projectGroup(g) {
		return true
	}
	if copyOf(g) != "" {
		return false
	}
	v := st.Vpcs[g.VpcID]
	return v != nil && !(v.Network && g.GroupName == vpc.DefaultGroupName)
}

// shownGroups are the groups the caller sees, ordered by id.
func (c *call) shownGroups(st *vpc.State) []*vpc.SecurityGroup {
	var out []*vpc.SecurityGroup
	for _, g := range st.SecurityGroups {
		if c.sees(g.OwnerID) && shownGroup(st, g) {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b *vpc.SecurityGroup) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// group returns a group the caller sees through this API.
func (c *call) group(st *vpc.State, id string) (*vpc.SecurityGroup, error) {
	g := st.SecurityGroups[id]
	if g == nil || !c.sees(g.OwnerID) || !shownGroup(st, g) {
		return nil, sgNotFound(id)
	}
	return g, nil
}

// allIPv4 is a rule's "anywhere".
var allIPv4 = netip.MustParsePrefix("0.0.0.0/0")

// egressAll is the rule Neutron gives every new group.
func egressAll() vpc.SecurityGroupRule {
	return vpc.SecurityGroupRule{ID: ec2.NewID(vpc.KindSGRule), IsEgress: true, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: allIPv4, AnyRemote: true}
}

// defaultGroup returns owner's project group "default", made now (in tx)
// when it has none.
func defaultGroup(tx *nsdb.VPCTx, owner string) (*vpc.SecurityGroup, error) {
	st := tx.State()
	for _, g := range st.SecurityGroups {
		if g.OwnerID == owner && projectGroup(g) && g.GroupName == vpc.DefaultGroupName {
			return g, nil
		}
	}
	g := &vpc.SecurityGroup{ID: ec2.NewID(vpc.KindSecurityGroup), OwnerID: owner, GroupName: vpc.DefaultGroupName,
		Description: "Default security group"}
	g.Ingress = []vpc.SecurityGroupRule{{ID: ec2.NewID(vpc.KindSGRule), IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: g.ID}}
	g.Egress = []vpc.SecurityGroupRule{egressAll()}
	return g, tx.Put(g.ID, g)
}

// copyIn returns the id of project group id's copy in VPC vpcID, made now
// (in tx, with its rules) when there is none.
func copyIn(tx *nsdb.VPCTx, id, vpcID string) (string, error) {
	st := tx.State()
	for _, g := range st.SecurityGroupsOf(vpcID) {
		if copyOf(g) == id {
			return g.ID, nil
		}
	}
	t := st.SecurityGroups[id]
	if t == nil || !projectGroup(t) {
		// Gone behind this API's back (DeleteSecurityGroup on EC2).
		return "", sgNotFound(id)
	}
	cp := &vpc.SecurityGroup{ID: ec2.NewID(vpc.KindSecurityGroup), OwnerID: t.OwnerID, VpcID: vpcID,
		GroupName: t.ID, Description: t.GroupName, Tags: vpc.Tags{tagCopyOf: t.ID}}
	// Put before its rules, so that a rule naming the group itself (or a
	// cycle of groups) finds this copy.
	if err := tx.Put(cp.ID, cp); err != nil {
		return "", err
	}
	return cp.ID, syncCopy(tx, cp.ID)
}

// syncCopy rewrites a copy's rules from its project group's.
func syncCopy(tx *nsdb.VPCTx, copyID string) error {
	st := tx.State()
	cp := clone(st.SecurityGroups[copyID])
	t := st.SecurityGroups[copyOf(cp)]
	if t == nil {
		return sgNotFound(copyOf(cp))
	}
	var rules [2][]vpc.SecurityGroupRule
	for i, rs := range [][]vpc.SecurityGroupRule{t.Ingress, t.Egress} {
		for _, r := range rs {
			if r.ReferencedGroupID != "" {
				ref, err := copyIn(tx, r.ReferencedGroupID, cp.VpcID)
				if err != nil {
					return err
				}
				r.ReferencedGroupID = ref
			}
			rules[i] = append(rules[i], r)
		}
	}
	cp.Ingress, cp.Egress, cp.Description = rules[0], rules[1], t.GroupName
	return tx.Put(cp.ID, cp)
}

// syncCopies rewrites every copy of project group id.
func syncCopies(tx *nsdb.VPCTx, id string) error {
	var copies []string
	for _, g := range tx.State().SecurityGroups {
		if copyOf(g) == id {
			copies = append(copies, g.ID)
		}
	}
	slices.Sort(copies)
	for _, cp := range copies {
		if err := syncCopy(tx, cp); err != nil {
			return err
		}
	}
	return nil
}

// portGroups turns the groups asked for a port of VPC v (project groups or
// v's own) into the VPC groups the port is put in, copying project groups
// into v as needed; none asked means the default: the project's for a
// Neutron network, the VPC's for an EC2 VPC.
func (s *Server) portGroups(tx *nsdb.VPCTx, owner string, v *vpc.Vpc, gs []string) ([]string, error) {
	st := tx.State()
	if gs == nil {
		if !v.Network {
			for _, g := range st.SecurityGroupsOf(v.ID) {
				if g.GroupName == vpc.DefaultGroupName {
					return []string{g.ID}, nil
				}
			}
			return []string{}, nil
		}
		d, err := defaultGroup(tx, owner)
		if err != nil {
			return nil, err
		}
		gs = []string{d.ID}
	}
	if len(gs) > s.cfg.EC2.Limits().SecurityGroupsPerInterface {
		return nil, badRequest("A port has at most %d security groups.", s.cfg.EC2.Limits().SecurityGroupsPerInterface)
	}
	out := make([]string, 0, len(gs))
	for i, id := range gs {
		g := tx.State().SecurityGroups[id]
		if g == nil || g.OwnerID != owner || !shownGroup(tx.State(), g) {
			return nil, sgNotFound(id)
		}
		if slices.Contains(gs[:i], id) {
			return nil, invalidInput("security group %s is given twice", id)
		}
		switch {
		case projectGroup(g):
			cp, err := copyIn(tx, id, v.ID)
			if err != nil {
				return nil, err
			}
			out = append(out, cp)
		case g.VpcID == v.ID:
			out = append(out, id)
		default:
			return nil, invalidInput("security group %s belongs to VPC %s, not to the port's network %s", id, g.VpcID, v.ID)
		}
	}
	return out, nil
}

// shownPortGroups is what a port shows: each copy as its project group.
func shownPortGroups(st *vpc.State, gs []string) []string {
	out := []string{}
	for _, id := range gs {
		if g := st.SecurityGroups[id]; g != nil && copyOf(g) != "" {
			id = copyOf(g)
		}
		out = append(out, id)
	}
	return out
}

func (s *Server) securityGroups() *resource {
	return &resource{
		collection: "security_groups", path: "security-groups", member: "security_group", notFound: sgNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			err := c.read(func(st *vpc.State) error {
				for _, g := range c.shownGroups(st) {
					out = append(out, renderGroup(g))
				}
				return nil
			})
			return out, err
		},
		create: s.createGroup,
		update: s.updateGroup,
		del:    s.deleteGroup,
	}
}

func renderGroup(g *vpc.SecurityGroup) obj {
	rules := []obj{}
	for _, rs := range [][]vpc.SecurityGroupRule{g.Ingress, g.Egress} {
		for i := range rs {
			rules = append(rules, renderRule(g, &rs[i]))
		}
	}
	name := g.GroupName
	desc := g.Description
	if projectGroup(g) {
		desc = g.Tags[tagDescription]
	} else if name == vpc.DefaultGroupName {
		// An EC2 VPC's default group: named so that the project's is the
		// one "default" (clients look it up by name).
		name += "-" + g.VpcID
	}
	return obj{"id": g.ID, "name": name, "description": desc,
		"tenant_id": g.OwnerID, "project_id": g.OwnerID, "stateful": true,
		"security_group_rules": rules, "tags": neutronTags(g.Tags)}
}

// groupText reads a group's name and description, and refuses what
// Canopy's groups cannot be.
func groupText(a attrs) (name, desc string, err error) {
	if name, desc, err = a.nameDesc(); err != nil {
		return
	}
	err = a.fixed("stateful", true, "security groups are stateful on Canopy")
	return
}

func (s *Server) createGroup(c *call, a attrs) (string, error) {
	if err := a.only("name", "description", "stateful", "tenant_id", "project_id"); err != nil {
		return "", err
	}
	name, desc, err := groupText(a)
	if err != nil {
		return "", err
	}
	var id string
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		owner, err := c.owner(a, func(p string) bool { return st.Accounts[p] != nil })
		if err != nil {
			return err
		}
		if _, err := defaultGroup(tx, owner); err != nil {
			return err
		}
		if name == vpc.DefaultGroupName {
			return conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
		}
		if err := checkQuota(tx.State(), owner, "security_group"); err != nil {
			return err
		}
		g := &vpc.SecurityGroup{ID: ec2.NewID(vpc.KindSecurityGroup), OwnerID: owner, GroupName: name,
			Egress: []vpc.SecurityGroupRule{egressAll()}, Tags: withText(nil, "", desc)}
		id = g.ID
		return tx.Put(g.ID, g)
	})
	return id, err
}

func (s *Server) updateGroup(c *call, id string, a attrs) error {
	if err := a.only("name", "description", "stateful"); err != nil {
		return err
	}
	name, desc, err := groupText(a)
	if err != nil {
		return err
	}
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := c.group(st, id)
		if err != nil {
			return err
		}
		if !projectGroup(g) {
			if a.has("name") || a.has("description") {
				return badRequest("Security group %s belongs to VPC %s: its name and description are fixed (EC2's rule).", id, g.VpcID)
			}
			return nil
		}
		if a.has("name") && name != g.GroupName && (g.GroupName == vpc.DefaultGroupName || name == vpc.DefaultGroupName) {
			return conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
		}
		g = clone(g)
		if a.has("name") {
			g.GroupName = name
		}
		if a.has("description") {
			g.Tags = withText(g.Tags, "", desc)
		}
		if err := tx.Put(g.ID, g); err != nil {
			return err
		}
		return syncCopies(tx, g.ID)
	})
}

func (s *Server) deleteGroup(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := c.group(st, id)
		if err != nil {
			return err
		}
		if !projectGroup(g) {
			if err := vpc.CheckDeleteSecurityGroup(st, g); err != nil {
				return groupInUse(id, err)
			}
			return tx.Delete("security_groups", id)
		}
		if g.GroupName == vpc.DefaultGroupName {
			return conflict("SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
		}
		var copies []*vpc.SecurityGroup
		for _, o := range st.SecurityGroups {
			if copyOf(o) == id {
				if es := st.GroupMembers(o.ID); len(es) > 0 {
					return conflict("SecurityGroupInUse", "Security Group %s in use: port %s.", id, es[0].ID)
				}
				copies = append(copies, o)
			}
		}
		// Rules of other project groups naming it go with it, as in
		// Neutron, and their copies follow.
		var naming []*vpc.SecurityGroup
		for _, o := range st.SecurityGroups {
			if o.ID != id && projectGroup(o) && refers(o, id) {
				naming = append(naming, o)
			}
		}
		slices.SortFunc(naming, func(a, b *vpc.SecurityGroup) int { return strings.Compare(a.ID, b.ID) })
		for _, o := range naming {
			o = clone(o)
			o.Ingress = slices.DeleteFunc(o.Ingress, func(r vpc.SecurityGroupRule) bool { return r.ReferencedGroupID == id })
			o.Egress = slices.DeleteFunc(o.Egress, func(r vpc.SecurityGroupRule) bool { return r.ReferencedGroupID == id })
			if err := tx.Put(o.ID, o); err != nil {
				return err
			}
			if err := syncCopies(tx, o.ID); err != nil {
				return err
			}
		}
		for _, cp := range copies {
			for _, o := range tx.State().SecurityGroups {
				if o.ID != cp.ID && copyOf(o) != id && refers(o, cp.ID) {
					return conflict("SecurityGroupInUse", "Security Group %s in use: a rule of group %s names it.", id, o.ID)
				}
			}
		}
		for _, cp := range copies {
			if err := tx.Delete("security_groups", cp.ID); err != nil {
				return err
			}
		}
		return tx.Delete("security_groups", id)
	})
}

// refers reports whether a rule of g names group id.
func refers(g *vpc.SecurityGroup, id string) bool {
	for _, rs := range [][]vpc.SecurityGroupRule{g.Ingress, g.Egress} {
		for _, r := range rs {
			if r.ReferencedGroupID == id {
				return true
			}
		}
	}
	return false
}

// groupInUse answers SecurityGroupInUse for the shared checks' refusals.
func groupInUse(id string, err error) error {
	var ve *vpc.Error
	if errors.As(err, &ve) && (ve.Code == vpc.CodeDependencyViolation || ve.Code == vpc.CodeCannotDelete) {
		return conflict("SecurityGroupInUse", "Security Group %s in use: %s", id, ve.Message)
	}
	return err
}

// deleteCopies deletes the copies of project groups in VPC vpcID (its
// ports gone), for its network's deletion.
func deleteCopies(st *vpc.State, tx *nsdb.VPCTx, vpcID string) error {
	for _, g := range st.SecurityGroupsOf(vpcID) {
		if copyOf(g) != "" {
			if err := tx.Delete("security_groups", g.ID); err != nil {
				return err
			}
		}
	}
	return nil
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
		o["protocol"] = cmp.Or(r.GivenProtocol, r.IPProtocol)
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
	case r.CidrIPv4.IsValid() && !r.AnyRemote:
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
				for _, g := range c.shownGroups(st) {
					out = append(out, renderGroup(g)["security_group_rules"].([]obj)...)
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
	proto, given := "-1", ""
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
			if proto != p {
				given = p
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
	// Neutron's port_range_* attributes are ports (0 to 65535) whatever the
	// protocol; -1 is only this code's "not given".
	for _, k := range []string{"port_range_min", "port_range_max"} {
		if v, _ := a.optInt(k); string(a[k]) != "" && string(a[k]) != "null" && (v < 0 || v > 65535) {
			return "", &Error{400, "SecurityGroupInvalidPortValue", "Invalid value for port " + strconv.Itoa(v) + "."}
		}
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
		switch {
		case from == -1 && to != -1:
			return "", &Error{400, "SecurityGroupMissingIcmpType", "ICMP code (port-range-max) " + strconv.Itoa(to) + " is provided but ICMP type (port-range-min) is missing."}
		case from > 255 || to > 255:
			field, v := "type (port-range-min)", from
			if from <= 255 {
				field, v = "code (port-range-max)", to
			}
			return "", &Error{400, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP " + field + " " + strconv.Itoa(v) + ". It must be 0 to 255."}
		}
	default:
		if from != -1 || to != -1 {
			return "", &Error{400, "SecurityGroupInvalidPortRange", "Ports are only for TCP, UDP and ICMP (type and code)"}
		}
	}
	desc, err := a.str("description", "", 255)
	if err != nil {
		return "", err
	}
	r := vpc.SecurityGroupRule{ID: ec2.NewID(vpc.KindSGRule), IsEgress: dir == "egress", IPProtocol: proto, GivenProtocol: given,
		FromPort: from, ToPort: to, Description: desc}
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
		r.CidrIPv4, r.AnyRemote = allIPv4, true
	}
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := c.group(st, sgID)
		if err != nil {
			return err
		}
		if remote != "" {
			ref := st.SecurityGroups[remote]
			if ref == nil || ref.OwnerID != g.OwnerID || !shownGroup(st, ref) {
				return sgNotFound(remote)
			}
			if projectGroup(ref) != projectGroup(g) || ref.VpcID != g.VpcID {
				return invalidInput("remote group %s and group %s are not both project groups or groups of one VPC", remote, g.ID)
			}
		}
		if err := vpc.CheckAddRules(st, g, []vpc.SecurityGroupRule{r}, s.cfg.EC2.Limits()); err != nil {
			return err
		}
		if projectGroup(g) {
			if err := checkQuota(st, g.OwnerID, "security_group_rule"); err != nil {
				return err
			}
		}
		g = clone(g)
		if r.IsEgress {
			g.Egress = append(g.Egress, r)
		} else {
			g.Ingress = append(g.Ingress, r)
		}
		if err := tx.Put(g.ID, g); err != nil {
			return err
		}
		if projectGroup(g) {
			return syncCopies(tx, g.ID)
		}
		return nil
	})
	return r.ID, err
}

func (s *Server) deleteRule(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		for _, g := range c.shownGroups(st) {
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
					if err := tx.Put(g.ID, g); err != nil {
						return err
					}
					if projectGroup(g) {
						return syncCopies(tx, g.ID)
					}
					return nil
				}
			}
		}
		return ruleNotFound(id)
	})
}
