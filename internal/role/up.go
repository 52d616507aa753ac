package role

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	"github.com/spf13/pflag"
)

// UpConfig is the all-in-one role of `canopy up`: a server, an agent on
// this machine and a demo account. Logger is the role's logger: the
// server, its store, the agent and the outside uplink log to it.
type UpConfig struct {
	Server        ServerConfig
	Account       string
	TunnelIP      string
	TunnelPort    uint16
	MetricsListen string
	Driver        string
	Datapath      string // the agent's: agent.DatapathAuto, kernel or userspace
	Outside       bool
	OutsideLink   string
	Logger        *slog.Logger
	// Ready, if set, is called once everything is up, with what to tell
	// the user.
	Ready func(UpInfo)
}

// DefaultUpConfig is canopy up's defaults.
func DefaultUpConfig() UpConfig {
	cfg := server.DefaultConfig()
	cfg.LogLevel = "warn" // the terminal shows the banner; --log-level info for more
	// Default subnets map a public IP on launch, as in AWS: the demo's
	// public addresses come from a documentation range (RFC 5737) until
	// --ec2-public-pool and --cloud-config name real ones.
	cfg.EC2.PublicPool = "198.51.100.0/24"
	return UpConfig{Server: cfg, Account: "demo", TunnelIP: "127.0.0.1", Driver: DriverNetns, Datapath: agent.DatapathAuto, Outside: true, OutsideLink: DefaultUpLink}
}

// BindFlags binds the server's flags and canopy up's own.
func (c *UpConfig) BindFlags(f *pflag.FlagSet) {
	c.Server.BindFlags(f)
	f.StringVar(&c.Account, "account", c.Account, "EC2 account to create (or find again)")
	f.StringVar(&c.TunnelIP, "tunnel-ip", c.TunnelIP, "the agent's underlay address")
	f.Uint16Var(&c.TunnelPort, "tunnel-port", 0, "the agent's VXLAN UDP port (default 6677)")
	f.StringVar(&c.MetricsListen, "metrics-listen", "", "host:port of the agent's /metrics, /flows and /healthz (default off)")
	f.StringVar(&c.Driver, "instance-driver", c.Driver, "instance driver of the agent: netns or none")
	f.StringVar(&c.Datapath, "datapath", c.Datapath, "the agent's datapath: auto, kernel or userspace (see canopy agent --help)")
	f.BoolVar(&c.Outside, "outside", c.Outside, "make this host the edge's upstream router: route the public pool to the edge, masquerade instances' traffic behind this host (off with --outside=false, or when --cloud-config describes the edge)")
	f.StringVar(&c.OutsideLink, "outside-link", c.OutsideLink, "the link between this host (first address) and the edge (second)")
}

// UpInfo is what canopy up tells the user once it is up.
type UpInfo struct {
	Driver, Account, AccountID string
	AccessKeyID, SecretKey     string
	Region, SubnetID, ImageID  string
	EC2URL, APIURL, TokenFile  string
	CAFile                     string // "" when the server's TLS files were given
	DataDir, CredentialsFile   string
	// Outside is this host's side of the edge's uplink; nil when the
	// cloud config describes the edge.
	Outside *upstream.Config
}

// credentialsFile is where `canopy up` keeps an account's credentials.
func credentialsFile(dataDir, account string) string {
	return filepath.Join(dataDir, account+"-credentials")
}

