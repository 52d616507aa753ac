package edge

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// The throughput row (issue 11): iperf3 from the outside client to an
// instance's elastic IP through a gateway — the upstream router's kernel,
// the gateway host's datapath, the tunnel, the compute host's datapath —
// on the userspace datapath and on the kernel one (the uplink carried by
// the TC program too), against a direct veth pair, in one run. The gateway
// is static (a next hop, a route upstream): BGP plays no part in the
// packets' path. Target: ≥ 0.5× the veth pair.

func BenchmarkEdgeThroughput(b *testing.B) {
	for range b.N {
		got := map[string]float64{}
		paths := []string{"userspace", "kernel"}
		for _, dp := range paths {
			b.Run(dp, func(b *testing.B) { got[dp] = throughVia(b, dp) })
		}
		a, z := vethPair(b)
		var veth float64
		netns.PerfLocked(b, func() { veth = iperf(b, a, z, "10.61.0.2") })
		for _, dp := range paths {
			fmt.Printf("edge: iperf3 outside → elastic IP through the gateway, %s datapath: %.2f Gbit/s = %.2f× the direct veth pair's %.2f Gbit/s (target ≥ 0.5×)\n",
				dp, got[dp], got[dp]/veth, veth)
		}
	}
}

// throughVia builds a lab whose agents run datapath dp — a static gateway,
// a compute host with an instance holding an elastic IP, the upstream
// router and a client behind it — and returns iperf3's Gbit/s from the
// client to the elastic IP.
func throughVia(b *testing.B, dp string) float64 {
	defer func(d string) { netns.Datapath = d }(netns.Datapath)
	netns.Datapath = dp
	cfg := filepath.Join(b.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(`{"public_pools": ["`+ec2Pool+`"],
		"gateways": [{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24", "next_hop": "192.0.2.1"}]}`), 0o644); err != nil {
		b.Fatal(err)
	}
	l := netns.New(b, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", ec2Pool}})
	gw := l.AddHostIn("gw", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	up := l.AddOutside("upstream", gw, "edge0", "192.0.2.1/24")
	if out, err := l.Exec(up.NS, "ip", "route", "add", ec2Pool, "via", "192.0.2.2"); err != nil {
		b.Fatalf("route to the pool: %v %s", err, out)
	}
	client := l.AddClient("c", up, "198.51.100.1/24", "198.51.100.2/24")
	inst, eip := elasticInstance(b, l)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := l.Exec(client.NS, "ping", "-c", "1", "-W", "1", eip); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the elastic IP %s does not answer the client (%s datapath)", eip, dp)
		}
	}
	var gbps float64
	netns.PerfLocked(b, func() { gbps = iperf(b, client.NS, inst, eip) })
	return gbps
}
