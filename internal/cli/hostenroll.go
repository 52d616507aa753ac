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

// hostEnrollCmd is `canopy host enroll NAME`: run by the operator on the
// server's machine (it uses the data dir's CA and the server's root etcd
// credentials), it writes the directory the host's agent runs with.
func hostEnrollCmd(a *app) *cobra.Command {
	var out, hostID, caFile, certFile, keyFile string
	var endpoints, agentEndpoints []string
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
host again reissues its credentials.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if out == "" {
				out = name + ".enrollment"
			}
			dataDir := first(a.flags.DataDir, a.getenv("CANOPY_DATA_DIR"), server.DefaultDataDir)
			if len(endpoints) == 0 {
				endpoints = []string{first(a.getenv("CANOPY_ETCD_CLIENT_URL"), server.DefaultEtcdClientURL)}
			}
			rootCfg := nsdb.Config{Endpoints: endpoints,
				Credentials: nsdb.Credentials{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}}
			if caFile == "" && certFile == "" && keyFile == "" {
				creds, err := server.RootCredentials(dataDir)
				if err != nil {
					return err
				}
				rootCfg.Credentials = creds
			}
			ca, err := pki.LoadOrCreateCA(server.CADir(dataDir), server.CAName)
			if err != nil {
				return err
			}
			if len(agentEndpoints) == 0 {
				agentEndpoints = endpoints
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			slog.SetDefault(slog.New(slog.DiscardHandler)) // the store client's own logs
			s, err := nsdb.Open(ctx, rootCfg)
			if err != nil {
				return err
			}
			defer s.Close()
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
	f.StringSliceVar(&endpoints, "etcd-endpoints", nil, "etcd client URLs to reach (default $CANOPY_ETCD_CLIENT_URL, else "+server.DefaultEtcdClientURL+")")
	f.StringSliceVar(&agentEndpoints, "agent-etcd-endpoints", nil, "etcd client URLs written for the agent (default --etcd-endpoints)")
	f.StringVar(&caFile, "etcd-ca", "", "external cluster: CA file of its server certificates (default: the data dir's CA)")
	f.StringVar(&certFile, "etcd-cert", "", "external cluster: root client certificate (default: the data dir's)")
	f.StringVar(&keyFile, "etcd-key", "", "external cluster: root client key")
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
	ca, err := pki.LoadOrCreateCA(server.CADir(cfg.DataDir), server.CAName)
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
