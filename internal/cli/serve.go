package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/canopy-sdn/canopy/internal/role"
	"github.com/spf13/cobra"
)

// signalContext is ctx, cancelled on SIGINT or SIGTERM: a role stops
// gracefully on either.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func serverCmd(stderr io.Writer) *cobra.Command {
	cfg := role.DefaultServerConfig()
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.LoadEnv(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			return role.RunServer(ctx, cfg, role.NewLogger(stderr, cfg.LogLevel))
		},
	}
	cfg.BindFlags(c.Flags())
	return c
}

func upCmd(stdout, stderr io.Writer) *cobra.Command {
	cfg := role.DefaultUpConfig()
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
namespaces of running instances. The log (--log-level, default warn) goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Server.LoadEnv(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.Server.Validate(); err != nil {
				return err
			}
			if !cfg.Server.EC2.Enabled() {
				return errors.New("canopy up needs the EC2 endpoint (--ec2-listen)")
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			cfg.Logger = role.NewLogger(stderr, cfg.Server.LogLevel)
			cfg.Ready = func(info role.UpInfo) { printUp(stdout, info) }
			return role.Up(ctx, cfg)
		},
	}
	cfg.BindFlags(c.Flags())
	return c
}

// printUp prints canopy up's banner: where the endpoints are and how to
// use them.
func printUp(stdout io.Writer, info role.UpInfo) {
	outsideLine := "  outside       none (--cloud-config names the edge's gateways, or --outside=false)\n"
	if o := info.Outside; o != nil {
		outsideLine = fmt.Sprintf("  outside       this host: the public pool %v is routed to the edge (%s on %s), instances' traffic leaves masqueraded behind this host\n",
			o.Pools, o.Edge, role.UpHostLink)
	}
	env := fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s", info.AccessKeyID, info.SecretKey, info.Region)
	trust := ""
	if info.CAFile != "" {
		env += " AWS_CA_BUNDLE=" + info.CAFile
		trust = fmt.Sprintf("  CA            %s   (trusted by the canopy CLI on this data dir; AWS_CA_BUNDLE for the AWS CLI)\n", info.CAFile)
	}
	fmt.Fprintf(stdout, `Canopy is up: server, agent (instance driver %s) and account %q (%s).
  EC2 endpoint  %s   (region %s)
  REST API      %s   (admin token in %s)
%s%s  data          %s   (canopy down stops this; canopy down --purge also deletes the data)

Use it with the AWS CLI:
  . %s     # or:
  export %s
  aws --endpoint-url %s ec2 describe-vpcs
  aws --endpoint-url %s ec2 run-instances --image-id %s --instance-type t3.micro --subnet-id %s
An instance is a network namespace on this machine: ip netns exec ci-<last 13 hex digits of its id> ...
Stop with Ctrl-C.
`, info.Driver, info.Account, info.AccountID, info.EC2URL, info.Region, info.APIURL, info.TokenFile, trust, outsideLine, info.DataDir,
		info.CredentialsFile, env, info.EC2URL, info.EC2URL, info.ImageID, info.SubnetID)
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
			pid, err := role.RunningUp(dataDir)
			if err != nil {
				return err
			}
			if pid != 0 {
				fmt.Fprintf(stdout, "Stopping canopy up (pid %d)\n", pid)
				if err := role.StopUp(dataDir, pid, 60*time.Second); err != nil {
					return err
				}
			}
			// What a killed canopy up left behind.
			gone, err := role.PurgeUpInstances(dataDir)
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
	c.Flags().StringVar(&dataDir, "data-dir", role.DefaultDataDir, "data dir of the canopy up to stop (env CANOPY_DATA_DIR)")
	c.Flags().BoolVar(&purge, "purge", false, "also delete the data dir (etcd, tokens, credentials)")
	return c
}
