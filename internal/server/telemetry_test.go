package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// get fetches url, waiting (up to 30 s) for the listener to come up.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerTelemetry: the server's /metrics (on the REST listener, no
// token) carries the Go runtime and process metrics and whether the store
// answers; the profiles are served on the opt-in --pprof-listen only, never
// on the REST or EC2 listeners.
func TestServerTelemetry(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen, cfg.EC2.Listen, cfg.PprofListen = freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.EtcdClientURL, cfg.EtcdPeerURL = "https://"+freeAddr(t), "https://"+freeAddr(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ready := make(chan string, 1)
	s.Ready = func(addr, _ string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready within 60 s")
	}

	st, body := get(t, "http://"+cfg.Listen+"/metrics")
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", st, body)
	}
	for _, m := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if !strings.Contains(body, "\n"+m+" ") {
			t.Errorf("/metrics has no %s", m)
		}
	}
	if !strings.Contains(body, "\ncanopy_server_store_up 1\n") {
		t.Errorf("/metrics does not say the store is up:\n%s", body)
	}
	if st, body := get(t, "http://"+cfg.Listen+"/healthz"); st != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Errorf("/healthz: %d %s", st, body)
	}
	if st, body := get(t, "http://"+cfg.PprofListen+"/debug/pprof/"); st != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index: %d\n%s", st, body)
	}
	if st, body := get(t, "http://"+cfg.PprofListen+"/debug/pprof/goroutine?debug=1"); st != http.StatusOK || !strings.Contains(body, "internal/server.(*Server).Run") {
		t.Errorf("goroutine profile: %d (want the server's goroutines)\n%.500s", st, body)
	}
	for _, l := range []string{cfg.Listen, cfg.EC2.Listen} {
		if st, body := get(t, "http://"+l+"/debug/pprof/"); st == http.StatusOK {
			t.Errorf("API listener %s serves the profiles:\n%.300s", l, body)
		}
	}
}

// TestPprofListenValidate: the profiles never share an API listener.
func TestPprofListenValidate(t *testing.T) {
	for _, addr := range []string{"nonsense", DefaultListen, DefaultConfig().EC2.Listen} {
		cfg := DefaultConfig()
		cfg.PprofListen = addr
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--pprof-listen") {
			t.Errorf("--pprof-listen %s: %v", addr, err)
		}
	}
}
