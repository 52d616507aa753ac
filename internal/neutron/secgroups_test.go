package neutron_test

import (
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestSecurityGroups: project groups (Neutron's, not tied to a network)
// guard ports on two networks through their copies, follow rule changes,
// refuse deletion in use and go with their last use.
func TestSecurityGroups(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	other := e.project("beta")
	net1 := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "n1"}}, "network")["id"].(string)
	net2 := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "n2"}}, "network")["id"].(string)
	p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net1, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "")
	p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net2, "ip_version": 4, "cidr": "10.1.0.0/24"}}, "")

	// One default group per project, whatever its number of networks.
	// (The EC2 default VPC's own group shows as default-<vpc id>.)
	doc := p.must(200, "GET", "/v2.0/security-groups?name=default", nil, "")
	if got := ids(doc, "security_groups"); len(got) != 1 {
		t.Fatalf("default groups of a project with two networks: %v", doc)
	}
	def := doc["security_groups"].([]any)[0].(map[string]any)
	if def["name"] != "default" || len(def["security_group_rules"].([]any)) != 2 {
		t.Errorf("default group: %v", def)
	}
	defID := def["id"].(string)

	web := p.must(201, "POST", "/v2.0/security-groups", map[string]any{"security_group": map[string]any{"name": "web", "description": "80 from default"}}, "security_group")
	webID := web["id"].(string)
	if web["description"] != "80 from default" || len(web["security_group_rules"].([]any)) != 1 {
		t.Errorf("new group: %v", web)
	}
	r80 := p.must(201, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": webID, "direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_group_id": defID}}, "security_group_rule")
	if r80["remote_group_id"] != defID || r80["remote_ip_prefix"] != nil {
		t.Errorf("rule: %v", r80)
	}
	// Neutron's shapes: a rule without a remote shows remote_ip_prefix
	// null (any), an explicit prefix shows; the protocol shows as given.
	for _, c := range []struct {
		give       map[string]any
		proto, pfx any
	}{
		{map[string]any{"protocol": 17}, "17", nil},
		{map[string]any{"protocol": "udp", "remote_ip_prefix": "0.0.0.0/0", "port_range_min": 53, "port_range_max": 53}, "udp", "0.0.0.0/0"},
		{map[string]any{"protocol": "6", "remote_ip_prefix": "10.1.2.0/24"}, "6", "10.1.2.0/24"},
	} {
		c.give["security_group_id"], c.give["direction"] = webID, "egress"
		r := p.must(201, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": c.give}, "security_group_rule")
		if r["protocol"] != c.proto || r["remote_ip_prefix"] != c.pfx {
			t.Errorf("rule %v shown %v", c.give, r)
		}
		p.must(204, "DELETE", "/v2.0/security-group-rules/"+r["id"].(string), nil, "")
	}
	if r := web["security_group_rules"].([]any)[0].(map[string]any); r["remote_ip_prefix"] != nil || r["protocol"] != nil {
		t.Errorf("a new group's egress rule: %v", r)
	}
	other.must(404, "GET", "/v2.0/security-groups/"+webID, nil, "")

	// Ports on both networks: a port shows the project groups.
	pa := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net1, "security_groups": []string{webID, defID}}}, "port")
	pb := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net1}}, "port")
	pc := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net2, "security_groups": []string{webID}}}, "port")
	if got := pa["security_groups"].([]any); len(got) != 2 || got[0] != webID || got[1] != defID {
		t.Errorf("port a's groups: %v", got)
	}
	if got := pb["security_groups"].([]any); len(got) != 1 || got[0] != defID {
		t.Errorf("port b's groups (the default): %v", got)
	}

	// In the store: one copy of each group per network using it, whose
	// remote group is the other group's copy in the same network.
	copies := func() map[string]map[string]*vpc.SecurityGroup { // network → project group → copy
		out := map[string]map[string]*vpc.SecurityGroup{}
		e.vpcs.Read(func(st *vpc.State) {
			for _, g := range st.SecurityGroups {
				if c := g.Tags["neutron:security-group"]; c != "" {
					if out[g.VpcID] == nil {
						out[g.VpcID] = map[string]*vpc.SecurityGroup{}
					}
					out[g.VpcID][c] = g
				}
			}
		})
		return out
	}
	cs := copies()
	for _, n := range []string{net1, net2} {
		w, d := cs[n][webID], cs[n][defID]
		if w == nil || d == nil || len(cs[n]) != 2 {
			t.Fatalf("copies in %s: %v", n, cs[n])
		}
		i := slices.IndexFunc(w.Ingress, func(r vpc.SecurityGroupRule) bool { return r.ID == r80["id"] })
		if i < 0 || w.Ingress[i].ReferencedGroupID != d.ID {
			t.Errorf("copy of web in %s: %+v, want a rule from %s", n, w.Ingress, d.ID)
		}
		if len(d.Ingress) != 1 || d.Ingress[0].ReferencedGroupID != d.ID {
			t.Errorf("copy of default in %s: %+v, want ingress from itself", n, d.Ingress)
		}
	}
	e.vpcs.Read(func(st *vpc.State) {
		if d := translate.Translate(st, translate.CloudConfig{}); len(d.Skipped) > 0 {
			t.Errorf("skipped: %v", d.Skipped)
		}
		if g := st.NetworkInterfaces[pc["id"].(string)].Groups; len(g) != 1 || g[0] != cs[net2][webID].ID {
			t.Errorf("port c's VPC groups: %v", g)
		}
	})

	// A rule added and one deleted reach every copy.
	r22 := p.must(201, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": webID, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "192.0.2.0/24"}}, "security_group_rule")
	p.must(204, "DELETE", "/v2.0/security-group-rules/"+r80["id"].(string), nil, "")
	for _, n := range []string{net1, net2} {
		w := copies()[n][webID]
		if len(w.Ingress) != 1 || w.Ingress[0].ID != r22["id"] || w.Ingress[0].CidrIPv4.String() != "192.0.2.0/24" {
			t.Errorf("copy of web in %s after the changes: %+v", n, w.Ingress)
		}
	}
	// Renamed: the copies say so.
	p.must(200, "PUT", "/v2.0/security-groups/"+webID, map[string]any{"security_group": map[string]any{"name": "www"}}, "")
	if w := copies()[net1][webID]; w.Description != "www" {
		t.Errorf("copy after the rename: %+v", w)
	}

	// In use: refused; a port moved off it, and the last one deleted, free it.
	p.must(409, "DELETE", "/v2.0/security-groups/"+webID, nil, "")
	p.must(409, "DELETE", "/v2.0/security-groups/"+defID, nil, "")
	p.must(200, "PUT", "/v2.0/ports/"+pa["id"].(string), map[string]any{"port": map[string]any{"security_groups": []string{defID}}}, "")
	p.must(204, "DELETE", "/v2.0/ports/"+pc["id"].(string), nil, "")
	p.must(204, "DELETE", "/v2.0/security-groups/"+webID, nil, "")
	p.must(404, "GET", "/v2.0/security-groups/"+webID, nil, "")
	cs = copies()
	if cs[net1][webID] != nil || cs[net2][webID] != nil {
		t.Errorf("copies of a deleted group: %v", cs)
	}
	// A network with copies of the default group goes.
	p.must(204, "DELETE", "/v2.0/networks/"+net2, nil, "")
	if len(copies()[net2]) != 0 {
		t.Errorf("copies of a deleted network: %v", copies()[net2])
	}
}
