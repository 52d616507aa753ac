package keystone

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/ec2"
)

// DefaultListen is the identity endpoint's default address.
const DefaultListen = "127.0.0.1:5000"

// Region is the one region of the catalog.
const Region = "RegionOne"

// Domain is the one domain: every user and project is in it.
const (
	DomainID   = "default"
	DomainName = "Default"
)

// AdminUser is the operator's user name.
const AdminUser = "admin"

// DefaultTTL is how long a token lives, as Keystone's default.
const DefaultTTL = time.Hour

// Accounts are Canopy's accounts (the EC2 server).
type Accounts interface {
	Authenticate(ctx context.Context, accessKey, secret string) (string, error)
	ListAccounts(ctx context.Context) ([]ec2.AccountInfo, error)
}

// Config of the identity endpoint.
type Config struct {
	Accounts Accounts
	Signer   *Signer
	// AdminToken is user admin's password (the server's admin token).
	AdminToken string
	// NetworkURL returns the Neutron endpoint's URL for a request that
	// reached this endpoint at host (the Host header), so the catalog names
	// an address the client can reach.
	NetworkURL func(host string) string
	TTL        time.Duration
	Logger     *slog.Logger
}

// Server is the identity endpoint's handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

// New returns the handler.
func New(cfg Config) *Server {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.versions)
	s.mux.HandleFunc("GET /v3", s.version)
	s.mux.HandleFunc("GET /v3/{$}", s.version)
	s.mux.HandleFunc("POST /v3/auth/tokens", s.issue)
	s.mux.HandleFunc("GET /v3/auth/tokens", s.validate)
	s.mux.HandleFunc("HEAD /v3/auth/tokens", s.validate)
	s.mux.HandleFunc("GET /v3/projects", s.projects)
	s.mux.HandleFunc("GET /v3/auth/projects", s.projects)
	s.mux.HandleFunc("GET /v3/projects/{id}", s.project)
	s.mux.HandleFunc("GET /v3/domains", s.domains)
	s.mux.HandleFunc("GET /v3/domains/{id}", s.domain)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "The resource could not be found.")
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func (s *Server) base(r *http.Request) string { return scheme(r) + "://" + r.Host }

func (s *Server) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]string{"rel": "self", "href": s.base(r) + "/v3/"}},
		"media-types": []any{map[string]string{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{s.versionDoc(r)}}})
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": s.versionDoc(r)})
}

// authRequest is the body of POST /v3/auth/tokens (password and token
// methods).
type authRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					ID       string `json:"id"`
					Name     string `json:"name"`
					Password string `json:"password"`
					Domain   ref    `json:"domain"`
				} `json:"user"`
			} `json:"password"`
			Token struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type scope struct {
	Project *struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Domain ref    `json:"domain"`
	} `json:"project"`
	Domain *ref `json:"domain"`
	System any  `json:"system"`
}

// errUnauthorized is the one answer to bad credentials: which part was
// wrong is not told.
var errUnauthorized = errors.New("The request you have made requires authentication.")

