package metadata

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IMDSv2 headers and limits, as EC2 defines them.
const (
	HeaderToken    = "X-Aws-Ec2-Metadata-Token"
	HeaderTokenTTL = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	MaxTokenTTL    = 21600 // seconds (6 hours)
	tokenPath      = "api/token"
)

// A Resolver names the instance a request comes from; false means the
// request is from nobody the caller knows, and it is refused.
type Resolver func(r *http.Request) (*Instance, bool)

type ctxKey struct{}

// NewContext returns ctx carrying in. The agent's listener sets it per
// connection (http.Server.ConnContext) after mapping the connection's source
// to the port, and serves with FromContext as the Resolver.
func NewContext(ctx context.Context, in *Instance) context.Context {
	return context.WithValue(ctx, ctxKey{}, in)
}

// FromContext is a Resolver reading the instance NewContext stored.
func FromContext(r *http.Request) (*Instance, bool) {
	in, ok := r.Context().Value(ctxKey{}).(*Instance)
	return in, ok && in != nil
}

// SourceResolver resolves by the connection's source address, for a caller
// that gives every port a distinct source on the way to its listener (the
// agent rewrites the source of metadata flows to a per-port link-local
// address, so overlapping VPC CIDRs cannot collide).
func SourceResolver(lookup func(netip.Addr) (*Instance, bool)) Resolver {
	return func(r *http.Request) (*Instance, bool) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return nil, false
		}
		return lookup(ap.Addr().Unmap())
	}
}

// Config configures a Server.
type Config struct {
	Resolve Resolver
	// Secret keys the IMDSv2 token HMAC. Nil draws a random one: tokens then
	// die with the process, and clients simply fetch a new one on 401.
	Secret []byte
	// Now is the clock (tests inject one); nil is time.Now.
	Now func() time.Time
}

// Server is the metadata service, an http.Handler.
type Server struct {
	resolve Resolver
	secret  []byte
	now     func() time.Time
}

// New returns a Server. It fails only if no random secret can be drawn.
func New(cfg Config) (*Server, error) {
	s := &Server{resolve: cfg.Resolve, secret: cfg.Secret, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.secret == nil {
		s.secret = make([]byte, 32)
		if _, err := rand.Read(s.secret); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Server", "EC2ws")
	in, ok := s.resolve(r)
	if !ok {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	version, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if version != "" && !slices.Contains(Versions, version) {
		http.NotFound(w, r)
		return
	}
	if version != "" && rest == tokenPath {
		s.token(w, r, in)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(w, r, in) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if version == "" {
		writeText(w, strings.Join(Versions, "\n"))
		return
	}
	n, ok := tree(in).walk(rest)
	switch {
	case !ok:
		http.NotFound(w, r)
	case n.dir:
		writeText(w, n.listing())
	case rest == "user-data":
		h.Set("Content-Type", "application/octet-stream")
		w.Write([]byte(n.value))
	default:
		writeText(w, n.value)
	}
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(s))
}

// token answers PUT /latest/api/token: a session token for this instance,
// valid for the requested TTL.
func (s *Server) token(w http.ResponseWriter, r *http.Request, in *Instance) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", "PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	// EC2 refuses token requests that went through a proxy, so a process
	// proxying for others on the instance cannot obtain tokens for them.
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(HeaderTokenTTL))
	if err != nil || ttl < 1 || ttl > MaxTokenTTL {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	w.Header().Set(HeaderTokenTTL, strconv.Itoa(ttl))
	writeText(w, s.mint(in.ID, s.now().Unix()+int64(ttl)))
}

// authorized applies IMDSv2: a token, when sent, must be valid for this
// instance and unexpired; without one, only instances not requiring tokens
// are answered. It sets the remaining TTL header on tokened requests.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, in *Instance) bool {
	tok := r.Header.Get(HeaderToken)
	if tok == "" {
		return in.HTTPTokens != TokensRequired
	}
	exp, ok := s.verify(tok, in.ID)
	if !ok {
		return false
	}
	left := exp - s.now().Unix()
	if left <= 0 {
		return false
	}
	w.Header().Set(HeaderTokenTTL, strconv.FormatInt(left, 10))
	return true
}

// A token is base64url(expiry seconds ‖ HMAC-SHA256(secret, expiry ‖ id)).
// The instance id is not in the token; verification recomputes the MAC with
// the id of the asking instance, so a token travels to no other instance.
func (s *Server) mint(id string, exp int64) string {
	var b [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(b[:8], uint64(exp))
	copy(b[8:], s.sum(b[:8], id))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) verify(tok, id string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 8+sha256.Size {
		return 0, false
	}
	if !hmac.Equal(b[8:], s.sum(b[:8], id)) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[:8])), true
}

func (s *Server) sum(exp []byte, id string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write(exp)
	m.Write([]byte(id))
	return m.Sum(nil)
}
