package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

func bridgeCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "bridge", Short: "Virtual bridges, their ports and DHCP subnets"}
	deviceVerbs(a, noun, "bridges", func(b *topology.Bridge) (*topology.Meta, *bool, *string, *string) {
		return &b.Meta, &b.AdminDown, &b.InFilter, &b.OutFilter
	})
	a.crud(noun, "bridges", []string{"ID", "NAME", "STATE", "IN-FILTER", "OUT-FILTER"}, rowOf(func(b *topology.Bridge) []string {
		return []string{b.ID, b.Name, upDown(b.AdminDown), b.InFilter, b.OutFilter}
	}))
	noun.AddCommand(devicePortCmd(a, "bridges"), dhcpCmd(a))
	return noun
}

func dhcpCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "dhcp", Short: "DHCP subnets of a bridge"}
	var (
		name, subnet, gateway, server, domain string
		dns, ntp, routes                      []string
		mtu                                   int
		lease                                 uint32
		disabled                              bool
	)
	add := &cobra.Command{
		Use: "add BRIDGE", Short: "Add a DHCP subnet to a bridge", Args: cobra.ExactArgs(1),
		Example: "  canopy bridge dhcp add tenant --subnet 10.0.0.0/24 --gateway 10.0.0.1 --dns 10.0.0.2 --route 169.254.169.254/32,10.0.0.1",
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			bid, err := c.resolve(ctx, "bridges", args[0])
			if err != nil {
				return err
			}
			d := &topology.DHCPSubnet{Meta: topology.Meta{Name: name}, MTU: mtu, LeaseTime: lease, DomainName: domain, Disabled: disabled}
			if d.Subnet, err = netip.ParsePrefix(subnet); err != nil {
				return fmt.Errorf("--subnet: %q is not a prefix such as 10.0.0.0/24", subnet)
			}
			if err := parseAddrInto(gateway, "--gateway", &d.Gateway); err != nil {
				return err
			}
			if err := parseAddrInto(server, "--server-address", &d.ServerAddr); err != nil {
				return err
			}
			if d.DNSServers, err = parseAddrs(dns, "--dns"); err != nil {
				return err
			}
			if d.NTPServers, err = parseAddrs(ntp, "--ntp"); err != nil {
				return err
			}
			for _, r := range routes {
				dst, gw, ok := strings.Cut(r, ",")
				var rt topology.DHCPRoute
				var e1, e2 error
				rt.Dest, e1 = netip.ParsePrefix(dst)
				rt.Gateway, e2 = netip.ParseAddr(gw)
				if !ok || e1 != nil || e2 != nil {
					return fmt.Errorf("--route %q: want DEST/LEN,GATEWAY such as 169.254.169.254/32,10.0.0.1", r)
				}
				d.Routes = append(d.Routes, rt)
			}
			raw, err := c.Send(ctx, http.MethodPost, "/bridges/"+bid+"/dhcp", d, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	f := add.Flags()
	f.StringVar(&subnet, "subnet", "", "subnet served, e.g. 10.0.0.0/24 (required)")
	f.StringVar(&gateway, "gateway", "", "default gateway handed out")
	f.StringVar(&server, "server-address", "", "DHCP server address (default: the gateway)")
	f.StringSliceVar(&dns, "dns", nil, "DNS server(s)")
	f.StringSliceVar(&ntp, "ntp", nil, "NTP server(s)")
	f.StringVar(&domain, "domain", "", "domain name")
	f.IntVar(&mtu, "mtu", 0, "interface MTU handed out")
	f.Uint32Var(&lease, "lease-time", 0, "lease time in seconds (default: the server's)")
	f.StringArrayVar(&routes, "route", nil, "classless static route DEST/LEN,GATEWAY (repeatable)")
	f.StringVar(&name, "name", "", "subnet name")
	f.BoolVar(&disabled, "disabled", false, "configured but not served")
	_ = add.MarkFlagRequired("subnet")

	list := &cobra.Command{
		Use: "list BRIDGE", Short: "List a bridge's DHCP subnets", Args: cobra.ExactArgs(1), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			bid, err := c.resolve(ctx, "bridges", args[0])
			if err != nil {
				return err
			}
			return listAs(a, ctx, c, "/bridges/"+bid+"/dhcp", []string{"ID", "NAME", "SUBNET", "GATEWAY", "DNS", "ROUTES", "HOSTS", "ENABLED"},
				func(d *topology.DHCPSubnet) []string {
					return []string{d.ID, d.Name, prefixStr(d.Subnet), addrStr(d.Gateway), joinAddrs(d.DNSServers),
						strconv.Itoa(len(d.Routes)), strconv.Itoa(len(d.Hosts)), yesNo(!d.Disabled)}
				})
		}),
	}
	del := &cobra.Command{
		Use: "delete BRIDGE SUBNET", Short: "Delete a DHCP subnet (SUBNET: id, name or CIDR)", Args: cobra.ExactArgs(2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			_, did, err := resolveDHCP(ctx, c, args[0], args[1])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/dhcp-subnets/"+did, nil); err != nil {
				return err
			}
			return a.done("Deleted DHCP subnet %s", did)
		}),
	}
	noun.AddCommand(add, list, del, dhcpHostCmd(a))
	return noun
}

func dhcpHostCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "host", Short: "Static MAC→IP assignments of a DHCP subnet"}
	var mac, ip, name string
	add := &cobra.Command{
		Use: "add BRIDGE SUBNET", Short: "Add a static host to a DHCP subnet", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			bid, did, err := resolveDHCP(ctx, c, args[0], args[1])
			if err != nil {
				return err
			}
			var h topology.DHCPHost
			if h.MAC, err = hostMAC(mac); err != nil {
				return fmt.Errorf("--mac: %w", err)
			}
			if h.IP, err = netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("--ip: %q is not an IP address", ip)
			}
			h.Name = name
			raw, err := c.Send(ctx, http.MethodPost, "/bridges/"+bid+"/dhcp/"+did+"/hosts", h, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	add.Flags().StringVar(&mac, "mac", "", "MAC address of the host (required)")
	add.Flags().StringVar(&ip, "ip", "", "address assigned to it (required)")
	add.Flags().StringVar(&name, "name", "", "host name handed out")
	_ = add.MarkFlagRequired("mac")
	_ = add.MarkFlagRequired("ip")
	list := &cobra.Command{
		Use: "list BRIDGE SUBNET", Short: "List a DHCP subnet's static hosts", Args: cobra.ExactArgs(2), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			bid, did, err := resolveDHCP(ctx, c, args[0], args[1])
			if err != nil {
				return err
			}
			return listAs(a, ctx, c, "/bridges/"+bid+"/dhcp/"+did+"/hosts", []string{"MAC", "IP", "NAME"},
				func(h *topology.DHCPHost) []string { return []string{h.MAC.String(), addrStr(h.IP), h.Name} })
		}),
	}
	del := &cobra.Command{
		Use: "delete BRIDGE SUBNET MAC", Short: "Remove a static host", Args: cobra.ExactArgs(3), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			bid, did, err := resolveDHCP(ctx, c, args[0], args[1])
			if err != nil {
				return err
			}
			m, err := topology.ParseMAC(args[2])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/bridges/"+bid+"/dhcp/"+did+"/hosts/"+m.String(), nil); err != nil {
				return err
			}
			return a.done("Removed host %s from DHCP subnet %s", m, did)
		}),
	}
	noun.AddCommand(add, list, del)
	return noun
}

// resolveDHCP finds a bridge and one of its DHCP subnets, named by id, name
// or subnet CIDR.
func resolveDHCP(ctx context.Context, c *Client, bridge, ref string) (bid, did string, err error) {
	if bid, err = c.resolve(ctx, "bridges", bridge); err != nil {
		return "", "", err
	}
	if isID(ref) {
		return bid, ref, nil
	}
	var subs []topology.DHCPSubnet
	if _, err := c.Get(ctx, "/bridges/"+bid+"/dhcp", &subs); err != nil {
		return "", "", err
	}
	var byName []named
	for _, s := range subs {
		if s.Subnet.IsValid() && s.Subnet.String() == ref {
			return bid, s.ID, nil
		}
		byName = append(byName, named{ID: s.ID, Name: s.Name})
	}
	did, err = pick(byName, "DHCP subnet on bridge "+bid, ref)
	return bid, did, err
}

func parseAddrInto(s, flag string, dst *netip.Addr) error {
	if s == "" {
		return nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not an IP address", flag, s)
	}
	*dst = a
	return nil
}

func parseAddrs(ss []string, flag string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an IP address", flag, s)
		}
		out = append(out, a)
	}
	return out, nil
}
