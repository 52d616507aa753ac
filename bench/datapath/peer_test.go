package datapath

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// peerFig is one path of the OVN peer's run: Gbps and ping RTT.
type peerFig struct{ gbps, rtt float64 }

// peerPaths are the rows of the peer's results.tsv compared with Canopy,
// keyed as "<variant> <metric prefix>".
var peerPaths = []struct{ key, label string }{
	{"ovn l2_same_switch", "OVN L2 (stock)"},
	{"ovn-tso l2_same_switch", "OVN L2 (userspace TSO)"},
	{"ovn l3_routed", "OVN L3 (stock)"},
	{"ovn-tso l3_routed", "OVN L3 (userspace TSO)"},
	{"ovn veth_direct", "veth pair, in the peer's run"},
}

// readOVN reads the dp section of a run_all.sh results dir.
func readOVN(b *testing.B, dir string) map[string]peerFig {
	f, err := os.ReadFile(filepath.Join(dir, "results.tsv"))
	if err != nil {
		b.Fatalf("OVN peer results: %v", err)
	}
	out := map[string]peerFig{}
	for _, line := range strings.Split(string(f), "\n") {
		c := strings.Split(line, "\t")
		if len(c) < 5 || c[0] != "dp" {
			continue
		}
		v, err := strconv.ParseFloat(c[3], 64)
		if err != nil {
			continue
		}
		metric, kind, _ := strings.Cut(c[2], ".")
		k := c[1] + " " + metric
		p := out[k]
		switch kind {
		case "tcp":
			p.gbps = v
		case "rtt":
			p.rtt = v
		}
		out[k] = p
	}
	return out
}

func peerRows(peer map[string]peerFig) []row {
	var rows []row
	for _, p := range peerPaths {
		if f, ok := peer[p.key]; ok {
			rows = append(rows, row{path: p.label, gbps: f.gbps, rtt: f.rtt})
		}
	}
	return rows
}

// peerBest is the peer's best Gbps over L2/L3, stock/TSO, and its best RTT.
func peerBest(peer map[string]peerFig) (gbps, rtt float64) {
	for _, p := range peerPaths[:4] {
		f, ok := peer[p.key]
		if !ok {
			continue
		}
		gbps = max(gbps, f.gbps)
		if f.rtt > 0 && (rtt == 0 || f.rtt < rtt) {
			rtt = f.rtt
		}
	}
	return gbps, rtt
}

// printTable prints the throughput table: rows[0] is the veth pair, rows[1]
// to rows[3] Canopy same-host L2, same-host L3 and cross-host L3, the rest
// the peer's.
func printTable(rows []row, peer map[string]peerFig) {
	veth := rows[0].gbps
	best, bestRTT := peerBest(peer)
	fmt.Printf("\n%-38s %8s %8s %8s %8s %14s\n", "path (1 TCP stream)", "Gbps", "× veth", "× peer", "RTT ms", "agents %CPU/Gbps")
	for _, r := range rows {
		rel, cpu := "-", "-"
		if best > 0 {
			rel = fmt.Sprintf("%.2f", r.gbps/best)
		}
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.1f", r.cpu)
		}
		fmt.Printf("%-38s %8.2f %8.2f %8s %8.3f %14s\n", r.path, r.gbps, r.gbps/veth, rel, r.rtt, cpu)
	}
	if best == 0 {
		return
	}
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	l2, l3s, l3 := rows[1], rows[2], rows[3]
	fmt.Printf("\npeer's best: %.2f Gbps, RTT %.3f ms\n", best, bestRTT)
	fmt.Printf("same-host ≥ 0.5× veth: %.2f× %s; ≥ 1.5× peer's best: %.2f× %s\n",
		l2.gbps/veth, check(l2.gbps >= 0.5*veth), l2.gbps/best, check(l2.gbps >= 1.5*best))
	fmt.Printf("cross-host ≥ 0.25× veth: %.2f× %s\n", l3.gbps/veth, check(l3.gbps >= 0.25*veth))
	for _, c := range []struct {
		r   row
		key string
	}{{l2, "l2_same_switch"}, {l3s, "l3_routed"}, {l3, "l3_routed"}} {
		p := bestRTTOf(peer, c.key)
		fmt.Printf("%s RTT %.3f ms vs the peer's %s (one host) %.3f ms: %s\n", c.r.path, c.r.rtt, c.key, p, check(c.r.rtt <= p))
	}
}

func bestRTTOf(peer map[string]peerFig, metric string) float64 {
	r := 0.0
	for _, v := range []string{"ovn", "ovn-tso"} {
		if f, ok := peer[v+" "+metric]; ok && f.rtt > 0 && (r == 0 || f.rtt < r) {
			r = f.rtt
		}
	}
	return r
}
