package neutron_test

import (
	"fmt"
	"testing"
)

// TestQuotas: Neutron's defaults, the usage, a create past a quota refused,
// the quotas fixed.
func TestQuotas(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	other := e.project("beta")
	q := p.must(200, "GET", "/v2.0/quotas/"+p.id, nil, "quota")
	for k, v := range map[string]float64{"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50, "security_group": 10, "security_group_rule": 100} {
		if q[k] != v {
			t.Errorf("quota %s: %v, want %v", k, q[k], v)
		}
	}
	for i := range 10 {
		p.must(201, "POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": fmt.Sprint("r", i)}}, "")
	}
	before := e.vpcs.Revision()
	if status, doc := p.do("POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r10"}}); status != 409 || doc["NeutronError"].(map[string]any)["type"] != "OverQuota" {
		t.Errorf("the 11th router: %d %v", status, doc)
	}
	if e.vpcs.Revision() != before {
		t.Errorf("a refused create changed the store")
	}
	d := p.must(200, "GET", "/v2.0/quotas/"+p.id+"/details", nil, "quota")
	if r := d["router"].(map[string]any); r["used"] != 10.0 || r["limit"] != 10.0 {
		t.Errorf("router usage: %v", r)
	}
	// The EC2 default VPC is a network of the project.
	if n := d["network"].(map[string]any); n["used"] != 1.0 {
		t.Errorf("network usage: %v", n)
	}
	other.must(403, "GET", "/v2.0/quotas/"+p.id, nil, "")
	p.must(403, "PUT", "/v2.0/quotas/"+p.id, map[string]any{"quota": map[string]any{"router": 20}}, "")
	e.admin(p).must(400, "PUT", "/v2.0/quotas/"+p.id, map[string]any{"quota": map[string]any{"router": 20}}, "")
	p.must(200, "GET", "/v2.0/quotas/"+p.id+"/default", nil, "quota")
}
