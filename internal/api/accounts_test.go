package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestAccountsWithoutEC2: a server without an EC2 endpoint says so on
// /accounts instead of pretending to have no accounts.
func TestAccountsWithoutEC2(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/accounts", ""}, {"POST", "/accounts", `{"name":"a"}`}, {"DELETE", "/accounts/123456789012", ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		code, b := e.raw(c.method, c.path, body, nil)
		if d := apiError(t, b); code != http.StatusNotFound || !strings.Contains(d.Reason, "no EC2 endpoint") {
			t.Errorf("%s %s: %d %+v", c.method, c.path, code, d)
		}
	}
}
