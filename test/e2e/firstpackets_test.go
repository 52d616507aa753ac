package e2e

import (
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// frrLoneGateway is the upstream router's bgpd.conf with one gateway,
// 192.0.2.2.
const frrLoneGateway = `frr defaults datacenter
hostname upstream
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
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

// TestEdgeFirstPackets: the first packet of every new flow through the
// edge gets through. A cloud with one gateway host (BGP to FRR) and one
// compute host, on the kernel datapath (the uplink carried by the TC
// program, where the loss was seen): 100 new UDP flows from the outside
// client to an elastic IP and 100 from a private instance out through a NAT
// gateway, one datagram each (no retransmission to hide a loss), every one
// echoed. Out through the NAT gateway, the gateway's reply on the uplink
// races the state message the instance's host sent before the data; before
// the agent let such a dropped reply wait for the next state import, 4 to
// 16 of the 100 were lost on a busy machine.
func TestEdgeFirstPackets(t *testing.T) {
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

	if lost := netns.UDPRequests(t, client, eip+":9000", 100, 10*time.Millisecond, 5*time.Second); len(lost) > 0 {
		t.Errorf("new flows to the elastic IP %s: %d of 100 first datagrams not echoed (flows %v)", eip, len(lost), lost)
	}
	if lost := netns.UDPRequests(t, b.ns, outsideClient+":9001", 100, 10*time.Millisecond, 5*time.Second); len(lost) > 0 {
		t.Errorf("new flows out through the NAT gateway: %d of 100 first datagrams not echoed (flows %v)", len(lost), lost)
	}
}