func inDomain(d ref) bool {
	return (d.ID == "" && d.Name == "") || d.ID == DomainID || d.Name == DomainName
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request) {
	var req authRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || json.Unmarshal(body, &req) != nil {
		writeError(w, http.StatusBadRequest, "The request body is not a JSON auth request.")
		return
	}
	id := req.Auth.Identity
	var tok *Token
	switch {
	case slices.Contains(id.Methods, "password"):
		u := id.Password.User
		if !inDomain(u.Domain) {
			writeError(w, http.StatusUnauthorized, errUnauthorized.Error())
			return
		}
		tok, err = s.password(r.Context(), cmpOr(u.ID, u.Name), u.Password)
	case slices.Contains(id.Methods, "token"):
		tok, err = s.cfg.Signer.Verify(id.Token.ID)
		if err == nil {
			t := *tok
			t.ProjectID, t.ProjectName = "", ""
			tok = &t
		}
	default:
		writeError(w, http.StatusBadRequest, "Only the password and token methods are supported.")
		return
	}
	if err != nil {
		s.cfg.Logger.Debug("keystone: authentication refused", "err", err)
		writeError(w, http.StatusUnauthorized, errUnauthorized.Error())
		return
	}
	if len(req.Auth.Scope) > 0 && string(req.Auth.Scope) != "null" && string(req.Auth.Scope) != `"unscoped"` {
		var sc scope
		if err := json.Unmarshal(req.Auth.Scope, &sc); err != nil {
			writeError(w, http.StatusBadRequest, "The scope is malformed.")
			return
		}
		if sc.Project == nil {
			writeError(w, http.StatusUnauthorized, "Only project scopes are supported.")
			return
		}
		if !inDomain(sc.Project.Domain) {
			writeError(w, http.StatusUnauthorized, errUnauthorized.Error())
			return
		}
		if err := s.scopeTo(r.Context(), tok, sc.Project.ID, sc.Project.Name); err != nil {
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
	}
	now := time.Now().UTC()
	tok.Issued = now
	if tok.Expires.IsZero() || tok.Expires.After(now.Add(s.cfg.TTL)) {
		tok.Expires = now.Add(s.cfg.TTL)
	}
	w.Header().Set("X-Subject-Token", s.cfg.Signer.Sign(tok))
	writeJSON(w, http.StatusCreated, map[string]any{"token": s.tokenDoc(r, tok, true)})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// password authenticates a user: admin with the admin token, or an access
// key with its secret (whose project is then its account).
func (s *Server) password(ctx context.Context, user, password string) (*Token, error) {
	if user == AdminUser {
		if s.cfg.AdminToken == "" || subtle.ConstantTimeCompare([]byte(password), []byte(s.cfg.AdminToken)) != 1 {
			return nil, errUnauthorized
		}
		return &Token{UserID: AdminUser, UserName: AdminUser, Roles: []string{RoleAdmin, RoleMember, RoleReader}}, nil
	}
	acct, err := s.cfg.Accounts.Authenticate(ctx, user, password)
	if err != nil {
		return nil, err
	}
	// The key's own project is remembered so a scope to another fails.
	return &Token{UserID: user, UserName: user, ProjectID: acct, Roles: []string{RoleMember, RoleReader}}, nil
}

// scopeTo sets the token's project (by id or name): any account for
// admin, the key's own account otherwise.
func (s *Server) scopeTo(ctx context.Context, t *Token, id, name string) error {
	accts, err := s.cfg.Accounts.ListAccounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if (id != "" && a.AccountID == id) || (id == "" && name != "" && a.Name == name) {
			if !t.Admin() && t.ProjectID != a.AccountID && !slices.Contains(a.AccessKeys, t.UserID) {
				return errUnauthorized
			}
			t.ProjectID, t.ProjectName = a.AccountID, a.Name
			return nil
		}
	}
	return fmt.Errorf("Could not find project: %s.", cmpOr(id, name))
}

func (s *Server) tokenDoc(r *http.Request, t *Token, catalog bool) map[string]any {
	dom := map[string]string{"id": DomainID, "name": DomainName}
	doc := map[string]any{
		"methods":    []string{"password"},
		"user":       map[string]any{"id": t.UserID, "name": t.UserName, "domain": dom, "password_expires_at": nil},
		"issued_at":  t.Issued.Format("2006-01-02T15:04:05.000000Z"),
		"expires_at": t.Expires.Format("2006-01-02T15:04:05.000000Z"),
		"audit_ids":  []string{},
	}
	if t.ProjectName == "" { // an unscoped token names no project
		return doc
	}
	var roles []any
	for _, r := range t.Roles {
		roles = append(roles, map[string]string{"id": r, "name": r})
	}
	doc["roles"] = roles
	doc["project"] = map[string]any{"id": t.ProjectID, "name": t.ProjectName, "domain": dom}
	doc["is_domain"] = false
	if catalog {
		doc["catalog"] = s.catalog(r)
	}
	return doc
}

func (s *Server) catalog(r *http.Request) []any {
	service := func(typ, name, url string) map[string]any {
		var eps []any
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]string{"id": name + "-" + iface, "interface": iface, "region": Region, "region_id": Region, "url": url})
		}
		return map[string]any{"id": name, "type": typ, "name": name, "endpoints": eps}
	}
	out := []any{service("identity", "keystone", s.base(r)+"/v3/")}
	if s.cfg.NetworkURL != nil {
		out = append(out, service("network", "neutron", s.cfg.NetworkURL(r.Host)))
	}
	return out
}

