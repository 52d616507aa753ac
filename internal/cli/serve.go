package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/instance"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/server"
	"github.com/canopy-sdn/canopy/internal/upstream"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"github.com/spf13/cobra"
)

// runServer validates cfg and runs the server until SIGINT or SIGTERM.
func runServer(cmd *cobra.Command, cfg *server.Config, ready func(addr, tokenFile string)) error {
	if err := cfg.LoadEnv(cmd.Flags()); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := server.New(*cfg, server.NewLogger(cfg.LogLevel))
	s.Ready = ready
	return s.Run(ctx)
}

func serverCmd() *cobra.Command {
	cfg := server.DefaultConfig()
	c := &cobra.Command{
		Use:   "server",
		Short: "Run the network state database, the REST topology API, the EC2 API and the VPC controller",
		Long: `Run the server role: the network state database on etcd (embedded, in <data-dir>/etcd,
unless --etcd-endpoints names an external cluster), the REST topology API on --listen (with
the EC2 accounts' admin, /accounts) and the EC2 endpoint on --ec2-listen; both serve HTTPS only
with --tls-cert and --tls-key (the EC2 endpoint may have its own, --ec2-tls-cert).
On first start it writes an admin token to <data-dir>/admin-token (mode 0600).
Every flag can also be set by its CANOPY_* environment variable; the flag wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd, &cfg, nil) },
	}
	cfg.BindFlags(c.Flags())
	return c
}

// Instance drivers of `canopy agent --instance-driver`.
const (
	DriverNone  = "none"
	DriverNetns = "netns"
)

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
	store, err := nsdb.Open(octx, nsdb.Config{Endpoints: cfg.Endpoints, Credentials: cfg.Etcd})
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

// credentialsFile is where `canopy up` keeps an account's credentials.
func credentialsFile(dataDir, account string) string {
	return filepath.Join(dataDir, account+"-credentials")
}

func upCmd(stdout io.Writer) *cobra.Command {
	cfg := server.DefaultConfig()
	cfg.LogLevel = "warn" // the terminal shows the banner; --log-level info for more
	// Default subnets map a public IP on launch, as in AWS: the demo's
	// public addresses come from a documentation range (RFC 5737) until
	// --ec2-public-pool and --cloud-config name real ones.
	cfg.EC2.PublicPool = "198.51.100.0/24"
	var o upOptions
	c := &cobra.Command{
		Use:   "up",
		Short: "Run Canopy on this machine: server, agent and netns instances, with a demo account",
		Long: `Run everything on this machine, as root, for a first try: the server (embedded etcd,
REST API, EC2 endpoint, VPC controller) and an agent with the netns instance driver (an
instance is a network namespace with a real DHCP client). Both APIs serve HTTPS only, with a
certificate from a local CA kept in <data-dir>/pki (ca.crt is the bundle to trust), unless
--tls-cert names another. It creates the EC2 account --account (credentials and
AWS_CA_BUNDLE kept in <data-dir>/<account>-credentials, mode 0600), waits until its default
VPC is realized and prints the AWS CLI settings. It stays in the foreground; Ctrl-C
(or canopy down) stops it and removes the instances' namespaces. The next canopy up on the
same data dir finds the account, its VPCs and its instances again and re-creates the
namespaces of running instances.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.LoadEnv(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if !cfg.EC2.Enabled() {
				return errors.New("canopy up needs the EC2 endpoint (--ec2-listen)")
			}
			return runUp(cmd.Context(), &cfg, &o, stdout)
		},
	}
	cfg.BindFlags(c.Flags())
	f := c.Flags()
	f.StringVar(&o.account, "account", "demo", "EC2 account to create (or find again)")
	f.StringVar(&o.tunnelIP, "tunnel-ip", "127.0.0.1", "the agent's underlay address")
	f.Uint16Var(&o.tunnelPort, "tunnel-port", 0, "the agent's VXLAN UDP port (default 6677)")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "host:port of the agent's /metrics, /flows and /healthz (default off)")
	f.StringVar(&o.driver, "instance-driver", DriverNetns, "instance driver of the agent: netns or none")
	f.StringVar(&o.datapath, "datapath", agent.DatapathUserspace, "the agent's datapath: userspace, kernel or auto (see canopy agent --help)")
	f.BoolVar(&o.outside, "outside", true, "make this host the edge's upstream router: route the public pool to the edge, masquerade instances' traffic behind this host (off with --outside=false, or when --cloud-config describes the edge)")
	f.StringVar(&o.outsideLink, "outside-link", DefaultUpLink, "the link between this host (first address) and the edge (second)")
	return c
}

