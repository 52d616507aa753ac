package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
)

// accountInfo and newAccount mirror the answers of the REST API's /accounts.
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

// accountCmd manages tenant accounts through the REST API's /accounts (the
// operator's listener and token): the server's EC2 endpoint holds the key
// that seals secrets, so accounts are made there, never by the CLI, and the
// tenant-facing EC2 listener accepts no admin token.
func accountCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "account", Short: "Manage tenant accounts of the EC2 API (access keys, default VPC)"}
	var openrc, clouds string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create an account with an access key and a default VPC; prints the secret once", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			var na newAccount
			raw, err := c.Send(ctx, http.MethodPost, "/accounts", map[string]string{"name": args[0]}, &na)
			if err != nil {
				return err
			}
			if openrc != "" && clouds != "" {
				return fmt.Errorf("--openrc and --clouds-yaml: one or the other")
			}
			if openrc != "" {
				return printOpenrc(a, openrc, na)
			}
			if clouds != "" {
				return printCloudsYAML(a, clouds, na)
			}
			if a.json() {
				return printJSON(a.out, raw)
			}
			_, err = fmt.Fprintf(a.out, "account_id             %s\nname                   %s\naws_access_key_id      %s\naws_secret_access_key  %s\n(the secret is not shown again)\n",
				na.AccountID, na.Name, na.AccessKeyID, na.SecretAccessKey)
			return err
		}),
	}
	create.Flags().StringVar(&openrc, "openrc", "", "print the account's OpenStack credentials as an openrc file for this Keystone URL (http://127.0.0.1:5000/v3, say) instead")
	create.Flags().StringVar(&clouds, "clouds-yaml", "", "print the account's OpenStack credentials as a clouds.yaml (cloud named after the account) for this Keystone URL instead")
	noun.AddCommand(create)
	noun.AddCommand(&cobra.Command{
		Use: "list", Short: "List accounts and their access key ids", Args: cobra.NoArgs, Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, _ []string) error {
			var as []accountInfo
			raw, err := c.Get(ctx, "/accounts", &as)
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
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			if _, err := c.Do(ctx, http.MethodDelete, "/accounts/"+args[0], nil); err != nil {
				return err
			}
			return a.done("Deleted account %s", args[0])
		}),
	})
	return noun
}

// printCloudsYAML prints the credentials of printOpenrc as a clouds.yaml
// whose one cloud is named after the account (`openstack --os-cloud NAME`).
// Values are JSON strings, which YAML reads as they are.
func printCloudsYAML(a *app, authURL string, na newAccount) error {
	q := func(v string) string { b, _ := json.Marshal(v); return string(b) }
	_, err := fmt.Fprintf(a.out, `# OpenStack credentials of Canopy account %s (%s); the password is shown only now
clouds:
  %s:
    auth:
      auth_url: %s
      username: %s
      password: %s
      project_name: %s
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
`, na.Name, na.AccountID, q(na.Name), q(authURL), q(na.AccessKeyID), q(na.SecretAccessKey), q(na.Name))
	return err
}

// printOpenrc prints an account's OpenStack credentials (internal/keystone:
// the project is the account, the user its access key, the password the
// key's secret) as a file to source.
func printOpenrc(a *app, authURL string, na newAccount) error {
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
	_, err := fmt.Fprintf(a.out, `# OpenStack credentials of Canopy account %s (%s); the password is shown only now
export OS_AUTH_URL=%s
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=%s
export OS_PASSWORD=%s
export OS_PROJECT_NAME=%s
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
`, na.Name, na.AccountID, q(authURL), q(na.AccessKeyID), q(na.SecretAccessKey), q(na.Name))
	return err
}
