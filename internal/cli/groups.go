package cli

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

func ipGroupCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "ip-address-group", Aliases: []string{"ipg"}, Short: "IP address groups (sets of addresses used in rules)"}
	var addrs []string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create an IP address group", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			g := &topology.IPAddrGroup{Meta: topology.Meta{Name: args[0]}}
			var err error
			if g.Addresses, err = parseAddrs(addrs, "--address"); err != nil {
				return err
			}
			raw, err := c.Send(ctx, http.MethodPost, "/ip-address-groups", g, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	create.Flags().StringSliceVar(&addrs, "address", nil, "member address(es)")
	noun.AddCommand(create)
	a.crud(noun, "ip-address-groups", []string{"ID", "NAME", "ADDRESSES"}, rowOf(func(g *topology.IPAddrGroup) []string {
		return []string{g.ID, g.Name, joinAddrs(g.Addresses)}
	}))
	addr := &cobra.Command{Use: "address", Short: "Addresses of an IP address group"}
	addr.AddCommand(&cobra.Command{
		Use: "add GROUP ADDRESS", Short: "Add an address", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolve(ctx, "ip-address-groups", args[0])
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(args[1])
			if err != nil {
				return err
			}
			raw, err := c.Send(ctx, http.MethodPost, "/ip-address-groups/"+id+"/addresses", map[string]string{"address": ip.String()}, nil)
			if err != nil {
				return err
			}
			if raw != nil {
				return a.show(raw)
			}
			return a.done("Added %s to IP address group %s", ip, id)
		}),
	}, &cobra.Command{
		Use: "delete GROUP ADDRESS", Short: "Remove an address", Args: cobra.ExactArgs(2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolve(ctx, "ip-address-groups", args[0])
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(args[1])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/ip-address-groups/"+id+"/addresses/"+ip.String(), nil); err != nil {
				return err
			}
			return a.done("Removed %s from IP address group %s", ip, id)
		}),
	})
	noun.AddCommand(addr)
	return noun
}

func portGroupCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "port-group", Aliases: []string{"pg"}, Short: "Port groups (sets of ports used in rules; stateful ones share connection state)"}
	var stateful bool
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a port group", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			raw, err := c.Send(ctx, http.MethodPost, "/port-groups", &topology.PortGroup{Meta: topology.Meta{Name: args[0]}, Stateful: stateful}, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	create.Flags().BoolVar(&stateful, "stateful", false, "members share connection-tracking and NAT state (several uplinks)")
	noun.AddCommand(create)
	a.crud(noun, "port-groups", []string{"ID", "NAME", "STATEFUL", "PORTS"}, rowOf(func(g *topology.PortGroup) []string {
		return []string{g.ID, g.Name, yesNo(g.Stateful), strings.Join(g.Ports, ",")}
	}))
	member := &cobra.Command{Use: "member", Short: "Ports of a port group"}
	member.AddCommand(&cobra.Command{
		Use: "add GROUP PORT", Short: "Add a port", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolve(ctx, "port-groups", args[0])
			if err != nil {
				return err
			}
			pid, err := c.resolvePort(ctx, args[1])
			if err != nil {
				return err
			}
			raw, err := c.Send(ctx, http.MethodPost, "/port-groups/"+id+"/ports", map[string]string{"port_id": pid}, nil)
			if err != nil {
				return err
			}
			if raw != nil {
				return a.show(raw)
			}
			return a.done("Added port %s to port group %s", pid, id)
		}),
	}, &cobra.Command{
		Use: "delete GROUP PORT", Short: "Remove a port", Args: cobra.ExactArgs(2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolve(ctx, "port-groups", args[0])
			if err != nil {
				return err
			}
			pid, err := c.resolvePort(ctx, args[1])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/port-groups/"+id+"/ports/"+pid, nil); err != nil {
				return err
			}
			return a.done("Removed port %s from port group %s", pid, id)
		}),
	})
	noun.AddCommand(member)
	return noun
}

// hostView is a host as the API shows it: the object plus its liveness.
type hostView struct {
	topology.Host
	Alive bool `json:"alive"`
}

func hostCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "host", Short: "Hosts (registered by their agents, or pre-provisioned here)"}
	noun.AddCommand(&cobra.Command{
		Use: "create NAME", Short: "Pre-provision a host (its agent registers under the same name)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			raw, err := c.Send(ctx, http.MethodPost, "/hosts", &topology.Host{Meta: topology.Meta{Name: args[0]}}, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	})
	a.crud(noun, "hosts", []string{"ID", "NAME", "ALIVE", "INTERFACES"}, rowOf(func(h *hostView) []string {
		var ifs []string
		for _, i := range h.Interfaces {
			ifs = append(ifs, i.Name)
		}
		return []string{h.ID, h.Name, yesNo(h.Alive), strings.Join(ifs, ",")}
	}))
	return noun
}

func tunnelZoneCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "tunnel-zone", Aliases: []string{"tz"}, Short: "Tunnel zones: hosts that tunnel to each other"}
	var typ string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a tunnel zone", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			z := &topology.TunnelZone{Meta: topology.Meta{Name: args[0]}, Type: topology.TunnelType(typ)}
			raw, err := c.Send(ctx, http.MethodPost, "/tunnel-zones", z, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	create.Flags().StringVar(&typ, "type", string(topology.TunnelVXLAN), "encapsulation (vxlan)")
	noun.AddCommand(create)
	a.crud(noun, "tunnel-zones", []string{"ID", "NAME", "TYPE", "MEMBERS"}, rowOf(func(z *topology.TunnelZone) []string {
		return []string{z.ID, z.Name, string(z.Type), strconv.Itoa(len(z.Members))}
	}))
	member := &cobra.Command{Use: "member", Short: "Members of a tunnel zone"}
	member.AddCommand(&cobra.Command{
		Use: "add ZONE HOST ADDRESS", Short: "Add a host with the underlay address the others reach it at", Args: cobra.ExactArgs(3),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			zid, err := c.resolve(ctx, "tunnel-zones", args[0])
			if err != nil {
				return err
			}
			hid, err := c.resolve(ctx, "hosts", args[1])
			if err != nil {
				return err
			}
			raw, err := c.Send(ctx, http.MethodPost, "/tunnel-zones/"+zid+"/members", map[string]string{"host_id": hid, "address": args[2]}, nil)
			if err != nil {
				return err
			}
			if raw != nil {
				return a.show(raw)
			}
			return a.done("Added host %s to tunnel zone %s", hid, zid)
		}),
	}, &cobra.Command{
		Use: "list ZONE", Short: "List a tunnel zone's members", Args: cobra.ExactArgs(1), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			zid, err := c.resolve(ctx, "tunnel-zones", args[0])
			if err != nil {
				return err
			}
			names := map[string]string{}
			var hosts []named
			if _, err := c.Get(ctx, "/hosts", &hosts); err != nil {
				return err
			}
			for _, h := range hosts {
				names[h.ID] = h.Name
			}
			return listAs(a, ctx, c, "/tunnel-zones/"+zid+"/members", []string{"HOST-ID", "HOST", "ADDRESS"},
				func(m *topology.TunnelZoneMember) []string {
					return []string{m.HostID, names[m.HostID], addrStr(m.Address)}
				})
		}),
	}, &cobra.Command{
		Use: "delete ZONE HOST", Short: "Remove a host from a tunnel zone", Args: cobra.ExactArgs(2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			zid, err := c.resolve(ctx, "tunnel-zones", args[0])
			if err != nil {
				return err
			}
			hid, err := c.resolve(ctx, "hosts", args[1])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/tunnel-zones/"+zid+"/members/"+hid, nil); err != nil {
				return err
			}
			return a.done("Removed host %s from tunnel zone %s", hid, zid)
		}),
	})
	noun.AddCommand(member)
	return noun
}

// bindingView is one binding as GET /hosts/{id}/bindings lists it; an API
// that lists the bound ports themselves is read through ID.
type bindingView struct {
	PortID    string `json:"port_id"`
	ID        string `json:"id"`
	Interface string `json:"interface"`
}

func bindingCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "binding", Short: "Bindings of exterior ports to host interfaces"}
	noun.AddCommand(&cobra.Command{
		Use: "add HOST PORT IFACE", Short: "Bind a port to an interface of a host", Args: cobra.ExactArgs(3),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			hid, err := c.resolve(ctx, "hosts", args[0])
			if err != nil {
				return err
			}
			pid, err := c.resolvePort(ctx, args[1])
			if err != nil {
				return err
			}
			raw, err := c.Send(ctx, http.MethodPost, "/hosts/"+hid+"/bindings", map[string]string{"port_id": pid, "interface": args[2]}, nil)
			if err != nil {
				return err
			}
			if raw != nil {
				return a.show(raw)
			}
			return a.done("Bound port %s to %s on host %s", pid, args[2], hid)
		}),
	}, &cobra.Command{
		Use: "delete HOST PORT", Short: "Unbind a port", Args: cobra.ExactArgs(2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			hid, err := c.resolve(ctx, "hosts", args[0])
			if err != nil {
				return err
			}
			pid, err := c.resolvePort(ctx, args[1])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/hosts/"+hid+"/bindings/"+pid, nil); err != nil {
				return err
			}
			return a.done("Unbound port %s from host %s", pid, hid)
		}),
	}, &cobra.Command{
		Use: "list HOST", Short: "List a host's bindings", Args: cobra.ExactArgs(1), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			hid, err := c.resolve(ctx, "hosts", args[0])
			if err != nil {
				return err
			}
			return listAs(a, ctx, c, "/hosts/"+hid+"/bindings", []string{"PORT", "INTERFACE"},
				func(b *bindingView) []string { return []string{first(b.PortID, b.ID), b.Interface} })
		}),
	})
	return noun
}
