package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/fastpath"
	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/telemetry"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/google/uuid"
	"github.com/vishvananda/netlink"
)

// Defaults.
const (
	DefaultStateDir = "/var/lib/canopy/agent"
	DefaultLeaseTTL = 5 * time.Second
	DefaultFlowTTL  = 30 * time.Second
	DefaultDropTTL  = 5 * time.Second
	// DefaultConnTTL is the life of a connection-tracking or NAT entry after
	// the last packet that used it: a simulation, or a cached flow the kernel
	// forwards (its last-used time, read when the flow falls due). An idle
	// connection lives this long, like Linux's long established-TCP timeout
	// rather than MidoNet's fixed 60 s.
	DefaultConnTTL = time.Hour
	// DefaultBGPRestartTime is the graceful restart time a gateway's
	// speaker announces; DefaultGatewayStopDrain how long a gateway
	// stopping keeps forwarding after its routes are withdrawn (the
	// upstream routers need a moment to move the traffic).
	DefaultBGPRestartTime   = 120 * time.Second
	DefaultGatewayStopDrain = time.Second
)

// Replicas (Config.Replica).
const (
	ReplicaPartial = "partial"
	ReplicaFull    = "full"
	// DefaultReplica is partial (issue 13): every e2e test passes with it.
	DefaultReplica = ReplicaPartial
)

// Config is the agent's configuration.
type Config struct {
	Endpoints     []string         // etcd client URLs (required)
	Etcd          nsdb.Credentials // TLS and identity presented to etcd
	HostName      string           // name of this host (default: os.Hostname)
	TunnelIP      netip.Addr       // underlay address of this host (required)
	TunnelPort    uint16           // VXLAN UDP port (default datapath.DefaultTunnelPort)
	TunnelZone    string           // tunnel zone to join; created if absent; "" = none
	Zone          string           // availability zone served (Host label canopy.zone); "" = every zone
	StateDir      string           // holds host-id
	MetricsListen string           // host:port of /metrics and /flows; "" = off
	PprofListen   string           // host:port of /debug/pprof/; "" = off (never on MetricsListen)
	LeaseTTL      time.Duration
	FlowTTL       time.Duration
	DropTTL       time.Duration
	ConnTTL       time.Duration
	// LivenessInterval spaces the heartbeats to the peers; a peer silent
	// for its interval × LivenessMultiplier is down (liveness.go).
	LivenessInterval   time.Duration
	LivenessMultiplier int
	// BGPRestartTime is the gateway speaker's graceful restart time (0:
	// off); GatewayStopDrain is how long a gateway stopping on purpose
	// keeps forwarding after withdrawing its routes (gatewaystop.go).
	BGPRestartTime   time.Duration
	GatewayStopDrain time.Duration
	// Replica is ReplicaPartial (the agent follows the cloud
	// partition, the VPCs of the ports bound to this host and those its
	// simulations go into, replica.go; its metadata mirror of the VPC
	// objects the first two) or ReplicaFull (all of the topology and VPC
	// objects); "" is DefaultReplica.
	Replica string
	// NoMetadata turns the metadata service (169.254.169.254) off; frames
	// to that address are then dropped at the port.
	NoMetadata bool
	// MissQueue bounds each port's queue of packets waiting for a simulation.
	MissQueue int
	// ParkTTL is how long a packet waits for its next hop's ARP reply
	// (park.go); default DefaultParkTTL.
	ParkTTL time.Duration
	// MACTTL and ARPTTL are the lives of learned entries not seen again
	// (learning.go); LearnWriteInterval spaces the store writes of one
	// entry and LearnWriteRate bounds this host's writes per second.
	MACTTL, ARPTTL     time.Duration
	LearnWriteInterval time.Duration
	LearnWriteRate     float64
	Logger             *slog.Logger
	// OpenPort opens the device of a bound port; nil means attach to the
	// host side of the existing device of that name (an AF_PACKET
	// datapath.Netdev). Component tests plug in-memory ports.
	OpenPort func(iface string) (datapath.Port, error)
	// Datapath is DatapathAuto (default), DatapathKernel or
	// DatapathUserspace (kernel.go).
	Datapath string
	// KernelAttach is how the kernel path attaches its program: "auto"
	// (default: tcx where the kernel has it, else classic TC), "tcx" or
	// "tc" (fastpath.Attach).
	KernelAttach string
	// KernelDevices names the kernel fast path's devices (zero:
	// fastpath.DefaultDevices); tests sharing a namespace pick their own.
	KernelDevices fastpath.Devices
}

