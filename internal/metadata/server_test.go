package metadata

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func instA() *Instance {
	return &Instance{
		ID:            "i-0123456789abcdef0",
		ImageID:       "ami-0abcdef1234567890",
		InstanceType:  "t3.micro",
		ReservationID: "r-0fedcba9876543210",
		AccountID:     "123456789012",
		Region:        "canopy-1",
		Zone:          "canopy-1a",
		Hostname:      "ip-10-0-1-10.canopy-1.compute.internal",
		LaunchTime:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		KeyName:       "ops",
		PublicKey:     "ssh-ed25519 AAAAC3Nza ops@example",
		UserData:      []byte("#cloud-config\nhostname: a\n"),
		Interfaces: []Interface{
			{
				MAC: "02:00:0a:00:01:0a", DeviceNumber: 0, ID: "eni-0aaaa",
				SubnetID: "subnet-0a", SubnetCIDR: netip.MustParsePrefix("10.0.1.0/24"),
				VPCID: "vpc-01", VPCCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("10.1.0.0/16")},
				PrivateIPs:     []netip.Addr{netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.1.11")},
				LocalHostname:  "ip-10-0-1-10.canopy-1.compute.internal",
				Associations:   []Association{{Public: netip.MustParseAddr("198.51.100.7"), Private: netip.MustParseAddr("10.0.1.10")}},
				SecurityGroups: []SecurityGroup{{ID: "sg-01", Name: "web"}, {ID: "sg-02", Name: "default"}},
			},
			{
				MAC: "02:00:0a:00:02:14", DeviceNumber: 1, ID: "eni-0bbbb",
				SubnetID: "subnet-0b", SubnetCIDR: netip.MustParsePrefix("10.0.2.0/24"),
				VPCID: "vpc-01", VPCCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")},
				PrivateIPs:     []netip.Addr{netip.MustParseAddr("10.0.2.20")},
				SecurityGroups: []SecurityGroup{{ID: "sg-03", Name: "db"}},
			},
		},
	}
}

