package ec2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"github.com/spf13/pflag"
)

// Options are the `canopy server` flags of the EC2 endpoint.
type Options struct {
	Listen     string // host:port; "" or "off" disables the endpoint
	Region     string
	Zones      string // comma-separated
	PublicPool string // CIDRs and first-last ranges, comma-separated
	Images     string // image catalogue file (JSON); "" = DefaultImages
	Limits     vpc.Limits
	// TLSCert and TLSKey, when set, make the endpoint HTTPS only (PEM files,
	// re-read when they change). canopy server defaults them to --tls-cert
	// and --tls-key.
	TLSCert, TLSKey string
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{Listen: DefaultListen, Region: "us-east-1"}
}

// BindFlags registers the EC2 flags on fs.
func (o *Options) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Listen, "ec2-listen", o.Listen, `host:port of the EC2 Query API ("off" disables it)`)
	fs.StringVar(&o.Region, "ec2-region", o.Region, "region name the EC2 endpoint answers for")
	fs.StringVar(&o.Zones, "ec2-zones", o.Zones, "comma-separated availability zones (default <region>a,<region>b,<region>c)")
	fs.StringVar(&o.PublicPool, "ec2-public-pool", o.PublicPool, "elastic IP pool: comma-separated CIDRs or first-last ranges")
	fs.IntVar(&o.Limits.VpcsPerAccount, "ec2-limit-vpcs", 0, "VPCs per account (0: AWS's default, 5)")
	fs.IntVar(&o.Limits.SubnetsPerVpc, "ec2-limit-subnets", 0, "subnets per VPC (0: 200)")
	fs.IntVar(&o.Limits.RulesPerSecurityGroup, "ec2-limit-sg-rules", 0, "rules per security group and direction (0: 60)")
	fs.IntVar(&o.Limits.SecurityGroupsPerInterface, "ec2-limit-sgs-per-eni", 0, "security groups per interface (0: 5, at most 16)")
	fs.IntVar(&o.Limits.AddressesPerAccount, "ec2-limit-eips", 0, "elastic IPs per account (0: 5)")
	fs.IntVar(&o.Limits.InstancesPerAccount, "ec2-limit-instances", 0, "instances (not terminated) per account (0: 20)")
	fs.StringVar(&o.TLSCert, "ec2-tls-cert", o.TLSCert, "PEM certificate (chain) of the EC2 endpoint: it serves HTTPS only (default --tls-cert)")
	fs.StringVar(&o.TLSKey, "ec2-tls-key", o.TLSKey, "PEM private key of --ec2-tls-cert (default --tls-key)")
	fs.StringVar(&o.Images, "ec2-images", o.Images, "image catalogue: a JSON file of [{id, name, description, architecture, owner_id, owner_alias, root_size_gib}] (default: two built-in Debian 12 labels)")
}

// Enabled reports whether the endpoint should run.
func (o *Options) Enabled() bool { return o.Listen != "" && o.Listen != "off" }

// Validate checks the options.
func (o *Options) Validate() error {
	if !o.Enabled() {
		return nil
	}
	var errs []error
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--ec2-listen: %q is not host:port", o.Listen))
	}
	if _, err := ParsePool(o.PublicPool); err != nil {
		errs = append(errs, fmt.Errorf("--ec2-public-pool: %w", err))
	}
	if err := o.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--ec2-limit-*: %w", err))
	}
	if _, err := LoadImages(o.Images); err != nil {
		errs = append(errs, fmt.Errorf("--ec2-images: %w", err))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		errs = append(errs, errors.New("--ec2-tls-cert and --ec2-tls-key go together"))
	}
	return errors.Join(errs...)
}

// Open makes the EC2 endpoint of a server over store, not yet listening:
// Serve serves it, Close releases it. (The life cycles its calls start —
// an instance becoming running, a NAT gateway available — are the
// controller's.) key seals the access-key secrets (the cloud's, shared by
// every server: EnsureKey).
func Open(ctx context.Context, store *nsdb.Store, o Options, key []byte, log *slog.Logger) (*Server, error) {
	pool, err := ParsePool(o.PublicPool)
	if err != nil {
		return nil, err
	}
	var zones []string
	for _, z := range strings.Split(o.Zones, ",") {
		if z = strings.TrimSpace(z); z != "" {
			zones = append(zones, z)
		}
	}
	images, err := LoadImages(o.Images)
	if err != nil {
		return nil, err
	}
	vs, err := nsdb.OpenVPCStore(ctx, store)
	if err != nil {
		return nil, err
	}
	srv, err := New(vs, Config{Region: o.Region, Zones: zones, PublicPool: pool, Limits: o.Limits, Images: images, Key: key, Logger: log})
	if err != nil {
		vs.Close()
		return nil, err
	}
	srv.closeStore = vs.Close
	return srv, nil
}

// Close stops what Open started.
func (s *Server) Close() {
	if s.closeStore != nil {
		s.closeStore()
	}
}

// Serve serves the endpoint on o.Listen (HTTPS only when o.TLSCert is set)
// until ctx is done. ready, if set, gets the listening address.
func (s *Server) Serve(ctx context.Context, o Options, ready func(addr string)) error {
	log := s.log
	var tlsCfg *tls.Config
	if o.TLSCert != "" {
		var err error
		if tlsCfg, err = pki.ServerTLS(o.TLSCert, o.TLSKey); err != nil {
			return fmt.Errorf("ec2: %w", err)
		}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("ec2 listen: %w", err)
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	log.Info("EC2 API listening", "url", scheme+"://"+ln.Addr().String(), "region", o.Region)
	if ready != nil {
		ready(ln.Addr().String())
	}
	if err := ServeListener(ctx, ln, s, tlsCfg, log); err != nil {
		return fmt.Errorf("ec2 serve: %w", err)
	}
	return nil
}

// ShutdownGrace bounds how long in-flight requests may take to finish once
// a listener of ServeListener is asked to stop.
const ShutdownGrace = 10 * time.Second

// ServeListener serves h on ln (HTTPS when tlsCfg is set) until ctx is
// done, then shuts down within ShutdownGrace. It is every tenant-facing
// API listener's server (EC2, Neutron, Keystone): tenants are on the other
// end, so a slow or idle client must not hold a connection and its
// goroutine forever (bodies are at most 1 MiB and no answer streams). A
// plain HTTP request to an HTTPS listener gets net/http's 400 "Client sent
// an HTTP request to an HTTPS server" and never reaches h.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) error {
	hs := &http.Server{Handler: h, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
