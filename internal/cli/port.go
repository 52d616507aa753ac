package cli

import (
	"context"
	"net/http"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

// portCmd is `canopy port ...`: every port, whatever its device. A PORT is an
// id, a name unique among ports, or DEVICE:NAME.
func portCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "port", Short: "Ports of routers and bridges (PORT: id, name, or DEVICE:NAME)"}
	list := &cobra.Command{
		Use: "list", Short: "List every port with its device and peer", Args: cobra.NoArgs, Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, _ []string) error {
			return a.portList(ctx, c, "/ports", true)
		}),
	}
	show := &cobra.Command{
		Use: "show PORT", Short: "Show a port", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolvePort(ctx, args[0])
			if err != nil {
				return err
			}
			raw, err := c.Get(ctx, "/ports/"+id, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	del := &cobra.Command{
		Use: "delete PORT", Short: "Delete a port (its peer is unlinked)", Args: cobra.ExactArgs(1), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolvePort(ctx, args[0])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/ports/"+id, nil); err != nil {
				return err
			}
			return a.done("Deleted port %s", id)
		}),
	}
	var pf portFlags
	set := &cobra.Command{
		Use: "set PORT", Short: "Change a port's name, MAC, addresses, MTU, filters or admin state", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.c()
			if err != nil {
				return err
			}
			if cmd.Flags().NFlag() == 0 {
				return errNoChange
			}
			ctx := cmd.Context()
			id, err := c.resolvePort(ctx, args[0])
			if err != nil {
				return err
			}
			return update(a, ctx, c, "/ports/"+id, func(p *topology.Port) error { return pf.apply(ctx, cmd, c, p) })
		},
	}
	pf.bind(set)
	link := &cobra.Command{
		Use: "link PORT PEER", Short: "Link two ports (router↔bridge or router↔router), both sides at once", Args: cobra.ExactArgs(2),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolvePort(ctx, args[0])
			if err != nil {
				return err
			}
			peer, err := c.resolvePort(ctx, args[1])
			if err != nil {
				return err
			}
			raw, err := c.Send(ctx, http.MethodPost, "/ports/"+id+"/link", map[string]string{"peer_id": peer}, nil)
			if err != nil {
				return err
			}
			if raw != nil {
				return a.show(raw)
			}
			return a.done("Linked port %s to port %s", id, peer)
		}),
	}
	unlink := &cobra.Command{
		Use: "unlink PORT", Short: "Unlink a port and its peer", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolvePort(ctx, args[0])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/ports/"+id+"/link", nil); err != nil {
				return err
			}
			return a.done("Unlinked port %s", id)
		}),
	}
	noun.AddCommand(list, show, del, set, link, unlink)
	return noun
}
