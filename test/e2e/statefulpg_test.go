package e2e

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
	"golang.org/x/sys/unix"
)

// The stateful port group lab (issue 9, "What it must show" 3): a router r
// with a LAN bridge and three exterior ports, each on its own host and
// bound to an outside namespace, all three in port group "gw":
//
//	c 10.0.0.2 ─ lan ─ (10.0.0.1) r ─ p1 10.1.1.1/24 (h1) ─ out1 10.1.1.2 = S
//	                                 ├ p2 10.1.2.1/24 (h2) ─ out2 10.1.2.2
//	                                 └ p3 10.1.3.1/24 (h3) ─ out3 10.1.3.2
//
// c (on h1) sends to the virtual address V; the route to V leaves through
// p1, whose out-filter DNATs V to S. Every member's in-filter has rev_dnat.
// Replies from S are then injected on each member, as if the outside
// network had sent them back through any of the gateways.
const (
	pgVIP    = "192.0.2.10" // V
	pgServer = "10.1.1.2"   // S: out1's address
	pgPort   = 7000
	pgClient = "10.0.0.2"
)

type gatewayGroup struct {
	l     *netns.Lab
	hosts [3]*netns.Host
	c     *netns.VM
	out   [3]*netns.VM
	pmac  [3]net.HardwareAddr // MACs of the router ports p1..p3
}

func newGatewayGroup(t *testing.T, stateful bool) *gatewayGroup {
	l := netns.New(t, canopyBin, netns.Options{})
	g := &gatewayGroup{l: l}
	for i := range g.hosts {
		g.hosts[i] = l.AddHost(fmt.Sprintf("h%d", i+1))
	}
	l.CLI("router", "create", "r")
	l.CLI("bridge", "create", "lan")
	rp := idOf(t, l.CLI("router", "port", "add", "r", "--name", "lan", "--address", "10.0.0.1/24"))
	bp := idOf(t, l.CLI("bridge", "port", "add", "lan", "--name", "up"))
	l.CLI("port", "link", rp, bp)
	cp := bridgePort(t, l, "lan", "c", mac(1), pgClient)

	create := []string{"port-group", "create", "gw"}
	if stateful {
		create = append(create, "--stateful")
	}
	l.CLI(create...)
	var ports [3]string
	for i := range ports {
		out := l.CLI("router", "port", "add", "r", "--name", fmt.Sprintf("p%d", i+1), "--address", fmt.Sprintf("10.1.%d.1/24", i+1))
		ports[i] = idOf(t, out)
		g.pmac[i] = macOf(t, out)
		l.CLI("port-group", "member", "add", "gw", ports[i])
	}
	// A port range makes the DNAT stateful (a NAT entry per connection):
	// without one it would be a stateless 1:1 rewrite that needs no state.
	l.CLI("chain", "create", "gw-out")
	l.CLI("chain", "rule", "add", "gw-out", "--action", "dnat", "--nw-dst", pgVIP+"/32", "--nw-proto", "udp",
		"--nat-target", fmt.Sprintf("%s:%d-%d", pgServer, pgPort, pgPort))
	l.CLI("port", "set", ports[0], "--out-filter", "gw-out")
	l.CLI("chain", "create", "gw-in")
	l.CLI("chain", "rule", "add", "gw-in", "--action", "rev_dnat")
	for _, p := range ports {
		l.CLI("port", "set", p, "--in-filter", "gw-in")
	}
	l.CLI("route", "add", "r", "--dst", pgVIP+"/32", "--port", ports[0], "--gateway", pgServer)

	// c is bound first: each agent has plugged its outside port only once
	// its topology holds every earlier change, c's binding included, so
	// the replies entering on h2 and h3 know where c is.
	g.c = l.AddVM("c", g.hosts[0], cp, mac(1), pgClient+"/24", "10.0.0.1", 0)
	for i, p := range ports {
		g.out[i] = l.AddVM(fmt.Sprintf("out%d", i+1), g.hosts[i], p, mac(0x11+i),
			fmt.Sprintf("10.1.%d.2/24", i+1), fmt.Sprintf("10.1.%d.1", i+1), 0)
	}
	return g
}

