package cli

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

func ipGroupCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "ip-address-group", Aliases: []string{"ipg"}, Short: "IP address groups (sets of addresses used in rules)"}
	var addrs []string
	a.create(noun, "ip-address-groups", "Create an IP address group", func(name string) (any, error) {
		g := &topology.IPAddrGroup{Meta: topology.Meta{Name: name}}
		var err error
		g.Addresses, err = parseAddrs(addrs, "--address")
		return g, err
	}).Flags().StringSliceVar(&addrs, "address", nil, "member address(es)")
	a.crud(noun, "ip-address-groups", []string{"ID", "NAME", "ADDRESSES"}, rowOf(func(g *topology.IPAddrGroup) []string {
		return []string{g.ID, g.Name, joinAddrs(g.Addresses)}
	}))
	addr := &cobra.Command{Use: "address", Short: "Addresses of an IP address group"}
	addr.AddCommand(a.memberVerbs(members{
		coll: "ip-address-groups", sub: "addresses", parent: "GROUP", member: "ADDRESS",
		addShort: "Add an address", delShort: "Remove an address",
		key: func(_ *Client, _ context.Context, ref string) (string, error) {
			ip, err := netip.ParseAddr(ref)
			if err != nil {
				return "", err
			}
			return ip.String(), nil
		},
		body:    func(ip, _ string) map[string]string { return map[string]string{"address": ip} },
		added:   func(ip, id, _ string) string { return fmt.Sprintf("Added %s to IP address group %s", ip, id) },
		removed: func(ip, id string) string { return fmt.Sprintf("Removed %s from IP address group %s", ip, id) },
	}))
	noun.AddCommand(addr)
	return noun
}

func portGroupCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "port-group", Aliases: []string{"pg"}, Short: "Port groups (sets of ports used in rules; stateful ones share connection state)"}
	var stateful bool
	a.create(noun, "port-groups", "Create a port group", func(name string) (any, error) {
		return &topology.PortGroup{Meta: topology.Meta{Name: name}, Stateful: stateful}, nil
	}).Flags().BoolVar(&stateful, "stateful", false, "members share connection-tracking and NAT state (several uplinks)")
	a.crud(noun, "port-groups", []string{"ID", "NAME", "STATEFUL", "PORTS"}, rowOf(func(g *topology.PortGroup) []string {
		return []string{g.ID, g.Name, yesNo(g.Stateful), strings.Join(g.Ports, ",")}
	}))
	member := &cobra.Command{Use: "member", Short: "Ports of a port group"}
	member.AddCommand(a.memberVerbs(members{
		coll: "port-groups", sub: "ports", parent: "GROUP", member: "PORT",
		addShort: "Add a port", delShort: "Remove a port",
		key:     (*Client).resolvePort,
		body:    func(pid, _ string) map[string]string { return map[string]string{"port_id": pid} },
		added:   func(pid, id, _ string) string { return fmt.Sprintf("Added port %s to port group %s", pid, id) },
		removed: func(pid, id string) string { return fmt.Sprintf("Removed port %s from port group %s", pid, id) },
	}))
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
	a.create(noun, "hosts", "Pre-provision a host (its agent registers under the same name)", func(name string) (any, error) {
		return &topology.Host{Meta: topology.Meta{Name: name}}, nil
	})
	a.crud(noun, "hosts", []string{"ID", "NAME", "ALIVE", "INTERFACES"}, rowOf(func(h *hostView) []string {
		var ifs []string
		for _, i := range h.Interfaces {
			ifs = append(ifs, i.Name)
		}
		return []string{h.ID, h.Name, yesNo(h.Alive), strings.Join(ifs, ",")}
	}))
	noun.AddCommand(hostEnrollCmd(a), hostUnenrollCmd(a))
	return noun
}

func tunnelZoneCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "tunnel-zone", Aliases: []string{"tz"}, Short: "Tunnel zones: hosts that tunnel to each other"}
	var typ string
	a.create(noun, "tunnel-zones", "Create a tunnel zone", func(name string) (any, error) {
		return &topology.TunnelZone{Meta: topology.Meta{Name: name}, Type: topology.TunnelType(typ)}, nil
	}).Flags().StringVar(&typ, "type", string(topology.TunnelVXLAN), "encapsulation (vxlan)")
	a.crud(noun, "tunnel-zones", []string{"ID", "NAME", "TYPE", "MEMBERS"}, rowOf(func(z *topology.TunnelZone) []string {
		return []string{z.ID, z.Name, string(z.Type), strconv.Itoa(len(z.Members))}
	}))
	member := &cobra.Command{Use: "member", Short: "Members of a tunnel zone"}
	add, del := a.memberVerbs(members{
		coll: "tunnel-zones", sub: "members", parent: "ZONE", member: "HOST", extra: "ADDRESS",
		addShort: "Add a host with the underlay address the others reach it at", delShort: "Remove a host from a tunnel zone",
		key:     resolveHost,
		body:    func(hid, addr string) map[string]string { return map[string]string{"host_id": hid, "address": addr} },
		added:   func(hid, zid, _ string) string { return fmt.Sprintf("Added host %s to tunnel zone %s", hid, zid) },
		removed: func(hid, zid string) string { return fmt.Sprintf("Removed host %s from tunnel zone %s", hid, zid) },
	})
	list := &cobra.Command{
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
	}
	member.AddCommand(add, list, del)
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
	add, del := a.memberVerbs(members{
		coll: "hosts", sub: "bindings", parent: "HOST", member: "PORT", extra: "IFACE",
		addShort: "Bind a port to an interface of a host", delShort: "Unbind a port",
		key: (*Client).resolvePort,
		body: func(pid, iface string) map[string]string {
			return map[string]string{"port_id": pid, "interface": iface}
		},
		added: func(pid, hid, iface string) string {
			return fmt.Sprintf("Bound port %s to %s on host %s", pid, iface, hid)
		},
		removed: func(pid, hid string) string { return fmt.Sprintf("Unbound port %s from host %s", pid, hid) },
	})
	list := &cobra.Command{
		Use: "list HOST", Short: "List a host's bindings", Args: cobra.ExactArgs(1), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			hid, err := c.resolve(ctx, "hosts", args[0])
			if err != nil {
				return err
			}
			return listAs(a, ctx, c, "/hosts/"+hid+"/bindings", []string{"PORT", "INTERFACE"},
				func(b *bindingView) []string { return []string{first(b.PortID, b.ID), b.Interface} })
		}),
	}
	noun.AddCommand(add, del, list)
	return noun
}
