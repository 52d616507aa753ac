// Command learning measures how fast learned MAC entries reach every host
// (issue 9): three agents share one embedded etcd, each with in-memory
// ports on one bridge whose ports know no MAC. For each round a frame from a
// new MAC enters a port on one host; the figure is the time until every
// agent's simulations use the entry (the moment its flows that looked the
// MAC up are invalidated: both happen under the same lock). Then a MAC-flap
// storm: MACs alternate between ports on two hosts as fast as frames go,
// and the store writes it causes are counted against the moves.
//
//	go run ./bench/learning [-rounds 300] [-flap-macs 50] [-flap 5s]
//
// It prints p50, p99 and max for the host that learned and for the others,
// and the storm's moves/s, store writes/s and their ratio.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/bench/tempstore"
	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

type host struct {
	a     *agent.Agent
	id    string
	mu    sync.Mutex
	vms   map[string]*datapathfake.Port // iface → the VM's end
	ports map[string]string             // iface → port id
}

// open plugs an in-memory cable; the VM's end is drained so the agent's
// floods never back up.
func (h *host) open(iface string) (datapath.Port, error) {
	agentEnd, vmEnd := datapathfake.Pair(iface, iface+"-vm")
	h.mu.Lock()
	h.vms[iface] = vmEnd
	h.mu.Unlock()
	go func() {
		pkts := make([]datapath.Packet, 32)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 2048)
		}
		for {
			if _, err := vmEnd.ReadBatch(pkts); err != nil {
				return
			}
		}
	}()
	return agentEnd, nil
}

