package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/keystone"
	"github.com/canopy-sdn/canopy/internal/neutron"
	"github.com/spf13/pflag"
)

// Defaults of the server role.
const (
	DefaultDataDir       = "/var/lib/canopy"
	DefaultListen        = "127.0.0.1:8181"
	DefaultEtcdClientURL = "https://127.0.0.1:2379"
	DefaultEtcdPeerURL   = "https://127.0.0.1:2380"
)

// Config is the server's configuration: defaults, then flags, then CANOPY_*
// environment variables for whatever the command line did not set.
type Config struct {
	// DataDir holds the embedded etcd (<data-dir>/etcd) and the admin token.
	DataDir string
	// Listen is the REST API's host:port.
	Listen string
	// EtcdEndpoints names an external etcd cluster; when set nothing is
	// embedded.
	EtcdEndpoints []string
	// EtcdClientURL and EtcdPeerURL are those of the embedded etcd, which
	// serves TLS only (https://) with certificates from the data dir's CA.
	EtcdClientURL string
	EtcdPeerURL   string
	// EtcdCA, EtcdCert and EtcdKey are the TLS credentials the server
	// presents to an external cluster (--etcd-endpoints): the CA of its
	// server certificates and a client certificate (etcd's root user, when
	// the cluster's authentication is on).
	EtcdCA, EtcdCert, EtcdKey string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// EC2 configures the EC2 Query API endpoint (--ec2-* flags).
	EC2 ec2.Options
	// CloudConfig is the path of a JSON translate.CloudConfig: the edge's
	// gateways, public pools, underlay MTU, DNS and BGP.
	CloudConfig string
	// TLSCert and TLSKey (PEM files), when set, make the REST API HTTPS
	// only, and the EC2 endpoint too unless --ec2-tls-cert names its own.
	TLSCert, TLSKey string
	// PprofListen is the host:port of the Go profiles (/debug/pprof/);
	// empty is off. Never one of the API listeners.
	PprofListen string
	// NeutronListen and KeystoneListen are the host:port of the OpenStack
	// Networking (v2.0) and minimal Identity (v3) endpoints, served over
	// the EC2 endpoint's accounts and objects (only while it runs); "off"
	// disables them.
	NeutronListen, KeystoneListen string
	// InstanceRecovery restarts the instances of a host whose agent died
	// on another alive host of their zone (EC2's auto-recovery), except
	// those with AutoRecovery=disabled.
	InstanceRecovery bool
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		DataDir:        DefaultDataDir,
		Listen:         DefaultListen,
		EtcdClientURL:  DefaultEtcdClientURL,
		EtcdPeerURL:    DefaultEtcdPeerURL,
		LogLevel:       "info",
		EC2:            ec2.DefaultOptions(),
		NeutronListen:  neutron.DefaultListen,
		KeystoneListen: keystone.DefaultListen,
	}
}

// envNames maps each flag to its environment override.
var envNames = map[string]string{
	"data-dir":          "CANOPY_DATA_DIR",
	"listen":            "CANOPY_LISTEN",
	"etcd-endpoints":    "CANOPY_ETCD_ENDPOINTS",
	"etcd-client-url":   "CANOPY_ETCD_CLIENT_URL",
	"etcd-peer-url":     "CANOPY_ETCD_PEER_URL",
	"etcd-ca":           "CANOPY_ETCD_CA",
	"etcd-cert":         "CANOPY_ETCD_CERT",
	"etcd-key":          "CANOPY_ETCD_KEY",
	"log-level":         "CANOPY_LOG_LEVEL",
	"cloud-config":      "CANOPY_CLOUD_CONFIG",
	"tls-cert":          "CANOPY_TLS_CERT",
	"tls-key":           "CANOPY_TLS_KEY",
	"ec2-tls-cert":      "CANOPY_EC2_TLS_CERT",
	"ec2-tls-key":       "CANOPY_EC2_TLS_KEY",
	"pprof-listen":      "CANOPY_PPROF_LISTEN",
	"instance-recovery": "CANOPY_INSTANCE_RECOVERY",
	"neutron-listen":    "CANOPY_NEUTRON_LISTEN",
	"keystone-listen":   "CANOPY_KEYSTONE_LISTEN",
}

