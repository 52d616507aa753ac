package metadata

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzServe sends arbitrary paths, methods and token headers: the handler
// must not panic, and must answer nothing but 200 to a v1 request of a
// token-requiring instance's data only with a valid token.
func FuzzServe(f *testing.F) {
	f.Add("GET", "/latest/meta-data/network/interfaces/macs/02:00:0a:00:01:0a/local-ipv4s", "", "")
	f.Add("PUT", "/latest/api/token", "", "60")
	f.Add("GET", "/latest//meta-data///", "AAAA", "")
	f.Add("GET", "/", "", "")
	fx := newFixture(f)
	f.Fuzz(func(t *testing.T, method, path, token, ttl string) {
		u, err := url.Parse("http://169.254.169.254" + path)
		if err != nil || !validMethod(method) {
			return
		}
		for _, from := range []string{a, b} {
			r := httptest.NewRequest(http.MethodGet, "http://169.254.169.254/", nil)
			r.Method, r.URL, r.RemoteAddr = method, u, from+":1"
			if token != "" {
				r.Header.Set(HeaderToken, token)
			}
			if ttl != "" {
				r.Header.Set(HeaderTokenTTL, ttl)
			}
			w := httptest.NewRecorder()
			fx.srv.ServeHTTP(w, r)
			// B requires tokens; a fuzzed token never verifies, so B's data
			// is never served (the PUT that mints a token is the exception).
			if from == b && w.Code == http.StatusOK && method != http.MethodPut {
				t.Fatalf("%s %q with token %q answered 200 for B", method, path, token)
			}
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
