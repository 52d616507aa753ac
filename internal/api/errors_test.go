package api

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func TestClassify(t *testing.T) {
	rows := []struct {
		err    error
		status int
		field  string
	}{
		{&topology.FieldError{Field: "mac", Reason: "bad"}, 400, "mac"},
		{fmt.Errorf("create port: %w", &topology.FieldError{Field: "address", Reason: "bad"}), 400, "address"},
		{notFound("router", "r1"), 404, ""},
		{fmt.Errorf("get: %w", nsdb.ErrNotFound), 404, ""},
		{&nsdb.RevisionError{Key: topology.ObjectKey{Kind: topology.KindRouter, ID: "r"}, Want: 1, Current: 2}, 409, "revision"},
		{&topology.ConflictError{Field: "peer_id", Reason: "linked"}, 409, "peer_id"},
		{fmt.Errorf("x: %w", nsdb.ErrConflict), 409, ""},
		{&httpError{status: 405, reason: "no"}, 405, ""},
		{errors.New("etcd: connection refused"), 500, ""},
		{fmt.Errorf("commit: %w", fmt.Errorf("%w: etcdserver: no leader", nsdb.ErrUnavailable)), 503, ""},
	}
	for _, r := range rows {
		d := classify(r.err)
		if d.Status != r.status || d.Field != r.field {
			t.Errorf("%v: %d %q, want %d %q", r.err, d.Status, d.Field, r.status, r.field)
		}
		if r.status == 503 && !strings.Contains(d.Reason, "etcd") {
			t.Errorf("503 does not name the store: %q", d.Reason)
		}
		if r.status == 500 && strings.Contains(d.Message, "etcd") {
			t.Errorf("500 leaks the detail: %q", d.Message)
		}
	}
}

// An internal error is logged once, with its detail, and answered without it.
func TestInternalErrorLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	s := &server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	w := httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest("GET", "/routers", nil), fmt.Errorf("list: %w", errors.New("etcd down")))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "etcd") {
		t.Fatalf("answer %d %s", w.Code, w.Body)
	}
	if n := strings.Count(logs.String(), "etcd down"); n != 1 {
		t.Fatalf("logged %d times: %s", n, logs.String())
	}
	logs.Reset()
	s.writeError(httptest.NewRecorder(), httptest.NewRequest("GET", "/routers/x", nil), notFound("router", "x"))
	if logs.Len() != 0 {
		t.Fatalf("a client error was logged: %s", logs.String())
	}
}

// FuzzDecode feeds arbitrary bodies to the strict decoder for every body
// type the API accepts: it must never panic, and every failure must be a
// client error (4xx), never a 500.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"name":"r"}`, `{"mac":"02:00:00:00:00:01","address":"10.0.0.1/24"}`, `{"rules":[{"action":"accept","tp_dst":{"start":1,"end":2}}]}`,
		`{"address":"10.0.0.1/33"}`, `{"nw_proto":300}`, `[1,2]`, `{"labels":{"a":1}}`, `{"position":-1}`, `{`, `null`, `"x"`,
		`{"members":[{"host_id":5}]}`, `{"bgp":{"peers":[{"address":"x"}]}}`,
	} {
		f.Add([]byte(seed))
	}
	s := newServer(nil, Options{})
	var types []reflect.Type
	for _, rt := range s.routes {
		if rt.body != nil {
			types = append(types, rt.body)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range types {
			v := reflect.New(typ).Interface()
			if h, ok := v.(*Host); ok {
				h.Host = &topology.Host{}
			}
			err := decodeBytes(body, v)
			if err == nil {
				continue
			}
			if st := classify(err).Status; st < 400 || st > 499 {
				t.Fatalf("%s: body %q: status %d for %v", typ, body, st, err)
			}
		}
	})
}