// Validate fills defaults and checks the configuration.
func (c *Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("--etcd-endpoints is required")
	}
	if !c.TunnelIP.IsValid() {
		return errors.New("--tunnel-ip is required")
	}
	if c.HostName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("host name: %w", err)
		}
		c.HostName = h
	}
	if c.TunnelPort == 0 {
		c.TunnelPort = datapath.DefaultTunnelPort
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.FlowTTL <= 0 {
		c.FlowTTL = DefaultFlowTTL
	}
	if c.DropTTL <= 0 {
		c.DropTTL = DefaultDropTTL
	}
	if c.ConnTTL <= 0 {
		c.ConnTTL = DefaultConnTTL
	}
	// A busy kernel flow refreshes its connections once per flow life
	// (expireFlowsAndState): they must outlive that by a margin.
	if c.ConnTTL < 2*c.FlowTTL {
		return fmt.Errorf("--flow-ttl %s: at most half the connection-tracking TTL (%s)", c.FlowTTL, c.ConnTTL)
	}
	if c.LivenessInterval <= 0 {
		c.LivenessInterval = DefaultLivenessInterval
	}
	if c.LivenessMultiplier <= 0 {
		c.LivenessMultiplier = DefaultLivenessMultiplier
	}
	if c.LivenessMultiplier > 255 {
		return fmt.Errorf("--liveness-multiplier %d: at most 255", c.LivenessMultiplier)
	}
	if c.GatewayStopDrain <= 0 {
		c.GatewayStopDrain = DefaultGatewayStopDrain
	}
	if c.MissQueue <= 0 {
		c.MissQueue = 64
	}
	if c.ParkTTL <= 0 {
		c.ParkTTL = DefaultParkTTL
	}
	if c.MACTTL <= 0 {
		c.MACTTL = DefaultMACTTL
	}
	if c.ARPTTL <= 0 {
		c.ARPTTL = DefaultARPTTL
	}
	if c.LearnWriteInterval <= 0 {
		c.LearnWriteInterval = DefaultLearnWriteInterval
	}
	if c.LearnWriteRate <= 0 {
		c.LearnWriteRate = DefaultLearnWriteRate
	}
	if c.OpenPort == nil {
		c.OpenPort = openDevice
	}
	switch c.Replica {
	case "":
		c.Replica = DefaultReplica
	case ReplicaPartial, ReplicaFull:
	default:
		return fmt.Errorf("--replica %q: want %s or %s", c.Replica, ReplicaPartial, ReplicaFull)
	}
	if _, err := fastpath.ParseAttach(c.KernelAttach); err != nil {
		return fmt.Errorf("--kernel-attach: %w", err)
	}
	switch c.Datapath {
	case "":
		c.Datapath = DatapathAuto
	case DatapathUserspace, DatapathKernel, DatapathAuto:
	default:
		return fmt.Errorf("--datapath %q: want %s, %s or %s", c.Datapath, DatapathAuto, DatapathKernel, DatapathUserspace)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Agent is one running agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	store  *nsdb.Store
	hostID string

	leaseMu sync.Mutex
	lease   *nsdb.Lease

	view  atomic.Pointer[view]
	ports atomic.Pointer[portMap] // bound ports by tunnel key (copy on write)
	bmu   sync.Mutex              // serializes binding reconciliation
	bound map[string]*vport       // by port id; owned by reconcile (under bmu)
	// openErr is the last error opening a wanted port's device (under bmu),
	// logged once per change.
	openErr map[string]string
	// linkDevices: ports are the namespace's network devices (the
	// default OpenPort or the kernel path), so reconcile lists the devices
	// once instead of asking for each absent one (plug.go).
	linkDevices bool
	plug        chan struct{} // asks runPlug for a reconcile (plug.go)
	carrier     carrier       // the interfaces' carrier, from link notifications (carrier.go)

	flows *flow.Table

	// The simulation goroutine owns state and tables; the tunnel reader
	// imports remote state under simMu too.
	simMu  sync.Mutex
	state  *flow.State
	tables *sim.Tables
	// What this host sent to peers, to refresh it there (under simMu).
	exportConns map[packet.Key][]string
	exportNATs  map[exportNAT][]string

	tunnel tunnelIO
	kernel *kernelPath // nil on the userspace datapath
	tunMTU int         // MTU of the underlay interface (0: unknown)
	tunMu  sync.Mutex  // one tunnel writer at a time
	tunOne [1]datapath.TunnelPacket
	stOne  [1]datapath.TunnelPacket
	// keepForwarding: a lone gateway stopping for a graceful restart
	// leaves its kernel datapath and its lease as a killed agent would
	// (gatewaystop.go).
	keepForwarding atomic.Bool

	vpcs *vpcMirror // VPC objects, for the metadata service
	md   *mdRelay   // nil when the metadata service is off

	miss   *missQueue
	parked *parkLot // under miss.run
	// resumeTB is the re-simulations' tunnel batch of packets parked for a
	// partition (under miss.run).
	resumeTB tunBatch
	// stateArrived: state was imported since the simulator last resumed
	// the packets waiting for it (park.go).
	stateArrived atomic.Bool
	learn        *learning // learned tables, replicated through the store
	rep          *replica  // the topology this agent follows
	m            *metrics
	wg           sync.WaitGroup
	// dnsSlots bounds the DNS queries being asked upstream (dns.go).
	dnsSlots chan struct{}

	gw   gatewayHost // the gateway role: BGP speaker and its ports (gateway.go)
	live *liveness   // heartbeats with the peers (liveness.go)
}

// view is what the packet path reads: one topology version.
type view struct {
	snap  *sim.Snapshot
	gen   uint64                    // bumped with every snapshot
	peers map[string]netip.AddrPort // host id → tunnel endpoint
	want  map[string]binding        // ports bound to this host
	keyOf map[string]uint32         // port id → tunnel key (bound here)
	svc   map[string]*portSvc       // port id → DHCP/metadata info (bound here)
	live  map[string]netip.AddrPort // hosts to exchange heartbeats with (liveness.go)
	// doors are the routes into the partitions followed for flows only
	// (tag → partition), loaded the partitions held (partial replica).
	doors  map[flow.Tag]string
	loaded map[string]bool
}

type binding struct {
	iface string
	key   uint32
}

// New validates cfg; Run does the work.
func New(cfg Config) (*Agent, error) {
	linkDevices := cfg.OpenPort == nil
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, bound: map[string]*vport{}, openErr: map[string]string{},
		plug: make(chan struct{}, 1), flows: flow.NewTable(),
		state: flow.NewState(), tables: sim.NewTables(), m: newMetrics(), dnsSlots: make(chan struct{}, maxDNSForwards),
		exportConns: map[packet.Key][]string{}, exportNATs: map[exportNAT][]string{}, vpcs: newVPCMirror(), rep: newReplica()}
	a.linkDevices = linkDevices
	a.vpcs.log = a.log.Warn
	a.ports.Store(&portMap{})
	a.miss = newMissQueue()
	a.parked = newParkLot()
	a.learn = newLearning(cfg.LearnWriteRate, cfg.LearnWriteInterval)
	a.live = newLiveness(cfg.LivenessInterval, cfg.LivenessMultiplier, a.m)
	a.gw.stop, a.gw.stopped = make(chan struct{}), make(chan struct{})
	return a, nil
}

