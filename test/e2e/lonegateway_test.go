package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// frrLoneGateway is the upstream router's bgpd.conf with one gateway,
// 192.0.2.2, graceful restart on (FRR helps a restarting peer).
const frrLoneGateway = `frr defaults datacenter
hostname upstream
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 bgp graceful-restart
 neighbor 192.0.2.2 remote-as 65001
 neighbor 192.0.2.2 timers connect 2
 neighbor 192.0.2.2 update-source 192.0.2.1
 !
 address-family ipv4 unicast
  neighbor 192.0.2.2 default-originate
  maximum-paths 8
 exit-address-family
!
`

// TestLoneGateway is issue 11 on a cloud with a single gateway host (BGP
// with graceful restart to FRR) and one compute host, on the kernel
// datapath (the uplink carried by the TC program):
//
//  1. The first packet of every new flow through the edge gets through: 100
//     new UDP flows from the outside client to an elastic IP and 100 from a
//     private instance out through a NAT gateway, one datagram each (no
//     retransmission to hide a loss), every one echoed.
//  2. Issue 11's must-show 5 with nobody to take over: the gateway's agent
//     is restarted (SIGTERM, started again) while 1,000 datagrams/s run to
//     the elastic IP and out through the NAT gateway. FRR keeps the
//     gateway's routes (graceful restart), the compute host keeps sending
//     through it (its only way out), and the kernel keeps forwarding on the
//     pinned maps while no agent runs: no datagram is lost.
func TestLoneGateway(t *testing.T) {
	defer func(d string) { netns.Datapath = d }(netns.Datapath)
	netns.Datapath = "kernel"
	l := cloudLab(t, `{
		"bgp": {"asn": 65001},
		"public_pools": ["203.0.113.0/28"],
		"gateways": [{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24",
			"bgp_peer": {"address": "192.0.2.1", "asn": 65000}}]}`, "203.0.113.0/28")
	gw := l.AddHostIn("gw", "us-east-1z", false)
	l.AddHostIn("c1", "", true) // serves every zone
	up := l.AddOutside("upstream", gw, "edge0", "192.0.2.1/24")
	client := addClient(t, up.NS, "198.51.100.1/24", outsideClient+"/24")
	f := netns.StartFRR(t, up.NS, frrLoneGateway)
	waitUntil(t, "FRR's route to the pool via the gateway", func() bool {
		nh := f.NextHops("203.0.113.0/28")
		return len(nh) == 1 && nh[0] == "192.0.2.2"
	})
	waitUntil(t, "the edge's learned default route", func() bool {
		got := learnedRoutes(t, l)
		return len(got) == 1 && got[0] == "0.0.0.0/0 via 192.0.2.1"
	})
	tn := newTenant(t, l)
	a, eip, b := natAndElasticIP(t, tn, client, "10.38")
	netns.ServeUDPEcho(t, a.ns, "0.0.0.0:9000")
	netns.ServeUDPEcho(t, client, outsideClient+":9001")

	// 1. First packets.
	if lost := netns.UDPRequests(t, client, eip+":9000", 100, 10*time.Millisecond, 5*time.Second); len(lost) > 0 {
		t.Errorf("new flows to the elastic IP %s: %d of 100 first datagrams not echoed (flows %v)", eip, len(lost), lost)
	}
	if lost := netns.UDPRequests(t, b.ns, outsideClient+":9001", 100, 10*time.Millisecond, 5*time.Second); len(lost) > 0 {
		t.Errorf("new flows out through the NAT gateway: %d of 100 first datagrams not echoed (flows %v)", len(lost), lost)
	}

	// 2. A planned restart of the lone gateway's agent.
	const rate = 1000
	in := netns.StartUDPProbe(t, client, eip+":9000", rate, 8)
	out := netns.StartUDPProbe(t, b.ns, outsideClient+":9001", rate, 8)
	in.Warm(t)
	out.Warm(t)
	before := f.Neighbor("192.0.2.2")
	t.Logf("%v: SIGTERM", in.Elapsed())
	gw.Stop()
	t.Logf("%v: stopped", in.Elapsed())
	if nh := f.NextHops("203.0.113.0/28"); len(nh) != 1 {
		t.Errorf("FRR dropped the lone gateway's route when its agent stopped: next hops %v", nh)
	}
	gw.Start()
	t.Logf("%v: started", in.Elapsed())
	waitUntil(t, "the session back", func() bool {
		n := f.Neighbor("192.0.2.2")
		return n.State == "Established" && n.Established > before.Established
	})
	t.Logf("%v: session established again", in.Elapsed())
	time.Sleep(2 * time.Second) // the probes run on through the restarted agent
	inSent, inLost := in.Finish()
	outSent, outLost := out.Finish()
	t.Logf("restart of the lone gateway: UDP probe to the elastic IP %d sent, %d lost; out through the NAT gateway %d sent, %d lost",
		inSent, inLost, outSent, outLost)
	if inLost != 0 || outLost != 0 {
		neigh, _ := up.Exec("ip", "neigh", "show", "dev", "edge0")
		t.Errorf("the restart lost probe datagrams: elastic IP %d (sent at %v), NAT gateway %d (sent at %v); upstream's neighbours on edge0:\n%s\ngw's kernel datapath:\n%s",
			inLost, in.LostAt(), outLost, out.LostAt(), neigh, metricLines(gw, "canopy_agent_kernel"))
	}
	if log := gw.Log(); !strings.Contains(log, "bgp graceful restart") {
		t.Errorf("the gateway's agent did not come back as a graceful restart:\n%s", log)
	}
}
