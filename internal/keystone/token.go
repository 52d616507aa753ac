package keystone

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Token is what a token says about its holder.
type Token struct {
	UserID      string    `json:"u"`
	UserName    string    `json:"un"`
	ProjectID   string    `json:"p,omitempty"` // "" = unscoped
	ProjectName string    `json:"pn,omitempty"`
	Roles       []string  `json:"r,omitempty"`
	Issued      time.Time `json:"i"`
	Expires     time.Time `json:"e"`
}

// Admin reports whether the token carries the admin role.
func (t *Token) Admin() bool {
	for _, r := range t.Roles {
		if r == RoleAdmin {
			return true
		}
	}
	return false
}

// Roles Canopy hands out.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
)

// tokenPrefix versions the token format.
const tokenPrefix = "cnp1."

// Signer makes and checks tokens with one key.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a signer whose key is derived from secret (the
// server's key): the token key is never the key itself.
func NewSigner(secret []byte, now func() time.Time) *Signer {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("canopy keystone token key"))
	if now == nil {
		now = time.Now
	}
	return &Signer{key: m.Sum(nil), now: now}
}

// Sign encodes t as a token string.
func (s *Signer) Sign(t *Token) string {
	b, _ := json.Marshal(t)
	p := base64.RawURLEncoding.EncodeToString(b)
	return tokenPrefix + p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

func (s *Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrBadToken     = errors.New("the token is malformed or its signature does not match")
	ErrTokenExpired = errors.New("the token has expired")
)

// Verify checks a token's signature and expiry and returns its claims.
func (s *Signer) Verify(tok string) (*Token, error) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok || len(tok) > 4096 {
		return nil, ErrBadToken
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, ErrBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(p)) {
		return nil, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, ErrBadToken
	}
	var t Token
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, ErrBadToken
	}
	if !s.now().Before(t.Expires) {
		return nil, ErrTokenExpired
	}
	return &t, nil
}
