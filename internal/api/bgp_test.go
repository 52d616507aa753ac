package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestBGPPasswordsAreWriteOnly: a BGP peer's password is stored but never
// answered — not by the BGP settings, the router, the router list, nor the
// answers of the writes themselves — and a GET-modify-PUT keeps it.
func TestBGPPasswordsAreWriteOnly(t *testing.T) {
	e := newEnv(t)
	const secret = "s3cret-md5-key"
	peers := func(pw string, set bool) []any {
		p := map[string]any{"address": "192.0.2.254", "asn": 64513}
		if pw != "" {
			p["password"] = pw
		}
		if set {
			p["password_set"] = true
		}
		return []any{p, map[string]any{"address": "192.0.2.253", "asn": 64514}}
	}
	stored := func(r string) []topology.BGPPeer {
		t.Helper()
		b := e.get(topology.KindRouter, r).(*topology.Router).BGP
		if b == nil {
			t.Fatalf("router %s has no BGP", r)
		}
		return b.Peers
	}
	noSecret := func(what string, b []byte) {
		t.Helper()
		if strings.Contains(string(b), secret) {
			t.Errorf("%s answers the BGP password: %s", what, b)
		}
	}

	// Created with the router: the answer hides it, the store has it.
	code, body := e.raw("POST", "/routers", map[string]any{"name": "edge", "bgp": map[string]any{"asn": 64512, "peers": peers(secret, false)}}, nil)
	if code != http.StatusCreated {
		t.Fatalf("POST /routers: %d %s", code, body)
	}
	noSecret("POST /routers", body)
	var rt topology.Router
	if err := json.Unmarshal(body, &rt); err != nil {
		t.Fatal(err)
	}
	r := rt.ID
	if p := rt.BGP.Peers; !p[0].PasswordSet || p[0].Password != "" || p[1].PasswordSet {
		t.Errorf("POST answer peers %+v: want password_set on the first only", p)
	}
	if p := stored(r); p[0].Password != secret || p[0].PasswordSet || p[1].Password != "" {
		t.Fatalf("stored peers %+v", p)
	}

	// Every read.
	for _, path := range []string{"/routers/" + r + "/bgp", "/routers/" + r, "/routers", "/routers?name=edge"} {
		code, body := e.raw("GET", path, nil, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		noSecret("GET "+path, body)
		if !strings.Contains(string(body), `"password_set":true`) {
			t.Errorf("GET %s does not say a password is set: %s", path, body)
		}
	}

	// GET, modify, PUT of the whole router and of its BGP settings: the
	// answers carry password_set back, and the stored password stays.
	var got topology.Router
	e.do("GET", "/routers/"+r, nil, http.StatusOK, &got)
	got.Name = "edge-1"
	code, body = e.raw("PUT", "/routers/"+r, got, nil)
	if code != http.StatusOK {
		t.Fatalf("PUT /routers/%s: %d %s", r, code, body)
	}
	noSecret("PUT /routers/{id}", body)
	if p := stored(r); p[0].Password != secret || p[0].PasswordSet {
		t.Fatalf("after GET-modify-PUT of the router, stored peers %+v", p)
	}
	var b topology.BGP
	e.do("GET", "/routers/"+r+"/bgp", nil, http.StatusOK, &b)
	b.Peers[0].HoldTime = 90
	code, body = e.raw("PUT", "/routers/"+r+"/bgp", b, nil)
	if code != http.StatusOK {
		t.Fatalf("PUT bgp: %d %s", code, body)
	}
	noSecret("PUT /routers/{id}/bgp", body)
	if p := stored(r); p[0].Password != secret || p[0].HoldTime != 90 {
		t.Fatalf("after GET-modify-PUT of the BGP settings, stored peers %+v", p)
	}

	// A new password replaces it; none (and no password_set) removes it.
	e.do("PUT", "/routers/"+r+"/bgp", map[string]any{"asn": 64512, "peers": peers("other", false)}, http.StatusOK, nil)
	if p := stored(r); p[0].Password != "other" {
		t.Fatalf("new password not stored: %+v", p)
	}
	e.do("PUT", "/routers/"+r+"/bgp", map[string]any{"asn": 64512, "peers": peers("", false)}, http.StatusOK, nil)
	if p := stored(r); p[0].Password != "" {
		t.Fatalf("password not removed: %+v", p)
	}

	// password_set for a peer with no stored password is a mistake, and
	// changes nothing.
	before := e.dump()
	code, body = e.raw("PUT", "/routers/"+r+"/bgp", map[string]any{"asn": 64512, "peers": peers("", true)}, nil)
	if d := apiError(t, body); code != http.StatusBadRequest || d.Field != "peers[0].password_set" || !strings.Contains(d.Reason, "192.0.2.254 has none") {
		t.Errorf("password_set without a stored password: %d %+v", code, d)
	}
	code, body = e.raw("POST", "/routers", map[string]any{"name": "x", "bgp": map[string]any{"asn": 64512, "peers": peers("", true)}}, nil)
	if d := apiError(t, body); code != http.StatusBadRequest || d.Field != "bgp.peers[0].password_set" {
		t.Errorf("POST with password_set and no password: %d %+v", code, d)
	}
	if e.dump() != before {
		t.Error("a refused write changed the store")
	}
}

// TestOpenAPIPasswordWriteOnly: the OpenAPI document marks the password
// write-only.
func TestOpenAPIPasswordWriteOnly(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	e.do("GET", "/openapi.json", nil, http.StatusOK, &doc)
	pw := doc.Components.Schemas["BGPPeer"].Properties["password"]
	if pw["writeOnly"] != true {
		t.Errorf("BGPPeer.password in the OpenAPI document: %v, want writeOnly", pw)
	}
	if _, ok := doc.Components.Schemas["BGPPeer"].Properties["password_set"]; !ok {
		t.Error("BGPPeer has no password_set in the OpenAPI document")
	}
}
