package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

// traceCmd asks the server to simulate a packet through the current topology
// and prints every device, chain and rule it met and the verdict.
func traceCmd(a *app) *cobra.Command {
	var req struct {
		Port    string `json:"port"`
		Proto   string `json:"proto"`
		Src     string `json:"src"`
		Dst     string `json:"dst"`
		SrcPort uint16 `json:"src_port,omitempty"`
		DstPort uint16 `json:"dst_port,omitempty"`
		TTL     uint8  `json:"ttl,omitempty"`
		SrcMAC  string `json:"src_mac,omitempty"`
		DstMAC  string `json:"dst_mac,omitempty"`
	}
	cmd := &cobra.Command{
		Use:   "trace PORT --proto tcp|udp|icmp --src IP --dst IP [--dport N]",
		Short: "Why can (or can't) A reach B: simulate a packet and show its whole path",
		Long: `Simulate a packet entering the virtual network at PORT (an id, a name such as a
VPC network interface id, or DEVICE:NAME) against the current topology, and print
every port, device, chain, rule and lookup it met, and the verdict. Nothing is
sent; connection state starts empty (the packet is the first of its connection).`,
		Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			port, err := c.resolvePort(ctx, args[0])
			if err != nil {
				return err
			}
			req.Port = port
			var res struct {
				Verdict string `json:"verdict"`
				Text    string `json:"text"`
			}
			raw, err := c.Send(ctx, "POST", "/trace", req, &res)
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.out, json.RawMessage(raw))
			}
			_, err = fmt.Fprint(a.out, res.Text)
			return err
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Proto, "proto", "icmp", "protocol: tcp, udp or icmp (echo request)")
	f.StringVar(&req.Src, "src", "", "source IPv4 address")
	f.StringVar(&req.Dst, "dst", "", "destination IPv4 address")
	f.Uint16Var(&req.SrcPort, "sport", 0, "source port (tcp/udp; default 40000)")
	f.Uint16Var(&req.DstPort, "dport", 0, "destination port (tcp/udp)")
	f.Uint8Var(&req.TTL, "ttl", 0, "IP TTL (default 64)")
	f.StringVar(&req.SrcMAC, "src-mac", "", "source MAC (default: the ingress port's)")
	f.StringVar(&req.DstMAC, "dst-mac", "", "destination MAC (default: the port holding --dst on the same bridge, else the gateway)")
	return cmd
}
