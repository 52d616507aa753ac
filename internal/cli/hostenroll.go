package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/canopy-sdn/canopy/internal/role"
	"github.com/spf13/cobra"
)

// rootEtcd are the flags with which an operator command on the server's
// machine reaches etcd as root.
type rootEtcd struct{ role.RootEtcd }

func (r *rootEtcd) bind(c *cobra.Command) {
	f := c.Flags()
	f.StringSliceVar(&r.Endpoints, "etcd-endpoints", nil, "etcd client URLs to reach (default $CANOPY_ETCD_CLIENT_URL, else "+role.DefaultEtcdClientURL+")")
	f.StringVar(&r.CAFile, "etcd-ca", "", "external cluster: CA file of its server certificates (default: the data dir's CA)")
	f.StringVar(&r.CertFile, "etcd-cert", "", "external cluster: root client certificate (default: the data dir's)")
	f.StringVar(&r.KeyFile, "etcd-key", "", "external cluster: root client key")
}

// resolve fills in the default endpoints.
func (r *rootEtcd) resolve(a *app) role.RootEtcd {
	if len(r.Endpoints) == 0 {
		r.Endpoints = []string{first(a.getenv("CANOPY_ETCD_CLIENT_URL"), role.DefaultEtcdClientURL)}
	}
	return r.RootEtcd
}

// storeLog is the log of an operator's command: the store's warnings, and
// nothing chattier, on stderr.
func (a *app) storeLog(cmd *cobra.Command) *slog.Logger {
	return role.NewLogger(cmd.ErrOrStderr(), "warn")
}

func (a *app) serverDataDir() string {
	return first(a.flags.DataDir, a.getenv("CANOPY_DATA_DIR"), role.DefaultDataDir)
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
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			e, err := role.EnrollHost(ctx, root.resolve(a), a.serverDataDir(),
				role.HostEnrollment{Name: name, HostID: hostID, Dir: out, AgentEndpoints: agentEndpoints}, a.storeLog(cmd))
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
			id, user, err := role.UnenrollHost(ctx, root.resolve(a), a.serverDataDir(), args[0], a.storeLog(cmd))
			if err != nil {
				return err
			}
			return a.done("Revoked the etcd credentials of host %s (user %s)", id, user)
		},
	}
	root.bind(c)
	return c
}