func (h *host) vm(iface string) *datapathfake.Port {
	for {
		h.mu.Lock()
		p := h.vms[iface]
		h.mu.Unlock()
		if p != nil {
			return p
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func main() {
	rounds := flag.Int("rounds", 300, "MACs learned, one at a time")
	flapMACs := flag.Int("flap-macs", 50, "MACs flapping in the storm")
	flapFor := flag.Duration("flap", 5*time.Second, "length of the storm")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, closeStore, err := tempstore.Open(ctx, "canopy-bench-learning-")
	if err != nil {
		log.Fatal(err)
	}
	defer closeStore()
	// Hosts register through the controller's host registrar, as they do
	// under a server.
	regDone := make(chan struct{})
	go func() { controller.NewHosts(s, nil).Run(ctx); close(regDone) }()
	defer func() { <-regDone }()

	hosts := make([]*host, 3)
	var wg sync.WaitGroup
	for i := range hosts {
		h := &host{vms: map[string]*datapathfake.Port{}, ports: map[string]string{}}
		dir, err := os.MkdirTemp("", "canopy-bench-learning-agent-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		h.a, err = agent.New(agent.Config{Endpoints: s.Client().Endpoints(), HostName: fmt.Sprintf("h%d", i),
			TunnelIP: netip.MustParseAddr("127.0.0.1"), TunnelPort: freeUDP(), StateDir: dir, NoMetadata: true,
			OpenPort: h.open, Logger: slog.Default(), Datapath: agent.DatapathUserspace})
		if err != nil {
			log.Fatal(err)
		}
		if h.id, err = agent.HostID(dir); err != nil {
			log.Fatal(err)
		}
		wg.Go(func() {
			if err := h.a.Run(ctx); err != nil {
				log.Print(err)
			}
		})
		hosts[i] = h
	}
	defer wg.Wait()
	defer cancel()
	waitHosts(ctx, s, hosts)

	br, err := s.Create(ctx, &topology.Bridge{Meta: topology.Meta{Name: "bench"}})
	if err != nil {
		log.Fatal(err)
	}
	brID := br.GetMeta().ID
	for i, h := range hosts {
		for _, iface := range []string{fmt.Sprintf("e%da", i), fmt.Sprintf("e%db", i)} {
			p, err := s.Create(ctx, &topology.Port{DeviceKind: topology.KindBridge, DeviceID: brID, HostID: h.id, Interface: iface})
			if err != nil {
				log.Fatal(err)
			}
			h.ports[iface] = p.GetMeta().ID
			h.vm(iface)
		}
	}
	// The ports are plugged once every agent's view holds them.
	time.Sleep(500 * time.Millisecond)

	frame := func(src [6]byte, sport uint16) []byte {
		return (&packet.Spec{EthSrc: src, EthDst: [6]byte{2, 0xdd, 0, 0, 0, 1}, Src: 0x0a000001, Dst: 0x0a000002,
			Proto: packet.ProtoUDP, SrcPort: sport, DstPort: 9, Payload: []byte("learn")}).Build()
	}
	send := func(p *datapathfake.Port, f []byte) {
		if _, err := p.WriteBatch([]datapath.Packet{{Buf: f, N: len(f)}}); err != nil {
			log.Fatal(err)
		}
	}

	// Convergence: one new MAC at a time, entering on host r%3.
	var local, remote []time.Duration
	for r := range *rounds {
		m := [6]byte{2, 0xbb, 0, 0, byte(r >> 8), byte(r)}
		key := net.HardwareAddr(m[:]).String()
		src := hosts[r%3]
		iface := fmt.Sprintf("e%da", r%3)
		want := src.ports[iface]
		start := time.Now()
		send(src.vm(iface), frame(m, uint16(r)))
		done := make([]bool, len(hosts))
		for left := len(hosts); left > 0; {
			if time.Since(start) > 10*time.Second {
				log.Fatalf("round %d: MAC %s not everywhere after 10 s", r, key)
			}
			for i, h := range hosts {
				if done[i] {
					continue
				}
				if v, ok := h.a.Learned(topology.KindBridge, brID, key); ok && v == want {
					done[i] = true
					left--
					if h == src {
						local = append(local, time.Since(start))
					} else {
						remote = append(remote, time.Since(start))
					}
				}
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	fmt.Printf("learning convergence, 3 hosts, %d MACs (first frame → entry used by the host's simulations, its flows invalidated):\n", *rounds)
	report("  the host that learned", local)
	report("  every other host     ", remote)

	// The flap storm: each MAC alternates between e0a (host 0) and e1a
	// (host 1), one frame per MAC per step, as fast as frames go.
	var writes int
	var wmu sync.Mutex
	wctx, stopWatch := context.WithCancel(ctx)
	ready := make(chan struct{})
	go func() {
		_ = s.WatchLearned(wctx, nsdb.LearnedHandler{
			Reset: func([]nsdb.LearnedEntry, int64) { close(ready) },
			Events: func(evs []nsdb.LearnedEvent, _ int64) {
				wmu.Lock()
				writes += len(evs)
				wmu.Unlock()
			},
		})
	}()
	<-ready
	a0, a1 := hosts[0].vm("e0a"), hosts[1].vm("e1a")
	moves := 0
	start := time.Now()
	for step := 0; time.Since(start) < *flapFor; step++ {
		p := a0
		if step%2 == 1 {
			p = a1
		}
		for k := range *flapMACs {
			send(p, frame([6]byte{2, 0xcc, 0, 0, byte(k >> 8), byte(k)}, uint16(step)))
			moves++
		}
		time.Sleep(time.Millisecond) // let the agents read it: a move per frame, not a burst of one port
	}
	elapsed := time.Since(start)
	wmu.Lock()
	w := writes
	wmu.Unlock()
	time.Sleep(2 * agent.DefaultLearnWriteInterval) // the last coalesced writes
	stopWatch()
	wmu.Lock()
	after := writes - w
	wmu.Unlock()
	fmt.Printf("MAC-flap storm, %d MACs moving between two hosts for %v:\n", *flapMACs, elapsed.Round(time.Millisecond))
	fmt.Printf("  moves (frames from a MAC last seen on the other host): %.0f/s\n", float64(moves)/elapsed.Seconds())
	fmt.Printf("  store writes (puts and withdrawals): %.0f/s during the storm, %d more after it settled; %.4f writes per move\n",
		float64(w)/elapsed.Seconds(), after, float64(w)/float64(moves))
	fmt.Printf("  bound: one write per entry per host per %v = %d MACs × 2 hosts = %.0f/s\n",
		agent.DefaultLearnWriteInterval, *flapMACs, float64(*flapMACs*2)/agent.DefaultLearnWriteInterval.Seconds())
}

func report(what string, d []time.Duration) {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	fmt.Printf("%s p50 %v  p99 %v  max %v  (n=%d)\n", what, q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond), len(d))
}

func waitHosts(ctx context.Context, s *nsdb.Store, hosts []*host) {
	for _, h := range hosts {
		for {
			if _, err := s.Get(ctx, topology.KindHost, h.id); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func freeUDP() uint16 {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}
