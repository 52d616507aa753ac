package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// gatewayView mirrors the part of the REST API's Gateway the table shows.
type gatewayView struct {
	HostID   string `json:"host_id"`
	HostName string `json:"host_name"`
	Alive    bool   `json:"alive"`
	Drained  bool   `json:"drained"`
	State    string `json:"state"`
	Uplinks  []struct {
		Interface string `json:"interface"`
		Address   string `json:"address"`
	} `json:"uplinks"`
	BGP *struct {
		Sessions []struct {
			Peer  string `json:"peer"`
			State string `json:"state"`
		} `json:"sessions"`
		AdvertisedCount int `json:"advertised_count"`
		Learned         int `json:"learned"`
	} `json:"bgp"`
}

// gatewayCmd shows the gateway hosts: their uplinks, liveness and BGP
// sessions (the REST API's /gateways).
func gatewayCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "gateway", Short: "Show gateway hosts: uplinks, liveness, BGP sessions and advertised prefixes"}
	noun.AddCommand(&cobra.Command{
		Use: "list", Short: "List the gateway hosts", Args: cobra.NoArgs, Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, _ []string) error {
			var gws []gatewayView
			raw, err := c.Get(ctx, "/gateways", &gws)
			if err != nil {
				return err
			}
			rows := make([][]string, len(gws))
			for i, g := range gws {
				var links, sessions []string
				for _, u := range g.Uplinks {
					links = append(links, u.Interface+"="+u.Address)
				}
				advertised, learned := "-", "-"
				if g.BGP != nil {
					for _, s := range g.BGP.Sessions {
						sessions = append(sessions, s.Peer+":"+s.State)
					}
					advertised, learned = fmt.Sprint(g.BGP.AdvertisedCount), fmt.Sprint(g.BGP.Learned)
				}
				state := g.State // a gateway of the cloud config no host holds
				if state == "" {
					state = "bound"
				}
				rows[i] = []string{g.HostName, orDash(g.HostID), state, fmt.Sprint(g.Alive), fmt.Sprint(g.Drained), strings.Join(links, ","),
					orDash(strings.Join(sessions, ",")), advertised, learned}
			}
			return a.table(raw, []string{"HOST", "ID", "STATE", "ALIVE", "DRAINED", "UPLINKS", "BGP SESSIONS", "ADVERTISED", "LEARNED"}, rows)
		}),
	})
	noun.AddCommand(&cobra.Command{
		Use: "show HOST", Short: "Show a gateway host (by host name or id)", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			raw, err := c.Get(ctx, "/gateways/"+url.PathEscape(args[0]), nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	})
	for _, v := range []struct {
		verb, short, method string
	}{
		{"drain", "Drain a gateway host for planned work: it stops advertising, its learned routes are withdrawn, the other gateways carry its traffic", "PUT"},
		{"undrain", "Put a drained gateway host back into service", "DELETE"},
	} {
		noun.AddCommand(&cobra.Command{
			Use: v.verb + " HOST", Short: v.short, Args: cobra.ExactArgs(1),
			RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
				raw, err := c.Do(ctx, v.method, "/gateways/"+url.PathEscape(args[0])+"/drain", nil)
				if err != nil {
					return err
				}
				return a.show(raw)
			}),
		})
	}
	return noun
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
