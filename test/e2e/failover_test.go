package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestGatewayFailover is issue 11's failover on two gateway hosts (the part
// that does not need BGP): the edge has an uplink on gw1 and one on gw2,
// equal default routes (ECMP), the upstream router reaches the pool through
// both. An instance on a compute host holds 40 TCP connections to a server
// behind the upstream router, each echoing a line every 50 ms. gw1's agent
// is killed with SIGKILL and its link taken down upstream (a static next
// hop is dropped on carrier loss only: the host died), the compute host
// stops routing through it when its heartbeats stop (300 ms, not its
// lease's 5 s), and the gateways share connection state (a stateful port
// group), so every connection survives — no reset, every byte echoed — however its
// flows were spread before.
func TestGatewayFailover(t *testing.T) {
	l := cloudLab(t, `{"gateways": [
		{"host": "gw1", "interface": "edge0", "address": "192.0.2.2/24", "next_hop": "192.0.2.1"},
		{"host": "gw2", "interface": "edge1", "address": "198.51.100.2/24", "next_hop": "198.51.100.1"}]}`, "203.0.113.0/28")
	gw1 := l.AddHostIn("gw1", "us-east-1z", false)
	gw2 := l.AddHostIn("gw2", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	up := l.AddOutside("up", gw1, "edge0", "192.0.2.1/24")
	l.AttachUplink(up, gw2, "edge1", "198.51.100.1/24")
	// The pool through both gateways, as a nexthop group: when a gateway's
	// link goes, only its nexthop leaves the group (a plain multipath route
	// would go whole), as a BGP router drops only the dead peer's path.
	for _, cmd := range [][]string{
		{"ip", "nexthop", "add", "id", "1", "via", "192.0.2.2", "dev", "edge0"},
		{"ip", "nexthop", "add", "id", "2", "via", "198.51.100.2", "dev", "edge1"},
		{"ip", "nexthop", "add", "id", "10", "group", "1/2"},
		{"ip", "route", "add", "203.0.113.0/28", "nhid", "10"},
		{"ip", "addr", "add", "10.250.0.1/32", "dev", "lo"},
	} {
		if o, err := up.Exec(cmd...); err != nil {
			t.Fatalf("%v: %v %s", cmd, err, o)
		}
	}

	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.34.0.0/16", "10.34.1.0/24", "us-east-1a")
	sg := tn.icmpGroup(vpcID)
	allocID, eip := tn.allocate()
	in := tn.run(sub, sg, "")
	tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", in.id)
	if !within(15*time.Second, func() bool { return nsPing(in.ns, "10.250.0.1") }) {
		t.Fatalf("%s (elastic IP %s) cannot reach the server behind the upstream router", in.id, eip)
	}

	netns.ServeEcho(t, up.NS, "10.250.0.1:7007")

	const n = 40
	conns := netns.DialEchoes(t, in.ns, "10.250.0.1:7007", n)
	stop := netns.RunEchoes(conns, 50*time.Millisecond)
	time.Sleep(2 * time.Second) // traffic flowing through both gateways
	before := netns.Echoed(conns)
	start := time.Now()
	gw1.Kill()
	if o, err := up.Exec("ip", "link", "set", "edge0", "down"); err != nil {
		t.Fatalf("edge0 down: %v %s", err, o)
	}
	// Every connection must move on: wait until each has echoed more than
	// before the kill (or failed).
	if !within(30*time.Second, func() bool { return netns.StuckEchoes(conns, before) == 0 }) {
		o, _ := up.Exec("ip", "route")
		t.Fatalf("%d of %d connections still stuck 30 s after the kill; upstream routes:\n%s", netns.StuckEchoes(conns, before), n, o)
	}
	t.Logf("all %d connections echoing again %v after gw1's agent was killed", n, time.Since(start).Round(10*time.Millisecond))
	stop()
	netns.CheckEchoes(t, "echo", conns)
	_ = gw2
}

// TestGatewayFailoverBGP is issue 11's must-show 4: two gateway hosts with
// BGP and BFD to FRR (maximum-paths: both are next hops of the pool), two
// compute hosts, an outside client behind FRR. Traffic runs both ways:
// a 1,000 datagrams/s UDP probe from the client to an instance's elastic
// IP and one from an instance in a private subnet out through a NAT
// gateway to the client (each spread over 8 flows, so ECMP puts some on
// each gateway), and 200 long-lived TCP connections — 100 from the client
// to the elastic IP, 100 out through the NAT gateway — each echoing a
// numbered line every 100 ms. Then gw1's agent is killed with SIGKILL.
// FRR drops gw1's next hop (BFD: its uplink stays up), the
// compute hosts stop sending through gw1 when its heartbeats stop, and the
// gateways share connection and NAT state: each probe loses at most one
// second of datagrams (a bound on loss, not a timing benchmark: bench/edge
// reports the figures), and every TCP connection survives with no reset
// and no byte lost.
func TestGatewayFailoverBGP(t *testing.T) {
	e := newBGPEdge(t, 100, "us-east-1a", "us-east-1b")
	e.settle(t)
	tn := newTenant(t, e.l)
	a, eip, b := natAndElasticIP(t, tn, e.client, "10.36")
	tr := startEdgeTraffic(t, e.client, a, eip, b, 100)

	// gw1 carries traffic both ways before it dies: frames arrive on its
	// uplink from FRR, and leave by it from the compute hosts.
	e.forwarding(t, "before the kill")
	beforeIn, beforeOut := tr.echoed()
	// (Launching instances loads the machine: a BFD session at 100 ms may
	// flap before this point. From here on, gw2's must not.)
	gw2Before := e.f.Neighbor(gw2Uplink)

	start := time.Now()
	e.gw1.Kill()
	waitUntil(t, "FRR to drop the killed gateway's next hop", func() bool { return e.poolVia(gw2Uplink) })
	frrDropped := time.Since(start)
	if si, so := tr.moveOn(30*time.Second, beforeIn, beforeOut); si+so > 0 {
		t.Errorf("30 s after the kill, %d inbound and %d outbound connections still stuck", si, so)
	}
	moved := time.Since(start)
	time.Sleep(time.Second) // the probes run on through gw2 alone
	inSent, inLost, outSent, outLost := tr.finish(t)
	t.Logf("kill -9 of gw1: FRR dropped its next hop after %v; every connection echoing again after %v",
		frrDropped.Round(time.Millisecond), moved.Round(time.Millisecond))
	t.Logf("UDP probe to the elastic IP: %d sent, %d lost (%d ms at %d/s); out through the NAT gateway: %d sent, %d lost (%d ms)",
		inSent, inLost, inLost*1000/edgeProbeRate, edgeProbeRate, outSent, outLost, outLost*1000/edgeProbeRate)
	if inLost > edgeProbeRate || outLost > edgeProbeRate {
		t.Errorf("a probe lost more than one second of datagrams: elastic IP %d, NAT gateway %d (at %d/s)", inLost, outLost, edgeProbeRate)
	}
	for _, c := range e.compute {
		if n := c.Metric(`canopy_agent_peer_transitions_total{peer_host="` + e.gw1.ID() + `",state="down"}`); n < 1 {
			t.Errorf("%s never saw gw1's heartbeats stop", c.Name)
		}
	}
	if s := e.f.Neighbor(gw2Uplink); s.Established != gw2Before.Established || s.Dropped != gw2Before.Dropped {
		t.Errorf("the surviving gateway's session flapped: %+v, before the kill %+v", s, gw2Before)
	}
}

// natAndElasticIP makes a VPC (CIDR prefix "10.N") with a public subnet in
// us-east-1a holding instance a with an elastic IP and a NAT gateway, and a
// private subnet in us-east-1b, routed out through the NAT gateway,
// holding instance b; their group admits ICMP, TCP 7007 and UDP 9000 from
// anywhere. It waits until a and the outside client (namespace client)
// reach each other and b reaches the client.
func natAndElasticIP(t *testing.T, tn *tenant, client, net16 string) (a inst, eip string, b inst) {
	t.Helper()
	vpcID, pub, _ := tn.internetVPC(net16+".0.0/16", net16+".1.0/24", "us-east-1a")
	priv := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", net16+".2.0/24", "--availability-zone", "us-east-1b", "--query", "Subnet.SubnetId")
	sg := tn.icmpGroup(vpcID)
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "7007", "--cidr", "0.0.0.0/0")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "udp", "--port", "9000", "--cidr", "0.0.0.0/0")
	natAlloc, _ := tn.allocate()
	nat := tn.ec2("create-nat-gateway", "--subnet-id", pub, "--allocation-id", natAlloc, "--query", "NatGateway.NatGatewayId")
	tn.ec2("wait", "nat-gateway-available", "--nat-gateway-ids", nat)
	privRtb := tn.ec2("create-route-table", "--vpc-id", vpcID, "--query", "RouteTable.RouteTableId")
	tn.ec2("create-route", "--route-table-id", privRtb, "--destination-cidr-block", "0.0.0.0/0", "--nat-gateway-id", nat)
	tn.ec2("associate-route-table", "--route-table-id", privRtb, "--subnet-id", priv)
	allocID, eip := tn.allocate()
	a = tn.run(pub, sg, "")
	tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", a.id)
	b = tn.run(priv, sg, "")
	if !within(15*time.Second, func() bool { return nsPing(a.ns, outsideClient) }) {
		t.Fatalf("%s (elastic IP %s) cannot reach the outside client", a.id, eip)
	}
	if !within(15*time.Second, func() bool { return nsPing(client, eip) }) {
		t.Fatalf("the outside client cannot reach %s's elastic IP %s", a.id, eip)
	}
	if !within(15*time.Second, func() bool { return nsPing(b.ns, outsideClient) }) {
		t.Fatalf("%s (private) cannot reach the outside client through the NAT gateway", b.id)
	}
	return a, eip, b
}

