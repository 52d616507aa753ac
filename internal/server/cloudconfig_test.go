package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadCloudConfigChecks: a cloud config naming its gateway host by name
// loads; a misspelt key or an invalid gateway is refused with the file's
// name and the reason, before the server starts.
func TestLoadCloudConfigChecks(t *testing.T) {
	for _, c := range []struct {
		name, json, want string
	}{
		{"host by name", `{"gateways":[{"host":"gw1","interface":"eth1","address":"192.0.2.2/24","next_hop":"192.0.2.1"}]}`, ""},
		{"host_id", `{"gateways":[{"host_id":"7d3c0c1e-0000-4000-8000-0000000000a1","interface":"eth1","address":"192.0.2.2/24"}]}`, ""},
		{"misspelt key", `{"gateways":[{"hostname":"gw1","interface":"eth1","address":"192.0.2.2/24"}]}`, `unknown field "hostname"`},
		{"no host", `{"gateways":[{"interface":"eth1","address":"192.0.2.2/24"}]}`, "gateways[0]: host (a host's name or id) is required"},
		{"both", `{"gateways":[{"host":"gw1","host_id":"gw1","interface":"eth1","address":"192.0.2.2/24"}]}`, "give host or host_id, not both"},
		{"twice", `{"gateways":[{"host":"gw1","interface":"eth1","address":"192.0.2.2/24"},{"host":"gw1","interface":"eth1","address":"192.0.2.3/24"}]}`, "is already gateways[0]"},
		{"next hop elsewhere", `{"gateways":[{"host":"gw1","interface":"eth1","address":"192.0.2.2/24","next_hop":"198.51.100.1"}]}`, "next_hop 198.51.100.1: not in 192.0.2.0/24"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "cloud.json")
			if err := os.WriteFile(f, []byte(c.json), 0o600); err != nil {
				t.Fatal(err)
			}
			cc, err := LoadCloudConfig(f, "")
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "" && len(cc.Gateways) != 1:
				t.Fatalf("gateways %+v", cc.Gateways)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), f)):
				t.Fatalf("error %v, want one naming %s and %q", err, f, c.want)
			}
		})
	}
}

// TestLoadCloudConfigPools: the EC2 endpoint's pool must lie inside the
// cloud config's public pools (the edge routes, blackholes and advertises
// those), possibly across several; overlapping pools are refused with the
// field.
func TestLoadCloudConfigPools(t *testing.T) {
	for _, c := range []struct {
		name, pools, ec2Pool, want string
	}{
		{"no ec2 pool", `["203.0.113.0/24"]`, "", ""},
		{"inside", `["203.0.113.0/24"]`, "203.0.113.0/28", ""},
		{"across two pools", `["203.0.113.0/25","203.0.113.128/25"]`, "203.0.113.100-203.0.113.200", ""},
		{"across two /8s", `["198.0.0.0/8","199.0.0.0/8"]`, "198.255.255.0-199.0.0.10", ""},
		{"up to the last address", `["255.255.255.0/24"]`, "255.255.255.250-255.255.255.255", ""},
		{"outside", `["203.0.113.0/24"]`, "198.51.100.0/28", "--ec2-public-pool 198.51.100.1-198.51.100.14: 198.51.100.1 is in none of the cloud config's public_pools"},
		{"partly outside", `["203.0.113.0/25"]`, "203.0.113.100-203.0.113.200", "203.0.113.128 is in none"},
		{"overlapping pools", `["203.0.113.0/24","203.0.113.0/28"]`, "", "public_pools[1] 203.0.113.0/28 overlaps public_pools[0] 203.0.113.0/24"},
		{"overlapping ec2 pool", `["203.0.113.0/24"]`, "203.0.113.0/28,203.0.113.10-203.0.113.20", "--ec2-public-pool: public pool: 203.0.113.10-203.0.113.20 overlaps 203.0.113.1-203.0.113.14"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "cloud.json")
			if err := os.WriteFile(f, []byte(`{"public_pools":`+c.pools+`}`), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadCloudConfig(f, c.ec2Pool)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("LoadCloudConfig = %v, want %q", err, c.want)
			}
		})
	}
}
