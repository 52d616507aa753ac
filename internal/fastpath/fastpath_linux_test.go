package fastpath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/netnstest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A test host: a namespace with the program loaded, the inject pair, and
// a stand-in agent that answers misses with flows from route.
type testHost struct {
	t      *testing.T
	name   string
	nsName string
	ns     netns.NsHandle
	dp     *Datapath
	inj    *Injector
	mr     *MissReader
	route  func(p *packet.Packet, in uint32) []flow.Action
	remote map[string]netip.Addr

	mu       sync.Mutex
	misses   int
	mismatch []string
}

var routerMAC = [6]byte{0x02, 0xca, 0xfe, 0, 0, 1}

func newTestHost(t *testing.T, sfx, name string) *testHost {
	return newTestHostWith(t, sfx, name, Options{})
}

// newTestHostWith is newTestHost with the program loaded and attached as o
// says.
func newTestHostWith(t *testing.T, sfx, name string, o Options) *testHost {
	t.Helper()
	h := &testHost{t: t, name: "fptest-" + name + sfx, nsName: "fp" + name + sfx, remote: map[string]netip.Addr{}}
	h.ns = netnstest.New(t, h.nsName)
	var err error
	if h.dp, err = OpenWith(h.name, o); err != nil {
		t.Fatal(err)
	}
	if o.Attach != AttachAuto && h.dp.Attach() != o.Attach {
		t.Fatalf("attached with %q, asked for %q", h.dp.Attach(), o.Attach)
	}
	t.Cleanup(func() {
		if err := h.dp.Remove(); err != nil {
			t.Error(err)
		}
	})
	netnstest.Do(t, h.ns, func() {
		h.inj, err = h.dp.SetupInject(DefaultDevices.Inject, DefaultDevices.InjectTx)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.inj.Close() })
	return h
}

// serve answers misses until the test ends, a batch at a time as the
// agent does: the batch's flows are queued, then its frames go through the
// injector in one Send, which writes the flows first.
func (h *testHost) serve() {
	var err error
	if h.mr, err = h.dp.NewMissReader(); err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	h.t.Cleanup(func() { h.mr.Close(); <-done })
	go func() {
		defer close(done)
		ms := make([]Miss, 16)
		var out []Outgoing
		var p packet.Packet
		for {
			n, err := h.mr.ReadBatch(ms)
			if err != nil {
				if !errors.Is(err, ErrClosed) {
					h.t.Error(err)
				}
				return
			}
			out = out[:0]
			for i := range n {
				m := &ms[i]
				p.Decode(m.Frame)
				h.mu.Lock()
				h.misses++
				ipLen := 0
				if p.Flags&packet.FlagIPv4 != 0 {
					ipLen = int(p.TotalLen)
					if m.GSOSize != 0 { // a large send: the decision saw a segment
						l4 := 8
						if p.Proto == packet.ProtoTCP {
							l4 = 20
						}
						ipLen = p.IHL + l4 + int(m.GSOSize)
					}
				}
				if k, ok := KeyFrom(m.InKey, &p, ipLen); ok != m.LookedUp || (ok && k != m.Key) {
					h.mismatch = append(h.mismatch, fmt.Sprintf("kernel %+v (looked up %v), Go %+v", m.Key, m.LookedUp, k))
				}
				h.mu.Unlock()
				acts := h.route(&p, m.InKey)
				if acts == nil {
					continue
				}
				if m.LookedUp {
					f, err := Encode(acts, false, h.lookupRemote)
					if err != nil {
						h.t.Error(err)
						continue
					}
					h.dp.QueueFlow(&m.Key, &f)
				}
				flow.Apply(m.Frame, &p, acts, func(a flow.Action, frame []byte) {
					o := Outgoing{Frame: append([]byte(nil), frame...), Key: a.Key}
					if a.Kind == flow.Tunnel {
						o.Remote = h.remote[a.Host]
					}
					out = append(out, o)
				})
			}
			if sent, err := h.inj.Send(out); err != nil || sent != len(out) {
				h.t.Errorf("injected %d of %d frames: %v", sent, len(out), err)
			}
			if err := h.dp.FlushFlows(); err != nil { // flows whose frames went nowhere
				h.t.Error(err)
			}
		}
	}()
}