// Up runs the all-in-one role until ctx is done, then stops the agent
// (while the store still answers), removes the instances' namespaces and
// stops the server.
func Up(parent context.Context, c UpConfig) error {
	cfg := &c.Server
	log := c.Logger
	tunnelIP, err := netip.ParseAddr(c.TunnelIP)
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
	if c.Outside && cfg.CloudConfig == "" {
		uc, err := upOutside(cfg, c.OutsideLink, hostName)
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
		case <-parent.Done():
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
	rootCfg.Logger = log

	// The agent runs as any other host's would: enrolled, with etcd
	// credentials that write only its own host's state.
	agentDir := filepath.Join(cfg.DataDir, "agent")
	acfg := agent.Config{HostName: hostName, TunnelIP: tunnelIP, TunnelPort: c.TunnelPort,
		StateDir: agentDir, MetricsListen: c.MetricsListen, Logger: log, Datapath: c.Datapath}
	if err := upEnroll(parent, cfg, rootCfg, &acfg); err != nil {
		stopServer()
		return errors.Join(fmt.Errorf("enrolling the agent: %w", err), <-srvDone)
	}
	agCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	agDone := make(chan error, 1)
	go func() { agDone <- runAgent(agCtx, acfg, c.Driver) }()
	var up *upstream.Upstream
	shutdown := func() error {
		var err error
		if up != nil {
			err = up.Close()
		}
		stopAgent()
		err = errors.Join(err, <-agDone)
		if c.Driver == DriverNetns {
			if _, perr := instance.Purge(instanceStateDir(agentDir)); perr != nil {
				err = errors.Join(err, perr)
			}
		}
		stopServer()
		return errors.Join(err, <-srvDone)
	}

	api := &http.Client{Timeout: 60 * time.Second}
	if caFile != "" {
		tc, err := pki.ClientTLS(caFile)
		if err != nil {
			return errors.Join(err, shutdown())
		}
		api.Transport = &http.Transport{TLSClientConfig: tc}
	}
	info, err := upAccount(parent, cfg, api, scheme+"://"+apiAddr, rootCfg, c.Account, caFile)
	if err != nil {
		return errors.Join(err, shutdown())
	}
	if outside != nil {
		// The link to the edge; the agent plugs the edge's end once the
		// controller has bound the uplink to it.
		if up, err = upstream.Up(parent, *outside, log); err != nil {
			return errors.Join(err, shutdown())
		}
	}
	info.Driver, info.Account, info.Region = c.Driver, c.Account, cfg.EC2.Region
	info.ImageID = ec2.DefaultImages()[0].ID
	info.EC2URL, info.APIURL = scheme+"://"+ec2Addr, scheme+"://"+apiAddr
	info.TokenFile, info.CAFile, info.DataDir = server.TokenFile(cfg.DataDir), caFile, cfg.DataDir
	info.CredentialsFile, info.Outside = credentialsFile(cfg.DataDir, c.Account), outside
	if c.Ready != nil {
		c.Ready(info)
	}

	select {
	case <-parent.Done():
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

// upAccount creates the account through the REST API (or reads its kept
// credentials), writes the credentials file, waits until its default VPC is
// realized by the controller and finds its first default subnet.
func upAccount(ctx context.Context, cfg *server.Config, api *http.Client, apiURL string, rootCfg nsdb.Config, name, caFile string) (UpInfo, error) {
	var info UpInfo
	credFile := credentialsFile(cfg.DataDir, name)
	if b, err := os.ReadFile(credFile); err == nil {
		info = parseCredentials(string(b))
		if info.AccessKeyID == "" || info.SecretKey == "" || info.AccountID == "" {
			return info, fmt.Errorf("%s: no credentials in it; delete it and the account %q", credFile, name)
		}
	} else {
		token, err := os.ReadFile(server.TokenFile(cfg.DataDir))
		if err != nil {
			return info, err
		}
		na, err := createAccount(ctx, api, apiURL, strings.TrimSpace(string(token)), name)
		if err != nil {
			return info, fmt.Errorf("create account %q: %w (if it exists from an earlier canopy up whose %s was removed, delete it with canopy account delete)",
				name, err, credFile)
		}
		info = UpInfo{AccountID: na.AccountID, AccessKeyID: na.AccessKeyID, SecretKey: na.SecretAccessKey}
	}
	// Written every time: the CA bundle line follows the TLS settings of
	// this start.
	content := fmt.Sprintf("# canopy up: EC2 account %s (%s); source this file\nexport AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\nexport AWS_DEFAULT_REGION=%s\n",
		name, info.AccountID, info.AccessKeyID, info.SecretKey, cfg.EC2.Region)
	if caFile != "" {
		content += "export AWS_CA_BUNDLE=" + caFile + "\n"
	}
	if err := os.WriteFile(credFile+".tmp", []byte(content), 0o600); err != nil {
		return info, err
	}
	if err := os.Rename(credFile+".tmp", credFile); err != nil {
		return info, err
	}
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
	info.SubnetID = defaultSubnet(st, info.AccountID)
	if info.SubnetID == "" {
		return info, fmt.Errorf("account %s has no default subnet", info.AccountID)
	}
	return info, nil
}

// createAccount is POST /accounts on the REST API, as an operator's CLI
// would send it.
func createAccount(ctx context.Context, api *http.Client, apiURL, token, name string) (*ec2.NewCredentials, error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/accounts", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := api.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var nc ec2.NewCredentials
	if err := json.Unmarshal(b, &nc); err != nil {
		return nil, fmt.Errorf("decoding the answer: %w", err)
	}
	return &nc, nil
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
func parseCredentials(s string) UpInfo {
	var info UpInfo
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "# canopy up: EC2 account "); ok {
			if _, id, ok := strings.Cut(rest, "("); ok {
				info.AccountID, _, _ = strings.Cut(id, ")")
			}
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		switch k {
		case "AWS_ACCESS_KEY_ID":
			info.AccessKeyID = v
		case "AWS_SECRET_ACCESS_KEY":
			info.SecretKey = v
		}
	}
	return info
}

// RunningUp is the pid of the canopy up running on dataDir, or 0.
func RunningUp(dataDir string) (int, error) { return runningUp(dataDir) }

// StopUp stops the canopy up pid running on dataDir and waits up to within
// until it has let go of the data dir (its instances removed, its store
// stopped).
func StopUp(dataDir string, pid int, within time.Duration) error { return stopUp(dataDir, pid, within) }

// PurgeUpInstances removes what a killed canopy up on dataDir left behind:
// its instances' namespaces and TAPs. It returns the namespaces removed.
func PurgeUpInstances(dataDir string) ([]string, error) {
	return instance.Purge(instanceStateDir(filepath.Join(dataDir, "agent")))
}
