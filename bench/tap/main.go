// Command tap measures what the datapath package's port primitives can
// carry: a single iperf3 TCP stream between two network namespaces through
// (1) a direct veth pair, the limit on this machine, (2) a minimal Go
// forwarder copying frames TAP A ↔ TAP B through the TAPs' descriptors, and
// (3) the same forwarder on AF_PACKET sockets (datapath.Netdev) bound to
// the host ends of two veth pairs — how the agent attaches to every port
// now — both with the virtio-net header and TSO/checksum offloads, on
// locked OS threads. It prints Gbps, ping RTT and the ratio.
// reference/datapath-notes.md expects about 0.6× veth for (2).
//
// Run as root: go run ./bench/tap [-t 10] [-runs 3]. Needs iperf3 and ping.
// It creates namespaces cbt-* with 10.99.10.0/24, 10.99.11.0/24 and
// 10.99.12.0/24 and removes them when done.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/vishvananda/netns"
)

func main() {
	secs := flag.Int("t", 10, "iperf3 seconds per run")
	runs := flag.Int("runs", 3, "runs per path (the median is reported)")
	flag.Parse()
	if err := run(*secs, *runs); err != nil {
		slog.Error("bench/tap", "err", err)
		os.Exit(1)
	}
}

type result struct {
	name string
	gbps float64
	rtt  float64 // ms, average of the ping run
}

func run(secs, runs int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	for _, tool := range []string{"iperf3", "ping", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed (apt-get install -y iperf3 iputils-ping iproute2)", tool)
		}
	}
	var results []result

	// 1. Direct veth pair.
	cleanup := []func(){}
	defer func() {
		for _, f := range slices.Backward(cleanup) {
			f()
		}
	}()
	for _, ns := range []string{"cbt-va", "cbt-vb", "cbt-ta", "cbt-tb", "cbt-na", "cbt-nb", "cbt-nh"} {
		_ = exec.Command("ip", "netns", "del", ns).Run() // leftovers of a killed run
		if err := sh("ip", "netns", "add", ns); err != nil {
			return err
		}
		cleanup = append(cleanup, func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		if err := sh("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	if err := sh("ip", "link", "add", "cbtveth-a", "netns", "cbt-va", "type", "veth", "peer", "name", "cbtveth-b", "netns", "cbt-vb"); err != nil {
		return err
	}
	for _, c := range [][]string{
		{"-n", "cbt-va", "addr", "add", "10.99.10.1/24", "dev", "cbtveth-a"},
		{"-n", "cbt-vb", "addr", "add", "10.99.10.2/24", "dev", "cbtveth-b"},
		{"-n", "cbt-va", "link", "set", "cbtveth-a", "up"},
		{"-n", "cbt-vb", "link", "set", "cbtveth-b", "up"},
	} {
		if err := sh("ip", c...); err != nil {
			return err
		}
	}
	r, err := measure("direct veth pair", "cbt-va", "cbt-vb", "10.99.10.2", secs, runs)
	if err != nil {
		return err
	}
	results = append(results, r)

	// 2. TAP ↔ TAP through the Go forwarder.
	var taps []datapath.Port
	for i, ns := range []string{"cbt-ta", "cbt-tb"} {
		name := []string{"cbttap-a", "cbttap-b"}[i]
		tap, err := datapath.OpenTap(datapath.TapConfig{Name: name})
		if err != nil {
			return err
		}
		cleanup = append(cleanup, func() { tap.Close() })
		h, err := netns.GetFromName(ns)
		if err != nil {
			return err
		}
		err = datapath.SetLink(0, name, datapath.LinkConfig{Netns: h, MTU: 1500, Up: true})
		h.Close()
		if err != nil {
			return err
		}
		if err := sh("ip", "-n", ns, "addr", "add", fmt.Sprintf("10.99.11.%d/24", i+1), "dev", name); err != nil {
			return err
		}
		taps = append(taps, tap)
	}
	var wg sync.WaitGroup
	var gso [2]int64
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); gso[i] = forward(taps[i], taps[1-i]) }()
	}
	r, err = measure("Go TAP↔TAP forwarder, vnet hdr + TSO", "cbt-ta", "cbt-tb", "10.99.11.2", secs, runs)
	for _, t := range taps {
		t.Close()
	}
	wg.Wait()
	if err != nil {
		return err
	}
	results = append(results, r)
	tapGSO := gso

	// 3. veth host end ↔ veth host end through the same forwarder on
	// AF_PACKET sockets, opened in the "host" namespace cbt-nh.
	var devs []datapath.Port
	for i, ns := range []string{"cbt-na", "cbt-nb"} {
		host := []string{"cbtnd-a", "cbtnd-b"}[i]
		for _, c := range [][]string{
			{"link", "add", host, "netns", "cbt-nh", "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"-n", ns, "addr", "add", fmt.Sprintf("10.99.12.%d/24", i+1), "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
		} {
			if err := sh("ip", c...); err != nil {
				return err
			}
		}
		d, err := plugIn("cbt-nh", host)
		if err != nil {
			return err
		}
		cleanup = append(cleanup, func() { d.Close() })
		devs = append(devs, d)
	}
	gso = [2]int64{}
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); gso[i] = forward(devs[i], devs[1-i]) }()
	}
	// A fresh veth takes a moment to get its carrier: wait for the path.
	for try := 0; exec.Command("ip", "netns", "exec", "cbt-na", "ping", "-c", "1", "-W", "1", "10.99.12.2").Run() != nil; try++ {
		if try == 10 {
			return fmt.Errorf("no ping through the AF_PACKET forwarder within 10 tries")
		}
	}
	r, err = measure("Go veth↔veth forwarder, AF_PACKET + vnet hdr", "cbt-na", "cbt-nb", "10.99.12.2", secs, runs)
	for _, d := range devs {
		d.Close()
	}
	wg.Wait()
	if err != nil {
		return err
	}
	results = append(results, r)

	fmt.Printf("\nsingle TCP stream, iperf3 %d s, median of %d runs, %d CPUs\n", secs, runs, runtime.NumCPU())
	fmt.Printf("%-40s %8s %8s %10s\n", "path", "Gbps", "× veth", "ping avg")
	for _, r := range results {
		fmt.Printf("%-40s %8.1f %8.2f %8.3f ms\n", r.name, r.gbps, r.gbps/results[0].gbps, r.rtt)
	}
	fmt.Printf("GSO super-frames through the TAP forwarder: A→B %d, B→A %d; through the AF_PACKET one: A→B %d, B→A %d\n",
		tapGSO[0], tapGSO[1], gso[0], gso[1])
	return nil
}

