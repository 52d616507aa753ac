package upstream

import (
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/netnstest"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

func TestValidate(t *testing.T) {
	good := Config{Iface: "canopy-up0", EdgeIface: "canopy-edge0", Host: netip.MustParsePrefix("169.254.251.1/30"), Edge: netip.MustParseAddr("169.254.251.2"),
		Pools: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no iface":       func(c *Config) { c.Iface = "" },
		"long iface":     func(c *Config) { c.Iface = "a-very-long-interface" },
		"no edge iface":  func(c *Config) { c.EdgeIface = "" },
		"same ifaces":    func(c *Config) { c.EdgeIface = c.Iface },
		"edge outside":   func(c *Config) { c.Edge = netip.MustParseAddr("169.254.252.2") },
		"edge is host":   func(c *Config) { c.Edge = netip.MustParseAddr("169.254.251.1") },
		"no pool":        func(c *Config) { c.Pools = nil },
		"pool over link": func(c *Config) { c.Pools = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16")} },
		"ipv6 host":      func(c *Config) { c.Host = netip.MustParsePrefix("fd00::1/64") },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestUpAndClose runs in a namespace of its own: Up makes the veth pair to
// the edge, addresses the host's end, routes the pool via the edge, turns
// forwarding on and installs the masquerade; Close removes all of it.
func TestUpAndClose(t *testing.T) {
	netnstest.RequireRoot(t)
	name := "cup-" + netnstest.Suffix(t)
	ns := netnstest.New(t, name)
	cfg := Config{Iface: "cup0", EdgeIface: "cup0e", Host: netip.MustParsePrefix("169.254.251.1/30"), Edge: netip.MustParseAddr("169.254.251.2"),
		Pools: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/28")}}
	netnstest.Do(t, ns, func() {
		if err := os.WriteFile(forwardingKnob, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		u, err := Up(t.Context(), cfg, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		// The agent's side: it plugs the edge's end and brings it up.
		edge, err := netlink.LinkByName(cfg.EdgeIface)
		if err != nil || edge.Type() != "veth" {
			t.Fatalf("the edge's end %s: %v", cfg.EdgeIface, err)
		}
		if err := netlink.LinkSetUp(edge); err != nil {
			t.Fatal(err)
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range routes {
			if r.Dst != nil && r.Gw != nil {
				got = append(got, r.Dst.String()+" via "+r.Gw.String())
			}
		}
		if s := strings.Join(got, ", "); !strings.Contains(s, "198.51.100.0/24 via 169.254.251.2") || !strings.Contains(s, "203.0.113.0/28 via 169.254.251.2") {
			t.Errorf("routes: %s", s)
		}
		if b, _ := os.ReadFile(forwardingKnob); strings.TrimSpace(string(b)) != "1" {
			t.Errorf("forwarding %q", b)
		}
		c, err := nftables.New()
		if err != nil {
			t.Fatal(err)
		}
		rules, err := c.GetRules(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}, &nftables.Chain{Name: "postrouting"})
		if err != nil || len(rules) != 2 {
			t.Fatalf("masquerade rules %d, %v", len(rules), err)
		}

		if err := u.Close(); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(forwardingKnob); strings.TrimSpace(string(b)) != "0" {
			t.Errorf("forwarding not put back: %q", b)
		}
		tables, err := c.ListTables()
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			if tb.Name == TableName {
				t.Error("the masquerade table outlived Close")
			}
		}
		routes, _ = netlink.RouteList(nil, netlink.FAMILY_V4)
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == "198.51.100.0/24" {
				t.Error("the pool's route outlived Close")
			}
		}
		for _, n := range []string{cfg.Iface, cfg.EdgeIface} {
			if _, err := netlink.LinkByName(n); err == nil {
				t.Errorf("%s outlived Close", n)
			}
		}
	})
}
