package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/instance"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/spf13/pflag"
)

// Instance drivers of `canopy agent --instance-driver`.
const (
	DriverNone  = "none"
	DriverNetns = "netns"
)

// AgentConfig is the agent role: the agent's configuration, and what the
// command line gives in other words (the tunnel address as text, the
// enrollment directory, the instance driver). Logger is the role's logger,
// handed to the agent, its store and its instance driver.
type AgentConfig struct {
	Agent      agent.Config
	TunnelIP   string
	Enrollment string
	Driver     string
	LogLevel   string
	Logger     *slog.Logger
}

// BindStateDir binds --state-dir, which the agent's subcommands (the bind
// hook) share.
func (c *AgentConfig) BindStateDir(f *pflag.FlagSet) {
	f.StringVar(&c.Agent.StateDir, "state-dir", agent.DefaultStateDir, "directory holding this host's id")
}

// BindFlags binds the flags of `canopy agent`.
func (c *AgentConfig) BindFlags(lf *pflag.FlagSet) {
	cfg := &c.Agent
	lf.StringSliceVar(&cfg.Endpoints, "etcd-endpoints", nil, "comma-separated etcd client URLs (required unless the enrollment names them)")
	lf.StringVar(&c.Enrollment, "enrollment", "", "directory written by canopy host enroll for this host (id, etcd endpoints and credentials)")
	lf.StringVar(&cfg.Etcd.CAFile, "etcd-ca", "", "CA file of etcd's server certificates; turns TLS on (https:// endpoints)")
	lf.StringVar(&cfg.Etcd.CertFile, "etcd-cert", "", "client certificate file presented to etcd")
	lf.StringVar(&cfg.Etcd.KeyFile, "etcd-key", "", "client key file")
	lf.StringVar(&cfg.HostName, "host-name", "", "name of this host (default: the enrolled name, else the system host name)")
	lf.StringVar(&c.TunnelIP, "tunnel-ip", "", "underlay address other hosts tunnel to (required)")
	lf.Uint16Var(&cfg.TunnelPort, "tunnel-port", 0, "VXLAN UDP port (default 6677)")
	lf.StringVar(&cfg.TunnelZone, "tunnel-zone", "", "tunnel zone to join (created if absent)")
	lf.StringVar(&cfg.Zone, "availability-zone", "", "EC2 availability zone this host serves (default: every zone)")
	lf.BoolVar(&cfg.NoMetadata, "no-metadata", false, "do not answer the instance metadata service at 169.254.169.254")
	lf.StringVar(&cfg.Replica, "replica", agent.DefaultReplica, "what of the topology this agent follows: partial (the edge, the VPCs with a port on this host and those its flows go into) or full (all of it)")
	lf.StringVar(&cfg.MetricsListen, "metrics-listen", "", "host:port for /metrics, /flows, /peers and /healthz (default off)")
	lf.StringVar(&cfg.PprofListen, "pprof-listen", "", "host:port for the Go profiles at /debug/pprof/ (default off; keep it on a private address)")
	lf.DurationVar(&cfg.LeaseTTL, "lease-ttl", agent.DefaultLeaseTTL, "liveness lease TTL: a dead agent's host turns not-alive within it")
	lf.DurationVar(&cfg.LivenessInterval, "liveness-interval", agent.DefaultLivenessInterval, "interval of the heartbeats to the peer hosts over the tunnels")
	lf.IntVar(&cfg.LivenessMultiplier, "liveness-multiplier", agent.DefaultLivenessMultiplier, "heartbeats a peer may miss before it is down (routes through it are left out until it is heard again)")
	lf.DurationVar(&cfg.BGPRestartTime, "bgp-restart-time", agent.DefaultBGPRestartTime, "graceful restart time a gateway's BGP speaker announces: how long its peers keep its routes through a planned restart (0: no graceful restart)")
	lf.DurationVar(&cfg.GatewayStopDrain, "gateway-stop-drain", agent.DefaultGatewayStopDrain, "how long a gateway stopping on SIGTERM keeps forwarding after withdrawing its routes, when another gateway is up")
	lf.DurationVar(&cfg.FlowTTL, "flow-ttl", agent.DefaultFlowTTL, "hard expiry of cached flows")
	lf.DurationVar(&cfg.MACTTL, "mac-ttl", agent.DefaultMACTTL, "life of a learned MAC entry nobody sends from")
	lf.DurationVar(&cfg.ARPTTL, "arp-ttl", agent.DefaultARPTTL, "life of a learned ARP entry not confirmed (asked again after half of it)")
	lf.DurationVar(&cfg.LearnWriteInterval, "learn-write-interval", agent.DefaultLearnWriteInterval, "minimum time between two store writes of one learned entry")
	lf.Float64Var(&cfg.LearnWriteRate, "learn-write-rate", agent.DefaultLearnWriteRate, "store writes of learned entries per second, at most")
	lf.DurationVar(&cfg.DropTTL, "drop-ttl", agent.DefaultDropTTL, "hard expiry of cached drop flows")
	lf.StringVar(&cfg.Datapath, "datapath", agent.DatapathAuto, "where flows run: auto (kernel where the host has it, else userspace, said at start-up and in canopy_datapath_kernel), kernel (eBPF at each port's device, kernel VXLAN; the agent fails to start without it) or userspace")
	lf.StringVar(&cfg.KernelAttach, "kernel-attach", "auto", "how the kernel datapath attaches to devices: auto (tcx where the kernel has it, Linux 6.6 and later, else tc), tcx, or tc (a classic clsact filter)")
	lf.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	lf.StringVar(&c.Driver, "instance-driver", DriverNone, "realize the EC2 instances placed on this host: netns (a network namespace per instance, with udhcpc) or none (a hypervisor hook binds their TAPs)")
}

