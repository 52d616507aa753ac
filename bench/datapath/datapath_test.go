// Package datapath measures Canopy's packet path side by side with the limit
// of this machine, in one run (issue 4, item 10):
//
//	go test -bench . -benchtime 1x -run '^$' ./bench/datapath   (as root)
//
// It prints single-stream iperf3 Gbps and ping RTT for a direct veth pair,
// Canopy same-host L2 and Canopy cross-host L3 over VXLAN, with ratios to
// the veth pair; the new-flow rate through the miss path; and the time from
// a REST change (through the CLI) to the first packet it allows. With
// CANOPY_BENCH_OVN=<results dir of ../shared/bench/ovn/run_all.sh> it also
// reads the OVN peer's figures from that run and prints the ratios to them.
package datapath

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

var canopyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "canopy-bench-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	canopyBin = filepath.Join(dir, "canopy")
	build := exec.Command("go", "build", "-o", canopyBin, "github.com/canopy-sdn/canopy/cmd/canopy")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building canopy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	iperfSecs = 5
	iperfReps = 3
)

func run(b *testing.B, args ...string) string {
	b.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var bpsRe = regexp.MustCompile(`"bits_per_second":\s*([0-9.e+]+)`)

// iperf returns the median Gbps of iperfReps single-stream runs from
// namespace c to the server at ip in namespace s.
func iperf(b *testing.B, c, s, ip string) float64 {
	b.Helper()
	var res []float64
	for range iperfReps {
		srv := exec.Command("ip", "netns", "exec", s, "iperf3", "-s", "-1", "-B", ip)
		if err := srv.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		out := run(b, "ip", "netns", "exec", c, "iperf3", "-c", ip, "-t", strconv.Itoa(iperfSecs), "-J")
		_ = srv.Wait()
		// sum_received is the last bits_per_second of the JSON.
		m := bpsRe.FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			b.Fatalf("no result in iperf3 output:\n%s", out)
		}
		v, _ := strconv.ParseFloat(m[len(m)-1][1], 64)
		res = append(res, v/1e9)
	}
	slices.Sort(res)
	return res[len(res)/2]
}

var rttRe = regexp.MustCompile(`rtt min/avg/max/mdev = [0-9.]+/([0-9.]+)/`)

// ping returns the average RTT in ms of 100 pings at 10 ms.
func ping(b *testing.B, ns, ip string) float64 {
	b.Helper()
	run(b, "ip", "netns", "exec", ns, "ping", "-c", "5", "-i", "0.05", ip) // warm the flows
	out := run(b, "ip", "netns", "exec", ns, "ping", "-c", "100", "-i", "0.01", ip)
	m := rttRe.FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no rtt in:\n%s", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

type row struct {
	path      string
	gbps, rtt float64
}

func BenchmarkDatapath(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Fatal("needs root (network namespaces)")
	}
	var rows []row

	// The limit: a direct veth pair between two namespaces.
	id := fmt.Sprintf("cbv%d", os.Getpid()%10000)
	na, nb := id+"a", id+"b"
	b.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", na).Run()
		_ = exec.Command("ip", "netns", "del", nb).Run()
	})
	run(b, "ip", "netns", "add", na)
	run(b, "ip", "netns", "add", nb)
	run(b, "ip", "link", "add", "v0", "netns", na, "type", "veth", "peer", "name", "v1", "netns", nb)
	run(b, "ip", "-n", na, "addr", "add", "10.98.0.1/24", "dev", "v0")
	run(b, "ip", "-n", nb, "addr", "add", "10.98.0.2/24", "dev", "v1")
	run(b, "ip", "-n", na, "link", "set", "v0", "up")
	run(b, "ip", "-n", nb, "link", "set", "v1", "up")
	rows = append(rows, row{"direct veth pair (the limit)", iperf(b, na, nb, "10.98.0.2"), ping(b, na, "10.98.0.2")})

	// Canopy: vm1, vm2 on bridge b1 on host h1; vm3 on bridge b2 on h2,
	// behind router r1.
	l := netns.New(b, canopyBin, netns.Options{})
	h1, h2 := l.AddHost("h1"), l.AddHost("h2")
	l.CLI("router", "create", "r1")
	for i, br := range []string{"b1", "b2"} {
		n := strconv.Itoa(i + 1)
		l.CLI("bridge", "create", br)
		rp := idOf(b, l.CLI("router", "port", "add", "r1", "--name", "rp"+n, "--address", "10.0."+n+".1/24"))
		bp := idOf(b, l.CLI("bridge", "port", "add", br, "--name", "up"+n))
		l.CLI("port", "link", rp, bp)
	}
	port := func(br, name, mac, ip string) string {
		return idOf(b, l.CLI("bridge", "port", "add", br, "--name", name, "--mac", mac, "--ip", ip))
	}
	vm1 := l.AddVM("vm1", h1, port("b1", "p1", "02:00:00:00:00:01", "10.0.1.2"), "02:00:00:00:00:01", "10.0.1.2/24", "10.0.1.1", 0)
	vm2 := l.AddVM("vm2", h1, port("b1", "p2", "02:00:00:00:00:02", "10.0.1.3"), "02:00:00:00:00:02", "10.0.1.3/24", "10.0.1.1", 0)
	vm3 := l.AddVM("vm3", h2, port("b2", "p3", "02:00:00:00:00:03", "10.0.2.2"), "02:00:00:00:00:03", "10.0.2.2/24", "10.0.2.1", 0)
	rows = append(rows, row{"Canopy same-host L2", iperf(b, vm1.NS, vm2.NS, vm2.IP()), ping(b, vm1.NS, vm2.IP())})
	rows = append(rows, row{"Canopy cross-host L3 over VXLAN", iperf(b, vm1.NS, vm3.NS, vm3.IP()), ping(b, vm1.NS, vm3.IP())})

	// New flows through the miss path: SYNs with a new source port each,
	// vm2 → vm3 (routed, cross-host), counted by h1's simulations.
	sims0 := h1.Metric("canopy_agent_simulations_total")
	start := time.Now()
	flood := exec.Command("ip", "netns", "exec", vm2.NS, "timeout", "3", "hping3", "--flood", "-S", "-p", "5201", "-s", "1024", "-q", vm3.IP())
	_ = flood.Run()
	secs := time.Since(start).Seconds()
	sims := h1.Metric("canopy_agent_simulations_total") - sims0
	queueDrops := h1.Metric(`canopy_agent_port_drops_total{port="` + vm2.Port + `",reason="miss_queue_full"}`)
	flowRate := sims / secs

	// REST change → first packet it allows: vm1 → vm3 is blocked by a drop
	// filter on vm3's port; removing it (through the CLI, as an operator)
	// must let a 2 ms ping stream through.
	l.CLI("chain", "create", "deny")
	l.CLI("chain", "rule", "add", "deny", "--action", "drop")
	var lat []float64
	for range 9 {
		l.CLI("port", "set", vm3.Port, "--in-filter", "deny")
		time.Sleep(300 * time.Millisecond)
		lat = append(lat, firstPacket(b, l, vm1, vm3, vm3.Port))
	}
	slices.Sort(lat)

	veth := rows[0].gbps
	fmt.Printf("\n%-34s %10s %8s %10s\n", "path", "Gbps", "× veth", "RTT ms")
	for _, r := range rows {
		fmt.Printf("%-34s %10.2f %8.2f %10.3f\n", r.path, r.gbps, r.gbps/veth, r.rtt)
	}
	fmt.Printf("\nnew flows through the miss path: %.0f flows/s (%.0f simulations in %.1fs; %.0f dropped at the full miss queue)\n",
		flowRate, sims, secs, queueDrops)
	fmt.Printf("REST change → first packet: p50 %.1f ms, min %.1f, max %.1f (n=%d; includes the CLI process)\n",
		lat[len(lat)/2], lat[0], lat[len(lat)-1], len(lat))
	if dir := os.Getenv("CANOPY_BENCH_OVN"); dir != "" {
		ovn(dir, rows)
	}
	b.ReportMetric(rows[1].gbps, "same-host-Gbps")
	b.ReportMetric(rows[2].gbps, "cross-host-Gbps")
	b.ReportMetric(flowRate, "flows/s")
	b.ReportMetric(lat[len(lat)/2], "rest-to-packet-ms")
}

