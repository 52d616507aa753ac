package server

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRangePrefixes(t *testing.T) {
	for _, c := range []struct {
		first, last string
		want        []string
	}{
		{"198.51.100.0", "198.51.100.255", []string{"198.51.100.0/24"}},
		{"198.51.100.1", "198.51.100.254", []string{"198.51.100.1/32", "198.51.100.2/31", "198.51.100.4/30", "198.51.100.8/29", "198.51.100.16/28", "198.51.100.32/27", "198.51.100.64/26", "198.51.100.128/26", "198.51.100.192/27", "198.51.100.224/28", "198.51.100.240/29", "198.51.100.248/30", "198.51.100.252/31", "198.51.100.254/32"}},
		{"203.0.113.10", "203.0.113.10", []string{"203.0.113.10/32"}},
		{"0.0.0.0", "255.255.255.255", []string{"0.0.0.0/0"}},
		{"255.255.255.254", "255.255.255.255", []string{"255.255.255.254/31"}},
	} {
		var got []string
		for _, p := range rangePrefixes(netip.MustParseAddr(c.first), netip.MustParseAddr(c.last)) {
			got = append(got, p.String())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s-%s: got %v, want %v", c.first, c.last, got, c.want)
		}
	}
}

func TestLoadCloudConfig(t *testing.T) {
	// The pool of the EC2 endpoint fills PublicPools when the file has none;
	// the file's pools, which must hold it, win otherwise.
	cc, err := LoadCloudConfig("", "198.51.100.0/24")
	if err != nil || len(cc.PublicPools) == 0 {
		t.Fatalf("pool only: %+v, %v", cc, err)
	}
	f := filepath.Join(t.TempDir(), "cloud.json")
	os.WriteFile(f, []byte(`{"gateways":[{"host_id":"gw1","interface":"eth1","address":"192.0.2.2/24","next_hop":"192.0.2.1"}],"public_pools":["203.0.113.0/24"],"underlay_mtu":9000}`), 0o600)
	cc, err = LoadCloudConfig(f, "203.0.113.0/28")
	if err != nil {
		t.Fatal(err)
	}
	if len(cc.Gateways) != 1 || cc.Gateways[0].Interface != "eth1" || cc.UnderlayMTU != 9000 || len(cc.PublicPools) != 1 || cc.PublicPools[0].String() != "203.0.113.0/24" {
		t.Errorf("file: %+v", cc)
	}
	os.WriteFile(f, []byte(`{"gateways":[{"address":"not-a-prefix"}]}`), 0o600)
	if _, err := LoadCloudConfig(f, ""); err == nil {
		t.Error("a bad file was accepted")
	}
	if _, err := LoadCloudConfig(filepath.Join(t.TempDir(), "missing.json"), ""); err == nil {
		t.Error("a missing file was accepted")
	}
}