// instB has no public address, no key, no user data and requires tokens.
func instB() *Instance {
	return &Instance{
		ID: "i-0bbbbbbbbbbbbbbbb", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.small",
		AccountID: "123456789012", Region: "canopy-1", Zone: "canopy-1b",
		Hostname: "ip-10-0-3-5.canopy-1.compute.internal", HTTPTokens: TokensRequired,
		Interfaces: []Interface{{
			MAC: "02:00:0a:00:03:05", ID: "eni-0cccc", SubnetID: "subnet-0c",
			SubnetCIDR: netip.MustParsePrefix("10.0.3.0/24"), VPCID: "vpc-01",
			VPCCIDRs:       []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")},
			PrivateIPs:     []netip.Addr{netip.MustParseAddr("10.0.3.5")},
			SecurityGroups: []SecurityGroup{{ID: "sg-02", Name: "default"}},
		}},
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// fixture serves A at 10.0.1.10 and B at 10.0.3.5, keyed by source address
// the way a caller could resolve by the connection's origin.
type fixture struct {
	srv   *Server
	clock *clock
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	byAddr := map[string]*Instance{"10.0.1.10": instA(), "10.0.3.5": instB()}
	c := &clock{t: time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)}
	s, err := New(Config{
		Resolve: func(r *http.Request) (*Instance, bool) {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			in, ok := byAddr[host]
			return in, ok
		},
		Now: c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: s, clock: c}
}

func (f *fixture) do(method, from, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://169.254.169.254"+path, nil)
	r.RemoteAddr = from + ":40000"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

func (f *fixture) token(t testing.TB, from string, ttl string) string {
	t.Helper()
	w := f.do(http.MethodPut, from, "/latest/api/token", HeaderTokenTTL, ttl)
	if w.Code != http.StatusOK || w.Body.Len() == 0 {
		t.Fatalf("PUT token: %d %q", w.Code, w.Body)
	}
	if got := w.Header().Get(HeaderTokenTTL); got != ttl {
		t.Errorf("token TTL header %q, want %q", got, ttl)
	}
	return w.Body.String()
}

const a, b = "10.0.1.10", "10.0.3.5"

func TestPaths(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ path, want string }{
		{"/latest/meta-data/instance-id", "i-0123456789abcdef0"},
		{"/latest/meta-data/ami-id", "ami-0abcdef1234567890"},
		{"/latest/meta-data/ami-launch-index", "0"},
		{"/latest/meta-data/hostname", "ip-10-0-1-10.canopy-1.compute.internal"},
		{"/latest/meta-data/local-hostname", "ip-10-0-1-10.canopy-1.compute.internal"},
		{"/latest/meta-data/local-ipv4", "10.0.1.10"},
		{"/latest/meta-data/public-ipv4", "198.51.100.7"},
		{"/latest/meta-data/mac", "02:00:0a:00:01:0a"},
		{"/latest/meta-data/instance-type", "t3.micro"},
		{"/latest/meta-data/reservation-id", "r-0fedcba9876543210"},
		{"/latest/meta-data/security-groups", "web\ndefault"},
		{"/latest/meta-data/placement/availability-zone", "canopy-1a"},
		{"/latest/meta-data/placement/region", "canopy-1"},
		{"/latest/meta-data/public-keys/0/openssh-key", "ssh-ed25519 AAAAC3Nza ops@example"},
		{"/latest/meta-data/services/domain", "amazonaws.com"},
		{"/latest/user-data", "#cloud-config\nhostname: a\n"},
		// Trailing slash on a file still serves it; versioned prefixes serve the same data.
		{"/latest/meta-data/instance-id/", "i-0123456789abcdef0"},
		{"/2009-04-04/meta-data/instance-id", "i-0123456789abcdef0"},
		{"/2021-03-23/meta-data/local-ipv4", "10.0.1.10"},
	} {
		w := f.do(http.MethodGet, a, tc.path)
		if w.Code != http.StatusOK || w.Body.String() != tc.want {
			t.Errorf("GET %s: %d %q, want %q", tc.path, w.Code, w.Body, tc.want)
		}
	}
	const nic = "/latest/meta-data/network/interfaces/macs/02:00:0a:00:01:0a/"
	for _, tc := range []struct{ leaf, want string }{
		{"device-number", "0"},
		{"interface-id", "eni-0aaaa"},
		{"local-ipv4s", "10.0.1.10\n10.0.1.11"},
		{"local-hostname", "ip-10-0-1-10.canopy-1.compute.internal"},
		{"mac", "02:00:0a:00:01:0a"},
		{"owner-id", "123456789012"},
		{"public-ipv4s", "198.51.100.7"},
		{"ipv4-associations/198.51.100.7", "10.0.1.10"},
		{"security-group-ids", "sg-01\nsg-02"},
		{"security-groups", "web\ndefault"},
		{"subnet-id", "subnet-0a"},
		{"subnet-ipv4-cidr-block", "10.0.1.0/24"},
		{"vpc-id", "vpc-01"},
		{"vpc-ipv4-cidr-block", "10.0.0.0/16"},
		{"vpc-ipv4-cidr-blocks", "10.0.0.0/16\n10.1.0.0/16"},
	} {
		w := f.do(http.MethodGet, a, nic+tc.leaf)
		if w.Code != http.StatusOK || w.Body.String() != tc.want {
			t.Errorf("GET %s%s: %d %q, want %q", nic, tc.leaf, w.Code, w.Body, tc.want)
		}
	}
	w := f.do(http.MethodGet, a, "/latest/meta-data/network/interfaces/macs/02:00:0a:00:02:14/device-number")
	if w.Body.String() != "1" {
		t.Errorf("second interface device-number %q", w.Body)
	}
	if ct := f.do(http.MethodGet, a, "/latest/user-data").Header().Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("user-data content type %q", ct)
	}
}

func TestListings(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ from, path, want string }{
		{a, "/latest/", "dynamic/\nmeta-data/\nuser-data"},
		{a, "/latest", "dynamic/\nmeta-data/\nuser-data"},
		{a, "/latest/meta-data/", "ami-id\nami-launch-index\nhostname\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\nplacement/\npublic-ipv4\npublic-keys/\nreservation-id\nsecurity-groups\nservices/"},
		{a, "/latest/meta-data/network", "interfaces/"},
		{a, "/latest/meta-data/network/interfaces/macs/", "02:00:0a:00:01:0a/\n02:00:0a:00:02:14/"},
		{a, "/latest/meta-data/network/interfaces/macs/02:00:0a:00:01:0a/", "device-number\ninterface-id\nipv4-associations/\nlocal-hostname\nlocal-ipv4s\nmac\nowner-id\npublic-ipv4s\nsecurity-group-ids\nsecurity-groups\nsubnet-id\nsubnet-ipv4-cidr-block\nvpc-id\nvpc-ipv4-cidr-block\nvpc-ipv4-cidr-blocks"},
		{a, "/latest/meta-data/network/interfaces/macs/02:00:0a:00:02:14/", "device-number\ninterface-id\nlocal-ipv4s\nmac\nowner-id\nsecurity-group-ids\nsecurity-groups\nsubnet-id\nsubnet-ipv4-cidr-block\nvpc-id\nvpc-ipv4-cidr-block\nvpc-ipv4-cidr-blocks"},
		{a, "/latest/meta-data/placement/", "availability-zone\nregion"},
		{a, "/latest/meta-data/public-keys/", "0=ops"},
		{a, "/latest/dynamic/", "instance-identity/"},
		{a, "/latest/dynamic/instance-identity/", "document"},
		// B: no public address, key, reservation or user data, so none listed.
		{b, "/latest/", "dynamic/\nmeta-data/"},
		{b, "/latest/meta-data/", "ami-id\nami-launch-index\nhostname\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nnetwork/\nplacement/\nsecurity-groups\nservices/"},
	} {
		var hdr []string
		if tc.from == b {
			hdr = []string{HeaderToken, f.token(t, b, "60")}
		}
		w := f.do(http.MethodGet, tc.from, tc.path, hdr...)
		if w.Code != http.StatusOK || w.Body.String() != tc.want {
			t.Errorf("GET %s from %s: %d\n%s\nwant\n%s", tc.path, tc.from, w.Code, w.Body, tc.want)
		}
	}
	w := f.do(http.MethodGet, a, "/")
	if lines := strings.Split(w.Body.String(), "\n"); w.Code != 200 || lines[len(lines)-1] != "latest" || len(lines) != len(Versions) {
		t.Errorf("GET /: %d %q", w.Code, w.Body)
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t)
	tokB := f.token(t, b, "60")
	for _, tc := range []struct{ from, path string }{
		{b, "/latest/user-data"},
		{b, "/latest/meta-data/public-ipv4"},
		{b, "/latest/meta-data/public-keys/"},
		{b, "/latest/meta-data/network/interfaces/macs/02:00:0a:00:01:0a/"}, // A's interface
		{a, "/latest/meta-data/nope"},
		{a, "/latest/meta-data/instance-id/extra"},
		{a, "/1999-01-01/meta-data/instance-id"},
		{a, "/latest/dynamic/instance-identity/signature"},
		{a, "/latest/api/"},
	} {
		var hdr []string
		if tc.from == b {
			hdr = []string{HeaderToken, tokB}
		}
		w := f.do(http.MethodGet, tc.from, tc.path, hdr...)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s from %s: %d %q, want 404", tc.path, tc.from, w.Code, w.Body)
		}
	}
}

