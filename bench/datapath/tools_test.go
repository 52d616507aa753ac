package datapath

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/cli"
	"golang.org/x/sys/unix"
)

// inNS runs f on an OS thread that has entered network namespace ns. The
// thread is never handed back to the runtime (the goroutine exits locked,
// so Go discards it): the namespace cannot leak to other goroutines.
// Sockets f opens stay in ns for their whole life.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// apiClient is a REST client of the lab's server, called from this process
// (its connections are opened inside the server's namespace) with the
// admin token: no CLI process in the measured path.
func apiClient(ns, url, token string) *cli.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNS(ns, func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &cli.Client{URL: url, Token: token, HTTP: &http.Client{
		Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4},
		Timeout:   10 * time.Second,
	}}
}

// synGen sends TCP SYNs from inside namespace ns to dst at a fixed rate,
// each with a source/destination port pair it has not used before, so every
// one is a new flow. It is a raw IP socket (the kernel routes it and
// resolves the next hop), paced in 200 µs steps: unlike hping3 --flood it
// does not take a whole core, which leaves the CPU to what is measured.
type synGen struct {
	src, dst [4]byte
	next     uint32 // flow counter: (sport, dport) = f(next)
}

func newSynGen(src, dst string) *synGen {
	return &synGen{src: netip.MustParseAddr(src).As4(), dst: netip.MustParseAddr(dst).As4()}
}

// run sends rate SYNs a second for d and returns how many it sent.
func (g *synGen) run(ns string, rate int, d time.Duration) (int, error) {
	sent := 0
	err := inNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrInet4{Addr: g.dst}
		var pkt [40]byte
		start := time.Now()
		for {
			el := time.Since(start)
			if el >= d {
				return nil
			}
			due := int(float64(rate) * el.Seconds())
			for sent < due {
				g.build(pkt[:])
				if err := unix.Sendto(fd, pkt[:], 0, to); err != nil && err != unix.ENOBUFS {
					return err
				}
				sent++
			}
			time.Sleep(200 * time.Microsecond)
		}
	})
	return sent, err
}

// build writes the next SYN (IPv4 + TCP, valid checksums) into p.
func (g *synGen) build(p []byte) {
	n := g.next
	g.next++
	sport := uint16(1024 + n%64000)
	dport := uint16(1 + (n/64000)%1000)
	clear(p)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], 40)
	p[8] = 64
	p[9] = unix.IPPROTO_TCP
	copy(p[12:], g.src[:])
	copy(p[16:], g.dst[:])
	binary.BigEndian.PutUint16(p[10:], ^sum(p[:20], 0)) // the kernel refills it anyway
	t := p[20:]
	binary.BigEndian.PutUint16(t, sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], n*7919)
	t[12] = 5 << 4
	t[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(t[14:], 64240)
	ph := uint32(binary.BigEndian.Uint16(g.src[:])) + uint32(binary.BigEndian.Uint16(g.src[2:])) +
		uint32(binary.BigEndian.Uint16(g.dst[:])) + uint32(binary.BigEndian.Uint16(g.dst[2:])) + unix.IPPROTO_TCP + 20
	binary.BigEndian.PutUint16(t[16:], ^sum(t, ph))
}

func sum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// nsPIDs lists the processes in namespace ns (a host namespace holds just
// its agent).
func nsPIDs(ns string) []string {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	return strings.Fields(string(out))
}

// perfRecord profiles the processes of namespace ns ("": all of the machine) with perf for d,
// writing dir/<label>.perf.data and a flat report dir/<label>.txt.
func perfRecord(ns, dir, label string, d time.Duration) error {
	target := []string{"-a"} // "": the whole machine
	if ns != "" {
		pids := nsPIDs(ns)
		if len(pids) == 0 {
			return fmt.Errorf("no process in %s", ns)
		}
		target = []string{"-p", strings.Join(pids, ",")}
	}
	data := dir + "/" + label + ".perf.data"
	args := append([]string{"record", "-F", "999", "-g", "-o", data}, target...)
	rec := exec.Command("perf", append(args, "--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', 1, 64))...)
	if out, err := rec.CombinedOutput(); err != nil {
		return fmt.Errorf("perf record: %v\n%s", err, out)
	}
	rep, err := exec.Command("perf", "report", "-i", data, "--no-children", "--percent-limit", "0.7",
		"--stdio", "-g", "none").Output()
	if err != nil {
		return fmt.Errorf("perf report: %v", err)
	}
	return os.WriteFile(dir+"/"+label+".txt", rep, 0o644)
}
