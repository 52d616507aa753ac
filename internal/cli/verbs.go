package cli

import (
	"context"
	"net/http"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

// The verbs below are the ones several nouns share with the same shape;
// a.crud (root.go) adds list/show/delete of a top-level collection.

// create adds `create NAME` to noun: POST /coll with what build makes of
// NAME. It returns the verb so the caller can give it flags (build reads
// them when the verb runs).
func (a *app) create(noun *cobra.Command, coll, short string, build func(name string) (any, error)) *cobra.Command {
	create := &cobra.Command{
		Use: "create NAME", Short: short, Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			obj, err := build(args[0])
			if err != nil {
				return err
			}
			raw, err := c.Send(ctx, http.MethodPost, "/"+coll, obj, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	noun.AddCommand(create)
	return create
}

// deviceVerbs adds `create NAME` and `update DEVICE` of a device collection
// (routers, bridges) to noun, both taking the deviceFlags; fields points at
// the settings of a device those flags set.
func deviceVerbs[T any](a *app, noun *cobra.Command, coll string, fields func(*T) (m *topology.Meta, adminDown *bool, in, out *string)) {
	what := singular(coll)
	var df deviceFlags
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a " + what, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.c()
			if err != nil {
				return err
			}
			var d T
			m, adminDown, in, out := fields(&d)
			m.Name = args[0]
			if err := df.apply(cmd.Context(), cmd, c, m, adminDown, in, out); err != nil {
				return err
			}
			raw, err := c.Send(cmd.Context(), http.MethodPost, "/"+coll, &d, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		},
	}
	df.bind(create, false)
	var uf deviceFlags
	upd := &cobra.Command{
		Use: "update " + strings.ToUpper(what), Short: "Change a " + what + "'s name, filters or admin state", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.c()
			if err != nil {
				return err
			}
			if cmd.Flags().NFlag() == 0 {
				return errNoChange
			}
			id, err := c.resolve(cmd.Context(), coll, args[0])
			if err != nil {
				return err
			}
			return update(a, cmd.Context(), c, "/"+coll+"/"+id, func(d *T) error {
				m, adminDown, in, out := fields(d)
				return uf.apply(cmd.Context(), cmd, c, m, adminDown, in, out)
			})
		},
	}
	uf.bind(upd, true)
	noun.AddCommand(create, upd)
}

// members describes the member verbs of an object of a top-level
// collection: `add PARENT MEMBER [EXTRA]` POSTs to /coll/{id}/sub and
// `delete PARENT MEMBER` DELETEs /coll/{id}/sub/{key}.
type members struct {
	coll, sub             string // the path /coll/{id}/sub
	parent, member, extra string // argument names in Use; extra is add's third argument, "" for none
	addShort, delShort    string
	// key turns the MEMBER argument into the key the API names it by.
	key func(c *Client, ctx context.Context, ref string) (string, error)
	// body is what add POSTs, from the key and the EXTRA argument.
	body func(key, extra string) map[string]string
	// added and removed say what changed when the API answers nothing.
	added   func(key, id, extra string) string
	removed func(key, id string) string
}

// memberVerbs returns the add and delete verbs m describes.
func (a *app) memberVerbs(m members) (add, del *cobra.Command) {
	// resolve finds the parent first, then the member, so a wrong parent
	// is the error reported when both are wrong.
	resolve := func(ctx context.Context, c *Client, args []string) (id, key string, err error) {
		if id, err = c.resolve(ctx, m.coll, args[0]); err != nil {
			return "", "", err
		}
		if key, err = m.key(c, ctx, args[1]); err != nil {
			return "", "", err
		}
		return id, key, nil
	}
	use, nargs := "add "+m.parent+" "+m.member, 2
	if m.extra != "" {
		use, nargs = use+" "+m.extra, 3
	}
	add = &cobra.Command{
		Use: use, Short: m.addShort, Args: cobra.ExactArgs(nargs),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, key, err := resolve(ctx, c, args)
			if err != nil {
				return err
			}
			extra := ""
			if m.extra != "" {
				extra = args[2]
			}
			raw, err := c.Send(ctx, http.MethodPost, "/"+m.coll+"/"+id+"/"+m.sub, m.body(key, extra), nil)
			if err != nil {
				return err
			}
			if raw != nil {
				return a.show(raw)
			}
			return a.done("%s", m.added(key, id, extra))
		}),
	}
	del = &cobra.Command{
		Use: "delete " + m.parent + " " + m.member, Short: m.delShort, Args: cobra.ExactArgs(2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, key, err := resolve(ctx, c, args)
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/"+m.coll+"/"+id+"/"+m.sub+"/"+key, nil); err != nil {
				return err
			}
			return a.done("%s", m.removed(key, id))
		}),
	}
	return add, del
}

// resolveHost is a members key for a host argument.
func resolveHost(c *Client, ctx context.Context, ref string) (string, error) {
	return c.resolve(ctx, "hosts", ref)
}
