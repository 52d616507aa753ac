package keystone

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenSignVerify(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := NewSigner([]byte("server key"), clock)
	tok := s.Sign(&Token{UserID: "AKIAX", ProjectID: "123456789012", ProjectName: "alpha", Roles: []string{RoleMember}, Issued: now, Expires: now.Add(time.Hour)})

	got, err := s.Verify(tok)
	if err != nil || got.ProjectID != "123456789012" || got.Admin() {
		t.Fatalf("Verify: %+v %v", got, err)
	}
	// Another server key, a changed payload, a changed signature, other
	// formats: refused.
	other := NewSigner([]byte("other key"), clock)
	body, sig, _ := strings.Cut(strings.TrimPrefix(tok, tokenPrefix), ".")
	for name, bad := range map[string]string{
		"other key":    "",
		"payload":      tokenPrefix + body[:len(body)-2] + "AA." + sig,
		"signature":    tokenPrefix + body + "." + sig[:len(sig)-2] + "AA",
		"no prefix":    strings.TrimPrefix(tok, tokenPrefix),
		"no signature": tokenPrefix + body,
		"empty":        "",
		"huge":         tokenPrefix + strings.Repeat("A", 5000) + "." + sig,
	} {
		v := s
		if bad == "" && name == "other key" {
			v, bad = other, tok
		}
		if _, err := v.Verify(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %v, want ErrBadToken", name, err)
		}
	}
	// Expired an hour later.
	now = now.Add(time.Hour)
	if _, err := s.Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("after expiry: %v", err)
	}
}
