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