// caller is the token of X-Auth-Token, or an answer already written.
func (s *Server) caller(w http.ResponseWriter, r *http.Request) *Token {
	t, err := s.cfg.Signer.Verify(r.Header.Get("X-Auth-Token"))
	if err != nil {
		writeError(w, http.StatusUnauthorized, errUnauthorized.Error())
		return nil
	}
	return t
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	if s.caller(w, r) == nil {
		return
	}
	t, err := s.cfg.Signer.Verify(r.Header.Get("X-Subject-Token"))
	if err != nil {
		writeError(w, http.StatusNotFound, "Could not find token.")
		return
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	writeJSON(w, http.StatusOK, map[string]any{"token": s.tokenDoc(r, t, r.URL.Query().Get("nocatalog") == "")})
}

func (s *Server) visibleProjects(ctx context.Context, t *Token) ([]map[string]any, error) {
	accts, err := s.cfg.Accounts.ListAccounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, a := range accts {
		if t.Admin() || a.AccountID == t.ProjectID || slices.Contains(a.AccessKeys, t.UserID) {
			out = append(out, map[string]any{"id": a.AccountID, "name": a.Name, "domain_id": DomainID,
				"enabled": true, "is_domain": false, "parent_id": DomainID, "description": "Canopy account " + a.Name,
				"tags": []string{}, "links": map[string]string{}})
		}
	}
	return out, nil
}

func (s *Server) projects(w http.ResponseWriter, r *http.Request) {
	t := s.caller(w, r)
	if t == nil {
		return
	}
	ps, err := s.visibleProjects(r.Context(), t)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "The accounts cannot be read now.")
		return
	}
	if name := r.URL.Query().Get("name"); name != "" {
		ps = slices.DeleteFunc(ps, func(p map[string]any) bool { return p["name"] != name })
	}
	if ps == nil {
		ps = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": ps, "links": map[string]any{"self": s.base(r) + r.URL.Path, "next": nil, "previous": nil}})
}

func (s *Server) project(w http.ResponseWriter, r *http.Request) {
	t := s.caller(w, r)
	if t == nil {
		return
	}
	ps, err := s.visibleProjects(r.Context(), t)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "The accounts cannot be read now.")
		return
	}
	for _, p := range ps {
		if p["id"] == r.PathValue("id") {
			writeJSON(w, http.StatusOK, map[string]any{"project": p})
			return
		}
	}
	writeError(w, http.StatusNotFound, "Could not find project: "+r.PathValue("id")+".")
}

// domainDoc is the one domain's document.
func (s *Server) domainDoc(r *http.Request) map[string]any {
	return map[string]any{"id": DomainID, "name": DomainName, "enabled": true,
		"description": "The one domain: every Canopy account is a project in it", "tags": []string{}, "options": map[string]any{},
		"links": map[string]any{"self": s.base(r) + "/v3/domains/" + DomainID}}
}

// domains lists the one domain (every caller is in it), filtered by
// name= and enabled= as Keystone filters.
func (s *Server) domains(w http.ResponseWriter, r *http.Request) {
	if s.caller(w, r) == nil {
		return
	}
	ds := []map[string]any{s.domainDoc(r)}
	q := r.URL.Query()
	if q.Has("name") && q.Get("name") != DomainName || q.Has("enabled") && !slices.Contains([]string{"", "1", "true", "True"}, q.Get("enabled")) {
		ds = ds[:0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": ds, "links": map[string]any{"self": s.base(r) + r.URL.Path, "next": nil, "previous": nil}})
}

func (s *Server) domain(w http.ResponseWriter, r *http.Request) {
	if s.caller(w, r) == nil {
		return
	}
	if r.PathValue("id") != DomainID {
		writeError(w, http.StatusNotFound, "Could not find domain: "+r.PathValue("id")+".")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": s.domainDoc(r)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes Keystone's error document.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": status, "title": http.StatusText(status), "message": msg}})
}

// HostPort swaps the port of a Host header value (for NetworkURL).
func HostPort(host, port string) string {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = strings.Trim(host, "[]")
	}
	return net.JoinHostPort(h, port)
}
