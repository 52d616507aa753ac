package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/pki"
)

// DefaultURL is where the CLI looks for the API when nothing else says;
// DefaultTLSURL when the data dir holds the CA of a canopy up (UpCAFile).
const (
	DefaultURL    = "http://127.0.0.1:8181"
	DefaultTLSURL = "https://127.0.0.1:8181"
)

// UpCAFile is where canopy up keeps the CA of its certificates, in its data
// dir: the CLI trusts it by default, and AWS_CA_BUNDLE names it for the AWS
// CLI.
func UpCAFile(dataDir string) string { return filepath.Join(dataDir, "pki", "ca.crt") }

// DefaultDataDir is the server's default data dir, where the admin token is.
const DefaultDataDir = "/var/lib/canopy"

// Client calls the REST topology API.
type Client struct {
	URL   string // base URL, no trailing slash
	Token string
	HTTP  *http.Client
}

// APIError is an error answered by the API: its status and the error body.
type APIError struct {
	Status  int    `json:"status"`
	Field   string `json:"field"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Reason
		if e.Field != "" {
			msg = e.Field + ": " + msg
		}
	}
	if msg == "" {
		msg = "(no message)"
	}
	return fmt.Sprintf("%s (HTTP %d %s)", msg, e.Status, http.StatusText(e.Status))
}

// IsNotFound reports whether err is an API 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// Do sends a request with an optional JSON body and returns the raw JSON
// answer (nil for 204). A non-2xx answer is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, body any) (json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		hint := "is `canopy server` running? set --url or CANOPY_URL"
		if strings.HasPrefix(c.URL, "https:") {
			hint += "; --ca-file or CANOPY_CA_FILE names the CA to trust"
		}
		return nil, fmt.Errorf("cannot reach the Canopy API at %s (%s): %w", c.URL, hint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Status: resp.StatusCode}
		var env struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error != nil {
			ae = env.Error
			ae.Status = resp.StatusCode
		} else {
			ae.Message = strings.TrimSpace(string(b))
		}
		return nil, ae
	}
	if resp.StatusCode == http.StatusNoContent || len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	return json.RawMessage(b), nil
}

// Get decodes GET path into out and returns the raw answer too.
func (c *Client) Get(ctx context.Context, path string, out any) (json.RawMessage, error) {
	raw, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("GET %s: decoding answer: %w", path, err)
		}
	}
	return raw, nil
}

// Send sends body with method and decodes the answer into out (if non-nil).
func (c *Client) Send(ctx context.Context, method, path string, body, out any) (json.RawMessage, error) {
	raw, err := c.Do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	if out != nil && raw != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return raw, nil
}

// ClientFlags are the connection settings given on the command line.
type ClientFlags struct {
	URL     string
	Token   string
	CAFile  string
	DataDir string
	Output  string
}

// FileConfig is the CLI config file: ~/.config/canopy/config.json or
// $CANOPY_CONFIG.
type FileConfig struct {
	URL    string `json:"url"`
	Token  string `json:"token"`
	CAFile string `json:"ca_file"`
}

// ResolveClient finds the API URL, token and CA: flags, then the environment
// (CANOPY_URL, CANOPY_TOKEN, CANOPY_CA_FILE), then the config file, then the
// data dir (from --data-dir, CANOPY_DATA_DIR or the server default): its
// admin-token, and its pki/ca.crt if a canopy up made one — which also makes
// the default URL https. getenv is os.Getenv outside tests.
func ResolveClient(f ClientFlags, getenv func(string) string) (*Client, error) {
	var fc FileConfig
	cfgPath := getenv("CANOPY_CONFIG")
	explicit := cfgPath != ""
	if !explicit {
		if home, err := os.UserHomeDir(); err == nil {
			cfgPath = filepath.Join(home, ".config", "canopy", "config.json")
		}
	}
	if cfgPath != "" {
		b, err := os.ReadFile(cfgPath)
		switch {
		case err == nil:
			if err := json.Unmarshal(b, &fc); err != nil {
				return nil, fmt.Errorf("config file %s: %w", cfgPath, err)
			}
		case explicit || !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("config file: %w", err)
		}
	}
	dir := first(f.DataDir, getenv("CANOPY_DATA_DIR"), DefaultDataDir)
	caFile := first(f.CAFile, getenv("CANOPY_CA_FILE"), fc.CAFile)
	defaultURL := DefaultURL
	if caFile == "" {
		if _, err := os.Stat(UpCAFile(dir)); err == nil {
			caFile, defaultURL = UpCAFile(dir), DefaultTLSURL
		}
	}
	c := &Client{HTTP: &http.Client{Timeout: 60 * time.Second}}
	c.URL = first(f.URL, getenv("CANOPY_URL"), fc.URL, defaultURL)
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API URL %q: want https://host:port (or http://)", c.URL)
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if u.Scheme == "https" && caFile != "" {
		tc, err := pki.ClientTLS(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		c.HTTP.Transport = tr
	}
	c.Token = first(f.Token, getenv("CANOPY_TOKEN"), fc.Token)
	if c.Token == "" {
		p := filepath.Join(dir, "admin-token")
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("no API token: pass --token, set CANOPY_TOKEN, put it in the config file, or let the CLI read %s (%v)", p, err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	return c, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
