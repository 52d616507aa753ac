package server

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestConfigFlagsEnvAndValidate(t *testing.T) {
	env := map[string]string{
		"CANOPY_LISTEN":         "127.0.0.1:9999",
		"CANOPY_DATA_DIR":       "/srv/canopy",
		"CANOPY_ETCD_ENDPOINTS": "http://10.0.0.1:2379, http://10.0.0.2:2379",
	}
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:8000"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8000" {
		t.Errorf("the flag must win over CANOPY_LISTEN: %q", cfg.Listen)
	}
	if cfg.DataDir != "/srv/canopy" {
		t.Errorf("CANOPY_DATA_DIR not applied: %q", cfg.DataDir)
	}
	if len(cfg.EtcdEndpoints) != 2 || cfg.EtcdEndpoints[1] != "http://10.0.0.2:2379" || cfg.Embedded() {
		t.Errorf("CANOPY_ETCD_ENDPOINTS: %q", cfg.EtcdEndpoints)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "--data-dir"},
		{"listen without port", func(c *Config) { c.Listen = "127.0.0.1" }, "--listen"},
		{"bad endpoint", func(c *Config) { c.EtcdEndpoints = []string{"10.0.0.1:2379"} }, "--etcd-endpoints"},
		{"bad client url", func(c *Config) { c.EtcdClientURL = "unix:///x" }, "--etcd-client-url"},
		{"same urls", func(c *Config) { c.EtcdPeerURL = c.EtcdClientURL }, "--etcd-peer-url"},
		{"external ignores embedded urls", func(c *Config) {
			c.EtcdEndpoints = []string{"http://10.0.0.1:2379"}
			c.EtcdPeerURL = c.EtcdClientURL
		}, ""},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "--log-level"},
		{"tls cert without key", func(c *Config) { c.TLSCert = "/x.crt" }, "--tls-cert and --tls-key"},
		{"ec2 tls key without cert", func(c *Config) { c.EC2.TLSKey = "/x.key" }, "--ec2-tls-cert and --ec2-tls-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestEC2OptionsTLS: the EC2 endpoint serves the REST API's certificate
// unless it is given its own.
func TestEC2OptionsTLS(t *testing.T) {
	c := DefaultConfig()
	c.TLSCert, c.TLSKey = "/api.crt", "/api.key"
	if o := c.EC2Options(); o.TLSCert != "/api.crt" || o.TLSKey != "/api.key" {
		t.Errorf("EC2 TLS without its own files: %q %q", o.TLSCert, o.TLSKey)
	}
	c.EC2.TLSCert, c.EC2.TLSKey = "/ec2.crt", "/ec2.key"
	if o := c.EC2Options(); o.TLSCert != "/ec2.crt" || o.TLSKey != "/ec2.key" {
		t.Errorf("EC2 TLS with its own files: %q %q", o.TLSCert, o.TLSKey)
	}
	env := map[string]string{"CANOPY_TLS_CERT": "/e.crt", "CANOPY_TLS_KEY": "/e.key"}
	c = DefaultConfig()
	if err := c.ApplyEnv(nil, func(k string) string { return env[k] }); err != nil || c.TLSCert != "/e.crt" || c.TLSKey != "/e.key" {
		t.Errorf("CANOPY_TLS_*: %q %q %v", c.TLSCert, c.TLSKey, err)
	}
}