// macOf returns the "mac" of a CLI JSON answer.
func macOf(t *testing.T, out string) net.HardwareAddr {
	t.Helper()
	var v struct {
		MAC string `json:"mac"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("no mac in %q: %v", out, err)
	}
	m, err := net.ParseMAC(v.MAC)
	if err != nil {
		t.Fatalf("mac in %q: %v", out, err)
	}
	return m
}

const stateRx = "canopy_agent_state_messages_received_total"

// client opens c's UDP socket (its port is the connection's client port).
func (g *gatewayGroup) client(t *testing.T) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	conn, err := g.c.ListenUDP(pgClient + ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// request sends a datagram from conn to V:pgPort and checks that out1
// receives it, DNATed to S and from c's own address. With wantState it
// then waits until h2 and h3 have imported state sent after the call began.
func (g *gatewayGroup) request(t *testing.T, conn *net.UDPConn, wantState bool) {
	t.Helper()
	cAddr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	srv, err := g.out[0].ListenUDP(fmt.Sprintf("%s:%d", pgServer, pgPort))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var base [3]float64
	for i, h := range g.hosts {
		base[i] = h.Metric(stateRx)
	}
	// The first datagram waits for the router's ARP of S; a lost one (a
	// binding racing the first packets) is sent again, same connection.
	vip := &net.UDPAddr{IP: net.ParseIP(pgVIP), Port: pgPort}
	buf := make([]byte, 2048)
	var from netip.AddrPort
	got := false
	for try := 0; try < 5 && !got; try++ {
		if _, err := conn.WriteToUDP([]byte("request"), vip); err != nil {
			t.Fatal(err)
		}
		_ = srv.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, a, err := srv.ReadFromUDPAddrPort(buf)
		if err == nil && string(buf[:n]) == "request" {
			from, got = a, true
		}
	}
	if !got {
		t.Fatalf("out1 never received c's datagram to %s:%d (DNAT to %s on p1's out-filter)", pgVIP, pgPort, pgServer)
	}
	if from != cAddr {
		t.Fatalf("out1 received the datagram from %v, want c's %v untranslated", from, cAddr)
	}
	t.Logf("c %v → %s:%d left through p1 as → %s:%d", cAddr, pgVIP, pgPort, pgServer, pgPort)
	if !wantState {
		return
	}
	// The state went to h2 and h3 before the data left h1; wait until
	// their agents have imported it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n2, n3 := g.hosts[1].Metric(stateRx), g.hosts[2].Metric(stateRx)
		if n2 > base[1] && n3 > base[2] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection state never reached the other members' hosts (h2 %v → %v, h3 %v → %v messages)", base[1], n2, base[2], n3)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reply injects S:pgPort → c's conn as a raw frame on member i's outside
// namespace (to the router port's MAC) and returns the source address c
// received it from.
func (g *gatewayGroup) reply(t *testing.T, conn *net.UDPConn, i int, payload string) netip.AddrPort {
	t.Helper()
	cAddr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	server := netip.AddrPortFrom(netip.MustParseAddr(pgServer), pgPort)
	out := g.out[i]
	frame := netns.UDPFrame(g.pmac[i], mustMAC(t, out.MAC), server, cAddr, []byte(payload))
	if err := out.SendFrame(frame); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, a, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("c did not receive %q injected on p%d: %v", payload, i+1, err)
	}
	if string(buf[:n]) != payload {
		t.Fatalf("c received %q, want %q", buf[:n], payload)
	}
	t.Logf("%q injected on p%d (host h%d) reached c from %v", payload, i+1, i+1, a)
	return a
}

// exchange opens a UDP connection from c to V and returns, for the reply
// injected on each member p1..p3, the source address c saw. With wantState
// it first waits until h2 and h3 hold the connection's state.
func (g *gatewayGroup) exchange(t *testing.T, wantState bool) [3]netip.AddrPort {
	conn, _ := g.client(t)
	g.request(t, conn, wantState)
	var seen [3]netip.AddrPort
	for i := range g.out {
		seen[i] = g.reply(t, conn, i, fmt.Sprintf("reply via p%d", i+1))
	}
	return seen
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStatefulPortGroup: DNAT on one member of a stateful port group, the
// replies entering on each member, each on its own host, are all
// de-NATed: the connection's NAT state was sent to every member's host
// before the data (issue 9, point 3). The control, the same group not
// stateful, shows the replies entering on p2 and p3 keep S as their source.
func TestStatefulPortGroup(t *testing.T) {
	vip := netip.AddrPortFrom(netip.MustParseAddr(pgVIP), pgPort)
	server := netip.AddrPortFrom(netip.MustParseAddr(pgServer), pgPort)
	t.Run("stateful", func(t *testing.T) {
		g := newGatewayGroup(t, true)
		seen := g.exchange(t, true)
		for i, a := range seen {
			if a != vip {
				t.Errorf("reply entering on p%d (h%d) reached c from %v, want the de-NATed %v", i+1, i+1, a, vip)
			}
		}
		// A packet from S to c's port before c opened the connection (a
		// reply racing its state, a late datagram of an older one) passes
		// untranslated and its flow is cached; once the connection and its
		// state exist, that flow must give way to the de-NAT, on the host
		// that made the state (p1) and on one that imported it (p2).
		conn, _ := g.client(t)
		for _, i := range []int{0, 1} {
			if a := g.reply(t, conn, i, fmt.Sprintf("early via p%d", i+1)); a != server {
				t.Errorf("a packet from S before the connection, entering on p%d, reached c from %v, want %v", i+1, a, server)
			}
		}
		g.request(t, conn, true)
		for _, i := range []int{0, 1} {
			if a := g.reply(t, conn, i, fmt.Sprintf("reply via p%d", i+1)); a != vip {
				t.Errorf("reply entering on p%d after the connection opened reached c from %v, want the de-NATed %v", i+1, a, vip)
			}
		}
	})
	t.Run("not stateful", func(t *testing.T) {
		g := newGatewayGroup(t, false)
		seen := g.exchange(t, false)
		if seen[0] != vip {
			t.Errorf("reply entering on p1, where the DNAT happened, reached c from %v, want %v", seen[0], vip)
		}
		for i := 1; i < 3; i++ {
			if seen[i] != server {
				t.Errorf("without a stateful group, the reply entering on p%d reached c from %v, want it untranslated (%v)", i+1, seen[i], server)
			}
		}
	})
}

// TestFragNeeded: a router chain that accepts unfragmented packets and
// drops the rest answers a 1473-byte ping (fragmented by the sender at MTU
// 1500) with fragmentation-needed from the router's address; a bridge with
// the same chain drops the fragment silently (issue 9, point 4).
func TestFragNeeded(t *testing.T) {
	r := newRouted(t, netns.Options{})
	l := r.l
	mustPing(t, r.vm1, r.vm2.IP())
	// Unfiltered, the fragmented ping goes through.
	if out, err := r.vm1.Exec("ping", "-c", "1", "-W", "3", "-s", "1473", "-M", "dont", r.vm2.IP()); err != nil {
		t.Fatalf("a fragmented ping without any chain fails: %v\n%s", err, out)
	}
	l.CLI("chain", "create", "nofrag")
	l.CLI("chain", "rule", "add", "nofrag", "--action", "accept", "--fragment-policy", "unfragmented")
	l.CLI("chain", "rule", "add", "nofrag", "--action", "drop")

	t.Run("bridge stays silent", func(t *testing.T) {
		l.CLI("bridge", "update", "b1", "--in-filter", "nofrag")
		// Once the agent has dropped the head fragment at b1 (a drop flow
		// for it appears), whatever answer it made reached vm1 before the
		// marker's echo reply: vm1's frames are simulated in order.
		deadline := time.Now().Add(20 * time.Second)
		for {
			fn := fragProbe(t, r.vm1, r.vm2.IP(), 9999, 1473, "10.0.1.1")
			if headDropped(t, r.h1, "bridge in-filter") {
				if len(fn) > 0 {
					t.Errorf("a bridge dropping a fragment answered fragmentation-needed (from %v)", fn)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the bridge's in-filter never dropped the head fragment")
			}
		}
		l.CLI("bridge", "update", "b1", "--in-filter", "none")
	})

	t.Run("router answers", func(t *testing.T) {
		l.CLI("router", "update", "r1", "--in-filter", "nofrag")
		var out string
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out, "Frag needed") {
			if time.Now().After(deadline) {
				t.Fatalf("a 1473-byte ping through the router's nofrag chain never got fragmentation-needed:\n%s", out)
			}
			out, _ = r.vm1.Exec("ping", "-c", "1", "-W", "2", "-s", "1473", "-M", "dont", r.vm2.IP())
		}
		// Now that the chain is in place: every such ping gets the error,
		// from the router port's address, and no echo reply.
		out, err := r.vm1.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1473", "-M", "dont", r.vm2.IP())
		if err == nil || !strings.Contains(out, "From 10.0.1.1") || !strings.Contains(out, "Frag needed") || !strings.Contains(out, " 0 received") {
			t.Errorf("ping -s 1473 -M dont: want fragmentation-needed from 10.0.1.1 and no reply, got (%v):\n%s", err, out)
		}
		t.Logf("ping -s 1473 -M dont %s:\n%s", r.vm2.IP(), out)
		// The same probe as the bridge's sees the error before its marker.
		if fn := fragProbe(t, r.vm1, r.vm2.IP(), 9999, 1473, "10.0.1.1"); len(fn) == 0 || fn[0] != "10.0.1.1" {
			t.Errorf("UDP datagram of 1473 bytes: want fragmentation-needed from 10.0.1.1, got %v", fn)
		}
		// Unfragmented traffic still passes the chain.
		mustPing(t, r.vm1, r.vm2.IP())
	})
}

// headDropped reports whether h's agent holds a drop flow, with reason,
// for a UDP head fragment (it has ports) from 10.0.1.2 to 10.0.2.2.
func headDropped(t *testing.T, h *netns.Host, reason string) bool {
	t.Helper()
	out, err := h.Get("/flows")
	if err != nil {
		t.Fatalf("/flows on %s: %v", h.Name, err)
	}
	var flows []struct {
		Src, Dst string
		Proto    uint8
		DstPort  uint16 `json:"dst_port"`
		Drop     bool
		Reason   string
	}
	if err := json.Unmarshal([]byte(out), &flows); err != nil {
		t.Fatalf("/flows: %v\n%s", err, out)
	}
	for _, f := range flows {
		if f.Drop && f.Proto == 17 && f.Src == "10.0.1.2" && f.Dst == "10.0.2.2" && f.DstPort == 9999 && strings.Contains(f.Reason, reason) {
			return true
		}
	}
	return false
}

// fragProbe sends, from vm, a UDP datagram with size bytes of payload to
// dst:port with DF off (so the kernel fragments what exceeds the MTU), then
// an ICMP echo request to marker. It returns the sources of the
// fragmentation-needed errors about that datagram that vm received before
// the marker's echo reply.
func fragProbe(t *testing.T, vm *netns.VM, dst string, port, size int, marker string) []string {
	t.Helper()
	var icmpFD int
	var udp *net.UDPConn
	err := vm.Do(func() error {
		var err error
		if icmpFD, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP); err != nil {
			return fmt.Errorf("raw ICMP socket: %w", err)
		}
		if udp, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: port}); err != nil {
			return err
		}
		rc, err := udp.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
		}); err != nil {
			return err
		}
		return serr
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(icmpFD)
	defer udp.Close()
	tv := unix.NsecToTimeval(int64(500 * time.Millisecond))
	if err := unix.SetsockoptTimeval(icmpFD, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	if _, err := udp.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	const echoID = 0x4242
	echo := []byte{8, 0, 0, 0, echoID >> 8, echoID & 0xff, 0, 1, 'm', 'a', 'r', 'k'}
	binary.BigEndian.PutUint16(echo[2:], icmpChecksum(echo))
	to := &unix.SockaddrInet4{Addr: netip.MustParseAddr(marker).As4()}
	if err := unix.Sendto(icmpFD, echo, 0, to); err != nil {
		t.Fatal(err)
	}
	dst4 := netip.MustParseAddr(dst).As4()
	var fragNeeded []string
	buf := make([]byte, 4096)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(icmpFD, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		pkt := buf[:n]
		if len(pkt) < 20 {
			continue
		}
		ihl := int(pkt[0]&0xf) * 4
		if len(pkt) < ihl+8 {
			continue
		}
		src := netip.AddrFrom4([4]byte(pkt[12:16])).String()
		icmp := pkt[ihl:]
		switch {
		case icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == echoID:
			return fragNeeded
		case icmp[0] == 3 && icmp[1] == 4 && len(icmp) >= 8+20:
			q := icmp[8:] // the quoted IP header of our datagram
			if q[9] == 17 && [4]byte(q[16:20]) == dst4 {
				fragNeeded = append(fragNeeded, src)
			}
		}
	}
	t.Fatalf("no echo reply from %s within 10s", marker)
	return nil
}

func icmpChecksum(b []byte) uint16 {
	var acc uint32
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return ^uint16(acc)
}
