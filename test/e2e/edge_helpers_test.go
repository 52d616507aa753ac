package e2e

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// cloudLab starts a lab whose server reads cloudJSON as its --cloud-config
// and hands out elastic IPs from pool.
func cloudLab(t *testing.T, cloudJSON, pool string) *netns.Lab {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(cloudJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	return netns.New(t, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", pool}})
}

// internetVPC creates a VPC with one subnet in zone az whose main route
// table sends 0.0.0.0/0 to an attached internet gateway; it returns the
// VPC's, the subnet's and the main route table's ids.
func (tn *tenant) internetVPC(cidr, subnetCIDR, az string) (vpcID, subnet, rtb string) {
	tn.t.Helper()
	vpcID = tn.ec2("create-vpc", "--cidr-block", cidr, "--query", "Vpc.VpcId")
	subnet = tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", subnetCIDR, "--availability-zone", az, "--query", "Subnet.SubnetId")
	igw := tn.ec2("create-internet-gateway", "--query", "InternetGateway.InternetGatewayId")
	tn.ec2("attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpcID)
	rtb = tn.ec2("describe-route-tables", "--filters", "Name=vpc-id,Values="+vpcID, "--query", "RouteTables[0].RouteTableId")
	tn.ec2("create-route", "--route-table-id", rtb, "--destination-cidr-block", "0.0.0.0/0", "--gateway-id", igw)
	return vpcID, subnet, rtb
}

// icmpGroup creates a security group of vpcID admitting ICMP from anywhere.
func (tn *tenant) icmpGroup(vpcID string) string {
	tn.t.Helper()
	sg := tn.ec2("create-security-group", "--group-name", "ping", "--description", "icmp from anywhere", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "0.0.0.0/0")
	return sg
}

// allocate allocates an elastic IP; it returns its allocation id and
// address.
func (tn *tenant) allocate() (allocID, publicIP string) {
	tn.t.Helper()
	f := strings.Fields(tn.ec2("allocate-address", "--domain", "vpc", "--query", "[AllocationId,PublicIp]"))
	if len(f) != 2 {
		tn.t.Fatalf("allocate-address: %v", f)
	}
	return f[0], f[1]
}

// bgpEdge is issue 11's edge harness: two gateway hosts (zone us-east-1z),
// each with an uplink on its own link network to one upstream router
// running FRR (bgpd, bfdd; explicit neighbours, maximum-paths, graceful
// restart as helper), BFD at bfdMS × 3 on both sessions (FRR and the
// gateways alike), an outside client behind the router, and compute hosts
// c1, c2, … in the zones asked for.
type bgpEdge struct {
	l        *netns.Lab
	gw1, gw2 *netns.Host
	compute  []*netns.Host
	up       *netns.VM
	client   string // the outside client's namespace, 198.51.100.2
	f        *netns.FRR
}

// The gateways' uplink addresses (FRR's neighbours) and FRR's side.
const (
	gw1Uplink, gw1Peer = "192.0.2.2", "192.0.2.1"
	gw2Uplink, gw2Peer = "192.0.2.130", "192.0.2.129"
	outsideClient      = "198.51.100.2"
)

func newBGPEdge(t *testing.T, bfdMS int, computeZones ...string) *bgpEdge {
	t.Helper()
	bfd := fmt.Sprintf(`"bfd": {"min_tx_ms": %d, "min_rx_ms": %d, "multiplier": 3}`, bfdMS, bfdMS)
	l := cloudLab(t, `{
		"bgp": {"asn": 65001},
		"public_pools": ["203.0.113.0/28"],
		"gateways": [
			{"host": "gw1", "interface": "edge0", "address": "`+gw1Uplink+`/25",
				"bgp_peer": {"address": "`+gw1Peer+`", "asn": 65000, `+bfd+`}},
			{"host": "gw2", "interface": "edge1", "address": "`+gw2Uplink+`/25",
				"bgp_peer": {"address": "`+gw2Peer+`", "asn": 65000, `+bfd+`}}]}`, "203.0.113.0/28")
	e := &bgpEdge{l: l}
	e.gw1 = l.AddHostIn("gw1", "us-east-1z", false)
	e.gw2 = l.AddHostIn("gw2", "us-east-1z", false)
	for i, z := range computeZones {
		e.compute = append(e.compute, l.AddHostIn(fmt.Sprintf("c%d", i+1), z, true))
	}
	e.up = l.AddOutside("upstream", e.gw1, "edge0", gw1Peer+"/25")
	e.l.AttachUplink(e.up, e.gw2, "edge1", gw2Peer+"/25")
	e.client = addClient(t, e.up.NS, "198.51.100.1/24", outsideClient+"/24")
	e.f = netns.StartFRR(t, e.up.NS, FRRTwoGateways, frrBFD(bfdMS))
	return e
}

// FRRTwoGateways is the upstream router's bgpd.conf of bgpEdge (the one
// docs/gateways.md shows, with these addresses).
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

// frrBFD is bfdd.conf with profile "fast": ms × 3.
func frrBFD(ms int) string {
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

// poolVia reports whether FRR routes the pool through exactly the uplink
// addresses nhs.
func (e *bgpEdge) poolVia(nhs ...string) bool {
	got := e.f.NextHops("203.0.113.0/28")
	slices.Sort(got)
	slices.Sort(nhs)
	return slices.Equal(got, nhs)
}

// settle waits until FRR routes the pool through both gateways with both
// sessions up, BFD up, for longer than GoBGP's one early reset (see
// TestBGPTwoGateways), and the edge has the default route through both
// uplinks; it returns FRR's view of both sessions then.
func (e *bgpEdge) settle(t *testing.T) map[string]netns.BGPNeighbor {
	t.Helper()
	waitUntil(t, "FRR's pool route via both gateways", func() bool { return e.poolVia(gw1Uplink, gw2Uplink) })
	// FRR 8.4 re-keys its BFD session when the BGP session comes up (it
	// learns the interface then); GoBGP v4.8.0, whose side is already up,
	// does not take the new session's packets and resets BGP once, about
	// 3 s after the first establishment (docs/gateways.md). Settled: both
	// up with BFD up for longer than that.
	waitUntil(t, "both sessions settled with BFD up", func() bool {
		p := e.f.BFDPeers()
		return p[gw1Uplink] == "up" && p[gw2Uplink] == "up" &&
			e.f.Neighbor(gw1Uplink).UpMsec > 5000 && e.f.Neighbor(gw2Uplink).UpMsec > 5000
	})
	waitUntil(t, "the edge's default route via both uplinks", func() bool {
		got := learnedRoutes(t, e.l)
		slices.Sort(got)
		return slices.Equal(got, []string{"0.0.0.0/0 via " + gw1Peer, "0.0.0.0/0 via " + gw2Peer})
	})
	waitUntil(t, "FRR's pool route via both gateways", func() bool { return e.poolVia(gw1Uplink, gw2Uplink) })
	return map[string]netns.BGPNeighbor{gw1Uplink: e.f.Neighbor(gw1Uplink), gw2Uplink: e.f.Neighbor(gw2Uplink)}
}

// echoConn is one long-lived TCP connection that sends a numbered line
// every tick and checks each echo.
type echoConn struct {
	c          net.Conn
	sent, echo atomic.Int64
	err        atomic.Pointer[error]
}

// dialEchoes opens n connections to addr from namespace ns.
func dialEchoes(t *testing.T, ns, addr string, n int) []*echoConn {
	t.Helper()
	conns := make([]*echoConn, n)
	for i := range conns {
		var c net.Conn
		if err := netns.InNamespace(ns, func() (err error) { c, err = net.DialTimeout("tcp4", addr, 10*time.Second); return }); err != nil {
			t.Fatalf("connection %d to %s: %v", i, addr, err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = &echoConn{c: c}
	}
	return conns
}

// serveEcho echoes every TCP connection accepted on addr in namespace ns
// until the test ends.
func serveEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := netns.InNamespace(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// runEchoes makes every connection send a numbered line each period and
// check its echo, until the returned stop is called (which waits).
func runEchoes(conns []*echoConn, period time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, ec := range conns {
		wg.Go(func() {
			buf := make([]byte, 64)
			fail := func(err error) { ec.err.Store(&err) }
			for seq := 0; ; seq++ {
				select {
				case <-done:
					return
				case <-time.After(period):
				}
				line := []byte(fmt.Sprintf("conn %03d line %06d\n", i, seq))
				_ = ec.c.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := ec.c.Write(line); err != nil {
					fail(fmt.Errorf("write: %w", err))
					return
				}
				ec.sent.Add(int64(len(line)))
				if _, err := io.ReadFull(ec.c, buf[:len(line)]); err != nil {
					fail(fmt.Errorf("read: %w", err))
					return
				}
				if !bytes.Equal(buf[:len(line)], line) {
					fail(fmt.Errorf("echo %q, sent %q", buf[:len(line)], line))
					return
				}
				ec.echo.Add(int64(len(line)))
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// echoed returns how many bytes each connection has had echoed.
func echoed(conns []*echoConn) []int64 {
	out := make([]int64, len(conns))
	for i, ec := range conns {
		out[i] = ec.echo.Load()
	}
	return out
}

// stuckEchoes counts the connections, not failed, that have had no more
// than 64 bytes echoed since before.
func stuckEchoes(conns []*echoConn, before []int64) int {
	n := 0
	for i, ec := range conns {
		if ec.err.Load() == nil && ec.echo.Load() <= before[i]+64 {
			n++
		}
	}
	return n
}

// checkEchoes fails the test for every connection that broke or lost a
// byte (call after stop).
func checkEchoes(t *testing.T, what string, conns []*echoConn) {
	t.Helper()
	for i, ec := range conns {
		if e := ec.err.Load(); e != nil {
			t.Errorf("%s connection %d broke: %v (sent %d, echoed %d)", what, i, *e, ec.sent.Load(), ec.echo.Load())
		} else if s, e := ec.sent.Load(), ec.echo.Load(); s != e || s == 0 {
			t.Errorf("%s connection %d: sent %d bytes, %d echoed", what, i, s, e)
		}
	}
}

// serveUDPEcho echoes every datagram arriving on addr in namespace ns
// until the test ends.
func serveUDPEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := netns.InNamespace(ns, func() (err error) { pc, err = net.ListenPacket("udp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// udpProbe sends rate datagrams a second, spread over several flows
// (source ports, so ECMP spreads them over the gateways), to an echo
// server, and counts the echoes.
type udpProbe struct {
	conns          []net.Conn
	rate           int
	start          time.Time
	sent, received atomic.Int64
	stop           chan struct{}
	wg             sync.WaitGroup
	mu             sync.Mutex
	got            map[int64]bool // sequence numbers echoed
	from           int64          // the first sequence number counted
}

func startUDPProbe(t *testing.T, ns, addr string, rate, flows int) *udpProbe {
	t.Helper()
	p := &udpProbe{rate: rate, stop: make(chan struct{}), start: time.Now(), got: map[int64]bool{}}
	for range flows {
		var c net.Conn
		if err := netns.InNamespace(ns, func() (err error) { c, err = net.Dial("udp4", addr); return }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		p.conns = append(p.conns, c)
		p.wg.Go(func() {
			buf := make([]byte, 64)
			for {
				n, err := c.Read(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue // an ICMP error reported on the socket
				}
				if n >= 8 {
					p.mu.Lock()
					p.got[int64(binary.BigEndian.Uint64(buf))] = true
					p.mu.Unlock()
				}
				p.received.Add(1)
			}
		})
	}
	// The sender: paced by the clock, not by ticks (a loaded machine
	// drops ticks; the deficit goes out at the next one).
	p.wg.Go(func() {
		start := p.start
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		var seq int64
		msg := make([]byte, 32)
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			due := int64(time.Since(start).Seconds() * float64(rate))
			for ; seq < due; seq++ {
				// A send the kernel refuses (no route, an ICMP error
				// reported on the socket) counts as sent and lost.
				binary.BigEndian.PutUint64(msg, uint64(seq))
				_, _ = p.conns[seq%int64(len(p.conns))].Write(msg)
				p.sent.Add(1)
			}
		}
	})
	return p
}

// warm waits until every flow of the probe has had an echo, and counts
// only the datagrams sent from then on: the first datagrams of new flows
// are not what the tests measure.
func (p *udpProbe) warm(t *testing.T) {
	t.Helper()
	flows := int64(len(p.conns))
	waitUntil(t, "echoes on every flow of the probe", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		seen := map[int64]bool{}
		for seq := range p.got {
			seen[seq%flows] = true
		}
		return int64(len(seen)) == flows
	})
	p.mu.Lock()
	p.from = p.sent.Load()
	p.mu.Unlock()
}

// elapsed is the time since the probe started (to place events beside
// lostAt's).
func (p *udpProbe) elapsed() time.Duration { return time.Since(p.start).Round(time.Millisecond) }

// lostAt lists when the datagrams not echoed were sent (since the start),
// runs of consecutive ones as one range (call after finish).
func (p *udpProbe) lostAt() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	at := func(seq int64) time.Duration { return time.Duration(seq) * time.Second / time.Duration(p.rate) }
	for seq, n := p.from, p.sent.Load(); seq < n; seq++ {
		if p.got[seq] {
			continue
		}
		end := seq
		for end+1 < n && !p.got[end+1] {
			end++
		}
		out = append(out, fmt.Sprintf("%v+%d", at(seq), end-seq+1))
		seq = end
	}
	return out
}

// finish stops sending, gives the last echoes time to come back (waiting
// until the count stops growing), closes the sockets and returns how many
// were sent and how many were lost.
func (p *udpProbe) finish() (sent, lost int64) {
	close(p.stop)
	last := int64(-1)
	for p.received.Load() != last {
		last = p.received.Load()
		time.Sleep(300 * time.Millisecond)
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	sent = p.sent.Load() - p.from
	for seq := range p.got {
		if seq >= p.from {
			sent--
		}
	}
	return p.sent.Load() - p.from, sent
}
