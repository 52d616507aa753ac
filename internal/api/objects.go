package api

import (
	"context"
	"net/http"
	"reflect"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/google/uuid"
)

// Host is the REST form of a host: the stored object plus whether its agent
// is alive, which is lease-bound state rather than part of the object. Alive
// is accepted and ignored in request bodies, so a GET-modify-PUT works.
type Host struct {
	*topology.Host
	Alive *bool `json:"alive,omitempty"`
}

// collection is the REST collection of a kind: the kind's name in plural.
func collection(k topology.Kind) string { return string(k) + "s" }

// bodyType is the JSON shape of objects of kind k in requests and answers.
func bodyType(k topology.Kind) reflect.Type {
	if k == topology.KindHost {
		return reflect.TypeFor[Host]()
	}
	return reflect.TypeOf(topology.New(k)).Elem()
}

// collectionRoutes are the five operations every top-level collection has.
func (s *server) collectionRoutes(k topology.Kind) []route {
	coll := "/" + collection(k)
	item := coll + "/{id}"
	t := bodyType(k)
	return []route{
		{method: "GET", path: coll, summary: "List " + collection(k), resp: t, list: true, status: 200, query: []string{"name"},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				return s.listWhere(r, k, nil)
			}},
		{method: "POST", path: coll, summary: "Create a " + string(k), body: t, resp: t, status: 201,
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				o, err := decodeObject(w, r, k)
				if err != nil {
					return 0, nil, err
				}
				o.GetMeta().Revision = 0
				nameRules(o)
				if rt, ok := o.(*topology.Router); ok {
					if err := keepBGPPasswords("bgp.", rt.BGP, nil); err != nil {
						return 0, nil, err
					}
				}
				out, err := s.store.Create(r.Context(), o)
				return s.answer(r.Context(), http.StatusCreated, out, err)
			}},
		{method: "GET", path: item, summary: "Get a " + string(k), resp: t, status: 200,
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				out, err := s.store.Get(r.Context(), k, r.PathValue("id"))
				return s.answer(r.Context(), http.StatusOK, out, err)
			}},
		{method: "PUT", path: item, summary: "Replace a " + string(k) + " (send its revision for optimistic concurrency)", body: t, resp: t, status: 200,
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				o, err := decodeObject(w, r, k)
				if err != nil {
					return 0, nil, err
				}
				if err := pathID(o.GetMeta(), r.PathValue("id")); err != nil {
					return 0, nil, err
				}
				nameRules(o)
				out, err := s.update(r.Context(), o)
				return s.answer(r.Context(), http.StatusOK, out, err)
			}},
		{method: "DELETE", path: item, summary: "Delete a " + string(k) + " and what goes with it", status: 204, query: []string{"revision"},
			h: func(w http.ResponseWriter, r *http.Request) (int, any, error) {
				rev, err := queryRevision(r)
				if err != nil {
					return 0, nil, err
				}
				if _, err := s.store.Delete(r.Context(), k, r.PathValue("id"), rev); err != nil {
					return 0, nil, err
				}
				return http.StatusNoContent, nil, nil
			}},
	}
}

// update replaces a stored object. A router's BGP peers sent with
// password_set keep their stored passwords, read in the same transaction.
func (s *server) update(ctx context.Context, o topology.Object) (topology.Object, error) {
	rt, ok := o.(*topology.Router)
	if !ok || rt.BGP == nil {
		return s.store.Update(ctx, o)
	}
	_, err := s.store.Txn(ctx, func(tx *nsdb.Tx) error {
		var stored *topology.BGP
		if cur, ok := tx.Get(topology.KindRouter, rt.ID).(*topology.Router); ok {
			stored = cur.BGP
		}
		in := topology.Clone(rt).(*topology.Router)
		if err := keepBGPPasswords("bgp.", in.BGP, stored); err != nil {
			return err
		}
		_, err := tx.Update(in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.store.Get(ctx, topology.KindRouter, rt.ID)
}

// pathID sets the object's id from the path; a different id in the body is
// a mistake worth reporting rather than silently overriding.
func pathID(m *topology.Meta, id string) error {
	if m.ID != "" && m.ID != id {
		return &topology.FieldError{Field: "id", Reason: "is " + m.ID + " but the path names " + id}
	}
	m.ID = id
	return nil
}

// decodeObject decodes a body of kind k.
func decodeObject(w http.ResponseWriter, r *http.Request, k topology.Kind) (topology.Object, error) {
	o := topology.New(k)
	var target any = o
	if h, ok := o.(*topology.Host); ok {
		target = &Host{Host: h}
	}
	if err := decode(w, r, target); err != nil {
		return nil, err
	}
	return o, nil
}

// answer turns a store result into a response, adding host liveness.
func (s *server) answer(ctx context.Context, status int, o topology.Object, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	v, err := s.view(ctx, o)
	if err != nil {
		return 0, nil, err
	}
	return status, v, nil
}

// view is the JSON form of a stored object.
func (s *server) view(ctx context.Context, o topology.Object) (any, error) {
	if r, ok := o.(*topology.Router); ok {
		return redactRouter(r), nil
	}
	h, ok := o.(*topology.Host)
	if !ok {
		return o, nil
	}
	alive, err := s.store.HostAlive(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	return Host{Host: h, Alive: &alive}, nil
}

// listWhere answers the objects of kind k that keep passes (all when nil),
// filtered by ?name=, sorted by id (the store's order).
func (s *server) listWhere(r *http.Request, k topology.Kind, keep func(topology.Object) bool) (int, any, error) {
	all, err := s.store.List(r.Context(), k)
	if err != nil {
		return 0, nil, err
	}
	name, byName := r.URL.Query()["name"]
	out := make([]any, 0, len(all))
	for _, o := range all {
		if keep != nil && !keep(o) {
			continue
		}
		if byName && o.GetMeta().Name != name[0] {
			continue
		}
		v, err := s.view(r.Context(), o)
		if err != nil {
			return 0, nil, err
		}
		out = append(out, v)
	}
	return http.StatusOK, out, nil
}

// nameRules gives every rule of a chain that has no id a fresh one, as
// POST /chains/{id}/rules does: rules are addressed by id, and a client
// writing a whole chain should not have to invent them.
func nameRules(o topology.Object) {
	if c, ok := o.(*topology.Chain); ok {
		for i := range c.Rules {
			if c.Rules[i].ID == "" {
				c.Rules[i].ID = uuid.NewString()
			}
		}
	}
}
