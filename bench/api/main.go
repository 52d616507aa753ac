// Command api measures the REST topology API the way an operator script
// uses it: it starts a server (embedded etcd, temp data dir, loopback ports)
// in this process, creates N bridge ports through the API from C concurrent
// clients, then lists them, and prints the figures. Each concurrency level
// runs on a fresh server, one after the other, so the figures compare.
//
//	go run ./bench/api [-n 10000] [-c 1,4]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sdn/canopy/internal/cli"
	"github.com/canopy-sdn/canopy/internal/server"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func main() {
	n := flag.Int("n", 10000, "ports to create")
	levels := flag.String("c", "1,4", "concurrent clients: one level or a comma list, each run on a fresh server")
	lists := flag.Int("lists", 5, "times to list the ports (the median is reported)")
	flag.Parse()
	fmt.Printf("canopy REST API benchmark (embedded etcd, in-process server, loopback HTTP, GOMAXPROCS=%d)\n", runtime.GOMAXPROCS(0))
	for _, l := range strings.Split(*levels, ",") {
		conc, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || conc < 1 {
			fmt.Fprintf(os.Stderr, "bench: -c %q: want positive numbers\n", *levels)
			os.Exit(2)
		}
		if err := run(*n, conc, *lists); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func run(n, conc, lists int) error {
	dir, err := os.MkdirTemp("", "canopy-bench-api")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := server.DefaultConfig()
	cfg.DataDir = dir
	var addrs [3]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return err
		}
	}
	cfg.Listen, cfg.EtcdClientURL, cfg.EtcdPeerURL = addrs[0], "https://"+addrs[1], "https://"+addrs[2]
	if err := cfg.Validate(); err != nil {
		return err
	}
	srv := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ready := make(chan string, 1)
	srv.Ready = func(addr, _ string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		return fmt.Errorf("server: %w", err)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("server not ready after 60s")
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		return err
	}
	transport := &http.Transport{MaxIdleConnsPerHost: conc}
	c := &cli.Client{URL: "http://" + addr, Token: strings.TrimSpace(string(tok)), HTTP: &http.Client{Transport: transport, Timeout: 5 * time.Minute}}

	var br topology.Bridge
	if _, err := c.Send(ctx, http.MethodPost, "/bridges", &topology.Bridge{Meta: topology.Meta{Name: "bench"}}, &br); err != nil {
		return err
	}

	// Create: C clients take port numbers from a shared counter.
	var next atomic.Int64
	lat := make([][]time.Duration, conc)
	errs := make(chan error, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				p := &topology.Port{Meta: topology.Meta{Name: fmt.Sprintf("p%d", i)}}
				t0 := time.Now()
				if _, err := c.Do(ctx, http.MethodPost, "/bridges/"+br.ID+"/ports", p); err != nil {
					errs <- fmt.Errorf("create port %d: %w", i, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	create := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	all := slices.Concat(lat...)
	slices.Sort(all)

	// List: the whole collection, and the bridge's own ports.
	listOnce := func(path string) (time.Duration, int, error) {
		var ports []struct {
			ID       string `json:"id"`
			DeviceID string `json:"device_id"`
		}
		t0 := time.Now()
		_, err := c.Get(ctx, path, &ports)
		d := time.Since(t0)
		// GET /ports also lists the server's own (the edge router's and
		// the transit bridge's, made meanwhile): count the bench's.
		mine := 0
		for _, p := range ports {
			if p.DeviceID == br.ID {
				mine++
			}
		}
		return d, mine, err
	}
	var listAll, listBridge []time.Duration
	for range lists {
		d, got, err := listOnce("/ports")
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("GET /ports returned %d ports, want %d", got, n)
		}
		listAll = append(listAll, d)
		d, got, err = listOnce("/bridges/" + br.ID + "/ports")
		if err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("GET /bridges/{id}/ports returned %d ports, want %d", got, n)
		}
		listBridge = append(listBridge, d)
	}

	fmt.Printf("create %d ports  concurrency %d  total %v  %.0f ports/s  latency p50 %v p99 %v max %v\n",
		n, conc, create.Round(time.Millisecond), float64(n)/create.Seconds(),
		pct(all, 50), pct(all, 99), all[len(all)-1].Round(time.Microsecond))
	fmt.Printf("list   %d ports  GET /ports median %v   GET /bridges/{id}/ports median %v   (%d runs each)\n",
		n, median(listAll), median(listBridge), lists)
	return nil
}

func pct(s []time.Duration, p int) time.Duration {
	return s[(len(s)-1)*p/100].Round(time.Microsecond)
}

func median(s []time.Duration) time.Duration {
	slices.Sort(s)
	return s[len(s)/2].Round(time.Microsecond)
}
