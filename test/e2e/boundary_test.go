package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
	e2ens "github.com/canopy-sdn/canopy/test/e2e/netns"
)

// rawPort is an AF_PACKET socket on one interface of a namespace: it sends
// hand-made frames and records every frame the interface receives, so a
// test can wait for a marker frame and then say what did not arrive
// before it.
type rawPort struct {
	t       *testing.T
	fd      int
	ifindex int
	mu      sync.Mutex
	seen    [][]byte
	done    chan struct{}
}

func openRaw(t *testing.T, ns, ifname string) *rawPort {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	defer h.Close()
	r := &rawPort{t: t, done: make(chan struct{})}
	func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := netns.Set(orig); err != nil {
				panic("cannot return to the test's namespace: " + err.Error())
			}
		}()
		proto := uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8 // network order
		r.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			t.Fatalf("AF_PACKET socket in %s: %v", ns, err)
		}
		ifi, err := net.InterfaceByName(ifname) // netlink, in ns
		if err != nil {
			t.Fatalf("%s in %s: %v", ifname, ns, err)
		}
		r.ifindex = ifi.Index
		if err := unix.Bind(r.fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: r.ifindex}); err != nil {
			t.Fatalf("bind to %s in %s: %v", ifname, ns, err)
		}
	}()
	_ = unix.SetsockoptTimeval(r.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	go r.read()
	t.Cleanup(func() {
		close(r.done)
		unix.Close(r.fd)
	})
	return r
}

func (r *rawPort) read() {
	buf := make([]byte, 9000)
	for {
		select {
		case <-r.done:
			return
		default:
		}
		n, from, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		r.mu.Lock()
		r.seen = append(r.seen, append([]byte(nil), buf[:n]...))
		r.mu.Unlock()
	}
}

func (r *rawPort) send(frame []byte) {
	r.t.Helper()
	if err := unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex, Halen: 6}); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// received reports whether a frame containing marker arrived.
func (r *rawPort) received(marker string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.seen {
		if bytes.Contains(f, []byte(marker)) {
			return true
		}
	}
	return false
}

// receivedWhere returns the frames that pred accepts.
func (r *rawPort) receivedWhere(pred func(*packet.Packet) bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, f := range r.seen {
		var p packet.Packet
		p.Decode(f)
		if pred(&p) {
			out = append(out, p.String())
		}
	}
	return out
}

// sendUntilSeen sends a marker frame again and again until the receiver
// has it (a new flow may race a snapshot): every frame sent before it on
// the same port has then been judged.
func sendUntilSeen(t *testing.T, from, to *rawPort, frame []byte, marker string, diag func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !to.received(marker) {
		if time.Now().After(deadline) {
			var p packet.Packet
			p.Decode(frame)
			to.mu.Lock()
			n := len(to.seen)
			to.mu.Unlock()
			t.Fatalf("marker %q (%s) never arrived (the receiver saw %d frames): the check that follows would say nothing\n%s", marker, p.String(), n, diag())
		}
		from.send(frame)
		time.Sleep(100 * time.Millisecond)
	}
}

func nsMAC(t *testing.T, ns, ifname string) [6]byte {
	t.Helper()
	out, err := nsRun(ns, "cat", "/sys/class/net/"+ifname+"/address")
	if err != nil {
		t.Fatalf("MAC of %s in %s: %v %s", ifname, ns, err, out)
	}
	var m [6]byte
	s := strings.TrimSpace(out)
	for i := range 6 {
		var b byte
		for _, c := range s[i*3 : i*3+2] {
			b <<= 4
			switch {
			case c >= '0' && c <= '9':
				b |= byte(c - '0')
			default:
				b |= byte(c-'a') + 10
			}
		}
		m[i] = b
	}
	return m
}

