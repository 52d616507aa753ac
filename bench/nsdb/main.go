// Command nsdb measures watch latency on the embedded store: the time from
// the start of a write (Store.Create of a router) to its delivery to each of
// N concurrent watchers (p50/p99), and the write latency itself.
//
//	go run ./bench/nsdb [-writes 1000] [-watchers 10]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/bench/tempstore"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
)

func main() {
	writes := flag.Int("writes", 1000, "objects to create")
	watchers := flag.Int("watchers", 10, "concurrent watchers")
	ports := flag.Int("ports", 10000, "ports to create on one bridge, then list (0: skip)")
	flag.Parse()
	if err := run(*writes, *watchers, *ports); err != nil {
		log.Fatal(err)
	}
}

func run(writes, watchers, ports int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, closeStore, err := tempstore.Open(ctx, "canopy-bench-nsdb-")
	if err != nil {
		return err
	}
	defer closeStore()

	var started sync.Map // router id → time its Create began
	type watcher struct {
		mu   sync.Mutex
		lat  []time.Duration
		got  int
		done chan struct{}
	}
	ws := make([]*watcher, watchers)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }() // before s.Close
	ready := make(chan struct{}, watchers)
	for i := range ws {
		w := &watcher{done: make(chan struct{})}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Watch(wctx, nsdb.TopologyKindRel(topology.KindRouter), nsdb.Handler{
				Reset: func([]nsdb.KV, int64) { ready <- struct{}{} },
				Events: func(evs []nsdb.Event, _ int64) {
					now := time.Now()
					w.mu.Lock()
					defer w.mu.Unlock()
					for _, e := range evs {
						id := e.KV.Key[strings.LastIndexByte(e.KV.Key, '/')+1:]
						if t0, ok := started.Load(id); ok && !e.Delete {
							w.lat = append(w.lat, now.Sub(t0.(time.Time)))
							if w.got++; w.got == writes {
								close(w.done)
							}
						}
					}
				},
			})
		}()
	}
	for range watchers {
		<-ready
	}

	var writeLat []time.Duration
	t0 := time.Now()
	for i := range writes {
		// The id is chosen up front so the watchers can find the start time.
		id := fmt.Sprintf("bench-%06d", i)
		start := time.Now()
		started.Store(id, start)
		if _, err := s.Create(ctx, &topology.Router{Meta: topology.Meta{ID: id}}); err != nil {
			return err
		}
		writeLat = append(writeLat, time.Since(start))
	}
	elapsed := time.Since(t0)
	for _, w := range ws {
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			w.mu.Lock()
			defer w.mu.Unlock()
			return fmt.Errorf("a watcher got %d of %d events", w.got, writes)
		}
	}
	var all []time.Duration
	for _, w := range ws {
		w.mu.Lock()
		all = append(all, w.lat...)
		w.mu.Unlock()
	}
	fmt.Printf("nsdb watch bench: embedded etcd, %d creates (one at a time), %d watchers\n", writes, watchers)
	fmt.Printf("  create (commit + own cache caught up): p50 %v  p99 %v  (%.0f creates/s)\n",
		pct(writeLat, 50), pct(writeLat, 99), float64(writes)/elapsed.Seconds())
	fmt.Printf("  write → watch delivery (%d deliveries): p50 %v  p99 %v  max %v\n",
		len(all), pct(all, 50), pct(all, 99), pct(all, 100))
	if ports > 0 {
		return portBench(ctx, s, ports)
	}
	return nil
}

// portBench creates ports one at a time on one bridge through the store (no
// HTTP), then lists them, as the store's share of the API's 10,000-port bench.
func portBench(ctx context.Context, s *nsdb.Store, n int) error {
	b, err := s.Create(ctx, &topology.Bridge{})
	if err != nil {
		return err
	}
	t0 := time.Now()
	for i := range n {
		p := &topology.Port{DeviceKind: topology.KindBridge, DeviceID: b.GetMeta().ID,
			MAC: topology.MAC{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}}
		if _, err := s.Create(ctx, p); err != nil {
			return err
		}
	}
	created := time.Since(t0)
	t1 := time.Now()
	list, err := s.List(ctx, topology.KindPort)
	if err != nil {
		return err
	}
	listed := time.Since(t1)
	fmt.Printf("  %d ports created one at a time: %v (%.0f/s); List of %d ports: %v\n",
		n, created.Round(time.Millisecond), float64(n)/created.Seconds(), len(list), listed.Round(time.Microsecond))
	return nil
}

// pct is the p-th percentile (nearest rank).
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(i, 0)].Round(time.Microsecond)
}
