package neutron_test

import (
	"slices"
	"testing"
)

// TestTags: add, replace, check, filter and remove tags; another project's
// object is not found; a bad tag changes nothing.
func TestTags(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	other := e.project("beta")
	a := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "a"}}, "network")["id"].(string)
	b := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "b"}}, "network")["id"].(string)
	sg := p.must(201, "POST", "/v2.0/security-groups", map[string]any{"security_group": map[string]any{"name": "web"}}, "security_group")["id"].(string)

	p.must(201, "PUT", "/v2.0/networks/"+a+"/tags/red", nil, "")
	p.must(201, "PUT", "/v2.0/networks/"+a+"/tags/blue", nil, "")
	p.must(200, "PUT", "/v2.0/networks/"+b+"/tags", map[string]any{"tags": []string{"blue", "green"}}, "")
	p.must(201, "PUT", "/v2.0/security-groups/"+sg+"/tags/red", nil, "")
	p.must(204, "GET", "/v2.0/networks/"+a+"/tags/red", nil, "")
	p.must(404, "GET", "/v2.0/networks/"+b+"/tags/red", nil, "")
	if n := p.must(200, "GET", "/v2.0/networks/"+a, nil, "network"); !slices.Equal(anyStrings(n["tags"]), []string{"blue", "red"}) {
		t.Errorf("a's tags: %v", n["tags"])
	}
	for q, want := range map[string][]string{
		"tags=blue":              {a, b},
		"tags=blue,red":          {a},
		"tags-any=red,green":     {a, b},
		"not-tags=red":           {b},
		"not-tags-any=red,green": {},
	} {
		got := []string{}
		for _, n := range p.must(200, "GET", "/v2.0/networks?"+q, nil, "")["networks"].([]any) {
			if id := n.(map[string]any)["id"].(string); id == a || id == b {
				got = append(got, id)
			}
		}
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("networks?%s: %v, want %v", q, got, w)
		}
	}
	if got := ids(p.must(200, "GET", "/v2.0/security-groups?tags=red", nil, ""), "security_groups"); !slices.Equal(got, []string{sg}) {
		t.Errorf("groups tagged red: %v", got)
	}
	before := e.vpcs.Revision()
	other.must(404, "PUT", "/v2.0/networks/"+a+"/tags/x", nil, "")
	p.must(400, "PUT", "/v2.0/networks/"+a+"/tags/a,b", nil, "")
	p.must(404, "DELETE", "/v2.0/networks/"+a+"/tags/nope", nil, "")
	if e.vpcs.Revision() != before {
		t.Errorf("refused tag calls changed the store")
	}
	p.must(204, "DELETE", "/v2.0/networks/"+a+"/tags/red", nil, "")
	p.must(204, "DELETE", "/v2.0/networks/"+b+"/tags", nil, "")
	if n := p.must(200, "GET", "/v2.0/networks/"+b+"/tags", nil, ""); len(n["tags"].([]any)) != 0 {
		t.Errorf("b's tags after delete all: %v", n)
	}
	// The name tag (EC2's Name) is untouched by Neutron tags.
	if n := p.must(200, "GET", "/v2.0/networks/"+b, nil, "network"); n["name"] != "b" {
		t.Errorf("b's name: %v", n["name"])
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