// gatewayFrames counts the frames a gateway host's uplinks took in (rx)
// and sent out (tx), on either datapath: what the agent read and wrote,
// plus on the kernel path what the program forwarded from the uplink
// (flow hits) and delivered from the tunnel to it.
func gatewayFrames(h *netns.Host) (rx, tx float64) {
	rx = h.Metric("canopy_agent_port_rx_frames_total") + max(0, h.Metric(`canopy_agent_kernel_packets{event="hit"}`))
	tx = h.Metric("canopy_agent_port_tx_frames_total") + max(0, h.Metric(`canopy_agent_kernel_packets{event="tunnel_rx"}`))
	return rx, tx
}

// forwarding waits until gw1 forwards the probes both ways: frames in from
// its uplink (FRR's ECMP, which hashes the 5-tuple: see AddOutside) and
// out by it (the compute hosts' ECMP, by the 5-tuple too). With 16 probe
// flows each way, none on gw1 is one chance in 2^16 per direction; what
// each gateway forwarded is logged, and said on failure.
func (e *bgpEdge) forwarding(t *testing.T, what string) {
	t.Helper()
	e.forwardingBy(t, e.gw1, what)
}

// forwardingBy is forwarding for gateway gw (e.gw1 or e.gw2).
func (e *bgpEdge) forwardingBy(t *testing.T, gw *netns.Host, what string) {
	t.Helper()
	rx1, tx1 := gatewayFrames(e.gw1)
	rx2, tx2 := gatewayFrames(e.gw2)
	counts := func() string {
		r1, t1 := gatewayFrames(e.gw1)
		r2, t2 := gatewayFrames(e.gw2)
		return fmt.Sprintf("gw1 %.0f frames in from its uplink, %.0f out; gw2 %.0f in, %.0f out", r1-rx1, t1-tx1, r2-rx2, t2-tx2)
	}
	rx0, tx0 := gatewayFrames(gw)
	if !within(20*time.Second, func() bool {
		rx, tx := gatewayFrames(gw)
		return rx > rx0+500 && tx > tx0+500
	}) {
		t.Fatalf("%s not forwarding both ways %s within 20 s: %s", gw.Name, what, counts())
	}
	t.Logf("%s forwarding both ways %s: %s", gw.Name, what, counts())
}