// BindFlags registers the server flags on fs, writing into c.
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the embedded etcd and the admin token (env CANOPY_DATA_DIR)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "host:port of the REST API (env CANOPY_LISTEN)")
	fs.StringSliceVar(&c.EtcdEndpoints, "etcd-endpoints", c.EtcdEndpoints, "comma-separated client URLs of an external etcd cluster; when set, no etcd is embedded (env CANOPY_ETCD_ENDPOINTS)")
	fs.StringVar(&c.EtcdClientURL, "etcd-client-url", c.EtcdClientURL, "client URL (https://) of the embedded etcd (env CANOPY_ETCD_CLIENT_URL)")
	fs.StringVar(&c.EtcdPeerURL, "etcd-peer-url", c.EtcdPeerURL, "peer URL (https://) of the embedded etcd (env CANOPY_ETCD_PEER_URL)")
	fs.StringVar(&c.EtcdCA, "etcd-ca", c.EtcdCA, "with --etcd-endpoints: CA file of the cluster's server certificates; turns TLS on (env CANOPY_ETCD_CA)")
	fs.StringVar(&c.EtcdCert, "etcd-cert", c.EtcdCert, "with --etcd-endpoints: client certificate file (env CANOPY_ETCD_CERT)")
	fs.StringVar(&c.EtcdKey, "etcd-key", c.EtcdKey, "with --etcd-endpoints: client key file (env CANOPY_ETCD_KEY)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (env CANOPY_LOG_LEVEL)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (chain) of the REST API and, unless --ec2-tls-cert, the EC2 endpoint: they serve HTTPS only (env CANOPY_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert (env CANOPY_TLS_KEY)")
	fs.StringVar(&c.CloudConfig, "cloud-config", c.CloudConfig, "JSON file describing the cloud's edge: gateways (each on a host named by name or id; bound when that host registers), public pools, underlay MTU, DNS, BGP (env CANOPY_CLOUD_CONFIG)")
	fs.StringVar(&c.PprofListen, "pprof-listen", c.PprofListen, "host:port for the Go profiles at /debug/pprof/ (default off; keep it on a private address) (env CANOPY_PPROF_LISTEN)")
	fs.BoolVar(&c.InstanceRecovery, "instance-recovery", c.InstanceRecovery, "restart the instances of a host whose agent's lease ran out on another alive host of their zone, with the same id, interfaces, addresses and metadata; an instance opts out with ModifyInstanceMaintenanceOptions AutoRecovery=disabled (env CANOPY_INSTANCE_RECOVERY)")
	fs.StringVar(&c.NeutronListen, "neutron-listen", c.NeutronListen, `host:port of the OpenStack Networking API v2.0 (Neutron), over the EC2 endpoint's accounts; "off" disables it (env CANOPY_NEUTRON_LISTEN)`)
	fs.StringVar(&c.KeystoneListen, "keystone-listen", c.KeystoneListen, `host:port of the minimal OpenStack Identity v3 endpoint (Keystone) the Neutron API's clients authenticate with; "off" disables it (env CANOPY_KEYSTONE_LISTEN)`)
	c.EC2.BindFlags(fs)
}

// ApplyEnv sets every field whose flag was not given on the command line from
// its CANOPY_* variable, if that is set. Flags win over the environment.
func (c *Config) ApplyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	for flag, env := range envNames {
		v := getenv(env)
		if v == "" || (fs != nil && fs.Changed(flag)) {
			continue
		}
		switch flag {
		case "data-dir":
			c.DataDir = v
		case "listen":
			c.Listen = v
		case "neutron-listen":
			c.NeutronListen = v
		case "keystone-listen":
			c.KeystoneListen = v
		case "etcd-endpoints":
			c.EtcdEndpoints = splitList(v)
		case "etcd-client-url":
			c.EtcdClientURL = v
		case "etcd-peer-url":
			c.EtcdPeerURL = v
		case "etcd-ca":
			c.EtcdCA = v
		case "etcd-cert":
			c.EtcdCert = v
		case "etcd-key":
			c.EtcdKey = v
		case "log-level":
			c.LogLevel = v
		case "cloud-config":
			c.CloudConfig = v
		case "tls-cert":
			c.TLSCert = v
		case "tls-key":
			c.TLSKey = v
		case "ec2-tls-cert":
			c.EC2.TLSCert = v
		case "ec2-tls-key":
			c.EC2.TLSKey = v
		case "pprof-listen":
			c.PprofListen = v
		case "instance-recovery":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not true or false", env, v)
			}
			c.InstanceRecovery = b
		}
	}
	return nil
}

