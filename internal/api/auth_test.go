package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestTokenHeaders(t *testing.T) {
	e := newEnv(t)
	for _, h := range []http.Header{
		{"Authorization": {"Bearer " + testToken}},
		{"Authorization": {"bearer " + testToken}},
		{"X-Auth-Token": {testToken}},
	} {
		if st, b := e.raw("GET", "/routers", nil, h); st != http.StatusOK {
			t.Errorf("%v: %d %s", h, st, b)
		}
	}
	for _, h := range []http.Header{
		{},
		{"Authorization": {"Basic " + testToken}},
		{"Authorization": {"Bearer " + testToken + "x"}},
		{"Authorization": {"Bearer " + testToken[:len(testToken)-1]}},
		{"X-Auth-Token": {""}},
	} {
		st, b := e.raw("GET", "/routers", nil, h)
		if st != http.StatusUnauthorized {
			t.Errorf("%v: %d %s", h, st, b)
		}
	}
	// The health check needs no token.
	if st, b := e.raw("GET", "/healthz", nil, http.Header{}); st != http.StatusOK || string(b) != "{\"status\":\"ok\"}\n" {
		t.Errorf("healthz: %d %s", st, b)
	}
}

// An API built without a token refuses every authenticated call.
func TestNoTokenConfigured(t *testing.T) {
	s := newServer(nil, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, h := range []string{"", "Bearer ", "Bearer x"} {
		req := httptest.NewRequest("GET", "/routers", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d", h, w.Code)
		}
	}
}

func TestEnsureAdminToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok, err := EnsureAdminToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) {
		t.Fatalf("token %q is not 32 bytes of hex", tok)
	}
	path := filepath.Join(dir, TokenFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
	}
	again, err := EnsureAdminToken(dir)
	if err != nil || again != tok {
		t.Fatalf("second start: %q %v, want %q", again, err, tok)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("data dir holds %d files, want only the token", len(entries))
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureAdminToken(dir); err == nil {
		t.Fatal("a world-readable token file was accepted")
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o600)
	if _, err := EnsureAdminToken(dir); err == nil {
		t.Fatal("an empty token file was accepted")
	}
}