// HostID reads the host id from dir/host-id, creating it on first use, so a
// host keeps its identity across restarts.
func HostID(dir string) (string, error) {
	path := filepath.Join(dir, "host-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if _, err := uuid.Parse(id); err != nil {
			return "", fmt.Errorf("%s: not a host id: %w", path, err)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("host id: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("host id: %w", err)
	}
	id := uuid.NewString()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("host id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("host id: %w", err)
	}
	return id, nil
}

// Run runs the agent until ctx is done, then unplugs its ports and revokes
// its lease (the host turns not-alive at once). A stop asked for while it
// is still starting (canopy down just after canopy up) is a stop, not a
// failure: what the cancelled start-up returns is not an error.
func (a *Agent) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			a.log.Info("agent: stopped while starting", "err", err)
			err = nil
		}
	}()
	id, err := HostID(a.cfg.StateDir)
	if err != nil {
		return err
	}
	a.hostID = id
	a.log = a.log.With("host_id", id)
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	// The agent writes no topology and follows what it needs itself (the
	// replica), so its store keeps no copy of the whole topology.
	a.store, err = nsdb.Open(octx, nsdb.Config{Endpoints: a.cfg.Endpoints, Credentials: a.cfg.Etcd, Logger: a.log, NoTopology: true})
	cancel()
	if err != nil {
		return err
	}
	defer a.store.Close()
	// The replica is followed from the start: registering waits on it.
	fctx, stopFollow := context.WithCancel(ctx)
	following := make(chan struct{})
	go func() {
		defer close(following)
		a.rep.follow(fctx, a.store, a.hostID, a.cfg.Replica == ReplicaPartial, a.vpcs)
	}()
	defer func() {
		stopFollow()
		<-following
	}()
	if err := a.register(ctx); err != nil {
		return err
	}
	if err := a.openDatapath(); err != nil {
		return err
	}
	if a.cfg.TunnelZone != "" {
		if err := a.joinZone(ctx); err != nil {
			a.abortStart(ctx)
			return err
		}
	}
	if !a.cfg.NoMetadata {
		if a.md, err = a.openMetadata(); err != nil {
			a.abortStart(ctx)
			return err
		}
	}
	// Alive last: a host that failed to start never reads as alive.
	if err := a.keepAlive(ctx); err != nil {
		a.abortStart(ctx)
		if a.md != nil {
			a.md.close(false)
		}
		return err
	}
	if a.kernel != nil {
		a.log.Info("agent: up", "host", a.cfg.HostName, "datapath", a.kernel.String())
	} else {
		t := a.tunnel.(*datapath.Tunnel)
		a.log.Info("agent: up", "host", a.cfg.HostName, "datapath", DatapathUserspace, "tunnel", t.Local(), "gso", t.GSO(), "gro", t.GRO())
	}

	// The agent's goroutines outlive ctx for the planned stop below.
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	var srv *http.Server
	if a.cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", a.cfg.MetricsListen)
		if err != nil {
			a.abortStart(ctx)
			return fmt.Errorf("metrics listen: %w", err)
		}
		// A scrape is a small GET; /flows of a big table is the longest answer.
		srv = &http.Server{Handler: a.httpHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		a.wg.Go(func() { _ = srv.Serve(ln) })
	}
	if a.cfg.PprofListen != "" {
		_, wait, err := telemetry.ServePprof(rctx, a.cfg.PprofListen, a.log)
		if err != nil {
			if srv != nil {
				_ = srv.Close()
			}
			a.abortStart(ctx)
			return err
		}
		a.wg.Go(wait)
	}
	a.wg.Go(func() { a.runReplica(rctx) })
	if a.cfg.Replica == ReplicaFull { // else follow feeds it, partition by partition
		a.wg.Go(func() { a.runVPCMirror(rctx) })
	}
	a.wg.Go(func() { a.runLearnedWatch(rctx) })
	a.wg.Go(func() { a.runLearnedWriter(rctx) })
	if a.md != nil {
		a.startMetadata(a.md)
	}
	a.wg.Go(func() { a.runTunnelRx() })
	if a.kernel != nil {
		a.wg.Go(a.kernel.runMisses)
	}
	a.wg.Go(func() { a.runSimulator(rctx) })
	a.wg.Go(func() { a.runHousekeeping(rctx) })
	a.wg.Go(func() { a.runPlug(rctx) })
	// The lease's keep-alive ends with ctx: no new lease once stopping.
	a.wg.Go(func() { a.runLease(ctx) })
	a.wg.Go(func() { a.runGateway(rctx) })

	<-ctx.Done()
	a.log.Info("agent: stopping")
	// The peers route around this host, and a gateway withdraws its
	// routes, before it stops forwarding (gatewaystop.go).
	a.sayLeaving()
	a.stopGateway()
	stop()
	a.miss.close()
	keep := a.keepForwarding.Load()
	if keep {
		a.kernel.leave() // the ports stay attached in the kernel
	}
	a.bmu.Lock()
	for id, vp := range a.bound {
		a.unplug(id, vp)
	}
	a.bmu.Unlock()
	a.tunnel.Close()
	if a.kernel != nil {
		a.kernel.close(keep)
	}
	if srv != nil {
		_ = srv.Close()
	}
	if a.md != nil {
		a.md.close(true)
	}
	a.wg.Wait()
	a.leaseMu.Lock()
	switch {
	case a.lease != nil && keep:
		a.lease.Stop() // it runs out: the next agent comes before
	case a.lease != nil:
		rctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_ = a.lease.Revoke(rctx)
		cancel()
	}
	a.leaseMu.Unlock()
	return nil
}

