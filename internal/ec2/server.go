package ec2

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"github.com/google/uuid"
)

// DefaultListen is the EC2 endpoint's default address.
const DefaultListen = "127.0.0.1:8788"

// maxBody bounds a request body (EC2 Query requests are small).
const maxBody = 1 << 20

// Config is the operator's configuration of the EC2 endpoint.
type Config struct {
	// Region is the region name the endpoint answers for (default us-east-1).
	Region string
	// Zones are the availability zones (default <region>a, b, c).
	Zones []string
	// PublicPool is where elastic IPs come from: CIDRs or first-last ranges.
	PublicPool []AddrRange
	// Limits are the quotas (zero fields: AWS's defaults).
	Limits vpc.Limits
	// ClockSkew is the allowed distance of a request's time (default 15 min).
	ClockSkew time.Duration
	// Key encrypts access-key secrets at rest (32 bytes; EnsureKey).
	Key []byte
	// Images is the image catalogue (default DefaultImages).
	Images []Image
	// Now is the clock (default time.Now); tests freeze it.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if len(c.Zones) == 0 {
		c.Zones = []string{c.Region + "a", c.Region + "b", c.Region + "c"}
	}
	c.Limits = c.Limits.WithDefaults()
	if c.ClockSkew == 0 {
		c.ClockSkew = MaxClockSkew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Images == nil {
		c.Images = DefaultImages()
	}
}

// Server is the EC2 (and STS GetCallerIdentity) Query API over a VPCStore.
type Server struct {
	cfg    Config
	store  *nsdb.VPCStore
	sealer *sealer
	log    *slog.Logger
	// closeStore closes the VPC store Open opened (Close).
	closeStore func()
}

// New returns the EC2 endpoint's handler.
func New(store *nsdb.VPCStore, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	sl, err := newSealer(cfg.Key)
	if err != nil {
		return nil, err
	}
	if err := checkImages(cfg.Images); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, store: store, sealer: sl, log: cfg.Logger}, nil
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// call is one authenticated request being answered.
type call struct {
	ctx    context.Context
	s      *Server
	p      params
	action string
	acct   string // the caller's account id
	dryRun bool
}

type actionFunc func(c *call) (*node, error)

// actions is the table of implemented EC2 actions (filled by the
// actions_*.go files' init functions). Everything else answers
// UnsupportedOperation.
var actions = map[string]actionFunc{}

func register(name string, f actionFunc) { actions[name] = f }

// Actions returns the names of the implemented actions (for docs and tests).
func Actions() []string {
	out := make([]string, 0, len(actions))
	for k := range actions {
		out = append(out, k)
	}
	return out
}

// errDryRun is answered when DryRun=true and the call would have succeeded.
var errDryRun = &vpc.Error{Code: vpc.CodeDryRunOperation, Message: "Request would have succeeded, but DryRun flag is set."}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The store work of a request has a budget: without etcd quorum the
	// caller gets ServiceUnavailable (which the SDKs retry) within 2 s
	// instead of a hang.
	ctx, cancel := context.WithTimeout(r.Context(), nsdb.RequestTimeout)
	defer cancel()
	r = r.WithContext(ctx)
	reqID := uuid.NewString()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		s.writeError(w, reqID, false, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "The request body is unreadable or too large."})
		return
	}
	p, err := parseParams(r, body)
	if err != nil {
		s.writeError(w, reqID, false, err)
		return
	}
	// The parameters say which API is called; the credential scope must
	// name that API's service (checked in verify).
	sts := p.str("Action") == "GetCallerIdentity" || strings.HasPrefix(p.str("Version"), "2011-06-15")
	service := serviceEC2
	if sts {
		service = serviceSTS
	}
	cred, err := s.verify(r.Context(), r, body, service)
	if err != nil {
		s.writeError(w, reqID, sts, err)
		return
	}
	if sts {
		s.serveSTS(w, reqID, p, cred)
		return
	}
	action := p.str("Action")
	f := actions[action]
	if f == nil {
		msg := fmt.Sprintf("The action %s is not supported by this endpoint.", action)
		if action == "" {
			msg = "The request must contain the parameter Action"
			s.writeError(w, reqID, false, &vpc.Error{Code: vpc.CodeMissingParameter, Message: msg})
			return
		}
		s.writeError(w, reqID, false, &vpc.Error{Code: vpc.CodeUnsupportedOperation, Message: msg})
		return
	}
	dry, err := p.boolean("DryRun", false)
	if err != nil {
		s.writeError(w, reqID, false, err)
		return
	}
	c := &call{ctx: r.Context(), s: s, p: p, action: action, acct: cred.AccountID, dryRun: dry}
	res, err := f(c)
	if err != nil {
		s.writeError(w, reqID, false, err)
		return
	}
	s.log.Debug("ec2 call", "action", action, "account", cred.AccountID, "request_id", reqID)
	out := newNode("")
	out.s("requestId", reqID)
	if res != nil {
		out.children = append(out.children, res.children...)
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(document(action+"Response", EC2Namespace, out))
}

// maxParams bounds the number of parameters of one request. Reading
// member lists (Filter.N.…, IpPermissions.N.…) costs parameters × members,
// so without a bound a 1 MiB body of tiny parameters would cost seconds.
// Real calls send at most a few hundred.
const maxParams = 5000

// parseParams merges the query string and a form body. The body wins.
func parseParams(r *http.Request, body []byte) (params, error) {
	p := params{}
	add := func(raw string) error {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "The request parameters are not valid form encoding."}
		}
		for k, vs := range v {
			p[k] = vs[len(vs)-1]
		}
		return nil
	}
	if err := add(r.URL.RawQuery); err != nil {
		return nil, err
	}
	if r.Method == http.MethodPost && len(body) > 0 {
		if err := add(string(body)); err != nil {
			return nil, err
		}
	}
	if len(p) > maxParams {
		return nil, &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: fmt.Sprintf("The request has %d parameters; at most %d are accepted.", len(p), maxParams)}
	}
	return p, p.validate()
}

