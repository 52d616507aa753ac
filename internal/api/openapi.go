package api

import (
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// The OpenAPI document is built from the route table (so it lists exactly
// the operations the mux serves) and from the Go types of the bodies by
// reflection over their json tags (so its schemas are the wire format).

type obj = map[string]any

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// enums lists the values of the string types that have a fixed set.
var enums = map[reflect.Type][]string{
	reflect.TypeFor[topology.Kind]():           kindStrings(),
	reflect.TypeFor[topology.RouteType]():      {string(topology.RouteNormal), string(topology.RouteBlackhole), string(topology.RouteReject), string(topology.RouteLocal)},
	reflect.TypeFor[topology.Action]():         actionStrings(),
	reflect.TypeFor[topology.TunnelType]():     {string(topology.TunnelVXLAN)},
	reflect.TypeFor[topology.FragmentPolicy](): {string(topology.FragAny), string(topology.FragHeader), string(topology.FragNonHeader), string(topology.FragUnfragmented)},
}

func kindStrings() []string {
	var out []string
	for _, k := range topology.Kinds {
		out = append(out, string(k))
	}
	return out
}

func actionStrings() []string {
	var out []string
	for _, a := range topology.Actions {
		out = append(out, string(a))
	}
	return out
}

// readOnly are properties the server sets; clients may send them back
// unchanged.
var readOnly = map[string]bool{"revision": true, "tunnel_key": true, "alive": true}

// writeOnly are properties the server takes but never answers (bgp.go), with
// what a client should know about them.
var writeOnly = map[string]string{
	"password": "TCP MD5 key (RFC 2385); never answered back: answers say password_set instead, and a write with password_set and no password keeps the stored one",
}

type schemaGen struct {
	components obj
	names      map[string]reflect.Type
}

func (g *schemaGen) schema(t reflect.Type) obj {
	if e, ok := enums[t]; ok {
		return obj{"type": "string", "enum": e}
	}
	switch t {
	case typeAddr:
		return obj{"type": "string", "format": "ip", "example": "192.0.2.1"}
	case typePrefix:
		return obj{"type": "string", "format": "cidr", "example": "192.0.2.0/24", "description": "address/prefix-length"}
	case typeMAC:
		return obj{"type": "string", "pattern": "^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$", "example": "02:00:00:00:00:01"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem())
	case reflect.Bool:
		return obj{"type": "boolean"}
	case reflect.String:
		return obj{"type": "string"}
	case reflect.Int, reflect.Int64:
		return obj{"type": "integer", "format": "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return obj{"type": "integer", "format": "int32"}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return obj{"type": "integer", "minimum": 0, "maximum": uint64(1)<<t.Bits() - 1}
	case reflect.Float32, reflect.Float64:
		return obj{"type": "number"}
	case reflect.Slice, reflect.Array:
		return obj{"type": "array", "items": g.schema(t.Elem())}
	case reflect.Map:
		return obj{"type": "object", "additionalProperties": g.schema(t.Elem())}
	case reflect.Struct:
		name := t.Name()
		if prev, ok := g.names[name]; ok {
			if prev != t {
				panic("api: two body types named " + name + ": " + prev.String() + " and " + t.String())
			}
			return obj{"$ref": "#/components/schemas/" + name}
		}
		g.names[name] = t
		props := obj{}
		for _, f := range jsonFields(t) {
			p := g.schema(f.typ)
			if readOnly[f.name] {
				p = obj{"allOf": []any{p}, "readOnly": true}
			}
			if d, ok := writeOnly[f.name]; ok {
				p = obj{"allOf": []any{p}, "writeOnly": true, "description": d}
			}
			props[f.name] = p
		}
		g.components[name] = obj{"type": "object", "properties": props, "additionalProperties": false}
		return obj{"$ref": "#/components/schemas/" + name}
	}
	panic("api: no schema for " + t.String())
}

func (s *server) openAPI() obj {
	g := &schemaGen{components: obj{}, names: map[string]reflect.Type{}}
	errRef := g.schema(reflect.TypeFor[ErrorBody]())
	paths := obj{}
	for _, rt := range s.routes {
		item, _ := paths[rt.path].(obj)
		if item == nil {
			item = obj{}
			paths[rt.path] = item
		}
		op := obj{
			"summary":     rt.summary,
			"operationId": operationID(rt),
			"responses": obj{
				"default": obj{"description": "an error", "content": obj{"application/json": obj{"schema": errRef}}},
			},
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, obj{"name": m[1], "in": "path", "required": true, "schema": obj{"type": "string"}})
		}
		for _, q := range rt.query {
			switch q {
			case "name":
				params = append(params, obj{"name": "name", "in": "query", "description": "only objects with exactly this name", "schema": obj{"type": "string"}})
			case "revision":
				params = append(params, obj{"name": "revision", "in": "query", "description": "fail with 409 unless the object is at this revision", "schema": obj{"type": "integer", "format": "int64", "minimum": 0}})
			default:
				panic("api: undocumented query parameter " + q)
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.body != nil {
			op["requestBody"] = obj{"required": true, "content": obj{"application/json": obj{"schema": g.schema(rt.body)}}}
		}
		ok := obj{"description": http.StatusText(rt.status)}
		switch {
		case rt.path == "/openapi.json":
			ok["content"] = obj{"application/json": obj{"schema": obj{"type": "object"}}}
		case rt.resp != nil && rt.list:
			ok["content"] = obj{"application/json": obj{"schema": obj{"type": "array", "items": g.schema(rt.resp)}}}
		case rt.resp != nil:
			ok["content"] = obj{"application/json": obj{"schema": g.schema(rt.resp)}}
		}
		op["responses"].(obj)[strconv.Itoa(rt.status)] = ok
		if rt.public {
			op["security"] = []any{}
		}
		item[strings.ToLower(rt.method)] = op
	}
	return obj{
		"openapi": "3.0.3",
		"info": obj{
			"title":       "Canopy REST topology API",
			"version":     "1",
			"description": "The virtual network topology of a Canopy cloud (docs/rest-api.md).",
		},
		"servers":  []any{obj{"url": "http://127.0.0.1:8181"}},
		"security": []any{obj{"bearer": []any{}}, obj{"token": []any{}}},
		"paths":    paths,
		"components": obj{
			"schemas": g.components,
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer"},
				"token":  obj{"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
			},
		},
	}
}

// operationID derives a stable id such as "get_routers_id_ports".
func operationID(rt route) string {
	p := strings.NewReplacer("{", "", "}", "", ".", "_", "-", "_").Replace(rt.path)
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	return strings.ToLower(rt.method) + "_" + strings.Join(parts, "_")
}