// tunnelIO is the agent's tunnel: the userspace VXLAN socket
// (datapath.Tunnel), or the kernel fast path's (kernelTunnel).
type tunnelIO interface {
	ReadBatch(pkts []datapath.TunnelPacket) (int, error)
	WriteBatch(pkts []datapath.TunnelPacket) (int, error)
	Close() error
}

// openDatapath opens the kernel fast path (Config.Datapath kernel or
// auto) or the userspace tunnel. Auto falls back to userspace where the
// kernel path cannot start (no BPF or no kernel VXLAN, no privileges), and
// says why.
func (a *Agent) openDatapath() error {
	if a.cfg.Datapath != DatapathUserspace {
		k, err := a.openKernel()
		switch {
		case err == nil:
			a.kernel, a.tunnel = k, k.tun
			a.flows.SetMirror(k, int64(a.cfg.FlowTTL))
			a.m.datapathKernel.Set(1)
			a.m.kernelAttach.WithLabelValues(string(k.dp.Attach())).Set(1)
			return nil
		case a.cfg.Datapath == DatapathKernel:
			return fmt.Errorf("kernel datapath: %w", err)
		default:
			a.log.Warn("agent: kernel datapath unavailable, forwarding in userspace", "err", err)
		}
	}
	if a.cfg.Datapath == DatapathUserspace {
		// A kernel agent killed before it could clean up holds the VXLAN
		// port and would keep forwarding flows nobody updates. (A kernel
		// path that failed to start removed what it made.)
		devs := a.cfg.KernelDevices
		if devs == (fastpath.Devices{}) {
			devs = fastpath.DefaultDevices
		}
		if err := fastpath.Purge(a.hostID, devs); err != nil {
			a.log.Warn("agent: removing a previous kernel datapath", "err", err)
		}
	}
	t, err := datapath.OpenTunnel(datapath.TunnelConfig{Local: netip.AddrPortFrom(a.cfg.TunnelIP, a.cfg.TunnelPort)})
	if err != nil {
		return err
	}
	a.tunnel = t
	a.m.datapathKernel.Set(0)
	return nil
}

