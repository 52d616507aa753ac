package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// Options configure the API handler.
type Options struct {
	// Token is the bearer token every call but GET /healthz must carry.
	// An empty token accepts no call at all: the API is never open by
	// accident.
	Token string
	// Logger receives failures (once, at the boundary) and, at Debug, one
	// line per request. nil means slog.Default().
	Logger *slog.Logger
	// Accounts, when set, serves /accounts (the EC2 API's tenants); nil
	// when the server runs no EC2 endpoint.
	Accounts Accounts
	// Metrics, when set, serves GET /metrics (Prometheus, no token: a
	// scraper should not hold the admin token).
	Metrics http.Handler
}

// route is one operation of the API. The mux and the OpenAPI document are
// both built from the table of routes.
type route struct {
	method  string
	path    string // ServeMux pattern path, also the OpenAPI path
	summary string
	body    reflect.Type // request body, nil if none
	resp    reflect.Type // response body, nil if none (204)
	list    bool         // the response is an array of resp
	status  int          // success status
	query   []string     // query parameters: "name", "revision"
	public  bool         // no token needed
	h       apiFunc
}

// apiFunc handles a request and returns the success status and body, or an
// error that classify maps to an answer.
type apiFunc func(w http.ResponseWriter, r *http.Request) (int, any, error)

type server struct {
	store    *nsdb.Store
	accounts Accounts
	log      *slog.Logger
	token    [sha256.Size]byte
	open     bool // a token was configured
	routes   []route
	mux      *http.ServeMux
	// patterns are the method patterns registered on mux, in order.
	patterns []string
	openapi  []byte
}

// New returns the REST API handler over store.
func New(store *nsdb.Store, opts Options) http.Handler {
	return newServer(store, opts)
}

func newServer(store *nsdb.Store, opts Options) *server {
	s := &server{store: store, accounts: opts.Accounts, log: opts.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	if opts.Token != "" {
		s.token = sha256.Sum256([]byte(opts.Token))
		s.open = true
	}
	s.routes = s.table()
	paths := map[string][]string{}
	var order []string
	for _, rt := range s.routes {
		pattern := rt.method + " " + rt.path
		s.mux.Handle(pattern, s.handler(rt))
		s.patterns = append(s.patterns, pattern)
		if paths[rt.path] == nil {
			order = append(order, rt.path)
		}
		paths[rt.path] = append(paths[rt.path], rt.method)
	}
	// A known path with another method is a 405 with an Allow header, in
	// the same JSON error shape as every other error (the mux's own answer
	// is plain text).
	for _, p := range order {
		allow := append([]string(nil), paths[p]...)
		if contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		sort.Strings(allow)
		s.mux.Handle(p, s.authed(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed, reason: "method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + strings.Join(allow, ", ")})
		}))
	}
	if opts.Metrics != nil {
		s.mux.Handle("GET /metrics", opts.Metrics)
	}
	s.mux.Handle("/", s.authed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &httpError{status: http.StatusNotFound, reason: "no such resource: " + r.URL.Path})
	}))
	doc, err := json.MarshalIndent(s.openAPI(), "", "  ")
	if err != nil {
		panic("api: marshal OpenAPI document: " + err.Error()) // static data; a test covers it
	}
	s.openapi = doc
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Without etcd quorum a request answers 503 within 2 s, not a hang.
	ctx, cancel := context.WithTimeout(r.Context(), nsdb.RequestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *server) handler(rt route) http.Handler {
	h := func(w http.ResponseWriter, r *http.Request) {
		status, body, err := rt.h(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		writeJSON(w, status, body)
	}
	if rt.public {
		return http.HandlerFunc(h)
	}
	return s.authed(h)
}

// authed wraps h with the token check. The token is compared as a SHA-256
// digest in constant time, so neither its content nor its length leaks
// through timing.
func (s *server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Auth-Token")
		if a := r.Header.Get("Authorization"); a != "" {
			scheme, t, ok := strings.Cut(a, " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				tok = strings.TrimSpace(t)
			}
		}
		if tok == "" {
			s.writeError(w, r, &httpError{status: http.StatusUnauthorized, reason: "missing token: send Authorization: Bearer <token> or X-Auth-Token"})
			return
		}
		sum := sha256.Sum256([]byte(tok))
		if !s.open || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			s.writeError(w, r, &httpError{status: http.StatusUnauthorized, reason: "invalid token"})
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// No HTML escaping: bodies are read by people and programs, never
	// embedded in a page, and "\u003e" in an error message helps nobody.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every body is made of topology types, which always marshal.
		http.Error(w, `{"error":{"status":500,"reason":"internal server error","message":"internal server error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Health is the body of GET /healthz: status "ok" (HTTP 200), or
// "unavailable" (HTTP 503) with the reason while the store cannot answer.
type Health struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// health probes the store (a linearizable read: etcd has a leader and a
// quorum), so a load balancer or an operator sees an outage here first.
func (s *server) health(_ http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := s.store.Health(r.Context()); err != nil {
		return http.StatusServiceUnavailable, Health{Status: "unavailable", Reason: err.Error()}, nil
	}
	return http.StatusOK, Health{Status: "ok"}, nil
}

// table lists every operation of the API.
func (s *server) table() []route {
	rs := []route{
		{method: "GET", path: "/healthz", summary: "Health of the API server and its store: 200, or 503 with a reason while etcd cannot answer (no token needed)",
			resp: reflect.TypeFor[Health](), status: 200, public: true, h: s.health},
		{method: "GET", path: "/openapi.json", summary: "This API's OpenAPI 3 document", status: 200, h: s.serveOpenAPI},
	}
	for _, k := range topology.Kinds {
		rs = append(rs, s.collectionRoutes(k)...)
	}
	rs = append(rs, s.traceRoutes()...)
	rs = append(rs, s.accountRoutes()...)
	rs = append(rs, s.gatewayRoutes()...)
	return append(rs, s.nestedRoutes()...)
}

func (s *server) serveOpenAPI(w http.ResponseWriter, r *http.Request) (int, any, error) {
	return 200, json.RawMessage(s.openapi), nil
}

// queryRevision parses the optional ?revision=N guard.
func queryRevision(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("revision")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &topology.FieldError{Field: "revision", Reason: "query parameter must be a non-negative integer, got " + strconv.Quote(v)}
	}
	return n, nil
}

// Types whose JSON form is a string with a format of its own.
var (
	typeAddr   = reflect.TypeFor[netip.Addr]()
	typePrefix = reflect.TypeFor[netip.Prefix]()
	typeMAC    = reflect.TypeFor[topology.MAC]()
)
