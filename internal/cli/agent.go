package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/server"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func agentCmd(stdout io.Writer) *cobra.Command {
	var cfg agent.Config
	var tunnelIP, logLevel, enrollDir string
	var tunnelPort uint16
	var driver string
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: register this host, plug its bound ports, forward their traffic",
		Long: `Run the agent role on a hypervisor or gateway host. It announces the host (id kept in
<state-dir>/host-id) under its own etcd keys, where the server's controller registers it and
adds it to --tunnel-zone, keeps it alive with an etcd lease, follows the topology, plugs every
port bound to this host into its TAP device (attaching to an existing TAP or creating it) and
forwards traffic between local ports and, over VXLAN on UDP --tunnel-port, to the other hosts.
/metrics, /flows and /healthz are served on --metrics-listen.

--enrollment DIR uses what canopy host enroll wrote for this host: its id, etcd endpoints,
the etcd CA and the agent's client certificate, whose etcd user may write only this host's
own state. Without it, --etcd-ca, --etcd-cert and --etcd-key give the TLS credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tunnelIP != "" {
				ip, err := netip.ParseAddr(tunnelIP)
				if err != nil {
					return fmt.Errorf("--tunnel-ip: %w", err)
				}
				cfg.TunnelIP = ip
			}
			if enrollDir != "" {
				if err := applyEnrollment(&cfg, enrollDir, cmd.Flags()); err != nil {
					return err
				}
			}
			cfg.TunnelPort = tunnelPort
			cfg.Logger = server.NewLogger(logLevel)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAgent(ctx, cfg, driver)
		},
	}
	f := c.PersistentFlags()
	f.StringVar(&cfg.StateDir, "state-dir", agent.DefaultStateDir, "directory holding this host's id")
	lf := c.Flags()
	lf.StringSliceVar(&cfg.Endpoints, "etcd-endpoints", nil, "comma-separated etcd client URLs (required unless the enrollment names them)")
	lf.StringVar(&enrollDir, "enrollment", "", "directory written by canopy host enroll for this host (id, etcd endpoints and credentials)")
	lf.StringVar(&cfg.Etcd.CAFile, "etcd-ca", "", "CA file of etcd's server certificates; turns TLS on (https:// endpoints)")
	lf.StringVar(&cfg.Etcd.CertFile, "etcd-cert", "", "client certificate file presented to etcd")
	lf.StringVar(&cfg.Etcd.KeyFile, "etcd-key", "", "client key file")
	lf.StringVar(&cfg.HostName, "host-name", "", "name of this host (default: the enrolled name, else the system host name)")
	lf.StringVar(&tunnelIP, "tunnel-ip", "", "underlay address other hosts tunnel to (required)")
	lf.Uint16Var(&tunnelPort, "tunnel-port", 0, "VXLAN UDP port (default 6677)")
	lf.StringVar(&cfg.TunnelZone, "tunnel-zone", "", "tunnel zone to join (created if absent)")
	lf.StringVar(&cfg.Zone, "availability-zone", "", "EC2 availability zone this host serves (default: every zone)")
	lf.BoolVar(&cfg.NoMetadata, "no-metadata", false, "do not answer the instance metadata service at 169.254.169.254")
	lf.StringVar(&cfg.MetricsListen, "metrics-listen", "", "host:port for /metrics, /flows and /healthz (default off)")
	lf.StringVar(&cfg.PprofListen, "pprof-listen", "", "host:port for the Go profiles at /debug/pprof/ (default off; keep it on a private address)")
	lf.DurationVar(&cfg.LeaseTTL, "lease-ttl", agent.DefaultLeaseTTL, "liveness lease TTL: a dead agent's host turns not-alive within it")
	lf.DurationVar(&cfg.LivenessInterval, "liveness-interval", agent.DefaultLivenessInterval, "interval of the heartbeats to the peer hosts over the tunnels")
	lf.IntVar(&cfg.LivenessMultiplier, "liveness-multiplier", agent.DefaultLivenessMultiplier, "heartbeats a peer may miss before it is down (routes through it are left out until it is heard again)")
	lf.DurationVar(&cfg.FlowTTL, "flow-ttl", agent.DefaultFlowTTL, "hard expiry of cached flows")
	lf.DurationVar(&cfg.MACTTL, "mac-ttl", agent.DefaultMACTTL, "life of a learned MAC entry nobody sends from")
	lf.DurationVar(&cfg.ARPTTL, "arp-ttl", agent.DefaultARPTTL, "life of a learned ARP entry not confirmed (asked again after half of it)")
	lf.DurationVar(&cfg.LearnWriteInterval, "learn-write-interval", agent.DefaultLearnWriteInterval, "minimum time between two store writes of one learned entry")
	lf.Float64Var(&cfg.LearnWriteRate, "learn-write-rate", agent.DefaultLearnWriteRate, "store writes of learned entries per second, at most")
	lf.DurationVar(&cfg.DropTTL, "drop-ttl", agent.DefaultDropTTL, "hard expiry of cached drop flows")
	lf.StringVar(&cfg.Datapath, "datapath", agent.DatapathUserspace, "where flows run: kernel (eBPF at each port's device, kernel VXLAN; the agent fails to start without it), auto (kernel where the host has it, else userspace, said at start-up and in canopy_datapath_kernel) or userspace")
	lf.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	lf.StringVar(&driver, "instance-driver", DriverNone, "realize the EC2 instances placed on this host: netns (a network namespace per instance, with udhcpc) or none (a hypervisor hook binds their TAPs)")
	ba := &app{out: stdout, getenv: os.Getenv}
	for _, bind := range []bool{true, false} {
		bc := agentBindCmd(ba, &cfg, bind)
		ba.addClientFlags(bc)
		c.AddCommand(bc)
	}
	return c
}

// applyEnrollment fills cfg from an enrollment directory; flags given on
// the command line win.
func applyEnrollment(cfg *agent.Config, dir string, fs *pflag.FlagSet) error {
	e, creds, err := readEnrollment(dir)
	if err != nil {
		return err
	}
	if !fs.Changed("etcd-endpoints") {
		cfg.Endpoints = e.EtcdEndpoints
	}
	if !fs.Changed("etcd-ca") && !fs.Changed("etcd-cert") && !fs.Changed("etcd-key") {
		cfg.Etcd = creds
	}
	if cfg.HostName == "" {
		cfg.HostName = e.HostName
	}
	if cfg.StateDir == "" {
		cfg.StateDir = agent.DefaultStateDir
	}
	return adoptHostID(cfg.StateDir, e.HostID)
}

// agentBindCmd is the hypervisor hook (MidoNet's mm-ctl --bind-port): it
// binds a port to an interface of this host. A binding is topology, which
// the agent's own etcd credentials may not write: the hook goes through
// the REST API with the operator's token (--url, --token, or the server's
// --data-dir), and reads only this host's id from --state-dir.
func agentBindCmd(a *app, cfg *agent.Config, bind bool) *cobra.Command {
	use, short, args := "bind PORT IFACE", "Bind a port (name or id) to an interface of this host (through the REST API)", 2
	if !bind {
		use, short, args = "unbind PORT", "Unbind a port from this host (through the REST API)", 1
	}
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(args),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			hostID, err := agent.HostID(cfg.StateDir)
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