// neighMAC is the MAC namespace ns holds for ip (empty: none).
func neighMAC(ns, ip string) string {
	out, _ := nsRun(ns, "ip", "neigh", "show", ip)
	f := strings.Fields(out)
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

func u32(s string) uint32 { return packet.U32(netip.MustParseAddr(s)) }

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// TestBoundaryPackets is issue 10's "what it must show" 2, on real frames
// through real agents: a UDP 67→68 datagram from outside to an instance's
// elastic IP is dropped when its group does not allow it (and delivered
// once it does); rogue DHCP replies and spoofed first fragments from one
// instance never reach another; ARP with a forged sender MAC — unicast
// request, unicast reply, broadcast — never reaches the neighbour nor
// changes its neighbour entry; legitimate DHCP (the instances' udhcpc) and
// ARP still work. Every "never arrived" is checked after a marker frame
// sent the same way has arrived, never after a sleep.
func TestBoundaryPackets(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(`{"gateways": [
		{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24", "next_hop": "192.0.2.1"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	l := e2ens.New(t, canopyBin, e2ens.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", "203.0.113.0/28"}})
	gw := l.AddInstanceHost("gw")
	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.33.0.0/16", "10.33.1.0/24", "us-east-1a")
	// Everything from the VPC (so only the boundary rules can stop a
	// neighbour's packets), ICMP from anywhere, no UDP from outside.
	sg := tn.ec2("create-security-group", "--group-name", "boundary", "--description", "vpc and icmp", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "-1", "--cidr", "10.33.0.0/16")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "0.0.0.0/0")

	// Two instances in one subnet: v the victim, a the attacker. Both got
	// their address from the agent's DHCP with busybox udhcpc (launch waits
	// for it): legitimate DHCP works.
	v := tn.run(sub, sg, "")
	a := tn.run(sub, sg, "")
	alloc := strings.Fields(tn.ec2("allocate-address", "--domain", "vpc", "--query", "[AllocationId,PublicIp]"))
	if len(alloc) != 2 {
		t.Fatalf("allocate-address: %v", alloc)
	}
	tn.ec2("associate-address", "--allocation-id", alloc[0], "--instance-id", v.id)
	eip := alloc[1]
	waitUntil(t, "the uplink bound to the gateway host", func() bool {
		_, host, iface := edgeUplink(t, l)
		return host == gw.ID() && iface == "edge0"
	})
	out := l.AddOutside("out", gw, "edge0", "192.0.2.1/24")
	if o, err := out.Exec("ip", "route", "add", "203.0.113.0/28", "via", "192.0.2.2"); err != nil {
		t.Fatalf("outside route: %v\n%s", err, o)
	}
	if !within(10*time.Second, func() bool { _, ok := out.Ping(eip, 1); return ok }) {
		t.Fatalf("outside cannot ping the elastic IP %s of %s", eip, v.id)
	}
	// Legitimate ARP: each instance resolves the other (the agent answers
	// the broadcast request) and they ping.
	if !within(10*time.Second, func() bool { return nsPing(a.ns, v.ip) && nsPing(v.ns, a.ip) }) {
		t.Fatalf("%s and %s cannot ping each other", a.id, v.id)
	}

	vMAC, aMAC := nsMAC(t, v.ns, "eth0"), nsMAC(t, a.ns, "eth0")
	outMAC := nsMAC(t, out.NS, "edge0")
	edgeMAC := func() [6]byte {
		m := neighMAC(out.NS, "192.0.2.2")
		if m == "" {
			t.Fatal("outside has no neighbour entry for the edge 192.0.2.2 after pinging through it")
		}
		var b [6]byte
		for i := range 6 {
			var x byte
			for _, c := range m[i*3 : i*3+2] {
				x <<= 4
				if c <= '9' {
					x |= byte(c - '0')
				} else {
					x |= byte(c-'a') + 10
				}
			}
			b[i] = x
		}
		return b
	}()
	sniffV := openRaw(t, v.ns, "eth0")
	rawA := openRaw(t, a.ns, "eth0")
	rawOut := openRaw(t, out.NS, "edge0")
	udp := func(src, dst [6]byte, sip, dip string, sport, dport uint16, payload string, mf bool) []byte {
		return (&packet.Spec{EthSrc: src, EthDst: dst, Src: u32(sip), Dst: u32(dip), Proto: packet.ProtoUDP,
			SrcPort: sport, DstPort: dport, MF: mf, IPID: 4242, Payload: []byte(payload)}).Build()
	}

	markers := 0
	// judged sends a fresh marker frame (made by mk from a unique payload)
	// until to has it: every frame from sent earlier the same way has been
	// judged by then.
	diag := func() string {
		up, _, _ := edgeUplink(t, l)
		tr, _ := l.RunCLI("trace", up, "--proto", "icmp", "--src", "192.0.2.1", "--dst", eip, "--src-mac", topoMAC(outMAC), "--dst-mac", topoMAC(edgeMAC))
		fl, _ := gw.Get("/flows")
		addrs, _ := l.AWS(tn.key, tn.secret, "ec2", "describe-addresses")
		routes, _ := l.RunCLI("route", "list", "canopy-edge")
		return "trace from outside:\n" + tr + "\nflows:\n" + fl + "\naddresses:\n" + addrs + "\nedge routes:\n" + routes + "\nserver log:\n" + l.ServerLog()
	}
	judged := func(t *testing.T, from, to *rawPort, mk func(payload string) []byte) {
		t.Helper()
		markers++
		m := fmt.Sprintf("boundary-marker-%d", markers)
		sendUntilSeen(t, from, to, mk(m), m, diag)
	}

	t.Run("outside-dhcp-reply", func(t *testing.T) {
		ping := func(payload string) []byte {
			return (&packet.Spec{EthSrc: outMAC, EthDst: edgeMAC, Src: u32("192.0.2.1"), Dst: u32(eip), Proto: packet.ProtoICMP,
				ICMPType: packet.ICMPEchoRequest, SrcPort: 77, Payload: []byte(payload)}).Build()
		}
		judged(t, rawOut, sniffV, ping) // the path is up
		rawOut.send(udp(outMAC, edgeMAC, "192.0.2.1", eip, 67, 68, "boundary-outside-67", false))
		judged(t, rawOut, sniffV, ping)
		if sniffV.received("boundary-outside-67") {
			t.Errorf("UDP 67→68 from outside reached %s through %s although its group allows no UDP from outside", v.id, eip)
		}
		// The same datagram arrives once the group allows it: the sniffer
		// would have seen it.
		tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "udp", "--port", "67-68", "--cidr", "192.0.2.0/24")
		allowed := udp(outMAC, edgeMAC, "192.0.2.1", eip, 67, 68, "boundary-outside-allowed", false)
		if !within(15*time.Second, func() bool {
			rawOut.send(allowed)
			time.Sleep(100 * time.Millisecond)
			return sniffV.received("boundary-outside-allowed")
		}) {
			up, _, _ := edgeUplink(t, l)
			tr, _ := l.RunCLI("trace", up, "--proto", "udp", "--src", "192.0.2.1", "--dst", eip, "--sport", "67", "--dport", "68", "--src-mac", topoMAC(outMAC), "--dst-mac", topoMAC(edgeMAC))
			t.Fatalf("UDP 67→68 from outside never reached %s once its group allows it: the check above says nothing\ntrace:\n%s\n%s", v.id, tr, diag())
		}
		// UDP to port 67 from outside is the instance's too, not the DHCP
		// service's: that is answered at VM ports only.
		sendUntilSeen(t, rawOut, sniffV, udp(outMAC, edgeMAC, "192.0.2.1", eip, 68, 67, "boundary-outside-to-67", false), "boundary-outside-to-67", diag)
		tn.ec2("revoke-security-group-ingress", "--group-id", sg, "--protocol", "udp", "--port", "67-68", "--cidr", "192.0.2.0/24")
	})

	t.Run("rogue-dhcp-and-spoofed-fragments", func(t *testing.T) {
		bad := []struct {
			name, payload string
			frame         []byte
		}{
			{"rogue DHCP reply, broadcast", "boundary-rogue-bcast", nil},
			{"rogue DHCP reply, unicast", "boundary-rogue-ucast", nil},
			{"rogue DHCP reply, first fragment", "boundary-rogue-frag", nil},
			{"spoofed first fragment of 68→67, unicast", "boundary-frag-ucast", nil},
			{"spoofed first fragment of 68→67, broadcast", "boundary-frag-bcast", nil},
			{"first fragment of 68→67 from its own address", "boundary-frag-own", nil},
		}
		bad[0].frame = udp(aMAC, broadcastMAC, a.ip, "255.255.255.255", 67, 68, bad[0].payload, false)
		bad[1].frame = udp(aMAC, vMAC, a.ip, v.ip, 67, 68, bad[1].payload, false)
		bad[2].frame = udp(aMAC, vMAC, a.ip, v.ip, 67, 68, bad[2].payload, true)
		bad[3].frame = udp(aMAC, vMAC, "10.33.1.250", v.ip, 68, 67, bad[3].payload, true)
		bad[4].frame = udp(aMAC, broadcastMAC, "10.33.1.250", "255.255.255.255", 68, 67, bad[4].payload, true)
		bad[5].frame = udp(aMAC, vMAC, a.ip, v.ip, 68, 67, bad[5].payload, true)
		// A first fragment of ordinary UDP from a's own address arrives:
		// fragments as such pass.
		frag := func(payload string) []byte { return udp(aMAC, vMAC, a.ip, v.ip, 5000, 5001, payload, true) }
		judged(t, rawA, sniffV, frag)
		for _, b := range bad {
			rawA.send(b.frame)
		}
		judged(t, rawA, sniffV, frag)
		for _, b := range bad {
			if sniffV.received(b.payload) {
				t.Errorf("%s from %s reached %s", b.name, a.id, v.id)
			}
		}
	})

	t.Run("forged-arp", func(t *testing.T) {
		forged := [6]byte{0x02, 0x66, 0x66, 0x66, 0x66, 0x66}
		if got := neighMAC(v.ns, a.ip); got != topoMAC(aMAC) {
			t.Fatalf("%s's neighbour entry for %s is %q before the test, want %s", v.id, a.ip, got, topoMAC(aMAC))
		}
		frames := map[string][]byte{
			"unicast reply":     arpFrame(aMAC, vMAC, packet.ARPReply, forged, a.ip, vMAC, v.ip),
			"unicast request":   arpFrame(aMAC, vMAC, packet.ARPRequest, forged, a.ip, [6]byte{}, v.ip),
			"broadcast request": arpFrame(aMAC, broadcastMAC, packet.ARPRequest, forged, a.ip, [6]byte{}, v.ip),
			"gratuitous":        arpFrame(aMAC, broadcastMAC, packet.ARPRequest, forged, a.ip, [6]byte{}, a.ip),
			"forged eth source": arpFrame(forged, vMAC, packet.ARPReply, forged, a.ip, vMAC, v.ip),
		}
		for _, f := range frames {
			rawA.send(f)
		}
		// A legitimate unicast ARP request from a reaches v (and v's kernel
		// answers it): the forged ones went the same way before it.
		// (its target MAC, which a request does not use, marks it).
		mark := [6]byte{0x02, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b}
		legit := arpFrame(aMAC, vMAC, packet.ARPRequest, aMAC, a.ip, mark, v.ip)
		sendUntilSeen(t, rawA, sniffV, legit, string(mark[:]), diag)
		if got := sniffV.receivedWhere(func(p *packet.Packet) bool {
			return p.Flags&packet.FlagARP != 0 && (p.ARPSHA == forged || p.EthSrc == forged)
		}); len(got) > 0 {
			t.Errorf("ARP with a forged sender MAC reached %s: %v", v.id, got)
		}
		if got := neighMAC(v.ns, a.ip); got != topoMAC(aMAC) {
			t.Errorf("%s's neighbour entry for %s is %q after forged ARP, want %s", v.id, a.ip, got, topoMAC(aMAC))
		}
		// Legitimate ARP still works both ways.
		if !nsPing(v.ns, a.ip) || !nsPing(a.ns, v.ip) {
			t.Errorf("%s and %s no longer ping each other", v.id, a.id)
		}
	})

	// Legitimate DHCP again, now that the forged frames went by: a fresh
	// lease with busybox udhcpc (no script: the address stays as it is).
	if o, err := nsRun(v.ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", "/bin/true"); err != nil {
		t.Errorf("udhcpc in %s: %v\n%s", v.id, err, o)
	}
}

func topoMAC(m [6]byte) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i, x := range m {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(hex[x>>4])
		b.WriteByte(hex[x&15])
	}
	return b.String()
}

// arpFrame is an ARP packet from Ethernet source eth to dst.
func arpFrame(eth, dst [6]byte, op uint16, sha [6]byte, spa string, tha [6]byte, tpa string) []byte {
	f := packet.BuildARP(op, sha, u32(spa), tha, u32(tpa))
	copy(f[0:6], dst[:])
	copy(f[6:12], eth[:])
	return f
}

// TestBoundaryRuleFlags: the conditions the ENI chains use are the
// operator's too — an ARP sender MAC (invertible) and an 802.1Q tag —
// through the CLI and the REST API, with a bad MAC refused.
func TestBoundaryRuleFlags(t *testing.T) {
	s := newServer(t)
	s.cli("chain", "create", "anti-spoof")
	s.cli("chain", "rule", "add", "anti-spoof", "--action", "drop", "--ether-type", "arp", "--arp-sender-mac", "02:00:00:00:00:01", "--inv-arp-sender-mac")
	s.cli("chain", "rule", "add", "anti-spoof", "--action", "drop", "--vlan-tagged")
	var rules []topology.Rule
	decode(t, s.cli("chain", "rule", "list", "anti-spoof", "-o", "json"), &rules)
	if len(rules) != 2 || rules[0].ARPSenderMAC.String() != "02:00:00:00:00:01" || !rules[0].InvARPSenderMAC || !rules[1].VLANTagged {
		t.Fatalf("rules: %+v", rules)
	}
	if l := s.cli("chain", "rule", "list", "anti-spoof"); !strings.Contains(l, "!arp_sender_mac=02:00:00:00:00:01") || !strings.Contains(l, "vlan_tagged=true") {
		t.Errorf("rule list does not show the conditions:\n%s", l)
	}
	if e := s.cliFail("chain", "rule", "add", "anti-spoof", "--action", "drop", "--arp-sender-mac", "02:00:00:00:00"); !strings.Contains(e, "--arp-sender-mac") {
		t.Errorf("a bad MAC: %s", e)
	}
	if e := s.cliFail("chain", "rule", "add", "anti-spoof", "--action", "drop", "--inv-arp-sender-mac"); !strings.Contains(e, "inv_arp_sender_mac") {
		t.Errorf("an inversion without its condition: %s", e)
	}
}