func TestIdentityDocument(t *testing.T) {
	f := newFixture(t)
	w := f.do(http.MethodGet, a, "/latest/dynamic/instance-identity/document")
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("document: %v\n%s", err, w.Body)
	}
	want := map[string]any{
		"accountId": "123456789012", "architecture": "x86_64", "availabilityZone": "canopy-1a",
		"imageId": "ami-0abcdef1234567890", "instanceId": "i-0123456789abcdef0", "instanceType": "t3.micro",
		"pendingTime": "2026-03-01T12:00:00Z", "privateIp": "10.0.1.10", "region": "canopy-1",
		"version": "2017-09-30", "kernelId": nil, "ramdiskId": nil, "billingProducts": nil,
	}
	for k, v := range want {
		if got, ok := doc[k]; !ok || got != v {
			t.Errorf("document %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

func TestIMDSv2(t *testing.T) {
	t.Run("token flow and expiry", func(t *testing.T) {
		f := newFixture(t)
		tok := f.token(t, a, "60")
		w := f.do(http.MethodGet, a, "/latest/meta-data/instance-id", HeaderToken, tok)
		if w.Code != 200 || w.Body.String() != "i-0123456789abcdef0" {
			t.Fatalf("with token: %d %q", w.Code, w.Body)
		}
		if got := w.Header().Get(HeaderTokenTTL); got != "60" {
			t.Errorf("remaining TTL %q", got)
		}
		f.clock.t = f.clock.t.Add(59 * time.Second)
		if w := f.do(http.MethodGet, a, "/latest/meta-data/instance-id", HeaderToken, tok); w.Code != 200 || w.Header().Get(HeaderTokenTTL) != "1" {
			t.Errorf("at 59 s: %d, TTL %q", w.Code, w.Header().Get(HeaderTokenTTL))
		}
		f.clock.t = f.clock.t.Add(time.Second)
		if w := f.do(http.MethodGet, a, "/latest/meta-data/instance-id", HeaderToken, tok); w.Code != http.StatusUnauthorized {
			t.Errorf("expired token: %d, want 401", w.Code)
		}
		// An expired token is refused even where v1 would be answered.
		if w := f.do(http.MethodGet, a, "/latest/meta-data/instance-id"); w.Code != 200 {
			t.Errorf("v1 on an optional-token instance: %d", w.Code)
		}
	})
	t.Run("ttl bounds", func(t *testing.T) {
		f := newFixture(t)
		for _, ttl := range []string{"", "0", "-5", "21601", "abc", "1.5"} {
			var hdr []string
			if ttl != "" {
				hdr = []string{HeaderTokenTTL, ttl}
			}
			if w := f.do(http.MethodPut, a, "/latest/api/token", hdr...); w.Code != http.StatusBadRequest {
				t.Errorf("TTL %q: %d, want 400", ttl, w.Code)
			}
		}
		for _, ttl := range []string{"1", "21600"} {
			f.token(t, a, ttl)
		}
	})
	t.Run("X-Forwarded-For refused", func(t *testing.T) {
		f := newFixture(t)
		w := f.do(http.MethodPut, a, "/latest/api/token", HeaderTokenTTL, "60", "X-Forwarded-For", "10.0.1.99")
		if w.Code != http.StatusForbidden {
			t.Errorf("PUT with X-Forwarded-For: %d, want 403", w.Code)
		}
	})
	t.Run("required tokens", func(t *testing.T) {
		f := newFixture(t)
		if w := f.do(http.MethodGet, b, "/latest/meta-data/instance-id"); w.Code != http.StatusUnauthorized {
			t.Errorf("no token: %d, want 401", w.Code)
		}
		tok := f.token(t, b, "300")
		if w := f.do(http.MethodGet, b, "/latest/meta-data/instance-id", HeaderToken, tok); w.Code != 200 || w.Body.String() != "i-0bbbbbbbbbbbbbbbb" {
			t.Errorf("with token: %d %q", w.Code, w.Body)
		}
	})
	t.Run("token bound to its instance", func(t *testing.T) {
		f := newFixture(t)
		tokA := f.token(t, a, "300")
		if w := f.do(http.MethodGet, b, "/latest/meta-data/instance-id", HeaderToken, tokA); w.Code != http.StatusUnauthorized {
			t.Errorf("A's token at B: %d %q, want 401", w.Code, w.Body)
		}
		tokB := f.token(t, b, "300")
		if w := f.do(http.MethodGet, a, "/latest/meta-data/instance-id", HeaderToken, tokB); w.Code != http.StatusUnauthorized {
			t.Errorf("B's token at A: %d %q, want 401", w.Code, w.Body)
		}
	})
	t.Run("forged and foreign tokens", func(t *testing.T) {
		f := newFixture(t)
		tok := f.token(t, a, "300")
		other := newFixture(t) // another agent: another secret
		for name, bad := range map[string]string{
			"garbage":       "not-a-token",
			"truncated":     tok[:len(tok)-4],
			"other secret":  other.token(t, a, "300"),
			"extended life": extend(t, tok),
		} {
			if w := f.do(http.MethodGet, a, "/latest/meta-data/instance-id", HeaderToken, bad); w.Code != http.StatusUnauthorized {
				t.Errorf("%s token: %d, want 401", name, w.Code)
			}
		}
	})
	t.Run("methods", func(t *testing.T) {
		f := newFixture(t)
		for _, tc := range []struct{ method, path string }{
			{http.MethodGet, "/latest/api/token"},
			{http.MethodPost, "/latest/meta-data/instance-id"},
			{http.MethodPut, "/latest/meta-data/instance-id"},
			{http.MethodDelete, "/latest/api/token"},
		} {
			if w := f.do(tc.method, a, tc.path, HeaderTokenTTL, "60"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") == "" {
				t.Errorf("%s %s: %d, want 405 with Allow", tc.method, tc.path, w.Code)
			}
		}
	})
	t.Run("unknown source", func(t *testing.T) {
		f := newFixture(t)
		if w := f.do(http.MethodGet, "10.0.9.9", "/latest/meta-data/instance-id"); w.Code != http.StatusForbidden {
			t.Errorf("unknown source: %d, want 403", w.Code)
		}
		if w := f.do(http.MethodPut, "10.0.9.9", "/latest/api/token", HeaderTokenTTL, "60"); w.Code != http.StatusForbidden {
			t.Errorf("unknown source PUT: %d, want 403", w.Code)
		}
	})
}

// extend rewrites a token's expiry without re-signing it.
func extend(t *testing.T, tok string) string {
	t.Helper()
	raw := []byte(tok)
	// The first 8 decoded bytes are the expiry; flipping a character of the
	// first base64 block changes them.
	if raw[5] == 'A' {
		raw[5] = 'B'
	} else {
		raw[5] = 'A'
	}
	return string(raw)
}

// TestOverHTTP serves over a real listener on loopback with the instance
// attached per connection (the wiring the agent uses), and reads it with a
// plain HTTP client the way curl in an instance would.
func TestOverHTTP(t *testing.T) {
	s, err := New(Config{Resolve: FromContext})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		// The agent looks the connection's source up in its port map; here
		// every connection is instance B.
		return NewContext(ctx, instB())
	}
	ts.Start()
	defer ts.Close()

	req, _ := http.NewRequest(http.MethodPut, ts.URL+"/latest/api/token", nil)
	req.Header.Set(HeaderTokenTTL, "21600")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT token: %d", resp.StatusCode)
	}
	get := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/latest/meta-data/local-ipv4", nil)
		if token != "" {
			req.Header.Set(HeaderToken, token)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(string(tok)); code != 200 || body != "10.0.3.5" {
		t.Errorf("v2 GET: %d %q", code, body)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("v1 GET on a token-required instance: %d", code)
	}
	// No instance attached: refused.
	bare := httptest.NewServer(s)
	defer bare.Close()
	resp, err = bare.Client().Get(bare.URL + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unresolved connection: %d, want 403", resp.StatusCode)
	}
}