// TestGatewayPlannedWork is issue 11's must-show 5: with the 1,000/s UDP
// probes to an elastic IP and out through a NAT gateway running (as in
// TestGatewayFailoverBGP), gw1 is drained and undrained, then its agent is
// restarted (SIGTERM, then started again): it tells the other hosts it is
// leaving, withdraws its routes while still forwarding, stops its BGP
// speaker for a graceful restart, and once back gets the connection and
// NAT state from its peers before it advertises again. No probe datagram
// is lost, and the sessions negotiated graceful restart.
func TestGatewayPlannedWork(t *testing.T) {
	// Nothing here waits for BFD: slower timers keep a loaded machine's
	// stalls from flapping the sessions.
	e := newBGPEdge(t, 300, "us-east-1a", "us-east-1b")
	e.settle(t)
	tn := newTenant(t, e.l)
	a, eip, b := natAndElasticIP(t, tn, e.client, "10.37")
	tr := startEdgeTraffic(t, e.client, a, eip, b, 0)
	// gw1 must carry probes both ways for its drain and restart to mean
	// anything.
	e.forwarding(t, "before the drain")

	mark := func(what string) { t.Logf("%v: %s", tr.in.Elapsed(), what) }
	mark("drain")
	e.l.CLI("gateway", "drain", "gw1")
	waitUntil(t, "FRR's pool route via gw2 alone", func() bool { return e.poolVia(gw2Uplink) })
	waitUntil(t, "the edge's default route via gw2 alone", func() bool {
		got := learnedRoutes(t, e.l)
		return len(got) == 1 && got[0] == "0.0.0.0/0 via "+gw2Peer
	})
	mark("undrain")
	e.l.CLI("gateway", "undrain", "gw1")
	waitUntil(t, "FRR's pool route via both gateways after the drain", func() bool { return e.poolVia(gw1Uplink, gw2Uplink) })
	e.forwarding(t, "after the drain")
	if gr := e.f.Vtysh("show ip bgp neighbors " + gw1Uplink); !strings.Contains(gr, "Graceful Restart Capability: advertised and received") {
		t.Errorf("FRR and gw1 did not negotiate graceful restart:\n%s", gr)
	}

	// The restart; the uplink (a veth here, a NIC in real life) stays.
	mark("SIGTERM")
	e.gw1.Stop()
	mark("stopped")
	if !e.poolVia(gw2Uplink) {
		t.Errorf("gw1 stopped with FRR still routing the pool through it: %v", e.f.NextHops("203.0.113.0/28"))
	}
	if log := e.gw1.Log(); !strings.Contains(log, "advertisements withdrawn") || !strings.Contains(log, "stopped for a graceful restart") {
		t.Errorf("gw1's agent did not withdraw and stop gracefully:\n%s", log)
	}
	e.gw1.Start()
	mark("started")
	e.settle(t)
	mark("settled")
	e.forwarding(t, "after the restart")
	if log := e.gw1.Log(); !strings.Contains(log, "bgp graceful restart") {
		t.Errorf("gw1's agent did not come back as a graceful restart:\n%s", log)
	}

	inSent, inLost, outSent, outLost := tr.finish(t)
	t.Logf("drain, undrain and a restart of gw1: UDP probe to the elastic IP %d sent, %d lost; out through the NAT gateway %d sent, %d lost",
		inSent, inLost, outSent, outLost)
	if inLost != 0 || outLost != 0 {
		t.Errorf("planned work lost probe datagrams: elastic IP %d (sent at %v), NAT gateway %d (sent at %v); FRR's sessions: gw1 %+v, gw2 %+v",
			inLost, tr.in.LostAt(), outLost, tr.out.LostAt(), e.f.Neighbor(gw1Uplink), e.f.Neighbor(gw2Uplink))
	}
}

