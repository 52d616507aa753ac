package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// idOf returns the "id" of a CLI JSON answer.
func idOf(t *testing.T, out string) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID == "" {
		t.Fatalf("no id in %q: %v", out, err)
	}
	return v.ID
}

// bridgePort adds a port for a VM (mac, ip) to bridge and returns its id.
func bridgePort(t *testing.T, l *netns.Lab, bridge, name, mac, ip string) string {
	t.Helper()
	return idOf(t, l.CLI("bridge", "port", "add", bridge, "--name", name, "--mac", mac, "--ip", ip))
}

// mustPing fails the test unless vm reaches dst.
func mustPing(t *testing.T, vm *netns.VM, dst string) {
	t.Helper()
	// The first packets may race the snapshot that carries a fresh
	// binding; a few tries absorb that.
	var out string
	for range 5 {
		var ok bool
		if out, ok = vm.Ping(dst, 3); ok {
			return
		}
	}
	t.Fatalf("%s cannot ping %s:\n%s", vm.Name, dst, out)
}

var rttRe = regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/([0-9.]+)/`)

// pingRTT returns the average RTT of n pings in ms.
func pingRTT(t *testing.T, vm *netns.VM, dst string, n int) float64 {
	t.Helper()
	out, err := vm.Exec("ping", "-c", strconv.Itoa(n), "-i", "0.01", "-W", "1", dst)
	if err != nil {
		t.Fatalf("ping %s: %v\n%s", dst, err, out)
	}
	m := rttRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no rtt in %s", out)
	}
	v, _ := strconv.ParseFloat(m[2], 64)
	return v
}

// iperf runs a TCP stream from client to server for secs and returns Gbps
// received.
func iperf(t *testing.T, client, server *netns.VM, secs int, extra ...string) float64 {
	t.Helper()
	stop := server.Background("iperf3", "-s", "-1", "-B", server.IP())
	defer stop()
	server.WaitListening(5201)
	args := append([]string{"iperf3", "-c", server.IP(), "-t", strconv.Itoa(secs), "-J"}, extra...)
	var out string
	var err error
	for range 3 {
		if out, err = client.Exec(args...); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3 %s → %s: %v\n%s", client.Name, server.Name, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9
}

func mac(i int) string { return fmt.Sprintf("02:00:00:00:00:%02x", i) }
