package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"
)

// app is the state shared by the client commands of one invocation.
type app struct {
	flags  ClientFlags
	out    io.Writer
	getenv func(string) string
	client *Client
}

// Main runs the canopy command line with args (without the program name)
// and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "Error:", err)
		return 1
	}
	return 0
}

// NewRoot builds the canopy command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	a := &app{out: stdout, getenv: os.Getenv}
	root := &cobra.Command{
		Use:   "canopy",
		Short: "Canopy: an AWS-VPC-compatible software-defined network",
		Long: `Canopy is an AWS-VPC-compatible SDN. One binary plays every role:
  canopy server            the network state database (etcd), the REST topology API, the EC2
                           API and the VPC controller
  canopy agent             the per-host agent: ports on TAPs, flows, tunnels, DHCP, metadata
  canopy up / down         everything on this machine with a demo account, for a first try
  canopy <noun> <verb>     the operator CLI over the REST API (routers, bridges, ports, ...)
  canopy trace             why can (or can't) A reach B`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Before any command runs: text that is not UTF-8 would reach the
		// server altered (JSON encoding replaces the bad bytes).
		PersistentPreRunE: checkText,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serverCmd(stderr), upCmd(stdout, stderr), downCmd(stdout), agentCmd(stdout, stderr))
	for _, c := range []*cobra.Command{
		routerCmd(a), routeCmd(a, "route"), bridgeCmd(a), portCmd(a), chainCmd(a),
		ipGroupCmd(a), portGroupCmd(a), hostCmd(a), tunnelZoneCmd(a), bindingCmd(a), accountCmd(a), traceCmd(a),
		gatewayCmd(a),
	} {
		a.addClientFlags(c)
		root.AddCommand(c)
	}
	return root
}

// addClientFlags puts the connection and output flags on a client noun (not
// on the root: `canopy server` has its own --data-dir).
func (a *app) addClientFlags(c *cobra.Command) {
	pf := c.PersistentFlags()
	pf.StringVar(&a.flags.URL, "url", "", "API URL (env CANOPY_URL; default "+DefaultURL+", or "+DefaultTLSURL+" when <data-dir>/pki/ca.crt exists)")
	pf.StringVar(&a.flags.CAFile, "ca-file", "", "PEM CA certificate(s) to trust for an https API URL (env CANOPY_CA_FILE; default: config file, then <data-dir>/pki/ca.crt if it exists)")
	pf.StringVar(&a.flags.Token, "token", "", "API token (env CANOPY_TOKEN; default: config file, then <data-dir>/admin-token)")
	pf.StringVar(&a.flags.DataDir, "data-dir", "", "server data dir holding admin-token and pki/ca.crt (env CANOPY_DATA_DIR; default "+DefaultDataDir+")")
	pf.StringVarP(&a.flags.Output, "output", "o", "table", "output format: table or json")
}

// c returns the API client, resolving its settings on first use.
func (a *app) c() (*Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	switch a.flags.Output {
	case "table", "json":
	default:
		return nil, fmt.Errorf("--output %q: want table or json", a.flags.Output)
	}
	c, err := ResolveClient(a.flags, a.getenv)
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

func (a *app) json() bool { return a.flags.Output == "json" }

// show prints one object: JSON or field/value lines.
func (a *app) show(raw json.RawMessage) error {
	if a.json() {
		return printJSON(a.out, raw)
	}
	return printObject(a.out, raw)
}

// table prints a list: the API's JSON, or a table.
func (a *app) table(raw json.RawMessage, header []string, rows [][]string) error {
	if a.json() {
		return printJSON(a.out, raw)
	}
	return printTable(a.out, header, rows)
}

// done reports a change that answers nothing (delete, unlink).
func (a *app) done(format string, args ...any) error {
	if a.json() {
		return nil
	}
	_, err := fmt.Fprintf(a.out, format+"\n", args...)
	return err
}

// run wraps a command body that needs the client.
func (a *app) run(f func(ctx context.Context, c *Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.c()
		if err != nil {
			return err
		}
		return f(cmd.Context(), c, args)
	}
}

// listAs fetches a list, decodes it into []T and prints it with row.
func listAs[T any](a *app, ctx context.Context, c *Client, path string, header []string, row func(*T) []string) error {
	var items []T
	raw, err := c.Get(ctx, path, &items)
	if err != nil {
		return err
	}
	rows := make([][]string, len(items))
	for i := range items {
		rows[i] = row(&items[i])
	}
	return a.table(raw, header, rows)
}

// crud adds the list/show/delete verbs of a top-level collection to noun.
func (a *app) crud(noun *cobra.Command, coll string, header []string, row func(json.RawMessage) ([]string, error)) {
	what := singular(coll)
	noun.AddCommand(&cobra.Command{
		Use: "list", Short: "List " + coll, Args: cobra.NoArgs, Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, _ []string) error {
			var items []json.RawMessage
			raw, err := c.Get(ctx, "/"+coll, &items)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(items))
			for _, it := range items {
				r, err := row(it)
				if err != nil {
					return err
				}
				rows = append(rows, r)
			}
			return a.table(raw, header, rows)
		}),
	})
	noun.AddCommand(&cobra.Command{
		Use: "show NAME|ID", Short: "Show a " + what, Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolve(ctx, coll, args[0])
			if err != nil {
				return err
			}
			raw, err := c.Get(ctx, "/"+coll+"/"+id, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	})
	noun.AddCommand(&cobra.Command{
		Use: "delete NAME|ID", Short: "Delete a " + what, Args: cobra.ExactArgs(1), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolve(ctx, coll, args[0])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/"+coll+"/"+id, nil); err != nil {
				return err
			}
			return a.done("Deleted %s %s", what, id)
		}),
	})
}

// rowOf adapts a typed row function to raw JSON.
func rowOf[T any](f func(*T) []string) func(json.RawMessage) ([]string, error) {
	return func(raw json.RawMessage) ([]string, error) {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("decoding answer: %w", err)
		}
		return f(&v), nil
	}
}

// update fetches an object, lets mod change it and PUTs it back with its
// revision, so a concurrent change is refused (409) rather than overwritten.
func update[T any](a *app, ctx context.Context, c *Client, path string, mod func(*T) error) error {
	var v T
	if _, err := c.Get(ctx, path, &v); err != nil {
		return err
	}
	if err := mod(&v); err != nil {
		return err
	}
	raw, err := c.Send(ctx, http.MethodPut, path, &v, nil)
	if err != nil {
		return err
	}
	return a.show(raw)
}

var errNoChange = errors.New("nothing to change: give at least one flag")
