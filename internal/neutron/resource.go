package neutron

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// obj is a resource as the API shows it.
type obj = map[string]any

// resource is one collection of the API.
type resource struct {
	collection, member string
	// bulk: POST takes a list ({"<collection>": [...]}) too.
	bulk bool
	// path is the collection's URL segment when it differs from its JSON
	// key ("security-groups" for "security_groups").
	path string
	// notFound is the answer for an id the caller cannot see.
	notFound func(id string) *Error
	// list renders every object the caller may see.
	list func(c *call) ([]obj, error)
	// get (nil: list and pick) renders one object the caller may see,
	// nil when there is none.
	get    func(c *call, id string) (obj, error)
	create func(c *call, a attrs) (string, error)
	update func(c *call, id string, a attrs) error
	del    func(c *call, id string) error
}

func (s *Server) resources() []*resource {
	return []*resource{s.networks(), s.subnets(), s.ports(), s.securityGroups(), s.securityGroupRules(), s.routers(), s.floatingIPs(), s.subnetPools()}
}

func (s *Server) route(res *resource) {
	coll := "/v2.0/" + cmp.Or(res.path, res.collection)
	s.mux.HandleFunc("GET "+coll, s.authed(func(c *call, w http.ResponseWriter) { s.list(c, w, res) }))
	s.mux.HandleFunc("POST "+coll, s.authed(func(c *call, w http.ResponseWriter) {
		bulk := ""
		if res.bulk {
			bulk = res.collection
		}
		a, many, err := readBodies(c.r, res.member, bulk)
		if err != nil {
			writeError(w, toError(err))
			return
		}
		if many != nil {
			s.createBulk(c, w, res, many)
			return
		}
		id, err := res.create(c, a)
		if err != nil {
			writeError(w, toError(err))
			return
		}
		s.log.Debug("neutron: created", "kind", res.member, "id", id, "project", c.project())
		s.show(c, w, res, id, http.StatusCreated)
	}))
	s.mux.HandleFunc("GET "+coll+"/{id}", s.authed(func(c *call, w http.ResponseWriter) {
		s.show(c, w, res, c.r.PathValue("id"), http.StatusOK)
	}))
	s.mux.HandleFunc("PUT "+coll+"/{id}", s.authed(func(c *call, w http.ResponseWriter) {
		a, err := readBody(c.r, res.member)
		if err == nil {
			err = res.update(c, c.r.PathValue("id"), a)
		}
		if err != nil {
			writeError(w, toError(err))
			return
		}
		s.show(c, w, res, c.r.PathValue("id"), http.StatusOK)
	}))
	s.mux.HandleFunc("DELETE "+coll+"/{id}", s.authed(func(c *call, w http.ResponseWriter) {
		if err := res.del(c, c.r.PathValue("id")); err != nil {
			writeError(w, toError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
}

// createBulk creates every object of a bulk request in one store
// transaction: all of them, or (the first refusal answered) none.
func (s *Server) createBulk(c *call, w http.ResponseWriter, res *resource, many []attrs) {
	var ids []string
	err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		ids = ids[:0]
		in := *c
		in.tx = tx
		for _, a := range many {
			id, err := res.create(&in, a)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		writeError(w, toError(err))
		return
	}
	s.log.Debug("neutron: created in bulk", "kind", res.member, "ids", ids, "project", c.project())
	objs, err := res.list(c)
	if err != nil {
		writeError(w, toError(err))
		return
	}
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		i := slices.IndexFunc(objs, func(o obj) bool { return o["id"] == id })
		if i < 0 {
			writeError(w, res.notFound(id))
			return
		}
		out = append(out, project(objs[i], c.r.URL.Query()["fields"]))
	}
	writeJSON(w, http.StatusCreated, map[string]any{res.collection: out})
}

// find returns the object id among those the caller sees.
func (res *resource) find(c *call, id string) (obj, error) {
	if res.get != nil {
		o, err := res.get(c, id)
		if err == nil && o == nil {
			err = res.notFound(id)
		}
		return o, err
	}
	objs, err := res.list(c)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if o["id"] == id {
			return o, nil
		}
	}
	return nil, res.notFound(id)
}

func (s *Server) show(c *call, w http.ResponseWriter, res *resource, id string, status int) {
	o, err := res.find(c, id)
	if err != nil {
		writeError(w, toError(err))
		return
	}
	writeJSON(w, status, map[string]any{res.member: project(o, c.r.URL.Query()["fields"])})
}

// reserved are the query parameters that are not filters.
var reserved = []string{"fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir"}

// list answers a collection GET: filters, sorting, limit/marker pagination
// with *_links, fields.
func (s *Server) list(c *call, w http.ResponseWriter, res *resource) {
	q := c.r.URL.Query()
	objs, err := res.list(c)
	if err != nil {
		writeError(w, toError(err))
		return
	}
	for k, vals := range q {
		if slices.Contains(reserved, k) {
			continue
		}
		kept, known := tagFilter(objs, k, vals)
		if !known {
			kept, known = filter(objs, k, vals)
		}
		if !known {
			writeError(w, badRequest("%s is invalid attribute for filtering", k))
			return
		}
		objs = kept
	}
	keys := q["sort_key"]
	dirs := q["sort_dir"]
	for i, d := range dirs {
		if d != "asc" && d != "desc" {
			writeError(w, badRequest("Invalid input for sort_dir. Reason: %q is not a valid sort direction (asc or desc).", d))
			return
		}
		if i >= len(keys) {
			writeError(w, badRequest("The number of sort_keys and sort_dirs must be same"))
			return
		}
	}
	for _, k := range keys {
		if len(objs) > 0 {
			if _, ok := objs[0][k]; !ok {
				writeError(w, badRequest("%s is invalid attribute for sort_keys", k))
				return
			}
		}
	}
	slices.SortStableFunc(objs, func(a, b obj) int {
		for i, k := range keys {
			c := cmp.Compare(fmt.Sprint(a[k]), fmt.Sprint(b[k]))
			if i < len(dirs) && dirs[i] == "desc" {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return cmp.Compare(a["id"].(string), b["id"].(string))
	})
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, badRequest("Limit must be an integer 0 or greater and not '%s'", v))
			return
		}
		limit = n
	}
	reverse := strings.EqualFold(q.Get("page_reverse"), "true")
	if reverse {
		slices.Reverse(objs)
	}
	marker := q.Get("marker")
	if marker != "" {
		i := slices.IndexFunc(objs, func(o obj) bool { return o["id"] == marker })
		if i < 0 {
			writeError(w, res.notFound(marker))
			return
		}
		objs = objs[i+1:]
	}
	more := limit > 0 && len(objs) > limit
	if more {
		objs = objs[:limit]
	}
	if reverse {
		slices.Reverse(objs)
	}
	out := make([]any, 0, len(objs))
	for _, o := range objs {
		out = append(out, project(o, q["fields"]))
	}
	doc := map[string]any{res.collection: out}
	if limit > 0 && len(objs) > 0 {
		var links []any
		link := func(rel, marker string, rev bool) {
			v := url.Values{}
			for k, vs := range q {
				if k != "marker" && k != "page_reverse" {
					v[k] = vs
				}
			}
			v.Set("marker", marker)
			if rev {
				v.Set("page_reverse", "True")
			}
			links = append(links, map[string]string{"rel": rel, "href": base(c.r) + c.r.URL.Path + "?" + v.Encode()})
		}
		first, last := objs[0]["id"].(string), objs[len(objs)-1]["id"].(string)
		if (!reverse && more) || (reverse && marker != "") {
			link("next", last, false)
		}
		if (reverse && more) || (!reverse && marker != "") {
			link("previous", first, true)
		}
		if links != nil {
			doc[res.collection+"_links"] = links
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// filter keeps the objects whose attribute k matches one of vals; known is
// false when the objects have no such attribute (with no objects, any
// attribute is taken as known).
func filter(objs []obj, k string, vals []string) ([]obj, bool) {
	known := false
	out := objs[:0:0]
	for _, o := range objs {
		v, ok := o[k]
		if !ok {
			continue
		}
		known = true
		if slices.ContainsFunc(vals, func(want string) bool { return matches(v, want) }) {
			out = append(out, o)
		}
	}
	return out, known || len(objs) == 0
}

// matches compares an attribute with a filter value as Neutron does: by
// its string form, a list by any member, fixed_ips by "key=value".
func matches(v any, want string) bool {
	switch x := v.(type) {
	case nil:
		return want == "" || want == "None"
	case bool:
		return strings.EqualFold(want, strconv.FormatBool(x))
	case string:
		return x == want
	case []string:
		return slices.Contains(x, want)
	case []obj:
		k, val, ok := strings.Cut(want, "=")
		return ok && slices.ContainsFunc(x, func(o obj) bool { return fmt.Sprint(o[k]) == val })
	}
	return fmt.Sprint(v) == want
}

// project keeps only the asked fields (all when none).
func project(o obj, fields []string) obj {
	if len(fields) == 0 {
		return o
	}
	out := obj{}
	for _, f := range fields {
		if v, ok := o[f]; ok {
			out[f] = v
		}
	}
	return out
}

// attrs are a request body's attributes.
type attrs map[string]json.RawMessage

// only refuses attributes outside allowed, as Neutron does.
func (a attrs) only(allowed ...string) error {
	var bad []string
	for k := range a {
		if !slices.Contains(allowed, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return badRequest("Unrecognized attribute(s) '%s'", strings.Join(bad, ", "))
	}
	return nil
}

func (a attrs) has(k string) bool { _, ok := a[k]; return ok }

// str reads a string attribute (def when absent) of at most max runes.
// nameDesc reads the name and description every resource takes (at most
// 255 characters each, empty when absent).
func (a attrs) nameDesc() (name, desc string, err error) {
	if name, err = a.str("name", "", 255); err != nil {
		return "", "", err
	}
	desc, err = a.str("description", "", 255)
	return name, desc, err
}

func (a attrs) str(k, def string, max int) (string, error) {
	raw, ok := a[k]
	if !ok {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", badRequest("Invalid input for %s. Reason: '%s' is not a valid string.", k, raw)
	}
	if max > 0 && len([]rune(s)) > max {
		return "", badRequest("Invalid input for %s. Reason: '%s' exceeds maximum length of %d.", k, s, max)
	}
	return s, nil
}

// nullableStr reads a string attribute that may be null ("" for null or
// absent).
func (a attrs) nullableStr(k string) (string, error) {
	raw, ok := a[k]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	return a.str(k, "", 255)
}

// boolean reads a boolean attribute (true/false, or their strings).
func (a attrs) boolean(k string, def bool) (bool, error) {
	raw, ok := a[k]
	if !ok {
		return def, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if v, err := strconv.ParseBool(s); err == nil {
			return v, nil
		}
	}
	return false, badRequest("Invalid input for %s. Reason: '%s' is not a valid boolean value.", k, raw)
}

// fixed reads an attribute that Canopy only takes at one value (an
// unsupported choice answers 400 naming it).
func (a attrs) fixed(k string, want any, why string) error {
	raw, ok := a[k]
	if !ok {
		return nil
	}
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		return badRequest("Invalid input for %s.", k)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if string(wb) != string(gb) {
		return badRequest("Invalid input for %s. Reason: %s", k, why)
	}
	return nil
}

// owner resolves tenant_id/project_id: the caller's project, or any
// project for admin (exists is asked about it).
func (c *call) owner(a attrs, exists func(string) bool) (string, error) {
	t, err := a.str("tenant_id", "", 255)
	if err != nil {
		return "", err
	}
	p, err := a.str("project_id", "", 255)
	if err != nil {
		return "", err
	}
	if t != "" && p != "" && t != p {
		return "", badRequest("'project_id' and 'tenant_id' do not match")
	}
	want := cmp.Or(p, t)
	if want == "" || want == c.project() {
		return c.project(), nil
	}
	if !c.admin {
		return "", forbidden("Only an admin may create resources in another project (%s).", want)
	}
	if !exists(want) {
		return "", invalidInput("project %s does not exist", want)
	}
	return want, nil
}
