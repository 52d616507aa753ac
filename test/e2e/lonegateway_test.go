package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestLoneGatewayRestart is issue 11's must-show 5 with nobody to take
// over: a cloud with one gateway host (BGP with graceful restart to FRR)
// and one compute host, on the kernel datapath. The gateway's agent is
// restarted (SIGTERM, started again) while 1,000 datagrams/s run to an
// elastic IP and out through a NAT gateway. FRR keeps the gateway's routes
// (graceful restart), the learned default route and the upstream router's
// learned ARP entry stay in the store (the stopping agent leaves its lease
// to run out, the next one publishes the routes it noted and writes its
// predecessor's learned entries again at once, under its own lease: the
// probes run on past the old lease), the compute host keeps sending through the
// gateway (its only way out), and the kernel forwards on the pinned maps
// while no agent runs: no datagram is lost.
func TestLoneGatewayRestart(t *testing.T) {
	defer func(d string) { netns.Datapath = d }(netns.Datapath)
	netns.Datapath = "kernel"
	l := cloudLab(t, `{
		"bgp": {"asn": 65001},
		"public_pools": ["203.0.113.0/28"],
		"gateways": [{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24",
			"bgp_peer": {"address": "192.0.2.1", "asn": 65000}}]}`, "203.0.113.0/28")
	gw := l.AddHostIn("gw", "us-east-1z", false)
	c1 := l.AddHostIn("c1", "", true) // serves every zone
	up := l.AddOutside("upstream", gw, "edge0", "192.0.2.1/24")
	client := addClient(t, up.NS, "198.51.100.1/24", outsideClient+"/24")
	f := netns.StartFRR(t, up.NS, strings.Replace(frrLoneGateway, " no bgp ebgp-requires-policy\n",
		" no bgp ebgp-requires-policy\n bgp graceful-restart\n", 1))
	waitUntil(t, "FRR's route to the pool via the gateway", func() bool {
		nh := f.NextHops("203.0.113.0/28")
		return len(nh) == 1 && nh[0] == "192.0.2.2"
	})
	defaultVia := func() bool {
		got := learnedRoutes(t, l)
		return len(got) == 1 && got[0] == "0.0.0.0/0 via 192.0.2.1"
	}
	waitUntil(t, "the edge's learned default route", defaultVia)
	tn := newTenant(t, l)
	a, eip, b := natAndElasticIP(t, tn, client, "10.38")
	netns.ServeUDPEcho(t, a.ns, "0.0.0.0:9000")
	netns.ServeUDPEcho(t, client, outsideClient+":9001")
	if gr := f.Vtysh("show ip bgp neighbors 192.0.2.2"); !strings.Contains(gr, "Graceful Restart Capability: advertised and received") {
		t.Errorf("FRR and the gateway did not negotiate graceful restart:\n%s", gr)
	}

	const rate = 1000
	in := netns.StartUDPProbe(t, client, eip+":9000", rate, 8)
	out := netns.StartUDPProbe(t, b.ns, outsideClient+":9001", rate, 8)
	in.Warm(t)
	out.Warm(t)
	before := f.Neighbor("192.0.2.2")
	mark := func(what string) { t.Logf("%v: %s", in.Elapsed(), what) }
	mark("SIGTERM")
	gw.Stop()
	mark("stopped")
	if log := gw.Log(); !strings.Contains(log, "lone gateway stopping") {
		t.Errorf("the gateway's agent did not stop as a lone gateway keeping its kernel datapath:\n%s", log)
	}
	if nh := f.NextHops("203.0.113.0/28"); len(nh) != 1 {
		t.Errorf("FRR dropped the lone gateway's route when its agent stopped: next hops %v", nh)
	}
	if !defaultVia() {
		t.Errorf("the edge's learned default route went with the stopped agent: %v", learnedRoutes(t, l))
	}
	gw.Start()
	mark("started")
	waitUntil(t, "the session back", func() bool {
		n := f.Neighbor("192.0.2.2")
		return n.State == "Established" && n.Established > before.Established
	})
	mark("session established again")
	// The probes run on past the old agent's lease (5 s after the stop):
	// the learned route is the new agent's by then.
	time.Sleep(6 * time.Second)
	mark("6 s later")
	if !defaultVia() {
		t.Errorf("no learned default route after the restart: %v", learnedRoutes(t, l))
	}
	inSent, inLost := in.Finish()
	outSent, outLost := out.Finish()
	t.Logf("restart of the lone gateway: UDP probe to the elastic IP %d sent, %d lost; out through the NAT gateway %d sent, %d lost",
		inSent, inLost, outSent, outLost)
	if inLost != 0 || outLost != 0 {
		t.Errorf("the restart lost probe datagrams: elastic IP %d (sent at %v), NAT gateway %d (sent at %v); gw's kernel datapath:\n%s\nc1's:\n%s",
			inLost, in.LostAt(), outLost, out.LostAt(), metricLines(gw, "canopy_agent_kernel"), metricLines(c1, "canopy_agent_kernel"))
		fl, _ := c1.Get("/flows")
		t.Logf("c1 flows: %s", fl)
		fl, _ = gw.Get("/flows")
		t.Logf("gw flows: %s", fl)
	}
	if log := gw.Log(); !strings.Contains(log, "bgp graceful restart") {
		t.Errorf("the gateway's agent did not come back as a graceful restart:\n%s", log)
	}
}