// plugIn attaches a Netdev to device name in namespace ns (the socket keeps
// working from any thread).
func plugIn(ns, name string) (*datapath.Netdev, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return nil, err
	}
	d, perr := datapath.Plug(name)
	if err := netns.Set(orig); err != nil {
		panic("cannot return to the original namespace: " + err.Error())
	}
	return d, perr
}

// forward is the whole forwarder: read a batch, write it to the other port,
// header and all, on a locked OS thread. It returns how many GSO frames
// it carried.
func forward(src, dst datapath.Port) int64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pkts := make([]datapath.Packet, 16)
	for i := range pkts {
		pkts[i].Buf = make([]byte, datapath.MaxFrame)
	}
	var gso int64
	for {
		n, err := src.ReadBatch(pkts)
		if err != nil {
			return gso
		}
		for i := range n {
			if pkts[i].Hdr.IsGSO() {
				gso++
			}
		}
		if _, err := dst.WriteBatch(pkts[:n]); err != nil {
			return gso
		}
	}
}

func measure(name, client, server, addr string, secs, runs int) (result, error) {
	res := result{name: name}
	srv := exec.Command("ip", "netns", "exec", server, "iperf3", "-s", "-p", "5299")
	if err := srv.Start(); err != nil {
		return res, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	out, err := exec.Command("ip", "netns", "exec", client, "ping", "-c", "20", "-i", "0.05", "-q", addr).CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("%s: ping: %v\n%s", name, err, out)
	}
	if m := regexp.MustCompile(`= [\d.]+/([\d.]+)/`).FindSubmatch(out); m != nil {
		res.rtt, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	var gbps []float64
	for range runs {
		out, err := exec.Command("ip", "netns", "exec", client, "iperf3", "-c", addr, "-p", "5299", "-t", strconv.Itoa(secs), "-J").Output()
		if err != nil {
			return res, fmt.Errorf("%s: iperf3: %v\n%s", name, err, out)
		}
		var j struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal(out, &j); err != nil {
			return res, fmt.Errorf("%s: iperf3 output: %w", name, err)
		}
		g := j.End.SumReceived.BitsPerSecond / 1e9
		fmt.Printf("%-40s run: %.1f Gbps\n", name, g)
		gbps = append(gbps, g)
	}
	slices.Sort(gbps)
	res.gbps = gbps[len(gbps)/2]
	return res, nil
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %v: %s", name, args, err, out)
	}
	return nil
}