// abortStart undoes the datapath of a start-up that went no further.
// Stopped on purpose (ctx done, as when canopy up is interrupted) the
// kernel path goes as in a planned stop, pins and all; a start-up that
// failed leaves it as a killed agent would, forwarding established flows
// for the next agent to adopt.
func (a *Agent) abortStart(ctx context.Context) {
	if a.kernel != nil && ctx.Err() != nil {
		a.kernel.close(false)
		return
	}
	a.tunnel.Close()
}

// register announces this host (name, interfaces, availability zone, tunnel
// zone and address) under its own state keys, bound to a fresh lease, and
// waits until the server's controller has made its Host object from that:
// an agent's etcd credentials may not write topology (docs/agent.md).
func (a *Agent) register(ctx context.Context) error {
	ifs := hostInterfaces()
	for _, hi := range ifs {
		for _, ad := range hi.Addresses {
			if ad.Addr() == a.cfg.TunnelIP {
				a.tunMTU = hi.MTU
			}
		}
	}
	l, err := a.store.GrantLease(ctx, a.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("register host %s: %w", a.hostID, err)
	}
	a.leaseMu.Lock()
	a.lease = l
	a.leaseMu.Unlock()
	if err := a.announce(ctx, l, ifs); err != nil {
		return fmt.Errorf("register host %s: %w", a.hostID, err)
	}
	return a.waitServer(ctx, "register host", func(r topology.Reader) bool {
		h, _ := r.Get(topology.KindHost, a.hostID).(*topology.Host)
		return h != nil && h.Labels[topology.LabelZone] == a.cfg.Zone
	})
}