// HostID is this host's id, kept in the state dir.
func (c *AgentConfig) HostID() (string, error) { return agent.HostID(c.Agent.StateDir) }

// RunAgent runs the agent role until ctx is done. changed tells which flags
// the command line set: they win over what the enrollment says.
func RunAgent(ctx context.Context, c AgentConfig, changed func(flag string) bool) error {
	cfg := c.Agent
	if c.TunnelIP != "" {
		ip, err := netip.ParseAddr(c.TunnelIP)
		if err != nil {
			return fmt.Errorf("--tunnel-ip: %w", err)
		}
		cfg.TunnelIP = ip
	}
	if c.Enrollment != "" {
		if err := applyEnrollment(&cfg, c.Enrollment, changed); err != nil {
			return err
		}
	}
	cfg.Logger = c.Logger
	return runAgent(ctx, cfg, c.Driver)
}

// applyEnrollment fills cfg from an enrollment directory; flags given on
// the command line win.
func applyEnrollment(cfg *agent.Config, dir string, changed func(string) bool) error {
	e, creds, err := readEnrollment(dir)
	if err != nil {
		return err
	}
	if !changed("etcd-endpoints") {
		cfg.Endpoints = e.EtcdEndpoints
	}
	if !changed("etcd-ca") && !changed("etcd-cert") && !changed("etcd-key") {
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

// instanceStateDir is where the netns driver of an agent keeps its records.
func instanceStateDir(agentStateDir string) string { return filepath.Join(agentStateDir, "instances") }

// runAgent runs an agent, with the netns instance driver when asked, until
// ctx is done. The driver makes the instances' veth pairs, whose host ends
// the agent plugs like any port's device, and binds its instance state keys
// to the agent's host lease.
func runAgent(ctx context.Context, cfg agent.Config, driver string) error {
	switch driver {
	case "", DriverNone:
		a, err := agent.New(cfg)
		if err != nil {
			return err
		}
		return a.Run(ctx)
	case DriverNetns:
	default:
		return fmt.Errorf("--instance-driver %q: want %s or %s", driver, DriverNetns, DriverNone)
	}
	if cfg.StateDir == "" {
		cfg.StateDir = agent.DefaultStateDir
	}
	hostID, err := agent.HostID(cfg.StateDir)
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	// The instance driver reads VPC objects and writes its instances' state:
	// no copy of the whole topology.
	store, err := nsdb.Open(octx, nsdb.Config{Endpoints: cfg.Endpoints, Credentials: cfg.Etcd, Logger: cfg.Logger, NoTopology: true})
	cancel()
	if err != nil {
		return err
	}
	defer store.Close()
	var a *agent.Agent
	drv, err := instance.New(instance.Config{Store: store, HostID: hostID, StateDir: instanceStateDir(cfg.StateDir),
		Lease: func() *nsdb.Lease { return a.Lease() }, Logger: cfg.Logger})
	if err != nil {
		return err
	}
	if a, err = agent.New(cfg); err != nil {
		return err
	}
	dctx, stopDriver := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- drv.Run(dctx) }()
	err = a.Run(ctx)
	stopDriver()
	return errors.Join(err, <-done)
}
