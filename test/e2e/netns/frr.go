package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FRR is an upstream router: Debian's FRR (zebra, bgpd, bfdd) running in a
// namespace of the test, with its own config, sockets and pid files in a
// directory of its own (so several can run on one machine, and none
// touches /etc/frr or /run/frr).
type FRR struct {
	t   testing.TB
	ns  string
	dir string
}

// StartFRR starts zebra, bgpd and bfdd in namespace ns with bgpd.conf bgp
// and, optionally, bfdd.conf bfd.
func StartFRR(t testing.TB, ns, bgp string, bfd ...string) *FRR {
	t.Helper()
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		if _, err := os.Stat("/usr/lib/frr/" + d); err != nil {
			t.Fatalf("FRR's %s is missing (make deps installs Debian's frr): %v", d, err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Fatalf("vtysh is missing (make deps installs Debian's frr): %v", err)
	}
	// The daemons drop to the frr user: their directory must be theirs to
	// write (t.TempDir's parents are not open to them).
	dir, err := os.MkdirTemp("", "canopy-frr-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	f := &FRR{t: t, ns: ns, dir: dir}
	t.Cleanup(f.stop)
	confs := map[string]string{"zebra": "hostname upstream\n", "bgpd": bgp, "bfdd": "hostname upstream\n"}
	if len(bfd) > 0 {
		confs["bfdd"] = bfd[0]
	}
	for _, d := range []string{"zebra", "bfdd", "bgpd"} {
		conf := filepath.Join(dir, d+".conf")
		if err := os.WriteFile(conf, []byte(confs[d]), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"netns", "exec", ns, "/usr/lib/frr/" + d, "-d", "-f", conf,
			"-i", filepath.Join(dir, d+".pid"), "-z", filepath.Join(dir, "zserv.api"),
			"--vty_socket", dir, "--log", "file:" + filepath.Join(dir, d+".log")}
		if d == "bfdd" {
			args = append(args, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("starting %s: %v\n%s\n%s", d, err, out, f.Logs())
		}
		// Each daemon connects to zebra's socket: wait for it.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, d+".vty")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not open its vty socket within 20s\n%s", d, f.Logs())
			}
		}
	}
	return f
}

// Vtysh runs one vtysh command against this FRR.
func (f *FRR) Vtysh(cmd string) string {
	f.t.Helper()
	out, err := exec.Command("vtysh", "--vty_socket", f.dir, "-c", cmd).CombinedOutput()
	if err != nil {
		f.t.Fatalf("vtysh -c %q: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// JSON runs a vtysh command that answers JSON into v.
func (f *FRR) JSON(cmd string, v any) {
	f.t.Helper()
	out := f.Vtysh(cmd)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		f.t.Fatalf("vtysh -c %q: %v\n%s", cmd, err, out)
	}
}

func (f *FRR) Logs() string {
	var b strings.Builder
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		out, _ := os.ReadFile(filepath.Join(f.dir, d+".log"))
		fmt.Fprintf(&b, "--- %s.log\n%s", d, tail(string(out), 3000))
	}
	return b.String()
}

func (f *FRR) stop() {
	if f.t.Failed() {
		f.t.Logf("FRR logs:\n%s", f.Logs())
	}
	for _, d := range []string{"bgpd", "bfdd", "zebra"} {
		b, err := os.ReadFile(filepath.Join(f.dir, d+".pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	os.RemoveAll(f.dir)
}

// BGPNeighbor is the part of `show ip bgp neighbors X json` the tests read.
type BGPNeighbor struct {
	State       string `json:"bgpState"`
	UpMsec      int64  `json:"bgpTimerUpMsec"`
	Established int    `json:"connectionsEstablished"`
	Dropped     int    `json:"connectionsDropped"`
}

// Neighbor is FRR's view of its BGP session with addr.
func (f *FRR) Neighbor(addr string) BGPNeighbor {
	f.t.Helper()
	var m map[string]BGPNeighbor
	f.JSON("show ip bgp neighbors "+addr+" json", &m)
	return m[addr]
}

// NextHops returns the next hops FRR's BGP table holds for prefix.
func (f *FRR) NextHops(prefix string) []string {
	f.t.Helper()
	var tbl struct {
		Routes map[string][]struct {
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
		} `json:"routes"`
	}
	f.JSON("show ip bgp json", &tbl)
	var out []string
	for _, path := range tbl.Routes[prefix] {
		for _, nh := range path.Nexthops {
			out = append(out, nh.IP)
		}
	}
	return out
}

// BFDPeers returns FRR's BFD sessions: peer address → status.
func (f *FRR) BFDPeers() map[string]string {
	f.t.Helper()
	var peers []struct {
		Peer   string `json:"peer"`
		Status string `json:"status"`
	}
	f.JSON("show bfd peers json", &peers)
	out := map[string]string{}
	for _, p := range peers {
		out[p.Peer] = p.Status
	}
	return out
}

// FRRTwoGateways is the upstream router's bgpd.conf with two gateways,
// 192.0.2.2 and 192.0.2.130, each on its own /25 (test/e2e's bgpEdge,
// bench/edge; docs/gateways.md shows it with other addresses).
const FRRTwoGateways = `frr defaults datacenter
hostname upstream
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 bgp graceful-restart
 neighbor 192.0.2.2 remote-as 65001
 neighbor 192.0.2.2 timers connect 2
 neighbor 192.0.2.2 update-source 192.0.2.1
 neighbor 192.0.2.2 bfd profile fast
 neighbor 192.0.2.130 remote-as 65001
 neighbor 192.0.2.130 timers connect 2
 neighbor 192.0.2.130 update-source 192.0.2.129
 neighbor 192.0.2.130 bfd profile fast
 !
 address-family ipv4 unicast
  neighbor 192.0.2.2 default-originate
  neighbor 192.0.2.130 default-originate
  maximum-paths 8
 exit-address-family
!
`

// FRRBFD is bfdd.conf with profile "fast": ms × 3.
func FRRBFD(ms int) string {
	return fmt.Sprintf(`hostname upstream
!
bfd
 profile fast
  transmit-interval %d
  receive-interval %d
  detect-multiplier 3
 !
!
`, ms, ms)
}