// announce puts this host's info with lease l.
func (a *Agent) announce(ctx context.Context, l *nsdb.Lease, ifs []topology.HostInterface) error {
	info := nsdb.HostInfo{Name: a.cfg.HostName, Interfaces: ifs, AvailabilityZone: a.cfg.Zone}
	if a.cfg.TunnelZone != "" {
		info.TunnelZone, info.TunnelIP = a.cfg.TunnelZone, a.cfg.TunnelIP
	}
	return a.store.PutHostInfo(ctx, a.hostID, info, l)
}

// waitServer waits until cond holds on the topology, saying now and then
// what it waits for: the server's controller acts on what this agent
// announced.
func (a *Agent) waitServer(ctx context.Context, what string, cond func(topology.Reader) bool) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.rep.waitUntil(wctx, cond)
		cancel()
		if err == nil || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("%s %s: %w", what, a.hostID, err)
			}
			return nil
		}
		a.log.Warn("agent: still waiting for the server's controller to "+what+" (is a canopy server running?)", "host", a.cfg.HostName)
	}
}

// hostInterfaces lists this namespace's interfaces from netlink.
func hostInterfaces() []topology.HostInterface {
	links, err := netlink.LinkList()
	if err != nil {
		return nil
	}
	var out []topology.HostInterface
	for _, l := range links {
		at := l.Attrs()
		hi := topology.HostInterface{Name: at.Name, MTU: at.MTU}
		if len(at.HardwareAddr) == 6 {
			copy(hi.MAC[:], at.HardwareAddr)
		}
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
		for _, ad := range addrs {
			if p, ok := netipPrefix(ad.IPNet); ok {
				hi.Addresses = append(hi.Addresses, p)
			}
		}
		out = append(out, hi)
	}
	return out
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ad, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ad.Unmap(), ones), true
}

