// Package telemetry is what every Canopy process tells about itself: a
// Prometheus registry that starts with the Go runtime and process collectors
// (goroutines, heap, GC, CPU seconds, open files), and the net/http/pprof
// profiles on a listener of their own, opt-in (--pprof-listen), never on the
// API listeners.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding the Go runtime and process
// collectors; the caller registers its own metrics beside them.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// MetricsHandler serves reg in the Prometheus exposition format.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// PprofHandler serves the runtime profiles under /debug/pprof/ (the index,
// cmdline, profile, symbol, trace and every named profile) on its own mux:
// net/http/pprof also registers on http.DefaultServeMux, which no Canopy
// listener serves.
func PprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// MaxProfile is the longest CPU profile or trace the pprof listener serves.
const MaxProfile = 5 * time.Minute

// ServePprof listens on addr and serves PprofHandler until ctx is done. It
// returns once the listener is open, with its address and a function that
// waits for the server to stop (once ctx is done). A CPU profile or trace
// runs for as long as asked (?seconds=N, default 30): the write timeout
// allows up to MaxProfile.
func ServePprof(ctx context.Context, addr string, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("pprof listen: %w", err)
	}
	srv := &http.Server{Handler: PprofHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: MaxProfile + 10*time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof: serve", "err", err)
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.Info("pprof listening", "addr", ln.Addr().String())
	return ln.Addr().String(), func() { <-done; stop() }, nil
}
