package cli

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/canopy-sdn/canopy/internal/server"
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
		Short: "Run the network state database and the REST topology API",
		Long: `Run the server role: the network state database on etcd (embedded, in <data-dir>/etcd,
unless --etcd-endpoints names an external cluster) and the REST topology API on --listen.
On first start it writes an admin token to <data-dir>/admin-token (mode 0600).
Every flag can also be set by its CANOPY_* environment variable; the flag wins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd, &cfg, nil) },
	}
	cfg.BindFlags(c.Flags())
	return c
}

func upCmd(stdout io.Writer) *cobra.Command {
	cfg := server.DefaultConfig()
	c := &cobra.Command{
		Use:   "up",
		Short: "Start Canopy on this machine with every default (today: the server role)",
		Long: `Start Canopy on this machine for a first try. Today this is the server role with an
embedded etcd and every default; later it also runs an agent and a demo VPC.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, &cfg, func(addr, tokenFile string) {
				fmt.Fprintf(stdout, `Canopy is up.
  REST API     http://%s   (see docs/rest-api.md)
  admin token  %s   (the CLI reads it from there as root;
               elsewhere: export CANOPY_TOKEN=$(sudo cat %s))
  try          canopy router create edge && canopy router list
Stop with Ctrl-C.
`, addr, tokenFile, tokenFile)
			})
		},
	}
	cfg.BindFlags(c.Flags())
	return c
}