// TestGatewayAdded is issue 11's "adding a gateway breaks no existing
// flow": the BGP edge with gw2's agent stopped before any tenant traffic,
// so FRR and the edge route through gw1 alone; 50 TCP echo connections to
// an elastic IP, 50 out through a NAT gateway and the two 1,000/s UDP
// probes start through gw1; then gw2's agent starts. It gets the
// connection and NAT state from gw1 before it advertises, so once FRR
// routes the pool through both and gw2 forwards both ways (16 probe flows
// each way, L4 hashing: some move to gw2), every connection still echoes
// with no reset and no byte lost, and no probe datagram is lost (the
// requirement is zero: nothing fails, nothing is withdrawn).
func TestGatewayAdded(t *testing.T) {
	// Nothing here waits for BFD: slower timers keep a loaded machine's
	// stalls from flapping gw1's session.
	e := newBGPEdge(t, 300, "us-east-1a", "us-east-1b")
	e.gw2.Stop()
	waitUntil(t, "FRR's pool route via gw1 alone", func() bool { return e.poolVia(gw1Uplink) })
	waitUntil(t, "gw1's session settled with BFD up", func() bool {
		return e.f.BFDPeers()[gw1Uplink] == "up" && e.f.Neighbor(gw1Uplink).UpMsec > 5000
	})
	waitUntil(t, "the edge's default route via gw1 alone", func() bool {
		got := learnedRoutes(t, e.l)
		return len(got) == 1 && got[0] == "0.0.0.0/0 via "+gw1Peer
	})
	tn := newTenant(t, e.l)
	a, eip, b := natAndElasticIP(t, tn, e.client, "10.38")
	tr := startEdgeTraffic(t, e.client, a, eip, b, 50)
	e.forwarding(t, "before gw2 starts")
	gw1Before := e.f.Neighbor(gw1Uplink)

	mark := func(what string) { t.Logf("%v: %s", tr.in.Elapsed(), what) }
	mark("start gw2")
	e.gw2.Start()
	mark("gw2 started")
	waitUntil(t, "FRR's pool route via both gateways", func() bool { return e.poolVia(gw1Uplink, gw2Uplink) })
	mark("FRR routes the pool via both")
	waitUntil(t, "the edge's default route via both uplinks", func() bool {
		got := learnedRoutes(t, e.l)
		slices.Sort(got)
		return slices.Equal(got, []string{"0.0.0.0/0 via " + gw1Peer, "0.0.0.0/0 via " + gw2Peer})
	})
	mark("the edge's default via both")
	e.forwardingBy(t, e.gw2, "after it started")
	mark("gw2 forwarding both ways")
	beforeIn, beforeOut := tr.echoed()
	if si, so := tr.moveOn(10*time.Second, beforeIn, beforeOut); si+so > 0 {
		t.Errorf("10 s after gw2 forwards, %d inbound and %d outbound connections have echoed nothing more", si, so)
	}
	time.Sleep(time.Second) // the probes run on through both
	inSent, inLost, outSent, outLost := tr.finish(t)
	t.Logf("gw2 added: UDP probe to the elastic IP %d sent, %d lost; out through the NAT gateway %d sent, %d lost",
		inSent, inLost, outSent, outLost)
	if inLost != 0 || outLost != 0 {
		t.Errorf("adding gw2 lost probe datagrams: elastic IP %d (sent at %v), NAT gateway %d (sent at %v); FRR's sessions: gw1 %+v, gw2 %+v",
			inLost, tr.in.LostAt(), outLost, tr.out.LostAt(), e.f.Neighbor(gw1Uplink), e.f.Neighbor(gw2Uplink))
	}
	if s := e.f.Neighbor(gw1Uplink); s.Established != gw1Before.Established || s.Dropped != gw1Before.Dropped {
		t.Errorf("gw1's session flapped while gw2 joined: %+v, before %+v", s, gw1Before)
	}
}
