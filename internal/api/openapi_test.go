package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

// TestOpenAPIMatchesMux checks both directions: every pattern registered on
// the mux is an operation of the served document, and every operation of
// the document is routed by the mux to exactly that pattern.
func TestOpenAPIMatchesMux(t *testing.T) {
	e := newEnv(t)
	var doc openAPIDoc
	e.do("GET", "/openapi.json", nil, http.StatusOK, &doc)

	var ops []string
	for path, item := range doc.Paths {
		for method := range item {
			ops = append(ops, strings.ToUpper(method)+" "+path)
		}
	}
	sort.Strings(ops)
	registered := append([]string(nil), e.srv.patterns...)
	sort.Strings(registered)
	if strings.Join(ops, "\n") != strings.Join(registered, "\n") {
		t.Fatalf("document operations:\n%s\n\nmux patterns:\n%s", strings.Join(ops, "\n"), strings.Join(registered, "\n"))
	}
	// Route each documented operation through the real mux.
	fill := strings.NewReplacer("{id}", "x1", "{dhcp_id}", "x2", "{mac}", "02:00:00:00:00:01", "{rule_id}", "x3",
		"{port_id}", "x4", "{host_id}", "x5", "{address}", "10.0.0.1")
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		req := httptest.NewRequest(method, fill.Replace(path), nil)
		if _, pattern := e.srv.mux.Handler(req); pattern != op {
			t.Errorf("%s %s is routed to %q, want %q", method, fill.Replace(path), pattern, op)
		}
	}
	if len(ops) < 60 {
		t.Errorf("only %d operations", len(ops))
	}

	// Every $ref resolves.
	var raw any
	_, b := e.raw("GET", "/openapi.json", nil, nil)
	json.Unmarshal(b, &raw)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/components/schemas/")
				if _, ok := doc.Components.Schemas[name]; !ok {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(raw)
}

// TestOpenAPISchemasDescribeAnswers checks that every property of real
// answers is in the document's schema for that type.
func TestOpenAPISchemasDescribeAnswers(t *testing.T) {
	e := newEnv(t)
	var doc openAPIDoc
	e.do("GET", "/openapi.json", nil, http.StatusOK, &doc)
	r := e.id("/routers", map[string]any{"name": "r", "labels": map[string]string{"a": "b"}, "bgp": map[string]any{"asn": 64512}})
	c := e.id("/chains", map[string]any{"rules": []any{map[string]any{"action": "accept", "nw_src": "10.0.0.0/8", "nw_proto": 6, "tp_dst": map[string]any{"start": 1, "end": 2}}}})
	h := e.id("/hosts", map[string]any{"name": "h"})
	p := e.id("/routers/"+r+"/ports", map[string]any{"mac": "02:00:00:00:00:01", "address": "10.0.0.1/24", "mtu": 9000})
	check := func(schema, path string) map[string]any {
		var obj map[string]any
		e.do("GET", path, nil, http.StatusOK, &obj)
		props := doc.Components.Schemas[schema].Properties
		if len(props) == 0 {
			t.Fatalf("no schema %s", schema)
		}
		for k := range obj {
			if _, ok := props[k]; !ok {
				t.Errorf("%s answers property %q that schema %s lacks", path, k, schema)
			}
		}
		return obj
	}
	check("Router", "/routers/"+r)
	check("Port", "/ports/"+p)
	check("Host", "/hosts/"+h)
	chain := check("Chain", "/chains/"+c)
	rule := chain["rules"].([]any)[0].(map[string]any)
	for k := range rule {
		if _, ok := doc.Components.Schemas["Rule"].Properties[k]; !ok {
			t.Errorf("rule property %q missing from schema Rule", k)
		}
	}
	if _, ok := doc.Components.Schemas["RuleRequest"].Properties["position"]; !ok {
		t.Errorf("RuleRequest has no position")
	}
}
