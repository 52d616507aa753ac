package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/server"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

func agentCmd() *cobra.Command {
	var cfg agent.Config
	var tunnelIP, logLevel string
	var tunnelPort uint16
	var driver string
	c := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: register this host, plug its bound ports, forward their traffic",
		Long: `Run the agent role on a hypervisor or gateway host. It registers the host (id kept in
<state-dir>/host-id) and keeps it alive with an etcd lease, joins --tunnel-zone, follows the
topology, plugs every port bound to this host into its TAP device (attaching to an existing
TAP or creating it) and forwards traffic between local ports and, over VXLAN on UDP
--tunnel-port, to the other hosts. /metrics, /flows and /healthz are served on --metrics-listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tunnelIP != "" {
				ip, err := netip.ParseAddr(tunnelIP)
				if err != nil {
					return fmt.Errorf("--tunnel-ip: %w", err)
				}
				cfg.TunnelIP = ip
			}
			cfg.TunnelPort = tunnelPort
			cfg.Logger = server.NewLogger(logLevel)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAgent(ctx, cfg, driver)
		},
	}
	f := c.PersistentFlags()
	f.StringSliceVar(&cfg.Endpoints, "etcd-endpoints", nil, "comma-separated etcd client URLs (required)")
	f.StringVar(&cfg.StateDir, "state-dir", agent.DefaultStateDir, "directory holding this host's id")
	lf := c.Flags()
	lf.StringVar(&cfg.HostName, "host-name", "", "name of this host (default: the system host name)")
	lf.StringVar(&tunnelIP, "tunnel-ip", "", "underlay address other hosts tunnel to (required)")
	lf.Uint16Var(&tunnelPort, "tunnel-port", 0, "VXLAN UDP port (default 6677)")
	lf.StringVar(&cfg.TunnelZone, "tunnel-zone", "", "tunnel zone to join (created if absent)")
	lf.StringVar(&cfg.Zone, "availability-zone", "", "EC2 availability zone this host serves (default: every zone)")
	lf.BoolVar(&cfg.NoMetadata, "no-metadata", false, "do not answer the instance metadata service at 169.254.169.254")
	lf.StringVar(&cfg.MetricsListen, "metrics-listen", "", "host:port for /metrics, /flows and /healthz (default off)")
	lf.DurationVar(&cfg.LeaseTTL, "lease-ttl", agent.DefaultLeaseTTL, "liveness lease TTL: a dead agent's host turns not-alive within it")
	lf.DurationVar(&cfg.FlowTTL, "flow-ttl", agent.DefaultFlowTTL, "hard expiry of cached flows")
	lf.DurationVar(&cfg.MACTTL, "mac-ttl", agent.DefaultMACTTL, "life of a learned MAC entry nobody sends from")
	lf.DurationVar(&cfg.ARPTTL, "arp-ttl", agent.DefaultARPTTL, "life of a learned ARP entry not confirmed (asked again after half of it)")
	lf.DurationVar(&cfg.LearnWriteInterval, "learn-write-interval", agent.DefaultLearnWriteInterval, "minimum time between two store writes of one learned entry")
	lf.Float64Var(&cfg.LearnWriteRate, "learn-write-rate", agent.DefaultLearnWriteRate, "store writes of learned entries per second, at most")
	lf.DurationVar(&cfg.DropTTL, "drop-ttl", agent.DefaultDropTTL, "hard expiry of cached drop flows")
	lf.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	lf.StringVar(&driver, "instance-driver", DriverNone, "realize the EC2 instances placed on this host: netns (a network namespace per instance, with udhcpc) or none (a hypervisor hook binds their TAPs)")
	c.AddCommand(agentBindCmd(&cfg, true), agentBindCmd(&cfg, false))
	return c
}

// agentBindCmd is the hypervisor hook (MidoNet's mm-ctl --bind-port): it
// binds a port to an interface of this host, writing through the store.
func agentBindCmd(cfg *agent.Config, bind bool) *cobra.Command {
	use, short, args := "bind PORT IFACE", "Bind a port (name or id) to an interface of this host", 2
	if !bind {
		use, short, args = "unbind PORT", "Unbind a port from this host", 1
	}
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(args),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(cfg.Endpoints) == 0 {
				return errors.New("--etcd-endpoints is required")
			}
			hostID, err := agent.HostID(cfg.StateDir)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			slog.SetDefault(slog.New(slog.DiscardHandler))
			s, err := nsdb.Open(ctx, nsdb.Config{Endpoints: cfg.Endpoints})
			if err != nil {
				return err
			}
			defer s.Close()
			return bindPort(ctx, s, hostID, args, bind, cmd.OutOrStdout())
		},
	}
}

func bindPort(ctx context.Context, s *nsdb.Store, hostID string, args []string, bind bool, out interface{ Write([]byte) (int, error) }) error {
	for attempt := 0; ; attempt++ {
		p, err := findPort(ctx, s, args[0])
		if err != nil {
			return err
		}
		if bind {
			if p.PeerID != "" {
				return fmt.Errorf("port %s is linked to port %s: only an unlinked port can be bound", p.ID, p.PeerID)
			}
			p.HostID, p.Interface = hostID, args[1]
		} else {
			if p.HostID != hostID {
				return fmt.Errorf("port %s is not bound to this host (%s)", p.ID, hostID)
			}
			p.HostID, p.Interface = "", ""
		}
		_, err = s.Update(ctx, p)
		if err == nil {
			if bind {
				fmt.Fprintf(out, "Bound port %s to %s on host %s\n", p.ID, args[1], hostID)
			} else {
				fmt.Fprintf(out, "Unbound port %s from host %s\n", p.ID, hostID)
			}
			return nil
		}
		if !errors.Is(err, nsdb.ErrConflict) || attempt > 10 {
			return err
		}
		_ = s.Sync(ctx)
	}
}

func findPort(ctx context.Context, s *nsdb.Store, ref string) (*topology.Port, error) {
	if o, err := s.Get(ctx, topology.KindPort, ref); err == nil {
		return o.(*topology.Port), nil
	}
	ps, err := s.List(ctx, topology.KindPort)
	if err != nil {
		return nil, err
	}
	var found []*topology.Port
	for _, o := range ps {
		if p := o.(*topology.Port); p.Name == ref {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("port %q: %w", ref, nsdb.ErrNotFound)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, p := range found {
		ids[i] = p.ID
	}
	return nil, fmt.Errorf("port name %q is ambiguous: %s", ref, strings.Join(ids, ", "))
}
