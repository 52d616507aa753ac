package neutron

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Tags (Neutron's standard-attr-tag): a set of strings on a network,
// subnet, port, router, floating IP or security group, kept as the
// object's tags "neutron:tag:<tag>" (so the EC2 API shows them too).
const tagPrefix = "neutron:tag:"

// maxTags is Neutron's limit of tags on one resource.
const maxTags = 50

// neutronTags are an object's Neutron tags, sorted.
func neutronTags(t vpc.Tags) []string {
	out := []string{}
	for k := range t {
		if tag, ok := strings.CutPrefix(k, tagPrefix); ok {
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}

func checkTag(tag string) error {
	if tag == "" || len(tag) > 60 || strings.ContainsAny(tag, ",/") {
		return badRequest("Invalid input for tags. Reason: '%s' is not a valid tag (1 to 60 characters, no ',' or '/').", tag)
	}
	return nil
}

// withTags returns t with its Neutron tags replaced by tags.
func withTags(t vpc.Tags, tags []string) vpc.Tags {
	out := vpc.Tags{}
	for k, v := range t {
		if !strings.HasPrefix(k, tagPrefix) {
			out[k] = v
		}
	}
	for _, tag := range tags {
		out[tagPrefix+tag] = ""
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// retag changes the Neutron tags of object id (a network, subnet, port,
// router, floating IP or security group) in tx.
func retag(st *vpc.State, tx *nsdb.VPCTx, id string, f func([]string) ([]string, error)) error {
	set := func(t vpc.Tags, put func(vpc.Tags) error) error {
		tags, err := f(neutronTags(t))
		if err != nil {
			return err
		}
		slices.Sort(tags)
		tags = slices.Compact(tags)
		if len(tags) > maxTags {
			return badRequest("Invalid input for tags. Reason: at most %d tags.", maxTags)
		}
		return put(withTags(t, tags))
	}
	switch {
	case st.Vpcs[id] != nil:
		x := clone(st.Vpcs[id])
		return set(x.Tags, func(t vpc.Tags) error { x.Tags = t; return tx.Put(id, x) })
	case st.Subnets[id] != nil:
		x := clone(st.Subnets[id])
		return set(x.Tags, func(t vpc.Tags) error { x.Tags = t; return tx.Put(id, x) })
	case st.NetworkInterfaces[id] != nil:
		x := clone(st.NetworkInterfaces[id])
		return set(x.Tags, func(t vpc.Tags) error { x.Tags = t; return tx.Put(id, x) })
	case st.InternetGateways[id] != nil:
		x := clone(st.InternetGateways[id])
		return set(x.Tags, func(t vpc.Tags) error { x.Tags = t; return tx.Put(id, x) })
	case st.Addresses[id] != nil:
		x := clone(st.Addresses[id])
		return set(x.Tags, func(t vpc.Tags) error { x.Tags = t; return tx.Put(id, x) })
	case st.SecurityGroups[id] != nil:
		x := clone(st.SecurityGroups[id])
		return set(x.Tags, func(t vpc.Tags) error { x.Tags = t; return tx.Put(id, x) })
	case st.SubnetPools[id] != nil:
		x := clone(st.SubnetPools[id])
		return set(x.Tags, func(t vpc.Tags) error { x.Tags = t; return tx.Put(id, x) })
	}
	return externalRefused("tagged")
}

// routeTags serves /v2.0/<collection>/{id}/tags[/{tag}] for res.
func (s *Server) routeTags(res *resource) {
	base := "/v2.0/" + firstNonEmpty(res.path, res.collection) + "/{id}/tags"
	// visible answers the resource's NotFound for an object the caller
	// does not see.
	visible := func(c *call) (obj, error) { return res.find(c, c.r.PathValue("id")) }
	change := func(c *call, w http.ResponseWriter, status int, f func([]string) ([]string, error)) {
		if _, err := visible(c); err != nil {
			writeError(w, toError(err))
			return
		}
		var after []string
		err := c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
			return retag(st, tx, c.r.PathValue("id"), func(tags []string) ([]string, error) {
				out, err := f(tags)
				after = out
				return out, err
			})
		})
		if err != nil {
			writeError(w, toError(err))
			return
		}
		if status == http.StatusOK {
			slices.Sort(after)
			writeJSON(w, status, obj{"tags": slices.Compact(after)})
			return
		}
		w.WriteHeader(status)
	}
	s.mux.HandleFunc("GET "+base, s.authed(func(c *call, w http.ResponseWriter) {
		o, err := visible(c)
		if err != nil {
			writeError(w, toError(err))
			return
		}
		writeJSON(w, http.StatusOK, obj{"tags": o["tags"]})
	}))
	s.mux.HandleFunc("GET "+base+"/{tag}", s.authed(func(c *call, w http.ResponseWriter) {
		o, err := visible(c)
		if err != nil {
			writeError(w, toError(err))
			return
		}
		if tags, _ := o["tags"].([]string); !slices.Contains(tags, c.r.PathValue("tag")) {
			writeError(w, notFound("TagNotFound", "Tag "+c.r.PathValue("tag")+" on", c.r.PathValue("id")))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	s.mux.HandleFunc("PUT "+base, s.authed(func(c *call, w http.ResponseWriter) {
		var body struct {
			Tags []string `json:"tags"`
		}
		if err := json.NewDecoder(io.LimitReader(c.r.Body, maxBody)).Decode(&body); err != nil || body.Tags == nil {
			writeError(w, badRequest("Invalid input for tags: a body {\"tags\": [...]} is required."))
			return
		}
		for _, tag := range body.Tags {
			if err := checkTag(tag); err != nil {
				writeError(w, toError(err))
				return
			}
		}
		change(c, w, http.StatusOK, func([]string) ([]string, error) { return body.Tags, nil })
	}))
	s.mux.HandleFunc("PUT "+base+"/{tag}", s.authed(func(c *call, w http.ResponseWriter) {
		tag := c.r.PathValue("tag")
		if err := checkTag(tag); err != nil {
			writeError(w, toError(err))
			return
		}
		change(c, w, http.StatusCreated, func(tags []string) ([]string, error) { return append(tags, tag), nil })
	}))
	s.mux.HandleFunc("DELETE "+base, s.authed(func(c *call, w http.ResponseWriter) {
		change(c, w, http.StatusNoContent, func([]string) ([]string, error) { return nil, nil })
	}))
	s.mux.HandleFunc("DELETE "+base+"/{tag}", s.authed(func(c *call, w http.ResponseWriter) {
		tag := c.r.PathValue("tag")
		change(c, w, http.StatusNoContent, func(tags []string) ([]string, error) {
			i := slices.Index(tags, tag)
			if i < 0 {
				return nil, notFound("TagNotFound", "Tag "+tag+" on", c.r.PathValue("id"))
			}
			return slices.Delete(tags, i, i+1), nil
		})
	}))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// tagFilter applies Neutron's tag filters (tags, tags-any, not-tags,
// not-tags-any: comma-separated) to objs; known is false for another key.
func tagFilter(objs []obj, k string, vals []string) ([]obj, bool) {
	var want []string
	for _, v := range vals {
		want = append(want, strings.Split(v, ",")...)
	}
	has := func(o obj, tag string) bool { tags, _ := o["tags"].([]string); return slices.Contains(tags, tag) }
	var keep func(o obj) bool
	switch k {
	case "tags":
		keep = func(o obj) bool { return !slices.ContainsFunc(want, func(t string) bool { return !has(o, t) }) }
	case "tags-any":
		keep = func(o obj) bool { return slices.ContainsFunc(want, func(t string) bool { return has(o, t) }) }
	case "not-tags":
		keep = func(o obj) bool { return slices.ContainsFunc(want, func(t string) bool { return !has(o, t) }) }
	case "not-tags-any":
		keep = func(o obj) bool { return !slices.ContainsFunc(want, func(t string) bool { return has(o, t) }) }
	default:
		return nil, false
	}
	return slices.DeleteFunc(objs, func(o obj) bool { return !keep(o) }), true
}