// joinZone waits until the server's controller has made this host a member
// of its tunnel zone at its tunnel address (announced by register).
func (a *Agent) joinZone(ctx context.Context) error {
	err := a.waitServer(ctx, "join tunnel zone "+a.cfg.TunnelZone, func(r topology.Reader) bool {
		for _, o := range r.List(topology.KindTunnelZone) {
			z := o.(*topology.TunnelZone)
			if z.Name != a.cfg.TunnelZone && z.ID != a.cfg.TunnelZone {
				continue
			}
			if i := z.MemberIndex(a.hostID); i >= 0 && z.Members[i].Address == a.cfg.TunnelIP {
				return true
			}
		}
		return false
	})
	if err == nil {
		a.log.Info("agent: joined tunnel zone", "zone", a.cfg.TunnelZone, "address", a.cfg.TunnelIP)
	}
	return err
}

// keepAlive announces this host alive with its current lease (register's),
// or with a new one (and the host's info again) when there is none.
func (a *Agent) keepAlive(ctx context.Context) error {
	a.leaseMu.Lock()
	l := a.lease
	a.leaseMu.Unlock()
	if l == nil {
		var err error
		if l, err = a.store.GrantLease(ctx, a.cfg.LeaseTTL); err != nil {
			return err
		}
		if err := a.announce(ctx, l, hostInterfaces()); err != nil {
			_ = l.Revoke(context.WithoutCancel(ctx))
			return err
		}
	}
	if err := a.store.MarkHostAlive(ctx, a.hostID, l); err != nil {
		return err
	}
	a.leaseMu.Lock()
	a.lease = l
	a.leaseMu.Unlock()
	return nil
}

// runLease takes a new lease whenever the current one is lost (etcd was
// unreachable for longer than the TTL) and announces the host, its
// liveness and its plugged ports again.
func (a *Agent) runLease(ctx context.Context) {
	for {
		a.leaseMu.Lock()
		l := a.lease
		a.leaseMu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-l.Done():
		}
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("agent: liveness lease lost, taking a new one")
		a.leaseMu.Lock()
		a.lease = nil
		a.leaseMu.Unlock()
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
			if err := a.keepAlive(ctx); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		a.bmu.Lock()
		for id := range a.bound {
			a.markActive(ctx, id)
		}
		a.bmu.Unlock()
		a.republishLearned() // they were bound to the lost lease
	}
}

// expireFlowsAndState expires the flows, then the connection and NAT
// entries. A flow the kernel forwards is not simulated again while it is
// busy, so the entries it relies on are extended from the kernel's last use
// of it first: a busy connection never expires, an idle one does ConnTTL
// after its last packet. uses is a buffer, returned for the next call.
func (a *Agent) expireFlowsAndState(now int64, uses []flow.Use) []flow.Use {
	uses = a.flows.Expire(now, uses[:0])
	a.simMu.Lock()
	for _, u := range uses {
		a.state.Touch(u.Refs, u.At+int64(a.cfg.ConnTTL))
	}
	a.state.Expire(now)
	a.simMu.Unlock()
	clear(uses) // keeps no flow's refs alive
	return uses
}

func (a *Agent) markActive(ctx context.Context, portID string) {
	a.leaseMu.Lock()
	l := a.lease
	a.leaseMu.Unlock()
	if l == nil {
		return
	}
	if err := a.store.SetPortActive(ctx, a.hostID, portID, l); err != nil {
		a.log.Warn("agent: marking port active", "port_id", portID, "err", err)
	}
}

// runHousekeeping expires flows and state, and retries bindings that failed.
func (a *Agent) runHousekeeping(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastRefresh := time.Now()
	var uses []flow.Use
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		uses = a.expireFlowsAndState(now, uses)
		if a.md != nil {
			a.md.expire(now)
		}
		a.miss.run.Lock()
		a.expireParked(now)
		var tb tunBatch
		a.resumeForState(&tb)
		a.flushTunnel(&tb)
		a.expireLearned(now)
		a.miss.run.Unlock()
		if time.Since(lastRefresh) > a.cfg.ConnTTL/4 {
			lastRefresh = time.Now()
			a.refreshExports(now, "")
		}
		a.reconcile(ctx)
		if a.kernel != nil {
			a.kernel.housekeeping()
		}
	}
}
