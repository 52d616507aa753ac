package neutron

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/keystone"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// DefaultListen is the Networking endpoint's default address.
const DefaultListen = "127.0.0.1:9696"

// maxBody bounds a request body.
const maxBody = 1 << 20

// Config of the Networking endpoint.
type Config struct {
	// EC2 is the EC2 server whose accounts, store and VPC machinery this
	// endpoint shares.
	EC2 *ec2.Server
	// Signer checks the identity endpoint's tokens.
	Signer *keystone.Signer
	// MTU is what instances get by DHCP (the underlay's less VXLAN's
	// overhead): every network's mtu.
	MTU    int
	Logger *slog.Logger
}

// Server is the Networking API's handler.
type Server struct {
	cfg   Config
	store *nsdb.VPCStore
	log   *slog.Logger
	mux   *http.ServeMux
}

// New returns the handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1450
	}
	s := &Server{cfg: cfg, store: cfg.EC2.VPCStore(), log: cfg.Logger, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.versions)
	s.mux.HandleFunc("GET /v2.0", s.authed(s.root))
	s.mux.HandleFunc("GET /v2.0/{$}", s.authed(s.root))
	s.mux.HandleFunc("GET /v2.0/extensions", s.authed(s.extensions))
	s.mux.HandleFunc("GET /v2.0/extensions/{alias}", s.authed(s.extension))
	for _, res := range s.resources() {
		s.route(res)
		if res.collection != "security_group_rules" {
			s.routeTags(res)
		}
	}
	s.routeQuotas()
	s.mux.HandleFunc("PUT /v2.0/routers/{id}/add_router_interface", s.authed(s.routerInterface(true)))
	s.mux.HandleFunc("PUT /v2.0/routers/{id}/remove_router_interface", s.authed(s.routerInterface(false)))
	// Neutron's agents (DHCP, L3, OVS) do not exist here: Canopy's host
	// agents do their work and are not Neutron agents. The list is empty
	// (a member's, as in Neutron, whose policy shows members none).
	s.mux.HandleFunc("GET /v2.0/agents", s.authed(func(c *call, w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]any{"agents": []any{}})
	}))
	s.mux.HandleFunc("GET /v2.0/agents/{id}", s.authed(func(c *call, w http.ResponseWriter) {
		writeError(w, notFound("AgentNotFound", "Agent", c.r.PathValue("id")))
	}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{http.StatusNotFound, "HTTPNotFound", "The resource could not be found."})
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The store work of a request has a budget (as on the EC2 endpoint).
	ctx, cancel := context.WithTimeout(r.Context(), nsdb.RequestTimeout)
	defer cancel()
	// Neutron accepts a .json suffix on any path.
	r.URL.Path = strings.TrimSuffix(r.URL.Path, ".json")
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

// call is one authenticated request.
type call struct {
	ctx   context.Context
	s     *Server
	r     *http.Request
	tok   *keystone.Token
	admin bool
	// tx, during a bulk create, is the one transaction every create of the
	// request runs in.
	tx *nsdb.VPCTx
}

// project is the caller's project (account).
func (c *call) project() string { return c.tok.ProjectID }

// sees reports whether the caller may see an object of owner.
func (c *call) sees(owner string) bool { return c.admin || owner == c.tok.ProjectID }

// authed checks the caller's token (keystonemiddleware's job in Neutron).
func (s *Server) authed(h func(c *call, w http.ResponseWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := s.cfg.Signer.Verify(r.Header.Get("X-Auth-Token"))
		if err != nil || tok.ProjectName == "" {
			w.Header().Set("WWW-Authenticate", "Keystone uri=\"\"")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})
			return
		}
		h(&call{ctx: r.Context(), s: s, r: r, tok: tok, admin: tok.Admin()}, w)
	}
}

func base(r *http.Request) string {
	sch := "http"
	if r.TLS != nil {
		sch = "https"
	}
	return sch + "://" + r.Host
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]string{"rel": "self", "href": base(r) + "/v2.0/"}},
	}}})
}

