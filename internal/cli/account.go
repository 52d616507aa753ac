package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// DefaultEC2URL is where the account commands find the EC2 endpoint.
const DefaultEC2URL = "http://127.0.0.1:8788"

// accountInfo and newAccount mirror the EC2 endpoint's admin answers.
type accountInfo struct {
	AccountID  string   `json:"account_id"`
	Name       string   `json:"name"`
	AccessKeys []string `json:"access_keys"`
}

type newAccount struct {
	AccountID       string `json:"account_id"`
	Name            string `json:"name"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// accountCmd manages tenant accounts through the EC2 endpoint's admin API
// (/canopy/accounts, the admin token): the server holds the key that
// encrypts secrets, so accounts are made there, not by the CLI.
func accountCmd(a *app) *cobra.Command {
	var ec2URL string
	noun := &cobra.Command{Use: "account", Short: "Manage tenant accounts of the EC2 API (access keys, default VPC)"}
	noun.PersistentFlags().StringVar(&ec2URL, "ec2-url", "", "EC2 endpoint URL (env CANOPY_EC2_URL; default "+DefaultEC2URL+")")
	client := func() (*Client, error) {
		switch a.flags.Output {
		case "table", "json":
		default:
			return nil, fmt.Errorf("--output %q: want table or json", a.flags.Output)
		}
		f := a.flags
		f.URL = first(ec2URL, a.getenv("CANOPY_EC2_URL"), DefaultEC2URL)
		return ResolveClient(f, a.getenv)
	}
	run := func(f func(ctx context.Context, c *Client, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			return f(cmd.Context(), c, args)
		}
	}
	noun.AddCommand(&cobra.Command{
		Use: "create NAME", Short: "Create an account with an access key and a default VPC; prints the secret once", Args: cobra.ExactArgs(1),
		RunE: run(func(ctx context.Context, c *Client, args []string) error {
			var na newAccount
			raw, err := c.Send(ctx, http.MethodPost, "/canopy/accounts", map[string]string{"name": args[0]}, &na)
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.out, raw)
			}
			_, err = fmt.Fprintf(a.out, "account_id             %s\nname                   %s\naws_access_key_id      %s\naws_secret_access_key  %s\n(the secret is not shown again)\n",
				na.AccountID, na.Name, na.AccessKeyID, na.SecretAccessKey)
			return err
		}),
	})
	noun.AddCommand(&cobra.Command{
		Use: "list", Short: "List accounts and their access key ids", Args: cobra.NoArgs, Aliases: []string{"ls"},
		RunE: run(func(ctx context.Context, c *Client, _ []string) error {
			var as []accountInfo
			raw, err := c.Get(ctx, "/canopy/accounts", &as)
			if err != nil {
				return err
			}
			rows := make([][]string, len(as))
			for i, x := range as {
				rows[i] = []string{x.AccountID, x.Name, strings.Join(x.AccessKeys, ",")}
			}
			return a.table(raw, []string{"ACCOUNT", "NAME", "ACCESS KEYS"}, rows)
		}),
	})
	noun.AddCommand(&cobra.Command{
		Use: "delete ACCOUNT_ID", Short: "Delete an account, its keys and everything it owns", Args: cobra.ExactArgs(1), Aliases: []string{"rm"},
		RunE: run(func(ctx context.Context, c *Client, args []string) error {
			if _, err := c.Do(ctx, http.MethodDelete, "/canopy/accounts/"+args[0], nil); err != nil {
				return err
			}
			return a.done("Deleted account %s", args[0])
		}),
	})
	return noun
}