type upOptions struct {
	account, tunnelIP, metricsListen, driver string
	datapath                                 string
	tunnelPort                               uint16
	outside                                  bool
	outsideLink                              string
}

func runUp(parent context.Context, cfg *server.Config, o *upOptions, stdout io.Writer) error {
	tunnelIP, err := netip.ParseAddr(o.tunnelIP)
	if err != nil {
		return fmt.Errorf("--tunnel-ip: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	lock, err := lockUp(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.release()
	hostName, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("host name: %w", err)
	}
	var outside *upstream.Config
	if o.outside && cfg.CloudConfig == "" {
		uc, err := upOutside(cfg, o.outsideLink, hostName)
		if err != nil {
			return err
		}
		outside = &uc
	}
	caFile := ""
	if cfg.TLSCert == "" {
		if caFile, err = upCertificates(cfg); err != nil {
			return err
		}
	}
	log := server.NewLogger(cfg.LogLevel)
	sigCtx, stopSignals := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	// The server and the agent have their own contexts: on a signal the
	// agent stops first (while the store still answers), then the server.
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	ready := make(chan string, 1)
	ec2Ready := make(chan string, 1)
	srvDone := make(chan error, 1)
	s := server.New(*cfg, log)
	s.Ready = func(addr, _ string) { ready <- addr }
	s.EC2Ready = func(addr string) { ec2Ready <- addr }
	go func() { srvDone <- s.Run(srvCtx) }()
	var apiAddr, ec2Addr string
	for apiAddr == "" || ec2Addr == "" {
		select {
		case apiAddr = <-ready:
		case ec2Addr = <-ec2Ready:
		case err := <-srvDone:
			return fmt.Errorf("server: %w", err)
		case <-sigCtx.Done():
			stopServer()
			return <-srvDone
		}
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	rootCfg, err := cfg.ClientStoreConfig()
	if err != nil {
		stopServer()
		return errors.Join(err, <-srvDone)
	}

	// The agent runs as any other host's would: enrolled, with etcd
	// credentials that write only its own host's state.
	agentDir := filepath.Join(cfg.DataDir, "agent")
	acfg := agent.Config{HostName: hostName, TunnelIP: tunnelIP, TunnelPort: o.tunnelPort,
		StateDir: agentDir, MetricsListen: o.metricsListen, Logger: log, Datapath: o.datapath}
	if err := upEnroll(sigCtx, cfg, rootCfg, &acfg); err != nil {
		stopServer()
		return errors.Join(fmt.Errorf("enrolling the agent: %w", err), <-srvDone)
	}
	agCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	agDone := make(chan error, 1)
	go func() { agDone <- runAgent(agCtx, acfg, o.driver) }()
	var up *upstream.Upstream
	shutdown := func() error {
		var err error
		if up != nil {
			err = up.Close()
		}
		stopAgent()
		err = errors.Join(err, <-agDone)
		if o.driver == DriverNetns {
			if _, perr := instance.Purge(instanceStateDir(agentDir)); perr != nil {
				err = errors.Join(err, perr)
			}
		}
		stopServer()
		return errors.Join(err, <-srvDone)
	}

	api := &Client{URL: scheme + "://" + apiAddr, HTTP: &http.Client{Timeout: 60 * time.Second}}
	if caFile != "" {
		tc, err := pki.ClientTLS(caFile)
		if err != nil {
			return errors.Join(err, shutdown())
		}
		api.HTTP.Transport = &http.Transport{TLSClientConfig: tc}
	}
	info, err := upAccount(sigCtx, cfg, api, rootCfg, o.account, caFile)
	if err != nil {
		return errors.Join(err, shutdown())
	}
	outsideLine := "  outside       none (--cloud-config names the edge's gateways, or --outside=false)\n"
	if outside != nil {
		// The link to the edge; the agent plugs the edge's end once the
		// controller has bound the uplink to it.
		if up, err = upstream.Up(sigCtx, *outside, log); err != nil {
			return errors.Join(err, shutdown())
		}
		outsideLine = fmt.Sprintf("  outside       this host: the public pool %v is routed to the edge (%s on %s), instances' traffic leaves masqueraded behind this host\n",
			outside.Pools, outside.Edge, UpHostLink)
	}
	env := fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s", info.keyID, info.secret, cfg.EC2.Region)
	if caFile != "" {
		env += " AWS_CA_BUNDLE=" + caFile
	}
	trust := ""
	if caFile != "" {
		trust = fmt.Sprintf("  CA            %s   (trusted by the canopy CLI on this data dir; AWS_CA_BUNDLE for the AWS CLI)\n", caFile)
	}
	ec2URL := scheme + "://" + ec2Addr
	fmt.Fprintf(stdout, `Canopy is up: server, agent (instance driver %s) and account %q (%s).
  EC2 endpoint  %s   (region %s)
  REST API      %s://%s   (admin token in %s)
%s%s  data          %s   (canopy down stops this; canopy down --purge also deletes the data)

Use it with the AWS CLI:
  . %s     # or:
  export %s
  aws --endpoint-url %s ec2 describe-vpcs
  aws --endpoint-url %s ec2 run-instances --image-id %s --instance-type t3.micro --subnet-id %s
An instance is a network namespace on this machine: ip netns exec ci-<last 13 hex digits of its id> ...
Stop with Ctrl-C.
`, o.driver, o.account, info.accountID, ec2URL, cfg.EC2.Region, scheme, apiAddr, server.TokenFile(cfg.DataDir), trust, outsideLine, cfg.DataDir,
		credentialsFile(cfg.DataDir, o.account), env,
		ec2URL, ec2URL, ec2.DefaultImages()[0].ID, info.subnetID)

	select {
	case <-sigCtx.Done():
		log.Info("canopy up: stopping")
	case err := <-agDone:
		agDone <- err // shutdown reads it
		log.Error("canopy up: agent stopped", "err", err)
	case err := <-srvDone:
		srvDone <- err
		log.Error("canopy up: server stopped", "err", err)
	}
	return shutdown()
}

// upCertificates makes (or finds) the local CA of canopy up in
// <data-dir>/pki and a server certificate for its two listeners, sets them
// as the server's TLS files and returns the CA file to trust.
func upCertificates(cfg *server.Config) (string, error) {
	dir := filepath.Join(cfg.DataDir, "pki")
	host, _ := os.Hostname()
	ca, err := pki.LoadOrCreateCA(dir, "Canopy up local CA "+host)
	if err != nil {
		return "", err
	}
	opts := pki.IssueOptions{CommonName: "canopy up " + host, Server: true,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	for _, listen := range []string{cfg.Listen, cfg.EC2.Listen} {
		h, _, err := net.SplitHostPort(listen)
		if err != nil { // Validate checked both
			return "", err
		}
		ip := net.ParseIP(h)
		switch {
		case ip == nil && h != "":
			opts.DNSNames = appendNew(opts.DNSNames, h)
		case ip != nil && !ip.IsUnspecified():
			if !slices.ContainsFunc(opts.IPs, ip.Equal) {
				opts.IPs = append(opts.IPs, ip)
			}
		case host != "":
			// A wildcard listener is reached by the machine's name.
			opts.DNSNames = appendNew(opts.DNSNames, host)
		}
	}
	cfg.TLSCert, cfg.TLSKey, err = ca.Issue(dir, "server", opts)
	if err != nil {
		return "", err
	}
	return ca.CertFile(), nil
}

func appendNew(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

// upInfo is what canopy up prints.
type upInfo struct {
	accountID, keyID, secret, subnetID string
}

// upAccount creates the account through the REST API (or reads its kept
// credentials), writes the credentials file, waits until its default VPC is
// realized by the controller and finds its first default subnet.
func upAccount(ctx context.Context, cfg *server.Config, api *Client, rootCfg nsdb.Config, name, caFile string) (upInfo, error) {
	var info upInfo
	credFile := credentialsFile(cfg.DataDir, name)
	if b, err := os.ReadFile(credFile); err == nil {
		info = parseCredentials(string(b))
		if info.keyID == "" || info.secret == "" || info.accountID == "" {
			return info, fmt.Errorf("%s: no credentials in it; delete it and the account %q", credFile, name)
		}
	} else {
		token, err := os.ReadFile(server.TokenFile(cfg.DataDir))
		if err != nil {
			return info, err
		}
		api.Token = strings.TrimSpace(string(token))
		var na newAccount
		if _, err := api.Send(ctx, http.MethodPost, "/accounts", map[string]string{"name": name}, &na); err != nil {
			return info, fmt.Errorf("create account %q: %w (if it exists from an earlier canopy up whose %s was removed, delete it with canopy account delete)",
				name, err, credFile)
		}
		info = upInfo{accountID: na.AccountID, keyID: na.AccessKeyID, secret: na.SecretAccessKey}
	}
	// Written every time: the CA bundle line follows the TLS settings of
	// this start.
	content := fmt.Sprintf("# canopy up: EC2 account %s (%s); source this file\nexport AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_DEFAULT_REGION=%s\n",
		name, info.accountID, info.keyID, info.secret, cfg.EC2.Region)
	if caFile != "" {
		content += "export AWS_CA_BUNDLE=" + caFile + "\n"
	}
	if err := os.WriteFile(credFile+".tmp", []byte(content), 0o600); err != nil {
		return info, err
	}
	if err := os.Rename(credFile+".tmp", credFile); err != nil {
		return info, err
	}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the store client's own logs
	store, err := nsdb.Open(ctx, rootCfg)
	if err != nil {
		return info, err
	}
	defer store.Close()
	// Applied once the controller's watermark passes the last VPC write.
	seq, err := store.VPCSeqRevision(ctx)
	if err != nil {
		return info, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, err := controller.ReadStatus(ctx, store)
		if err == nil && a.VPCRevision >= seq && a.VPCRevision > 0 {
			break
		}
		if time.Now().After(deadline) {
			return info, fmt.Errorf("the default VPC was not realized within 60 s (controller at %d, want %d)", a.VPCRevision, seq)
		}
		select {
		case <-ctx.Done():
			return info, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	st, err := store.ReadVPCState(ctx)
	if err != nil {
		return info, err
	}
	info.subnetID = defaultSubnet(st, info.accountID)
	if info.subnetID == "" {
		return info, fmt.Errorf("account %s has no default subnet", info.accountID)
	}
	return info, nil
}

// defaultSubnet is the account's default subnet in the first zone.
func defaultSubnet(st *vpc.State, owner string) string {
	var subs []*vpc.Subnet
	for _, v := range st.Vpcs {
		if v.OwnerID != owner || !v.IsDefault {
			continue
		}
		for _, s := range st.Subnets {
			if s.VpcID == v.ID && s.DefaultForAz {
				subs = append(subs, s)
			}
		}
	}
	if len(subs) == 0 {
		return ""
	}
	slices.SortFunc(subs, func(a, b *vpc.Subnet) int { return strings.Compare(a.AvailabilityZone, b.AvailabilityZone) })
	return subs[0].ID
}

// parseCredentials reads a credentials file canopy up wrote.
func parseCredentials(s string) upInfo {
	var info upInfo
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "# canopy up: EC2 account "); ok {
			if _, id, ok := strings.Cut(rest, "("); ok {
				info.accountID, _, _ = strings.Cut(id, ")")
			}
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		switch k {
		case "AWS_ACCESS_KEY_ID":
			info.keyID = v
		case "AWS_SECRET_ACCESS_KEY":
			info.secret = v
		}
	}
	return info
}

func downCmd(stdout io.Writer) *cobra.Command {
	var dataDir string
	var purge bool
	c := &cobra.Command{
		Use:   "down",
		Short: "Stop a running canopy up and remove the namespaces and TAPs it made (--purge: and its data)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v := os.Getenv("CANOPY_DATA_DIR"); v != "" && !cmd.Flags().Changed("data-dir") {
				dataDir = v
			}
			pid, err := runningUp(dataDir)
			if err != nil {
				return err
			}
			if pid != 0 {
				fmt.Fprintf(stdout, "Stopping canopy up (pid %d)\n", pid)
				if err := stopUp(dataDir, pid, 60*time.Second); err != nil {
					return err
				}
			}
			// What a killed canopy up left behind.
			gone, err := instance.Purge(instanceStateDir(filepath.Join(dataDir, "agent")))
			for _, ns := range gone {
				fmt.Fprintf(stdout, "Removed instance namespace %s\n", ns)
			}
			if err != nil {
				return err
			}
			if purge {
				if err := os.RemoveAll(dataDir); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "Deleted %s\n", dataDir)
			}
			fmt.Fprintln(stdout, "Canopy is down.")
			return nil
		},
	}
	c.Flags().StringVar(&dataDir, "data-dir", server.DefaultDataDir, "data dir of the canopy up to stop (env CANOPY_DATA_DIR)")
	c.Flags().BoolVar(&purge, "purge", false, "also delete the data dir (etcd, tokens, credentials)")
	return c
}
