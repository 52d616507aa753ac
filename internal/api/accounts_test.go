package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
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

// TestAccountErrors: the EC2 side's account errors reach the REST client
// through the one table (classify): a bad name 400 on field name, a taken
// name 409, an unknown account 404; nothing is created by the failures.
func TestAccountErrors(t *testing.T) {
	store, _ := nsdbtest.OpenEmbedded(t)
	vs, err := nsdb.OpenVPCStore(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vs.Close)
	accounts, err := ec2.New(vs, ec2.Config{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hs := httptest.NewServer(newServer(store, Options{Token: testToken, Logger: log, Accounts: accounts}))
	t.Cleanup(hs.Close)
	e := &env{t: t, store: store, url: hs.URL}

	if code, b := e.raw("POST", "/accounts", `{"name":"alice"}`, nil); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
		field              string
	}{
		{"POST", "/accounts", `{"name":"a/b"}`, http.StatusBadRequest, "name"},
		{"POST", "/accounts", `{"name":"alice"}`, http.StatusConflict, "name"},
		{"DELETE", "/accounts/123456789012", "", http.StatusNotFound, ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		code, b := e.raw(c.method, c.path, body, nil)
		if d := apiError(t, b); code != c.status || d.Status != c.status || d.Field != c.field || d.Reason == "" {
			t.Errorf("%s %s %s: %d %+v, want %d on field %q", c.method, c.path, c.body, code, d, c.status, c.field)
		}
	}
	code, b := e.raw("GET", "/accounts", nil, nil)
	var as []ec2.AccountInfo
	if err := json.Unmarshal(b, &as); err != nil || code != http.StatusOK || len(as) != 1 || as[0].Name != "alice" {
		t.Fatalf("accounts after the failures: %d %s", code, b)
	}
}
