package api

import (
	"net/http"
	"sort"
	"strings"
	"testing"
)

// TestBodyLimit: a body of exactly 4 MiB is read; one byte more answers
// 413 in the API's error shape and changes nothing, on every kind of write
// that takes a body (create, replace, a nested add, trace).
func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	r1 := e.id("/routers", map[string]any{"name": "r1"})
	ch := e.id("/chains", map[string]any{"name": "c1"})
	// pad makes a JSON body of exactly n bytes: obj, then spaces.
	pad := func(obj string, n int) string { return obj + strings.Repeat(" ", n-len(obj)) }

	code, b := e.raw("POST", "/routers", pad(`{"name":"big"}`, maxBody), nil)
	if code != http.StatusCreated {
		t.Fatalf("a body of exactly %d bytes: %d %s", maxBody, code, b)
	}
	before := e.dump()
	for _, c := range []struct{ method, path, obj string }{
		{"POST", "/routers", `{"name":"too-big"}`},
		{"PUT", "/routers/" + r1, `{"name":"renamed"}`},
		{"POST", "/chains/" + ch + "/rules", `{"action":"accept"}`},
		{"POST", "/trace", `{"port":"x","proto":"icmp","src":"10.0.0.1","dst":"10.0.0.2"}`},
	} {
		code, b := e.raw(c.method, c.path, pad(c.obj, maxBody+1), nil)
		d := apiError(t, b)
		if code != http.StatusRequestEntityTooLarge || d.Status != code || !strings.Contains(d.Reason, "larger than 4194304 bytes") {
			t.Errorf("%s %s with %d bytes: %d %+v", c.method, c.path, maxBody+1, code, d)
		}
	}
	if after := e.dump(); after != before {
		t.Errorf("a refused oversized body changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestMethodNotAllowedAllow: on every path of the API, a method it does not
// serve answers 405 with an Allow header naming exactly the methods the
// route table serves there (HEAD beside GET), and each method Allow names
// is not itself a 405.
func TestMethodNotAllowedAllow(t *testing.T) {
	e := newEnv(t)
	want := map[string][]string{}
	for _, rt := range e.srv.routes {
		want[rt.path] = append(want[rt.path], rt.method)
	}
	if len(want) < 20 {
		t.Fatalf("only %d paths in the route table", len(want))
	}
	concrete := func(p string) string {
		var out []string
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, "{") {
				seg = "00000000-0000-4000-8000-000000000000"
			}
			out = append(out, seg)
		}
		return strings.Join(out, "/")
	}
	for p, ms := range want {
		allow := append([]string(nil), ms...)
		for _, m := range ms {
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		sort.Strings(allow)
		path := concrete(p)
		req, err := http.NewRequest("PATCH", e.url+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Allow"); resp.StatusCode != http.StatusMethodNotAllowed || got != strings.Join(allow, ", ") {
			t.Errorf("PATCH %s: %d, Allow %q, want 405 with %q", p, resp.StatusCode, got, strings.Join(allow, ", "))
		}
		for _, m := range allow {
			req, _ := http.NewRequest(m, e.url+path, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed {
				t.Errorf("%s %s: 405, though Allow names it", m, p)
			}
		}
	}
	// Without a token the 405 is a 401 first: the API says nothing about a
	// path to a caller it does not know.
	code, _ := e.raw("PATCH", "/routers", "{}", http.Header{})
	if code != http.StatusUnauthorized {
		t.Errorf("PATCH /routers without a token: %d, want 401", code)
	}
}
