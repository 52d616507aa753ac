package ec2

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// MaxClockSkew is how far a request's X-Amz-Date may be from the server's
// clock, as AWS allows.
const MaxClockSkew = 15 * time.Minute

// KeyFileName is the server key's file in the data dir.
const KeyFileName = "ec2-key"

// EnsureKey returns the server key that encrypts access-key secrets at rest,
// creating <dataDir>/ec2-key (mode 0600, 32 random bytes) on first use.
// Every server sharing one etcd uses one key: the server proposes this one
// to the store, which keeps the first server's (nsdb.SharedSecret), and
// writes the store's back here (WriteKey).
func EnsureKey(dataDir string) ([]byte, error) {
	p := filepath.Join(dataDir, KeyFileName)
	b, err := os.ReadFile(p)
	if err == nil {
		k, derr := ParseKey(string(b))
		if derr != nil {
			return nil, fmt.Errorf("%s: %w", p, derr)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return EnsureKey(dataDir)
		}
		return nil, err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// ParseKey decodes a server key as EnsureKey writes it (base64).
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != 32 {
		return nil, errors.New("not a base64 32-byte key")
	}
	return k, nil
}

// FormatKey encodes a server key as EnsureKey writes it.
func FormatKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// WriteKey replaces <dataDir>/ec2-key with k (mode 0600, renamed into
// place), unless it holds k already.
func WriteKey(dataDir string, k []byte) error {
	p := filepath.Join(dataDir, KeyFileName)
	if cur, err := EnsureKey(dataDir); err == nil && string(cur) == string(k) {
		return nil
	}
	tmp, err := os.CreateTemp(dataDir, ".ec2-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(FormatKey(k) + "\n")
	if err := errors.Join(tmp.Chmod(0o600), werr, tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// sealer encrypts secrets with AES-256-GCM under the server key. SigV4
// verification needs the secret itself, so it cannot be hashed.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("ec2: server key must be 32 bytes, not %d", len(key))
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: a}, nil
}

// seal encrypts secret; the access key id is bound in as associated data, so
// a sealed secret moved to another key's record does not open.
func (s *sealer) seal(accessKey, secret string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(secret), []byte(accessKey)))
}

func (s *sealer) open(accessKey, sealed string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("sealed secret is malformed")
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], []byte(accessKey))
	if err != nil {
		return "", errors.New("sealed secret does not open with this server key")
	}
	return string(pt), nil
}

// accessKeyRecord is what <prefix>ec2/keys/<access key id> holds.
type accessKeyRecord struct {
	AccountID    string    `json:"account_id"`
	SealedSecret string    `json:"sealed_secret"`
	Created      time.Time `json:"created"`
}

// credential is a verified caller.
type credential struct {
	AccessKey string
	AccountID string
}

func authFailure(msg string) *vpc.Error {
	return &vpc.Error{Code: vpc.CodeAuthFailure, Message: msg}
}

// sigParts is a parsed Authorization header.
type sigParts struct {
	accessKey, date, region, service string
	signedHeaders                    string
	signature                        string
}

func parseAuthorization(h string) (sigParts, error) {
	var p sigParts
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return p, authFailure("AWS was not able to validate the provided access credentials (only AWS4-HMAC-SHA256 signatures are accepted)")
	}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			c := strings.Split(v, "/")
			if len(c) != 5 || c[4] != "aws4_request" {
				return p, authFailure("Malformed credential scope")
			}
			p.accessKey, p.date, p.region, p.service = c[0], c[1], c[2], c[3]
		case "SignedHeaders":
			p.signedHeaders = v
		case "Signature":
			p.signature = v
		}
	}
	if p.accessKey == "" || p.signedHeaders == "" || p.signature == "" {
		return p, authFailure("Malformed Authorization header")
	}
	return p, nil
}

// Signing names of the two APIs this endpoint serves.
const (
	serviceEC2 = "ec2"
	serviceSTS = "sts"
)

// checkScope refuses a credential scope naming another region than the
// endpoint's or another service than the one the request calls: a signature
// is only good for the region and service it was made for, so a request
// signed for eu-west-1, or for s3, must not work here. The messages are
// AWS's (IAM "Troubleshoot signed requests"), with the expected value named.
func (s *Server) checkScope(sp sigParts, service string) error {
	fail := authFailure
	if service == serviceSTS {
		fail = func(msg string) *vpc.Error { return &vpc.Error{Code: vpc.CodeSignatureDoesNotMatch, Message: msg} }
	}
	if sp.region != s.cfg.Region {
		return fail(fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. This endpoint serves '%s'.", sp.region, s.cfg.Region))
	}
	if sp.service != service {
		return fail(fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service))
	}
	return nil
}

