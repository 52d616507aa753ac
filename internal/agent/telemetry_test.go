package agent

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
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

// TestAgentTelemetry: the agent's /metrics carries the Go runtime and
// process metrics beside its own, and the profiles are served on the opt-in
// --pprof-listen only, not on the metrics listener.
func TestAgentTelemetry(t *testing.T) {
	_, cfg := nsdbtest.OpenEmbedded(t)
	metrics, pprof := freeAddr(t), freeAddr(t)
	runAgent(t, []string{cfg.ClientURL}, "tele", netip.MustParseAddr("127.0.0.1"), newWire(), func(c *Config) {
		c.MetricsListen, c.PprofListen = metrics, pprof
	})
	st, body := get(t, "http://"+metrics+"/metrics")
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	for _, m := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds", "canopy_agent_snapshots_total"} {
		if !strings.Contains(body, "\n"+m+" ") {
			t.Errorf("/metrics has no %s", m)
		}
	}
	if st, body := get(t, "http://"+pprof+"/debug/pprof/"); st != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index: %d\n%s", st, body)
	}
	if st, body := get(t, "http://"+pprof+"/debug/pprof/goroutine?debug=1"); st != http.StatusOK || !strings.Contains(body, "runSimulator") {
		t.Errorf("goroutine profile: %d (want the agent's goroutines)\n%.500s", st, body)
	}
	if st, _ := get(t, "http://"+metrics+"/debug/pprof/"); st == http.StatusOK {
		t.Errorf("the metrics listener serves the profiles")
	}
}
