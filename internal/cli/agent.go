package cli

import (
	"context"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/canopy-sdn/canopy/internal/role"
	"github.com/spf13/cobra"
)

func agentCmd(stdout, stderr io.Writer) *cobra.Command {
	var cfg role.AgentConfig
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: register this host, plug its bound ports, forward their traffic",
		Long: `Run the agent role on a hypervisor or gateway host. It announces the host (id kept in
<state-dir>/host-id) under its own etcd keys, where the server's controller registers it and
adds it to --tunnel-zone, keeps it alive with an etcd lease, follows the topology, plugs every
port bound to this host by attaching to the host side of its device (a hypervisor's TAP, a
veth, an uplink), which the agent never creates, and
forwards traffic between local ports and, over VXLAN on UDP --tunnel-port, to the other hosts.
/metrics, /flows, /peers and /healthz are served on --metrics-listen.

--enrollment DIR uses what canopy host enroll wrote for this host: its id, etcd endpoints,
the etcd CA and the agent's client certificate, whose etcd user may write only this host's
own state. Without it, --etcd-ca, --etcd-cert and --etcd-key give the TLS credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = role.NewLogger(stderr, cfg.LogLevel)
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return role.RunAgent(ctx, cfg, cmd.Flags().Changed)
		},
	}
	cfg.BindStateDir(c.PersistentFlags())
	cfg.BindFlags(c.Flags())
	ba := &app{out: stdout, getenv: os.Getenv}
	for _, bind := range []bool{true, false} {
		bc := agentBindCmd(ba, &cfg, bind)
		ba.addClientFlags(bc)
		c.AddCommand(bc)
	}
	return c
}

// agentBindCmd is the hypervisor hook (MidoNet's mm-ctl --bind-port): it
// binds a port to an interface of this host. A binding is topology, which
// the agent's own etcd credentials may not write: the hook goes through
// the REST API with the operator's token (--url, --token, or the server's
// --data-dir), and reads only this host's id from --state-dir.
func agentBindCmd(a *app, cfg *role.AgentConfig, bind bool) *cobra.Command {
	use, short, args := "bind PORT IFACE", "Bind a port (name or id) to an interface of this host (through the REST API)", 2
	if !bind {
		use, short, args = "unbind PORT", "Unbind a port from this host (through the REST API)", 1
	}
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(args),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			hostID, err := cfg.HostID()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			portID, err := c.resolvePort(ctx, args[0])
			if err != nil {
				return err
			}
			if bind {
				if _, err := c.Send(ctx, http.MethodPost, "/hosts/"+hostID+"/bindings",
					map[string]string{"port_id": portID, "interface": args[1]}, nil); err != nil {
					return err
				}
				return a.done("Bound port %s to %s on host %s", portID, args[1], hostID)
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/hosts/"+hostID+"/bindings/"+portID, nil); err != nil {
				return err
			}
			return a.done("Unbound port %s from host %s", portID, hostID)
		}),
	}
}