// serveSTS answers the one STS action clients need on this endpoint.
func (s *Server) serveSTS(w http.ResponseWriter, reqID string, p params, cred *credential) {
	if a := p.str("Action"); a != "GetCallerIdentity" {
		s.writeError(w, reqID, true, &vpc.Error{Code: vpc.CodeInvalidAction, Message: fmt.Sprintf("Could not find operation %s for version 2011-06-15", a)})
		return
	}
	res := newNode("")
	r := res.el("GetCallerIdentityResult")
	r.s("Arn", "arn:aws:iam::"+cred.AccountID+":root").s("UserId", cred.AccountID).s("Account", cred.AccountID)
	res.el("ResponseMetadata").s("RequestId", reqID)
	body := document("GetCallerIdentityResponse", STSNamespace, res)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// newID mints a resource id of kind k.
func newID(k vpc.IDKind) string {
	var r [vpc.IDRandomBytes]byte
	_, _ = rand.Read(r[:])
	return vpc.NewID(k, r)
}

// update runs a change for the caller. With DryRun it answers
// DryRunOperation instead of committing, as AWS does, before anything about
// the cloud's current state: only a request that is itself wrong (a
// malformed or unknown id, a bad or missing parameter) answers its error.
func (c *call) update(f func(st *vpc.State, tx *nsdb.VPCTx) error) error {
	_, err := c.s.store.Update(c.ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		err := f(st, tx)
		if c.dryRun && (err == nil || !requestError(err)) {
			return errDryRun
		}
		return err
	})
	return err
}

// requestError reports whether err says the request itself is wrong rather
// than that the cloud's state refuses it (a quota, a dependency, a state).
func requestError(err error) bool {
	var ve *vpc.Error
	if !errors.As(err, &ve) {
		return true
	}
	c := string(ve.Code)
	return strings.HasSuffix(c, "Malformed") || strings.HasSuffix(c, "NotFound") || strings.HasPrefix(c, "InvalidParameter") ||
		slices.Contains([]vpc.Code{vpc.CodeMissingParameter, vpc.CodeUnsupportedOperation, vpc.CodeInvalidInstanceType}, ve.Code)
}

// change runs f as the caller's change (see update) and answers
// <return>true</return>: what most actions that only change state answer.
func (c *call) change(f func(st *vpc.State, tx *nsdb.VPCTx) error) (*node, error) {
	if err := c.update(f); err != nil {
		return nil, err
	}
	return returnTrue(), nil
}

// read runs f on the current state; with DryRun it answers DryRunOperation.
func (c *call) read(f func(st *vpc.State) error) error {
	if c.dryRun {
		return errDryRun
	}
	var err error
	c.s.store.Read(func(st *vpc.State) { err = f(st) })
	return err
}

// clientTokenKey is where a create call's ClientToken maps to what it made.
func (c *call) clientTokenKey(token string) string {
	return nsdb.ClientTokenRel(c.acct, c.action, tokenHash(token))
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:16])
}

// tokenTarget returns the id an earlier call with the same ClientToken
// created, or "" (no token, or never seen).
func (c *call) tokenTarget() (string, error) {
	tok := c.p.str("ClientToken")
	if tok == "" {
		return "", nil
	}
	if len(tok) > 64 {
		return "", &vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "ClientToken is longer than 64 characters."}
	}
	id, _, err := c.s.store.Store().ClientTokenTarget(c.ctx, c.acct, c.action, tokenHash(tok))
	return id, err
}

// rememberToken records, in the create's own transaction, that its
// ClientToken made id.
// createOnce is an idempotent create (ClientToken): a retry whose token a
// committed create recorded answers that create's object, found by lookup;
// otherwise create runs in one transaction, which also records the token
// against the id create returns.
func createOnce[T any](c *call, lookup func(st *vpc.State, id string) (*T, error), create func(st *vpc.State, tx *nsdb.VPCTx) (*T, string, error)) (*T, error) {
	prev, err := c.tokenTarget()
	if err != nil {
		return nil, err
	}
	var out *T
	if prev != "" {
		c.s.store.Read(func(st *vpc.State) {
			if o, err := lookup(st, prev); err == nil {
				out = o
			}
		})
	}
	if out != nil {
		return out, nil
	}
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		o, id, err := create(st, tx)
		if err != nil {
			return err
		}
		out = o
		return c.rememberToken(tx, id)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (c *call) rememberToken(tx *nsdb.VPCTx, id string) error {
	if tok := c.p.str("ClientToken"); tok != "" {
		return tx.PutKey(c.clientTokenKey(tok), []byte(id))
	}
	return nil
}

// ids returns the caller's id list parameter (VpcId.1, …), each checked
// for well-formedness.
func (c *call) ids(param string, k vpc.IDKind) ([]string, error) {
	ids := c.p.list(param)
	for _, id := range ids {
		if err := vpc.ParseID(k, id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// requiredID returns a required id parameter, checked for its kind.
func (c *call) requiredID(param string, k vpc.IDKind) (string, error) {
	id, err := c.p.required(param)
	if err != nil {
		return "", err
	}
	if err := vpc.ParseID(k, id); err != nil {
		return "", err
	}
	return id, nil
}

// returnTrue is the answer of the actions that answer <return>true</return>.
func returnTrue() *node { return newNode("").b("return", true) }