// firstPacket removes vm3's filter and returns the ms from the CLI call to
// the first echo reply vm1 gets, from a 2 ms ping stream started before.
func firstPacket(b *testing.B, l *netns.Lab, from, to *netns.VM, portID string) float64 {
	b.Helper()
	cmd := exec.Command("ip", "netns", "exec", from.NS, "ping", "-D", "-i", "0.002", "-W", "1", "-w", "5", to.IP())
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	l.CLI("port", "set", portID, "--in-filter", "none")
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "bytes from") || !strings.HasPrefix(line, "[") {
			continue
		}
		ts, err := strconv.ParseFloat(line[1:strings.IndexByte(line, ']')], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(ts*1e9))
		return float64(at.Sub(t0).Microseconds()) / 1000
	}
	b.Fatal("no reply within 5 s of removing the filter")
	return 0
}

func idOf(b *testing.B, out string) string {
	b.Helper()
	m := regexp.MustCompile(`"id":\s*"([^"]+)"`).FindStringSubmatch(out)
	if m == nil {
		b.Fatalf("no id in %s", out)
	}
	return m[1]
}

// ovn prints the OVN peer's figures from a run_all.sh results dir next to
// Canopy's (best of its stock and TSO variants).
func ovn(dir string, rows []row) {
	f, err := os.ReadFile(filepath.Join(dir, "results.tsv"))
	if err != nil {
		fmt.Println("OVN peer:", err)
		return
	}
	best := map[string]float64{}
	for _, line := range strings.Split(string(f), "\n") {
		c := strings.Split(line, "\t")
		if len(c) < 5 || c[0] != "dp" || c[4] != "Gbps" {
			continue
		}
		v, _ := strconv.ParseFloat(c[3], 64)
		if v > best[c[2]] {
			best[c[2]] = v
		}
	}
	fmt.Println("\nOVN peer (best of stock and TSO), from", dir)
	for k, v := range best {
		fmt.Printf("  %-40s %6.2f Gbps\n", k, v)
	}
	for k, v := range best {
		switch {
		case strings.Contains(k, "l2"):
			fmt.Printf("Canopy same-host L2 / OVN %s: %.2f×\n", k, rows[1].gbps/v)
		case strings.Contains(k, "l3"):
			fmt.Printf("Canopy cross-host L3 / OVN %s: %.2f×\n", k, rows[2].gbps/v)
		}
	}
}
