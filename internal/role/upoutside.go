package role

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/canopy-sdn/canopy/internal/server"
	"github.com/canopy-sdn/canopy/internal/upstream"
)

// UpUplink is the edge's end of canopy up's link to this host, a veth pair
// upstream.Up makes: the edge router's uplink is bound to it and the agent
// plugs it. UpHostLink is this host's end.
const (
	UpUplink   = "canopy-edge0"
	UpHostLink = "canopy-up0"
)

// DefaultUpLink is the link between this host and canopy up's edge: the
// host takes the first address, the edge the second. Link-local and outside
// the transit network (169.254.0.0/17), so it meets no real network.
const DefaultUpLink = "169.254.251.0/30"

// upOutside makes this host the upstream router of canopy up's cloud
// (issue 11): it writes the cloud config whose one gateway is this host's
// agent, its uplink UpUplink with the link's second address and this host
// (the first) as next hop, points the server at it, and returns what
// upstream.Up must set up on this side.
func upOutside(cfg *server.Config, link, hostName string) (upstream.Config, error) {
	p, err := netip.ParsePrefix(link)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return upstream.Config{}, fmt.Errorf("--outside-link %q: an IPv4 prefix of at most /30", link)
	}
	p = p.Masked()
	host := p.Addr().Next()
	edge := host.Next()
	cc := map[string]any{"gateways": []map[string]any{{
		"host": hostName, "interface": UpUplink,
		"address": netip.PrefixFrom(edge, p.Bits()).String(), "next_hop": host.String(),
	}}}
	// The VPCs' resolvers ask this host's for names that are not the
	// VPCs' own (the agent runs here, so a loopback resolver works too).
	if rs := hostResolvers("/etc/resolv.conf"); len(rs) > 0 {
		cc["dns_servers"] = rs
	}
	b, _ := json.MarshalIndent(cc, "", "  ")
	path := filepath.Join(cfg.DataDir, "cloud.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return upstream.Config{}, err
	}
	cfg.CloudConfig = path
	// The pools are the EC2 endpoint's, as the server will read them.
	loaded, err := server.LoadCloudConfig(path, cfg.EC2.PublicPool)
	if err != nil {
		return upstream.Config{}, err
	}
	return upstream.Config{Iface: UpHostLink, EdgeIface: UpUplink, Host: netip.PrefixFrom(host, p.Bits()), Edge: edge, Pools: loaded.PublicPools}, nil
}

// hostResolvers returns the IPv4 name servers of a resolv.conf.
func hostResolvers(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() {
				out = append(out, a.String())
			}
		}
	}
	return out
}
