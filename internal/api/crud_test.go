package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestCollectionsCRUD runs create, get, list, filter, guarded replace and
// guarded delete on every top-level collection.
func TestCollectionsCRUD(t *testing.T) {
	e := newEnv(t)
	router := e.id("/routers", map[string]any{"name": "dep-router"})
	bridge := e.id("/bridges", map[string]any{"name": "dep-bridge"})
	// A valid body of each kind (beyond the dependencies above); the second
	// object differs where two objects must.
	bodies := func(n int) map[topology.Kind]map[string]any {
		return map[topology.Kind]map[string]any{
			topology.KindHost:       {"interfaces": []any{map[string]any{"name": "eth0"}}},
			topology.KindTunnelZone: {"type": "vxlan"},
			topology.KindIPGroup:    {"addresses": []string{"10.0.0.5"}},
			topology.KindChain:      {"rules": []any{map[string]any{"action": "accept"}}},
			topology.KindRouter:     {},
			topology.KindBridge:     {},
			topology.KindPort:       {"device_kind": "router", "device_id": router, "mac": fmt.Sprintf("02:00:00:00:00:%02x", n), "address": fmt.Sprintf("192.0.%d.1/24", n)},
			topology.KindPortGroup:  {"stateful": true},
			topology.KindRoute:      {"router_id": router, "type": "blackhole", "dst_prefix": "10.9.0.0/16"},
			topology.KindDHCP:       {"bridge_id": bridge, "subnet": fmt.Sprintf("10.%d.0.0/24", n), "gateway": fmt.Sprintf("10.%d.0.1", n)},
		}
	}
	for _, k := range topology.Kinds {
		t.Run(string(k), func(t *testing.T) {
			e.t = t
			coll := "/" + collection(k)
			body := bodies(1)[k]
			body["name"] = "one"
			var created map[string]any
			e.do("POST", coll, body, http.StatusCreated, &created)
			id, _ := created["id"].(string)
			rev, _ := created["revision"].(float64)
			if id == "" || rev == 0 {
				t.Fatalf("created %v: want an id and a revision", created)
			}
			if k == topology.KindPort && created["tunnel_key"] == nil {
				t.Fatalf("created port %v has no tunnel_key", created)
			}
			if k == topology.KindChain {
				rules := created["rules"].([]any)
				if rules[0].(map[string]any)["id"] == "" {
					t.Fatalf("chain rule got no id: %v", created)
				}
			}
			if k == topology.KindHost && created["alive"] != false {
				t.Fatalf("host %v: want alive false", created)
			}
			// The store holds what the API said.
			stored, _ := json.Marshal(e.get(k, id))
			var storedMap map[string]any
			json.Unmarshal(stored, &storedMap)
			delete(created, "alive")
			if fmt.Sprint(storedMap) != fmt.Sprint(created) {
				t.Fatalf("API answered %v, store holds %v", created, storedMap)
			}

			var got map[string]any
			e.do("GET", coll+"/"+id, nil, http.StatusOK, &got)
			if got["id"] != id || got["name"] != "one" {
				t.Fatalf("GET %s: %v", id, got)
			}

			body = bodies(2)[k]
			body["name"] = "two"
			other := e.id(coll, body)
			var list []map[string]any
			e.do("GET", coll, nil, http.StatusOK, &list)
			if !hasID(list, id) || !hasID(list, other) {
				t.Fatalf("list %v lacks %s or %s", list, id, other)
			}
			e.do("GET", coll+"?name=two", nil, http.StatusOK, &list)
			if len(list) != 1 || list[0]["id"] != other {
				t.Fatalf("?name=two: %v, want only %s", list, other)
			}
			e.do("GET", coll+"?name=none", nil, http.StatusOK, &list)
			if len(list) != 0 {
				t.Fatalf("?name=none: %v", list)
			}

			// Replace guarded by the revision: the right one wins, a stale
			// one is refused and changes nothing.
			got["name"] = "renamed"
			var put map[string]any
			e.do("PUT", coll+"/"+id, got, http.StatusOK, &put)
			if put["name"] != "renamed" || put["revision"].(float64) <= rev {
				t.Fatalf("PUT answered %v", put)
			}
			got["name"] = "stale"
			st, b := e.raw("PUT", coll+"/"+id, got, nil)
			if d := apiError(t, b); st != http.StatusConflict || d.Field != "revision" {
				t.Fatalf("stale PUT: %d %s", st, b)
			}
			if n := e.get(k, id).GetMeta().Name; n != "renamed" {
				t.Fatalf("stale PUT changed the name to %q", n)
			}
			// PUT without a revision replaces whatever is there.
			delete(got, "revision")
			got["name"] = "last"
			e.do("PUT", coll+"/"+id, got, http.StatusOK, &put)

			st, b = e.raw("DELETE", fmt.Sprintf("%s/%s?revision=%d", coll, id, int64(rev)), nil, nil)
			if st != http.StatusConflict {
				t.Fatalf("DELETE with stale revision: %d %s", st, b)
			}
			cur := int64(put["revision"].(float64))
			e.do("DELETE", fmt.Sprintf("%s/%s?revision=%d", coll, id, cur), nil, http.StatusNoContent, nil)
			e.do("GET", coll+"/"+id, nil, http.StatusNotFound, nil)
			e.do("DELETE", coll+"/"+id, nil, http.StatusNotFound, nil)
			e.do("DELETE", coll+"/"+other, nil, http.StatusNoContent, nil)
		})
	}
}

func hasID(list []map[string]any, id string) bool {
	for _, o := range list {
		if o["id"] == id {
			return true
		}
	}
	return false
}

// TestHostAlive shows the lease-bound liveness on host reads.
func TestHostAlive(t *testing.T) {
	e := newEnv(t)
	h := e.id("/hosts", map[string]any{"name": "h1"})
	var got Host
	e.do("GET", "/hosts/"+h, nil, http.StatusOK, &got)
	if got.Alive == nil || *got.Alive {
		t.Fatalf("host without agent: alive %v", got.Alive)
	}
	ctx := context.Background()
	lease, err := e.store.KeepHostAlive(ctx, h, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Stop()
	var list []Host
	e.do("GET", "/hosts", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Alive == nil || !*list[0].Alive {
		t.Fatalf("host with a live lease: %+v", list)
	}
	// alive is read-only: sending it back in a PUT is accepted and ignored.
	e.do("PUT", "/hosts/"+h, map[string]any{"name": "h1", "alive": false}, http.StatusOK, &got)
	if got.Alive == nil || !*got.Alive {
		t.Fatalf("after PUT: alive %v", got.Alive)
	}
}
