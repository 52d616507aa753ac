// Package edge measures a gateway (issue 11) on the netns lab — a server,
// one gateway host whose agent speaks BGP (GoBGP embedded), a compute host
// running an instance, FRR as the upstream router in a namespace of its own
// and an outside client behind it — as root, all figures in one run:
//
//	go test -bench Edge -benchtime 1x -run '^$' ./bench/edge [-args -prefixes 10000 -freezes 5 -associations 50 -iperf 5]
//
// The figures:
//   - advertise: N assigned public addresses (/32 routes of the edge inside
//     the public pool, created through the REST API) advertised as /32s
//     ("advertise": "addresses"): from FRR's session with the gateway
//     reaching Established to FRR holding all N prefixes (target ≤ 5 s for
//     10,000);
//   - failure detection: the gateway's agent frozen (SIGSTOP: its uplink
//     stays up, only BFD at 100 ms × 3 can tell) until FRR withdraws its
//     next hop, p50 and max over a few rounds (target < 1 s);
//   - the tenant's side (eip_test.go): elastic IP associate → first echo
//     reply at the outside client and disassociate → FRR's route withdrawn,
//     p50/p99 (target p99 ≤ 1 s), and iperf3 outside → elastic IP through
//     the gateway against a direct veth pair (target ≥ 0.5×) on the
//     agents' default datapath; BenchmarkEdgeThroughput
//     (throughput_test.go) compares both datapaths side by side.
//
// Timed parts hold /tmp/perf.lock, as the other benchmarks do.
package edge

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/cli"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

var (
	nPrefixes = flag.Int("prefixes", 10000, "assigned public addresses advertised as /32s")
	nFreezes  = flag.Int("freezes", 5, "freeze/thaw rounds of the gateway's agent for the detection figure")
)

var canopyBin string

func TestMain(m *testing.M) {
	flag.Parse()
	netns.RunWithCanopy(m, &canopyBin)
}

const pool = "198.18.0.0/17" // 32,768 addresses (the benchmarking range)

func BenchmarkEdge(b *testing.B) {
	for range b.N {
		runEdge(b)
	}
}

