package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func TestResolveClientPrecedence(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.json")
	if err := os.WriteFile(cfgFile, []byte(`{"url":"http://10.9.9.9:8181","token":"cfg-token"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name             string
		flags            ClientFlags
		env              map[string]string
		wantURL, wantTok string
		wantErr          string
	}{
		{"token file in data dir", ClientFlags{DataDir: dir}, map[string]string{"HOME_UNUSED": ""}, DefaultURL, "file-token", ""},
		{"env data dir", ClientFlags{}, map[string]string{"CANOPY_DATA_DIR": dir}, DefaultURL, "file-token", ""},
		{"config file beats token file", ClientFlags{DataDir: dir}, map[string]string{"CANOPY_CONFIG": cfgFile}, "http://10.9.9.9:8181", "cfg-token", ""},
		{"env beats config file", ClientFlags{}, map[string]string{"CANOPY_CONFIG": cfgFile, "CANOPY_URL": "http://127.0.0.2:1/", "CANOPY_TOKEN": "env-token"}, "http://127.0.0.2:1", "env-token", ""},
		{"flags beat env", ClientFlags{URL: "http://127.0.0.3:2", Token: "flag-token"}, map[string]string{"CANOPY_URL": "http://127.0.0.2:1", "CANOPY_TOKEN": "env-token"}, "http://127.0.0.3:2", "flag-token", ""},
		{"no token anywhere", ClientFlags{DataDir: t.TempDir()}, nil, "", "", "no API token"},
		{"missing explicit config", ClientFlags{Token: "x"}, map[string]string{"CANOPY_CONFIG": filepath.Join(dir, "nope.json")}, "", "", "config file"},
		{"bad url", ClientFlags{URL: "127.0.0.1:8181", Token: "x"}, nil, "", "", "want https://host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir()) // no stray ~/.config/canopy/config.json
			c, err := ResolveClient(tc.flags, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.URL != tc.wantURL || c.Token != tc.wantTok {
				t.Errorf("got %s %s, want %s %s", c.URL, c.Token, tc.wantURL, tc.wantTok)
			}
		})
	}
}

// TestClientTLS: the CLI trusts the CA a canopy up keeps in its data dir
// (and then defaults to https), or the one --ca-file names, and nothing else.
func TestClientTLS(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "admin-token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadOrCreateCA(filepath.Join(dataDir, "pki"), "up CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(filepath.Join(dataDir, "pki"), "server", pki.IssueOptions{CommonName: "s", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := pki.ServerTLS(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{TLSConfig: scfg, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","auth":%q}`, r.Header.Get("Authorization"))
	})}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	url := "https://" + ln.Addr().String()
	otherCA, err := pki.LoadOrCreateCA(t.TempDir(), "other CA")
	if err != nil {
		t.Fatal(err)
	}

	// Found in the data dir: the default URL is https.
	c, err := ResolveClient(ClientFlags{DataDir: dataDir}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != DefaultTLSURL {
		t.Errorf("default URL with an up CA in the data dir: %s, want %s", c.URL, DefaultTLSURL)
	}
	for name, tc := range map[string]struct {
		flags ClientFlags
		env   map[string]string
		ok    bool
	}{
		"CA of the data dir":       {ClientFlags{DataDir: dataDir, URL: url}, nil, true},
		"CANOPY_CA_FILE":           {ClientFlags{DataDir: t.TempDir(), URL: url, Token: "t"}, map[string]string{"CANOPY_CA_FILE": ca.CertFile()}, true},
		"--ca-file of another CA":  {ClientFlags{DataDir: dataDir, URL: url, CAFile: otherCA.CertFile()}, nil, false},
		"no CA: the system's only": {ClientFlags{DataDir: t.TempDir(), URL: url, Token: "t"}, nil, false},
	} {
		c, err := ResolveClient(tc.flags, func(k string) string { return tc.env[k] })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = c.Get(context.Background(), "/healthz", nil)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority")) {
			t.Errorf("%s: %v, want an unknown authority error", name, err)
		}
	}
	if _, err := ResolveClient(ClientFlags{URL: url, Token: "t", CAFile: filepath.Join(dataDir, "admin-token")}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--ca-file") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
}

func TestParseNATTarget(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1-10.0.0.9:1000-2000": "10.0.0.1-10.0.0.9:1000-2000",
		"198.51.100.7":                "198.51.100.7",
		"10.0.0.1:80":                 "10.0.0.1:80-80",
		"10.0.0.1-10.0.0.2":           "10.0.0.1-10.0.0.2",
	} {
		tg, err := parseNATTarget(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := formatNATTarget(tg); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.1-", "x:1", "10.0.0.1:70000", "10.0.0.1:1-x"} {
		if _, err := parseNATTarget(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestParsers(t *testing.T) {
	if p, err := parseProto("tcp"); err != nil || p != 6 {
		t.Errorf("tcp: %d %v", p, err)
	}
	if p, err := parseProto("47"); err != nil || p != 47 {
		t.Errorf("47: %d %v", p, err)
	}
	if _, err := parseProto("300"); err == nil {
		t.Error("protocol 300 accepted")
	}
	if e, err := parseEtherType("0x86dd"); err != nil || e != 0x86dd {
		t.Errorf("0x86dd: %x %v", e, err)
	}
	mac, mask, err := parseMACMask("02:00:00:00:00:01/ff:ff:ff:00:00:00")
	if err != nil || mac.String() != "02:00:00:00:00:01" || mask.String() != "ff:ff:ff:00:00:00" {
		t.Errorf("mac/mask: %v %v %v", mac, mask, err)
	}
	if p, err := parsePrefixOrAddr("192.0.2.1"); err != nil || p.String() != "192.0.2.1/32" {
		t.Errorf("bare address: %v %v", p, err)
	}
	peer, err := parsePeer("address=192.0.2.1,asn=65001,hold=90,keepalive=30,retry=5,password=x")
	if err != nil || peer.ASN != 65001 || peer.HoldTime != 90 || peer.KeepAlive != 30 || peer.ConnectRetry != 5 || peer.Password != "x" {
		t.Errorf("peer: %+v %v", peer, err)
	}
	if _, err := parsePeer("asn=1"); err == nil {
		t.Error("peer without address accepted")
	}
	if m := randomMAC(); m[0]&0x03 != 0x02 {
		t.Errorf("random MAC %s is not locally administered unicast", m)
	}
}

func TestConditionSummary(t *testing.T) {
	tcp := uint8(6)
	cd := topology.Condition{NwProto: &tcp, NwDst: mustPrefix("10.0.0.0/8"), InvNwDst: true, TpDst: &topology.PortRange{Start: 22, End: 22}}
	if got, want := conditionSummary(cd), `!nw_dst=10.0.0.0/8 nw_proto=6 tp_dst={"start":22,"end":22}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := conditionSummary(topology.Condition{}); got != "any" {
		t.Errorf("empty condition: %s", got)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