func (h *testHost) lookupRemote(host string) (netip.Addr, bool) {
	a, ok := h.remote[host]
	return a, ok
}

type testInst struct {
	nsName string
	ns     netns.NsHandle
	mac    [6]byte
	ip     string
	key    uint32
}

// addInstance plugs a namespace instance into h on a veth pair (host end
// "p<key><sfx>"), its subnet's gateway being the router MAC.
func (h *testHost) addInstance(sfx string, key uint32, cidr, gw string) *testInst {
	t := h.t
	in := &testInst{nsName: fmt.Sprintf("fpi%d%s", key, sfx), key: key, ip: strings.Split(cidr, "/")[0]}
	in.ns = netnstest.New(t, in.nsName)
	dev := fmt.Sprintf("p%d%s", key, sfx)
	netnstest.Veth(t, dev, "eth0", h.ns, in.ns)
	netnstest.AddAddr(t, in.ns, "eth0", cidr)
	netnstest.Run(t, in.nsName, "ip", "route", "add", "default", "via", gw)
	netnstest.Run(t, in.nsName, "ip", "neigh", "add", gw, "lladdr", net.HardwareAddr(routerMAC[:]).String(), "dev", "eth0")
	nh, err := netlink.NewHandleAt(in.ns)
	if err != nil {
		t.Fatal(err)
	}
	l, err := nh.LinkByName("eth0")
	nh.Close()
	if err != nil {
		t.Fatal(err)
	}
	copy(in.mac[:], l.Attrs().HardwareAddr)
	netnstest.Do(t, h.ns, func() {
		hl, err := netlink.LinkByName(dev)
		if err == nil {
			err = netlink.LinkSetUp(hl)
		}
		if err == nil {
			err = h.dp.AttachPort(dev, key)
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	return in
}

// routed returns the actions a router between the instances would: the
// router's MAC as source, the instance's as destination, one TTL less.
func routed(to *testInst, out flow.Action) []flow.Action {
	return []flow.Action{{Kind: flow.SetEthSrc, MAC: routerMAC}, {Kind: flow.SetEthDst, MAC: to.mac}, {Kind: flow.DecTTL, Port: 1}, out}
}

func ip4(s string) uint32 { return packet.U32(netip.MustParseAddr(s)) }

func requireLab(t *testing.T) {
	netnstest.RequireRoot(t)
	netnstest.RequireTool(t, "ping", "iputils-ping")
	netnstest.RequireTool(t, "iperf3", "iperf3")
}

// iperf runs a one-second iperf3 stream from a to dst:port (a server in
// srv) and returns the client's output.
func iperf(t *testing.T, a, srv *testInst, dst string, port int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := netnstest.Command(ctx, srv.nsName, "iperf3", "-s", "-1", "-p", fmt.Sprint(port))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Wait()
	var out []byte
	var err error
	// The server listens soon after it starts; the client retries until
	// it connects (a refused connection is immediate).
	for range 100 {
		out, err = netnstest.Command(ctx, a.nsName, "iperf3", "-c", dst, "-p", fmt.Sprint(port), "-t", "1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refused") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3 to %s:%d: %v\n%s", dst, port, err, out)
	}
	return string(out)
}

func (h *testHost) checkKeys() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.mismatch {
		h.t.Errorf("key mismatch: %s", m)
	}
}

// TestSameHostRouted: two instances on one host in different subnets; the
// first packet of each direction misses, the stand-in agent installs the
// flow and re-injects it; the rest is forwarded by the kernel (ping and a
// TCP stream with segmentation offloads), and the keys the program computes
// equal the Go ones.
func TestSameHostRouted(t *testing.T) {
	requireLab(t)
	eachAttach(t, testSameHostRouted)
}

// eachAttach runs f with the program attached each way: tcx (this
// kernel's) and classic TC (what a kernel before 6.6 gets), so that CI
// on a recent kernel exercises both.
func eachAttach(t *testing.T, f func(*testing.T, Options)) {
	for _, m := range []Attach{AttachTCX, AttachTC} {
		t.Run(string(m), func(t *testing.T) { f(t, Options{Attach: m}) })
	}
}

func testSameHostRouted(t *testing.T, o Options) {
	sfx := netnstest.Suffix(t)
	h := newTestHostWith(t, sfx, "a", o)
	a := h.addInstance(sfx, 11, "10.1.0.2/24", "10.1.0.1")
	b := h.addInstance(sfx, 12, "10.2.0.2/24", "10.2.0.1")
	h.route = func(p *packet.Packet, in uint32) []flow.Action {
		switch {
		case p.Flags&packet.FlagIPv4 == 0:
			return nil
		case p.Dst == ip4(b.ip):
			return routed(b, flow.Action{Kind: flow.Output, Key: b.key})
		case p.Dst == ip4(a.ip):
			return routed(a, flow.Action{Kind: flow.Output, Key: a.key})
		}
		return nil
	}
	h.serve()
	out := netnstest.Run(t, a.nsName, "ping", "-c", "5", "-i", "0.05", "-W", "2", b.ip)
	if !strings.Contains(out, "ttl=63") {
		t.Errorf("reply TTL is not 63 (one router hop each way):\n%s", out)
	}
	iperf(t, a, b, b.ip, 5201)
	st := h.dp.Stats()
	if st.Hits < 100 {
		t.Errorf("kernel hits = %d, want the stream forwarded by the kernel", st.Hits)
	}
	h.mu.Lock()
	misses := h.misses
	h.mu.Unlock()
	if misses > 40 {
		t.Errorf("%d misses reached the agent; want the first packet of each flow only", misses)
	}
	h.checkKeys()
	t.Logf("stats %+v, misses %d", st, misses)
}

// underlay joins two test hosts with a veth pair addressed a and b (/24)
// and opens each host's VXLAN device on port.
func underlay(t *testing.T, sfx string, h1, h2 *testHost, a, b string, port uint16) {
	t.Helper()
	netnstest.Veth(t, "ul"+sfx, "ul"+sfx, h1.ns, h2.ns)
	netnstest.AddAddr(t, h1.ns, "ul"+sfx, a+"/24")
	netnstest.AddAddr(t, h2.ns, "ul"+sfx, b+"/24")
	h1.remote[h2.name] = netip.MustParseAddr(b)
	h2.remote[h1.name] = netip.MustParseAddr(a)
	for _, h := range []*testHost{h1, h2} {
		var err error
		netnstest.Do(t, h.ns, func() { err = h.dp.SetupTunnel(DefaultDevices.Tunnel, port, 1500) })
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrossHostVXLAN: instances on two hosts; the ingress host's flow ends
// in a tunnel action (kernel VXLAN, the egress port's key as VNI), the
// receiving host's program delivers by VNI without a flow or a miss.
func TestCrossHostVXLAN(t *testing.T) {
	requireLab(t)
	eachAttach(t, testCrossHostVXLAN)
}

func testCrossHostVXLAN(t *testing.T, o Options) {
	sfx := netnstest.Suffix(t)
	h1 := newTestHostWith(t, sfx, "x", o)
	h2 := newTestHostWith(t, sfx, "y", o)
	underlay(t, sfx, h1, h2, "10.99.0.1", "10.99.0.2", 6677)
	a := h1.addInstance(sfx, 21, "10.1.0.2/24", "10.1.0.1")
	b := h2.addInstance(sfx, 22, "10.2.0.2/24", "10.2.0.1")
	h1.route = func(p *packet.Packet, in uint32) []flow.Action {
		if p.Flags&packet.FlagIPv4 == 0 || p.Dst != ip4(b.ip) {
			return nil
		}
		return routed(b, flow.Action{Kind: flow.Tunnel, Host: h2.name, Key: b.key})
	}
	h2.route = func(p *packet.Packet, in uint32) []flow.Action {
		if p.Flags&packet.FlagIPv4 == 0 || p.Dst != ip4(a.ip) {
			return nil
		}
		return routed(a, flow.Action{Kind: flow.Tunnel, Host: h1.name, Key: a.key})
	}
	h1.serve()
	h2.serve()
	out := netnstest.Run(t, a.nsName, "ping", "-c", "5", "-i", "0.05", "-W", "2", b.ip)
	if !strings.Contains(out, "ttl=63") {
		t.Errorf("reply TTL is not 63:\n%s", out)
	}
	iperf(t, a, b, b.ip, 5202)
	s1, s2 := h1.dp.Stats(), h2.dp.Stats()
	if s1.TunnelTx < 100 || s2.TunnelRx < 100 || s2.TunnelTx < 100 || s1.TunnelRx < 100 {
		t.Errorf("tunnel counters: host 1 %+v, host 2 %+v; want the stream through kernel VXLAN both ways", s1, s2)
	}
	h1.checkKeys()
	h2.checkKeys()
}

// TestPinnedAdoption: the maps and links outlive the process's handles.
// A ping runs while the program's owner lets go of everything (no miss is
// read any more): every echo still gets its reply through the pinned flow.
// A new Open adopts the same flows and links.
func TestPinnedAdoption(t *testing.T) {
	requireLab(t)
	eachAttach(t, testPinnedAdoption)
}

func testPinnedAdoption(t *testing.T, o Options) {
	sfx := netnstest.Suffix(t)
	h := newTestHostWith(t, sfx, "p", o)
	a := h.addInstance(sfx, 31, "10.1.0.2/24", "10.1.0.1")
	b := h.addInstance(sfx, 32, "10.2.0.2/24", "10.2.0.1")
	h.route = func(p *packet.Packet, in uint32) []flow.Action {
		switch {
		case p.Flags&packet.FlagIPv4 == 0:
			return nil
		case p.Dst == ip4(b.ip):
			return routed(b, flow.Action{Kind: flow.Output, Key: b.key})
		case p.Dst == ip4(a.ip):
			return routed(a, flow.Action{Kind: flow.Output, Key: a.key})
		}
		return nil
	}
	h.serve()
	// One ping process: one echo id, one flow each way for all 40 echoes.
	ping := netnstest.Command(context.Background(), a.nsName, "ping", "-c", "40", "-i", "0.02", "-W", "1", b.ip)
	var out strings.Builder
	ping.Stdout, ping.Stderr = &out, &out
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	for h.dp.Stats().Hits < 10 {
		time.Sleep(10 * time.Millisecond) // waits on the kernel's hit counter
	}
	flows := len(h.dp.FlowKeys())
	h.mr.Close()
	if err := h.dp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ping.Wait(); err != nil || !strings.Contains(out.String(), " 0% packet loss") {
		t.Fatalf("ping across the owner's exit: %v\n%s", err, out.String())
	}
	dp, err := OpenWith(h.name, o)
	if err != nil {
		t.Fatal(err)
	}
	h.dp = dp
	if got := len(dp.FlowKeys()); got != flows || flows < 2 {
		t.Errorf("adopted %d flows, want the %d (at least 2) left behind", got, flows)
	}
	if st := dp.Stats(); st.Hits < 60 {
		t.Errorf("adopted counters %+v: want the 40 echoes and replies counted while nobody owned the program", st)
	}
	netnstest.Do(t, h.ns, func() {
		if err := dp.AttachPort(fmt.Sprintf("p%d%s", a.key, sfx), a.key); err != nil {
			t.Error(err)
		}
	})
	if n := len(dp.links) + len(dp.tc); n != 1 {
		t.Errorf("%d attachments held after adopting one", n)
	}
	// The adopted attachment runs the new program: a new flow (another
	// ping, another echo id) misses to it and is forwarded.
	h.serve()
	netnstest.Run(t, a.nsName, "ping", "-c", "3", "-i", "0.05", "-W", "2", b.ip)
}

// TestAttachModeChange: an agent killed on one attach mode is followed by
// one on the other (an upgraded kernel, a forced mode): the new program
// takes the device over and the old attachment goes, with no second copy
// of the program on the device; Purge (a userspace agent after a killed
// kernel agent) removes a classic filter, which no pin holds.
func TestAttachModeChange(t *testing.T) {
	requireLab(t)
	sfx := netnstest.Suffix(t)
	h := newTestHostWith(t, sfx, "m", Options{Attach: AttachTC})
	a := h.addInstance(sfx, 51, "10.1.0.2/24", "10.1.0.1")
	b := h.addInstance(sfx, 52, "10.2.0.2/24", "10.2.0.1")
	h.route = func(p *packet.Packet, in uint32) []flow.Action {
		switch {
		case p.Flags&packet.FlagIPv4 == 0:
			return nil
		case p.Dst == ip4(b.ip):
			return routed(b, flow.Action{Kind: flow.Output, Key: b.key})
		case p.Dst == ip4(a.ip):
			return routed(a, flow.Action{Kind: flow.Output, Key: a.key})
		}
		return nil
	}
	devA, devB := fmt.Sprintf("p%d%s", a.key, sfx), fmt.Sprintf("p%d%s", b.key, sfx)
	attachments := func() (filters, links int) {
		netnstest.Do(t, h.ns, func() {
			for _, dev := range []string{devA, devB} {
				l, err := netlink.LinkByName(dev)
				if err != nil {
					t.Fatal(err)
				}
				fs, _ := netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS)
				for _, f := range fs {
					if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == tcFilterName {
						filters++
					}
				}
			}
		})
		ents, _ := os.ReadDir(h.dp.Dir())
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "link-p") {
				links++
			}
		}
		return filters, links
	}
	h.serve()
	netnstest.Run(t, a.nsName, "ping", "-c", "3", "-i", "0.05", "-W", "2", b.ip)
	if f, l := attachments(); f != 2 || l != 0 {
		t.Fatalf("classic TC: %d filters and %d tcx links on the ports, want 2 and 0", f, l)
	}
	// Killed, then an agent attaching with tcx.
	reopen := func(m Attach) {
		h.mr.Close()
		if err := h.dp.Close(); err != nil {
			t.Fatal(err)
		}
		dp, err := OpenWith(h.name, Options{Attach: m})
		if err != nil {
			t.Fatal(err)
		}
		h.dp = dp
		netnstest.Do(t, h.ns, func() {
			for _, p := range []*testInst{a, b} {
				if err := dp.AttachPort(fmt.Sprintf("p%d%s", p.key, sfx), p.key); err != nil {
					t.Fatal(err)
				}
			}
		})
		h.serve()
		netnstest.Run(t, a.nsName, "ping", "-c", "3", "-i", "0.05", "-W", "2", b.ip)
	}
	reopen(AttachTCX)
	if f, l := attachments(); f != 0 || l != 2 {
		t.Fatalf("after tcx took over: %d filters and %d tcx links, want 0 and 2", f, l)
	}
	reopen(AttachTC)
	if f, l := attachments(); f != 2 || l != 0 {
		t.Fatalf("after classic TC took over: %d filters and %d tcx links, want 2 and 0", f, l)
	}
	// Killed again; a userspace agent purges what is left.
	h.mr.Close()
	if err := h.dp.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	netnstest.Do(t, h.ns, func() { err = Purge(h.name, DefaultDevices) })
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := attachments(); f != 0 {
		t.Errorf("%d classic filters left after Purge", f)
	}
	// Nothing left to remove at the test's end: open again, empty.
	if h.dp, err = OpenWith(h.name, Options{Attach: AttachTC}); err != nil {
		t.Fatal(err)
	}
}

// TestNATRewrites: the address and port rewrites of a DNAT, with their
// incremental checksums, on TCP (a stream with segmentation offloads:
// partial checksums) and on ICMP echo (the id is the port): a instance
// talks to a virtual address that the flows turn into b's, and back.
func TestNATRewrites(t *testing.T) {
	requireLab(t)
	sfx := netnstest.Suffix(t)
	h := newTestHost(t, sfx, "n")
	a := h.addInstance(sfx, 41, "10.1.0.2/24", "10.1.0.1")
	b := h.addInstance(sfx, 42, "10.2.0.2/24", "10.2.0.1")
	vip := ip4("10.9.9.9")
	h.route = func(p *packet.Packet, in uint32) []flow.Action {
		if p.Flags&packet.FlagIPv4 == 0 {
			return nil
		}
		switch {
		case in == a.key && p.Dst == vip && p.Proto == packet.ProtoTCP:
			return append([]flow.Action{{Kind: flow.SetIPDst, IP: ip4(b.ip)}, {Kind: flow.SetDstPort, Port: 5203}},
				routed(b, flow.Action{Kind: flow.Output, Key: b.key})...)
		case in == b.key && p.Proto == packet.ProtoTCP:
			return append([]flow.Action{{Kind: flow.SetIPSrc, IP: vip}, {Kind: flow.SetSrcPort, Port: 80}},
				routed(a, flow.Action{Kind: flow.Output, Key: a.key})...)
		case in == a.key && p.Dst == vip && p.IsEcho():
			return append([]flow.Action{{Kind: flow.SetIPDst, IP: ip4(b.ip)}, {Kind: flow.SetSrcPort, Port: p.SrcPort ^ 0x5555}},
				routed(b, flow.Action{Kind: flow.Output, Key: b.key})...)
		case in == b.key && p.IsEcho():
			return append([]flow.Action{{Kind: flow.SetIPSrc, IP: vip}, {Kind: flow.SetDstPort, Port: p.DstPort ^ 0x5555}},
				routed(a, flow.Action{Kind: flow.Output, Key: a.key})...)
		}
		return nil
	}
	h.serve()
	netnstest.Run(t, a.nsName, "ping", "-c", "5", "-i", "0.05", "-W", "2", "10.9.9.9")
	// The server listens on 5203; the client connects to 10.9.9.9:80.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := netnstest.Command(ctx, b.nsName, "iperf3", "-s", "-1", "-p", "5203")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Wait()
	var out []byte
	var err error
	for range 100 {
		out, err = netnstest.Command(ctx, a.nsName, "iperf3", "-c", "10.9.9.9", "-p", "80", "-t", "1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refused") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3 through the DNAT: %v\n%s", err, out)
	}
	if st := h.dp.Stats(); st.Hits < 100 {
		t.Errorf("kernel hits = %d, want the stream forwarded (and rewritten) by the kernel", st.Hits)
	}
	h.checkKeys()
}

// TestAutoAttach: Open attaches with tcx where the kernel has it (6.6 and
// later) and with classic TC before. (test/e2e TestFastpathOnDebian12Kernel
// runs it, with the tests above on classic TC, on Debian 12's 6.1.)
func TestAutoAttach(t *testing.T) {
	netnstest.RequireRoot(t)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	want := AttachTC
	if major > 6 || major == 6 && minor >= 6 {
		want = AttachTCX
	}
	dp, err := Open("fptest-auto" + netnstest.Suffix(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Remove()
	if dp.Attach() != want {
		t.Errorf("Linux %s: attached with %q, want %q", rel, dp.Attach(), want)
	}
	t.Logf("Linux %s: %s", rel, dp.Attach())
}

// DeleteFlows removes exactly the flows named, in one batch, skipping a
// key the map does not have (the kernel's batch stops at it).
func TestDeleteFlows(t *testing.T) {
	netnstest.RequireRoot(t)
	dp, err := Open("fptest-del" + netnstest.Suffix(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Remove()
	keys := make([]Key, 6)
	for i := range keys {
		keys[i] = Key{InKey: 7, Sport: uint16(1000 + i), Dport: 80, Proto: packet.ProtoTCP, Ethertype: packet.EtherTypeIPv4}
	}
	var f Flow
	for i := range 5 { // keys[5] is never written
		if err := dp.PutFlow(&keys[i], &f); err != nil {
			t.Fatal(err)
		}
	}
	if err := dp.DeleteFlows([]Key{keys[0], keys[5], keys[2], keys[4]}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true, false, true, false, false} {
		if got := dp.LookupFlow(&keys[i], &f); got != want {
			t.Errorf("flow %d in the map: %v, want %v", i, got, want)
		}
	}
	if err := dp.DeleteFlows(nil); err != nil {
		t.Errorf("deleting no flow: %v", err)
	}
}

// TestRingHoldsSmallMisses: a small missed frame (a SYN, a DNS query) takes
// a record of its size in the ring, not of the largest frame copied, so the
// ring holds thousands of new flows' first packets while the agent is off
// the CPU. 8,000 missed UDP datagrams sent with nobody reading all wait in
// the 4 MB ring (records of 2 KB held fewer than 2,000: the rest were lost)
// and are then read whole.
func TestRingHoldsSmallMisses(t *testing.T) {
	requireLab(t)
	sfx := netnstest.Suffix(t)
	h := newTestHost(t, sfx, "r")
	a := h.addInstance(sfx, 21, "10.1.0.2/24", "10.1.0.1")
	const n = 8000
	// Sent until the program has counted n misses, in steps of 100 each
	// waited for: the frames reach the program in softirqs that may run
	// after the sends returned, and a sender far ahead of them overflows
	// the kernel's backlog (1,000 frames), which loses frames before the
	// program sees them.
	var st Stats
	sent := 0
	netnstest.Do(t, a.ns, func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		for st.Misses < n && sent < 2*n {
			for range 100 {
				to := &unix.SockaddrInet4{Port: 1024 + sent, Addr: [4]byte{10, 2, 0, 2}}
				if err := unix.Sendto(fd, []byte("new flow"), 0, to); err != nil {
					t.Fatalf("datagram %d: %v", sent, err)
				}
				sent++
			}
			// Until the step is in, or the count stopped moving (a frame
			// lost before the program never comes).
			st = h.dp.Stats()
			for last, still := st.Misses, 0; st.Misses < uint64(sent) && still < 50; st = h.dp.Stats() {
				time.Sleep(time.Millisecond)
				if still++; st.Misses != last {
					last, still = st.Misses, 0
				}
			}
		}
	})
	if st.Misses < n || st.MissesLost != 0 {
		t.Fatalf("%d misses of %d datagrams, %d of them lost at the full ring; want %d and none lost", st.Misses, sent, st.MissesLost, n)
	}
	mr, err := h.dp.NewMissReader()
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	ms := make([]Miss, 64)
	got := 0
	for uint64(got) < st.Misses && mr.r.AvailableBytes() > 0 {
		k, err := mr.ReadBatch(ms)
		if err != nil {
			t.Fatal(err)
		}
		for i := range k {
			var p packet.Packet
			p.Decode(ms[i].Frame)
			if !ms[i].Truncated && p.Proto == packet.ProtoUDP && p.Dst == ip4("10.2.0.2") && p.DstPort >= 1024 {
				got++
			}
		}
	}
	if got < n {
		t.Errorf("read %d whole datagrams from the ring, want at least %d", got, n)
	}
}
