package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
)

const testToken = "test-token-0123456789"

// env is an API server over a real embedded store, reached over HTTP on
// loopback.
type env struct {
	t     *testing.T
	store *nsdb.Store
	srv   *server
	url   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, _ := nsdbtest.OpenEmbedded(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := newServer(store, Options{Token: testToken, Logger: log})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, store: store, srv: srv, url: hs.URL}
}

// raw sends a request with the test token; body is sent as is when it is a
// string, JSON-encoded otherwise, and absent when nil.
func (e *env) raw(method, path string, body any, hdr http.Header) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if hdr == nil {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// do sends a request, requires status want and decodes the answer into out
// (when out is non-nil).
func (e *env) do(method, path string, body any, want int, out any) {
	e.t.Helper()
	got, b := e.raw(method, path, body, nil)
	if got != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// id creates an object through the API and returns its id.
func (e *env) id(path string, body any) string {
	e.t.Helper()
	var m struct {
		ID string `json:"id"`
	}
	e.do("POST", path, body, http.StatusCreated, &m)
	if m.ID == "" {
		e.t.Fatalf("POST %s: no id in answer", path)
	}
	return m.ID
}

// get reads an object straight from the store.
func (e *env) get(k topology.Kind, id string) topology.Object {
	e.t.Helper()
	o, err := e.store.Get(context.Background(), k, id)
	if err != nil {
		e.t.Fatalf("store get %s %s: %v", k, id, err)
	}
	return o
}

// dump is the whole topology as the store holds it, revisions included.
func (e *env) dump() string {
	e.t.Helper()
	var b strings.Builder
	for _, k := range topology.Kinds {
		objs, err := e.store.List(context.Background(), k)
		if err != nil {
			e.t.Fatalf("list %s: %v", k, err)
		}
		j, err := json.Marshal(objs)
		if err != nil {
			e.t.Fatal(err)
		}
		b.WriteString(string(k) + " " + string(j) + "\n")
	}
	return b.String()
}

// apiError decodes an error body.
func apiError(t *testing.T, b []byte) ErrorDetail {
	t.Helper()
	var eb ErrorBody
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body %s: %v", b, err)
	}
	return eb.Error
}