func runEdge(b *testing.B) {
	cfg := filepath.Join(b.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(`{
		"bgp": {"asn": 65001, "advertise": "addresses"},
		"public_pools": ["`+pool+`"],
		"gateways": [{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24",
			"bgp_peer": {"address": "192.0.2.1", "asn": 65000, "bfd": {"min_tx_ms": 100, "min_rx_ms": 100, "multiplier": 3}}}]}`), 0o644); err != nil {
		b.Fatal(err)
	}
	l := netns.New(b, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", ec2Pool}})
	gw := l.AddHostIn("gw", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	up := l.AddOutside("upstream", gw, "edge0", "192.0.2.1/24")
	token, err := l.AdminToken()
	if err != nil {
		b.Fatal(err)
	}
	c := &cli.Client{URL: l.APIURL(), Token: token, HTTP: l.EC2HTTPClient()}
	ctx := context.Background()
	var ids []struct {
		ID string `json:"id"`
	}
	if _, err := c.Get(ctx, "/routers?name=canopy-edge", &ids); err != nil || len(ids) != 1 {
		b.Fatalf("the edge router: %v %v", ids, err)
	}
	edge := ids[0].ID
	if _, err := c.Get(ctx, "/ports?name=edge/uplink0", &ids); err != nil || len(ids) != 1 {
		b.Fatalf("the uplink: %v %v", ids, err)
	}
	uplink := ids[0].ID

	// The assigned addresses: /32 routes of the edge inside the pool, as
	// elastic IPs make them (through the REST API here: 10,000 EC2
	// associations would measure the EC2 API instead).
	n := *nPrefixes
	start := time.Now()
	base := netip.MustParsePrefix(pool).Addr()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				a := addrAt(base, i+1)
				body := map[string]any{"type": "normal", "dst_prefix": a.String() + "/32", "next_hop_port": uplink, "next_hop_gateway": "192.0.2.1"}
				// A 503 (etcd slow on a loaded machine) may be retried; a
				// write that committed anyway leaves a duplicate /32, which
				// the speaker advertises once.
				var err error
				for try := 0; try < 5; try++ {
					var ae *cli.APIError
					if _, err = c.Send(ctx, "POST", "/routers/"+edge+"/routes", body, nil); !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
						break
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	var st struct {
		BGP *struct {
			AdvertisedCount int `json:"advertised_count"`
		} `json:"bgp"`
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, err := c.Get(ctx, "/gateways/gw", &st)
		if err == nil && st.BGP != nil && st.BGP.AdvertisedCount == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the gateway's speaker does not hold the %d prefixes: %+v %v", n, st.BGP, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	held := time.Since(start)

	var toFRR time.Duration
	var f *netns.FRR
	netns.PerfLocked(b, func() {
		f = netns.StartFRR(b, up.NS, `frr defaults datacenter
hostname upstream
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 neighbor 192.0.2.2 remote-as 65001
 neighbor 192.0.2.2 timers connect 1
 neighbor 192.0.2.2 update-source 192.0.2.1
 neighbor 192.0.2.2 bfd profile fast
 !
 address-family ipv4 unicast
  neighbor 192.0.2.2 default-originate
 exit-address-family
!
`, `hostname upstream
!
bfd
 profile fast
  transmit-interval 100
  receive-interval 100
  detect-multiplier 3
 !
!
`)
		var up time.Time
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if up.IsZero() && f.Neighbor("192.0.2.2").State == "Established" {
				up = time.Now()
			}
			if !up.IsZero() && received(b, f) >= n {
				toFRR = time.Since(up)
				return
			}
		}
		b.Fatalf("FRR did not receive %d prefixes within 2 minutes (%d)", n, received(b, f))
	})

	// Failure detection: wait until the session has settled with BFD up
	// (FRR 8.4 re-keys its BFD session once the BGP session is up, which
	// resets the session once: docs/gateways.md), freeze, time, thaw.
	pid := agentPID(b, gw)
	var detect []time.Duration
	for range *nFreezes {
		settle(b, f, n)
		netns.PerfLocked(b, func() {
			t0 := time.Now()
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if f.Neighbor("192.0.2.2").State != "Established" {
					detect = append(detect, time.Since(t0))
					return
				}
			}
			b.Fatal("FRR kept the frozen gateway for 30 s")
		})
	}
	slices.Sort(detect)
	settle(b, f, n)
	eip := measureEIP(b, l, up, f)
	fmt.Printf("edge: %d /32 routes created through the REST API in %v; the speaker held them %v after the first\n",
		n, created.Round(time.Millisecond), held.Round(time.Millisecond))
	fmt.Printf("edge: session up → %d /32s at FRR: %v (target ≤ 5 s for 10,000)\n", n, toFRR.Round(time.Millisecond))
	if len(detect) > 0 {
		fmt.Printf("edge: gateway frozen → FRR drops it (BFD 100 ms × 3), %d rounds: p50 %v, max %v (target < 1 s)\n",
			len(detect), detect[len(detect)/2].Round(time.Millisecond), detect[len(detect)-1].Round(time.Millisecond))
	}
	eip.print()
	b.ReportMetric(toFRR.Seconds(), "s-advertise")
}

// received is how many prefixes FRR received from the gateway.
func received(b *testing.B, f *netns.FRR) int {
	var sum struct {
		IPv4 struct {
			Peers map[string]struct {
				PfxRcd int `json:"pfxRcd"`
			} `json:"peers"`
		} `json:"ipv4Unicast"`
	}
	f.JSON("show ip bgp summary json", &sum)
	return sum.IPv4.Peers["192.0.2.2"].PfxRcd
}

// settle waits until the session has been up with BFD up for 5 s and FRR
// holds all n prefixes.
func settle(b *testing.B, f *netns.FRR, n int) {
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if f.BFDPeers()["192.0.2.2"] == "up" && f.Neighbor("192.0.2.2").UpMsec > 5000 && received(b, f) >= n {
			return
		}
	}
	b.Fatal("the session did not settle within 3 minutes")
}

// agentPID is the pid of the canopy agent in h's namespace.
func agentPID(b *testing.B, h *netns.Host) int {
	out, err := exec.Command("ip", "netns", "pids", h.NS).CombinedOutput()
	if err != nil {
		b.Fatalf("ip netns pids: %v\n%s", err, out)
	}
	for _, fld := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(fld)
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if args := strings.Split(string(cmd), "\x00"); len(args) > 1 && filepath.Base(args[0]) == "canopy" && args[1] == "agent" {
			return pid
		}
	}
	b.Fatalf("no canopy agent in %s", h.NS)
	return 0
}

// addrAt is the address i after base.
func addrAt(base netip.Addr, i int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
