package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/server"
	"github.com/spf13/cobra"
)

// rootEtcd are the flags with which an operator command on the server's
// machine reaches etcd as root.
type rootEtcd struct {
	endpoints                 []string
	caFile, certFile, keyFile string
}

func (r *rootEtcd) bind(c *cobra.Command) {
	f := c.Flags()
	f.StringSliceVar(&r.endpoints, "etcd-endpoints", nil, "etcd client URLs to reach (default $CANOPY_ETCD_CLIENT_URL, else "+server.DefaultEtcdClientURL+")")
	f.StringVar(&r.caFile, "etcd-ca", "", "external cluster: CA file of its server certificates (default: the data dir's CA)")
	f.StringVar(&r.certFile, "etcd-cert", "", "external cluster: root client certificate (default: the data dir's)")
	f.StringVar(&r.keyFile, "etcd-key", "", "external cluster: root client key")
}

// open opens the store as root: with the --etcd-* files, else with the
// data dir's root credentials.
func (r *rootEtcd) open(ctx context.Context, a *app, dataDir string) (*nsdb.Store, nsdb.Config, error) {
	if len(r.endpoints) == 0 {
		r.endpoints = []string{first(a.getenv("CANOPY_ETCD_CLIENT_URL"), server.DefaultEtcdClientURL)}
	}
	cfg := nsdb.Config{Endpoints: r.endpoints,
		Credentials: nsdb.Credentials{CAFile: r.caFile, CertFile: r.certFile, KeyFile: r.keyFile}}
	if r.caFile == "" && r.certFile == "" && r.keyFile == "" {
		creds, err := server.RootCredentials(dataDir)
		if err != nil {
			return nil, cfg, err
		}
		cfg.Credentials = creds
	}
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the store client's own logs
	s, err := nsdb.Open(ctx, cfg)
	return s, cfg, err
}

func (a *app) serverDataDir() string {
	return first(a.flags.DataDir, a.getenv("CANOPY_DATA_DIR"), server.DefaultDataDir)
}

// hostEnrollCmd is `canopy host enroll NAME`: run by the operator on the
// server's machine (it uses the data dir's CA and the server's root etcd
// credentials), it writes the directory the host's agent runs with.
func hostEnrollCmd(a *app) *cobra.Command {
	var out, hostID string
	var agentEndpoints []string
	var root rootEtcd
	c := &cobra.Command{
		Use:   "enroll NAME",
		Short: "Register a host and write its agent's credentials (etcd certificate limited to its own keys)",
		Long: `Register host NAME (or find it again) and write, into --out, what its agent needs:
enrollment.json (host id and name, etcd endpoints, etcd user), ca.crt (the CA of etcd's
certificates) and agent.crt/agent.key (a client certificate signed by the data dir's CA whose
etcd user may read the topology and write only this host's own state: not another host's,
not a topology or VPC object). Copy the directory to the host and run
  canopy agent --enrollment DIR --tunnel-ip ...
Run it on the server's machine: it reaches etcd as root with the data dir's credentials
(--data-dir), or with --etcd-ca/--etcd-cert/--etcd-key for an external cluster. Enrolling a
host again reissues its credentials; canopy host unenroll revokes them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if out == "" {
				out = name + ".enrollment"
			}
			dataDir := a.serverDataDir()
			ca, err := pki.LoadOrCreateCA(server.EtcdCADir(dataDir), server.EtcdCAName)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			s, rootCfg, err := root.open(ctx, a, dataDir)
			if err != nil {
				return err
			}
			defer s.Close()
			if len(agentEndpoints) == 0 {
				agentEndpoints = rootCfg.Endpoints
			}
			e, err := enrollHost(ctx, s, enrollRequest{Name: name, HostID: hostID, CA: ca, CAFile: rootCfg.CAFile,
				Endpoints: agentEndpoints, Dir: out})
			if err != nil {
				return err
			}
			return a.done("Enrolled host %s (%s) as etcd user %s: copy %s to the host and run canopy agent --enrollment %s",
				e.HostName, e.HostID, e.EtcdUser, out, filepath.Base(out))
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "", "directory to write the enrollment into (default NAME.enrollment)")
	f.StringVar(&hostID, "host-id", "", "the host's id, to keep one an agent already has (default: the existing host's, else a new one)")
	f.StringSliceVar(&agentEndpoints, "agent-etcd-endpoints", nil, "etcd client URLs written for the agent (default --etcd-endpoints)")
	root.bind(c)
	return c
}

// hostUnenrollCmd is `canopy host unenroll HOST`: the host's etcd user and
// role are deleted, so its agent's certificate opens nothing any more (the
// Host object stays: canopy host delete removes it).
func hostUnenrollCmd(a *app) *cobra.Command {
	var root rootEtcd
	c := &cobra.Command{
		Use:   "unenroll HOST",
		Short: "Revoke a host's etcd credentials (its agent's certificate opens nothing any more)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			s, _, err := root.open(ctx, a, a.serverDataDir())
			if err != nil {
				return err
			}
			defer s.Close()
			id, err := hostByRef(ctx, s, args[0])
			if err != nil {
				return err
			}
			if err := s.RevokeHost(ctx, id); err != nil {
				return err
			}
			return a.done("Revoked the etcd credentials of host %s (user %s)", id, nsdb.HostUser(id))
		},
	}
	root.bind(c)
	return c
}

// upEnroll enrolls canopy up's own agent (keeping the host id its state dir
// has) and points acfg at the enrollment. Against an external etcd without
// TLS there is nothing to enroll: the agent connects as the server does.
func upEnroll(ctx context.Context, cfg *server.Config, rootCfg nsdb.Config, acfg *agent.Config) error {
	if rootCfg.CAFile == "" {
		acfg.Endpoints = rootCfg.Endpoints
		return nil
	}
	id, err := agent.HostID(acfg.StateDir)
	if err != nil {
		return err
	}
	name, err := os.Hostname()
	if err != nil {
		return err
	}
	ca, err := pki.LoadOrCreateCA(server.EtcdCADir(cfg.DataDir), server.EtcdCAName)
	if err != nil {
		return err
	}
	s, err := nsdb.Open(ctx, rootCfg)
	if err != nil {
		return err
	}
	defer s.Close()
	dir := filepath.Join(acfg.StateDir, "enrollment")
	if _, err := enrollHost(ctx, s, enrollRequest{Name: name, HostID: id, CA: ca, CAFile: rootCfg.CAFile,
		Endpoints: rootCfg.Endpoints, Dir: dir}); err != nil {
		return err
	}
	e, creds, err := readEnrollment(dir)
	if err != nil {
		return err
	}
	if e.HostID != id {
		return errors.New("enrollment: host id changed")
	}
	acfg.Endpoints, acfg.Etcd, acfg.HostName = e.EtcdEndpoints, creds, e.HostName
	return nil
}