// LoadEnv is ApplyEnv with the process environment.
func (c *Config) LoadEnv(fs *pflag.FlagSet) error { return c.ApplyEnv(fs, os.Getenv) }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate checks the configuration and names the first bad setting.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir: must not be empty"))
	} else if !filepath.IsAbs(c.DataDir) {
		abs, err := filepath.Abs(c.DataDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("--data-dir: %w", err))
		}
		c.DataDir = abs
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen: %q is not host:port: %v", c.Listen, err))
	} else if port == "" {
		errs = append(errs, fmt.Errorf("--listen: %q has no port", c.Listen))
	}
	for _, l := range []struct{ flag, addr string }{{"--neutron-listen", c.NeutronListen}, {"--keystone-listen", c.KeystoneListen}} {
		if l.addr == "off" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port or off", l.flag, l.addr))
		}
	}
	if c.PprofListen != "" {
		if _, _, err := net.SplitHostPort(c.PprofListen); err != nil {
			errs = append(errs, fmt.Errorf("--pprof-listen: %q is not host:port: %v", c.PprofListen, err))
		} else if c.PprofListen == c.Listen || c.PprofListen == c.EC2.Listen {
			errs = append(errs, fmt.Errorf("--pprof-listen: %s is an API listener; profiles need a listener of their own", c.PprofListen))
		}
	}
	for _, e := range c.EtcdEndpoints {
		if err := checkURL(e); err != nil {
			errs = append(errs, fmt.Errorf("--etcd-endpoints: %w", err))
		}
	}
	if len(c.EtcdEndpoints) == 0 {
		if err := checkURL(c.EtcdClientURL); err != nil {
			errs = append(errs, fmt.Errorf("--etcd-client-url: %w", err))
		}
		if err := checkURL(c.EtcdPeerURL); err != nil {
			errs = append(errs, fmt.Errorf("--etcd-peer-url: %w", err))
		}
		for _, u := range [][2]string{{"--etcd-client-url", c.EtcdClientURL}, {"--etcd-peer-url", c.EtcdPeerURL}} {
			if !strings.HasPrefix(u[1], "https://") {
				errs = append(errs, fmt.Errorf("%s: %q: the embedded etcd serves TLS only, the URL must be https://", u[0], u[1]))
			}
		}
		if c.EtcdCA != "" || c.EtcdCert != "" || c.EtcdKey != "" {
			errs = append(errs, errors.New("--etcd-ca, --etcd-cert and --etcd-key are for an external cluster (--etcd-endpoints); the embedded etcd uses the data dir's CA"))
		}
		if c.EtcdClientURL == c.EtcdPeerURL {
			errs = append(errs, fmt.Errorf("--etcd-peer-url: must differ from --etcd-client-url (%s)", c.EtcdClientURL))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	pool := c.EC2.PublicPool
	if err := c.EC2.Validate(); err != nil {
		errs = append(errs, err)
		pool = "" // said once: the cloud config is checked on its own
	}
	if _, err := LoadCloudConfig(c.CloudConfig, pool); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return fmt.Errorf("%q: host must be host:port", s)
	}
	return nil
}

// EC2Options are the EC2 endpoint's options, its TLS files defaulting to the
// REST API's.
func (c *Config) EC2Options() ec2.Options {
	o := c.EC2
	if o.TLSCert == "" && o.TLSKey == "" {
		o.TLSCert, o.TLSKey = c.TLSCert, c.TLSKey
	}
	return o
}

// Embedded reports whether the server runs its own etcd.
func (c *Config) Embedded() bool { return len(c.EtcdEndpoints) == 0 }