// verify checks r's SigV4 signature over body, for service (ec2 or sts) in
// the endpoint's region, by signing a copy of the request with
// aws-sdk-go-v2's signer and comparing in constant time.
func (s *Server) verify(ctx context.Context, r *http.Request, body []byte, service string) (*credential, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		// Credentials in the parameters (query string or form body) are
		// credentials in a form not taken: say so rather than call them
		// missing.
		q := r.URL.Query()
		form, _ := url.ParseQuery(string(body))
		param := func(k string) bool { return q.Get(k) != "" || form.Get(k) != "" }
		if param("X-Amz-Signature") {
			return nil, authFailure("Presigned (query string) requests are not supported; sign the Authorization header")
		}
		if param("Signature") || param("SignatureVersion") || param("AWSAccessKeyId") {
			return nil, authFailure("Signature Version 2 is not supported; sign the request with Signature Version 4 in the Authorization header")
		}
		// No credentials at all is not a failed authentication: AWS answers
		// MissingAuthenticationToken, and clients branch on the difference.
		return nil, &vpc.Error{Code: vpc.CodeMissingAuthenticationToken, Message: "The request must contain either a valid (registered) AWS access key ID or X.509 certificate (sign it with AWS Signature Version 4)."}
	}
	sp, err := parseAuthorization(h)
	if err != nil {
		return nil, err
	}
	if err := s.checkScope(sp, service); err != nil {
		return nil, err
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil {
		return nil, authFailure("X-Amz-Date is missing or malformed")
	}
	if sp.date != t.Format("20060102") {
		return nil, authFailure("The credential scope's date does not match X-Amz-Date")
	}
	now := s.now()
	if d := now.Sub(t); d > s.cfg.ClockSkew || -d > s.cfg.ClockSkew {
		return nil, &vpc.Error{Code: vpc.CodeRequestExpired, Message: fmt.Sprintf("Request has expired: its time %s is more than %s from the server's time %s.", t.Format(time.RFC3339), s.cfg.ClockSkew, now.UTC().Format(time.RFC3339))}
	}
	rec, err := s.lookupKey(ctx, sp.accessKey)
	if err != nil {
		return nil, err
	}
	secret, err := s.sealer.open(sp.accessKey, rec.SealedSecret)
	if err != nil {
		return nil, fmt.Errorf("access key %s: %w", sp.accessKey, err)
	}

	// A fresh request carrying only the signed headers.
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	req, err := http.NewRequestWithContext(ctx, r.Method, u.String(), nil)
	if err != nil {
		return nil, authFailure("The request URL cannot be signed")
	}
	req.Host = r.Host
	for _, name := range strings.Split(sp.signedHeaders, ";") {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			for _, v := range r.Header.Values(name) {
				req.Header.Add(name, v)
			}
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: sp.accessKey, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), sp.service, sp.region, t); err != nil {
		return nil, fmt.Errorf("re-signing: %w", err)
	}
	want, err := parseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		return nil, fmt.Errorf("re-signing: %w", err)
	}
	okSig := subtle.ConstantTimeCompare([]byte(want.signature), []byte(sp.signature)) == 1
	okHdr := want.signedHeaders == sp.signedHeaders
	if !okSig || !okHdr {
		return nil, authFailure("AWS was not able to validate the provided access credentials (the signature does not match)")
	}
	return &credential{AccessKey: sp.accessKey, AccountID: rec.AccountID}, nil
}

// lookupKey reads an access key's record from the store.
func (s *Server) lookupKey(ctx context.Context, accessKey string) (*accessKeyRecord, error) {
	if accessKey == "" || strings.ContainsAny(accessKey, "/ ") {
		return nil, authFailure("AWS was not able to validate the provided access credentials")
	}
	v, found, err := s.store.Store().AccessKey(ctx, accessKey)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, authFailure("AWS was not able to validate the provided access credentials")
	}
	var rec accessKeyRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("access key %s: %w", accessKey, err)
	}
	return &rec, nil
}