func (s *Server) root(c *call, w http.ResponseWriter) {
	var out []any
	for _, res := range s.resources() {
		out = append(out, map[string]any{"name": res.member, "collection": res.collection,
			"links": []any{map[string]string{"rel": "self", "href": base(c.r) + "/v2.0/" + cmp.Or(res.path, res.collection)}}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": out})
}

// extensionList is what this endpoint implements of Neutron's extensions.
var extensionList = []map[string]any{
	{"alias": "allowed-address-pairs", "name": "Allowed Address Pairs", "description": "Provides allowed address pairs"},
	{"alias": "binding", "name": "Port Binding", "description": "Expose port bindings of a virtual port to external application"},
	{"alias": "external-net", "name": "Neutron external network", "description": "Adds external network attribute to network resource."},
	{"alias": "ext-gw-mode", "name": "Neutron L3 Configurable external gateway mode", "description": "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"},
	{"alias": "extraroute", "name": "Neutron Extra Route", "description": "Extra routes configuration for L3 router"},
	{"alias": "net-mtu", "name": "Network MTU", "description": "Provides MTU attribute for a network resource."},
	{"alias": "port-security", "name": "Port Security", "description": "Provides port security"},
	{"alias": "quotas", "name": "Quota management support", "description": "Expose functions for quotas management per project"},
	{"alias": "quota_details", "name": "Quota details management support", "description": "Expose functions for quotas usage statistics per project"},
	{"alias": "router", "name": "Neutron L3 Router", "description": "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."},
	{"alias": "project-id", "name": "project_id field enabled", "description": "Extension that indicates that project_id field is enabled."},
	{"alias": "standard-attr-tag", "name": "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip", "description": "Enables to set tag on resources with standard attribute."},
	{"alias": "security-group", "name": "security-group", "description": "The security groups extension."},
	{"alias": "subnet_allocation", "name": "Subnet Allocation", "description": "Enables allocation of subnets from a subnet pool"},
	{"alias": "standard-attr-description", "name": "standard-attr-description", "description": "Extension to add descriptions to standard attributes"},
}

func extensionDoc(e map[string]any) map[string]any {
	out := map[string]any{"updated": "2013-01-01T10:00:00-00:00", "links": []any{}}
	for k, v := range e {
		out[k] = v
	}
	return out
}

func (s *Server) extensions(c *call, w http.ResponseWriter) {
	var out []any
	for _, e := range extensionList {
		out = append(out, extensionDoc(e))
	}
	writeJSON(w, http.StatusOK, map[string]any{"extensions": out})
}

func (s *Server) extension(c *call, w http.ResponseWriter) {
	alias := c.r.PathValue("alias")
	for _, e := range extensionList {
		if e["alias"] == alias {
			writeJSON(w, http.StatusOK, map[string]any{"extension": extensionDoc(e)})
			return
		}
	}
	writeError(w, &Error{http.StatusNotFound, "HTTPNotFound", "Extension with alias " + alias + " does not exist"})
}

// update runs a change in one store transaction.
func (c *call) update(f func(st *vpc.State, tx *nsdb.VPCTx) error) error {
	if c.tx != nil {
		return f(c.tx.State(), c.tx)
	}
	_, err := c.s.store.Update(c.ctx, f)
	return err
}

// read runs f on the current state.
func (c *call) read(f func(st *vpc.State) error) error {
	if c.tx != nil {
		return f(c.tx.State())
	}
	var err error
	c.s.store.Read(func(st *vpc.State) { err = f(st) })
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Neutron's error document.
func writeError(w http.ResponseWriter, e *Error) {
	writeJSON(w, e.Status, map[string]any{"NeutronError": map[string]any{"type": e.Type, "message": e.Message, "detail": ""}})
}

// readBody decodes {"<member>": {...}} into its attributes.
func readBody(r *http.Request, member string) (attrs, error) {
	one, _, err := readBodies(r, member, "")
	return one, err
}

// readBodies decodes {"<member>": {...}}, or (when collection is not "")
// a bulk create's {"<collection>": [{...}, ...]}.
func readBodies(r *http.Request, member, collection string) (attrs, []attrs, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(b) > maxBody {
		return nil, nil, badRequest("The request body is unreadable or larger than %d bytes.", maxBody)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, badRequest("Malformed request body: %v", err)
	}
	if raw, ok := doc[collection]; ok && collection != "" && len(doc) == 1 {
		var many []attrs
		if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 || slices.ContainsFunc(many, func(a attrs) bool { return a == nil }) {
			return nil, nil, badRequest("Malformed request body: %q is not a non-empty list of JSON objects.", collection)
		}
		if len(many) > maxBulk {
			return nil, nil, badRequest("A bulk request creates at most %d %s.", maxBulk, collection)
		}
		return nil, many, nil
	}
	raw, ok := doc[member]
	if !ok || len(doc) != 1 {
		return nil, nil, badRequest("Resource body required: a JSON object with the one key %q.", member)
	}
	var a attrs
	if err := json.Unmarshal(raw, &a); err != nil || a == nil {
		return nil, nil, badRequest("Malformed request body: %q is not a JSON object.", member)
	}
	return a, nil, nil
}

// maxBulk bounds a bulk create (one store transaction).
const maxBulk = 100
