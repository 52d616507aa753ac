package translate

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestValidateBGP: the cloud config's BGP settings are checked when the
// file is read, with the field that is wrong, rather than found wrong by
// the store at the first write of the edge router.
func TestValidateBGP(t *testing.T) {
	gw := func(host, addr string, peer *BGPPeer) Gateway {
		return Gateway{Host: host, Interface: "eth1", Address: pfx(addr), BGPPeer: peer}
	}
	peer := &BGPPeer{Address: ip("192.0.2.1"), ASN: 65000}
	for _, c := range []struct {
		name string
		cfg  CloudConfig
		want string // "" = valid
	}{
		{"two gateways, a peer each", CloudConfig{BGP: &BGPConfig{ASN: 65001}, Gateways: []Gateway{
			gw("a", "192.0.2.2/24", peer), gw("b", "198.51.100.2/24", &BGPPeer{Address: ip("198.51.100.1"), ASN: 65000})}}, ""},
		{"peer without bgp", CloudConfig{Gateways: []Gateway{gw("a", "192.0.2.2/24", peer)}}, "gateways[0].bgp_peer: needs bgp.asn"},
		{"peer off the gateway's network", CloudConfig{BGP: &BGPConfig{ASN: 65001}, Gateways: []Gateway{
			gw("a", "192.0.2.2/24", &BGPPeer{Address: ip("198.51.100.1"), ASN: 65000})}}, "must be another address of the gateway's network 192.0.2.0/24"},
		{"peer is the gateway", CloudConfig{BGP: &BGPConfig{ASN: 65001}, Gateways: []Gateway{
			gw("a", "192.0.2.2/24", &BGPPeer{Address: ip("192.0.2.2"), ASN: 65000})}}, "must be another address"},
		{"peer without asn", CloudConfig{BGP: &BGPConfig{ASN: 65001}, Gateways: []Gateway{
			gw("a", "192.0.2.2/24", &BGPPeer{Address: ip("192.0.2.1")})}}, "gateways[0].bgp_peer.asn: is required"},
		{"asn 0", CloudConfig{BGP: &BGPConfig{}}, "bgp: bgp.asn"},
		{"advertise addresses", CloudConfig{BGP: &BGPConfig{ASN: 65001, Advertise: "addresses"}}, ""},
		{"advertise all", CloudConfig{BGP: &BGPConfig{ASN: 65001, Advertise: "all"}}, `bgp.advertise "all": "pools" (the default) or "addresses"`},
		{"bfd defaults", CloudConfig{BGP: &BGPConfig{ASN: 65001}, Gateways: []Gateway{
			gw("a", "192.0.2.2/24", &BGPPeer{Address: ip("192.0.2.1"), ASN: 65000, BFD: &topology.BFD{}})}}, ""},
		{"bfd interval 5 ms", CloudConfig{BGP: &BGPConfig{ASN: 65001}, Gateways: []Gateway{
			gw("a", "192.0.2.2/24", &BGPPeer{Address: ip("192.0.2.1"), ASN: 65000, BFD: &topology.BFD{MinTxMS: 5}})}}, "bfd.min_tx_ms: 5 ms"},
		{"hold time 2", CloudConfig{BGP: &BGPConfig{ASN: 65001}, Gateways: []Gateway{
			gw("a", "192.0.2.2/24", &BGPPeer{Address: ip("192.0.2.1"), ASN: 65000, HoldTime: 2})}}, "hold_time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestLearnedRoutesTranslate: learned routes leave through the uplink of
// the host that learned them whose network holds the next hop; the same
// prefix learned on two hosts (each on its own link network) is two routes
// of equal weight (ECMP); what would capture the cloud's own addresses is
// skipped.
func TestLearnedRoutesTranslate(t *testing.T) {
	cc := CloudConfig{
		BGP:         &BGPConfig{ASN: 65001},
		PublicPools: []netip.Prefix{pfx("203.0.113.0/24")},
		Gateways: []Gateway{
			{HostID: gwHost, Interface: "eth1", Address: pfx("192.0.2.2/24"), BGPPeer: &BGPPeer{Address: ip("192.0.2.1"), ASN: 65000}},
			{HostID: vmHost, Interface: "eth1", Address: pfx("198.51.100.2/24"), BGPPeer: &BGPPeer{Address: ip("198.51.100.1"), ASN: 65000}},
		},
	}
	hosts := []*topology.Host{{Meta: topology.Meta{ID: gwHost}}, {Meta: topology.Meta{ID: vmHost}}}
	d := TranslateCloud(cc, hosts)
	if err := cc.Validate(); err != nil {
		t.Fatal(err)
	}
	def := LearnedRoute{Prefix: pfx("0.0.0.0/0"), NextHop: ip("192.0.2.1")}
	def2 := LearnedRoute{Prefix: pfx("0.0.0.0/0"), NextHop: ip("198.51.100.1")}
	objs, skips := LearnedRoutes(cc, d, map[string][]LearnedRoute{
		gwHost: {def, {Prefix: pfx("203.0.113.128/25"), NextHop: ip("192.0.2.1")}, {Prefix: pfx("169.254.0.0/24"), NextHop: ip("192.0.2.1")}},
		vmHost: {def2, {Prefix: pfx("10.0.0.0/8"), NextHop: ip("192.0.2.1")}},
	})
	ports := map[string]string{}
	for _, o := range d.Objects {
		if p, ok := o.(*topology.Port); ok && p.HostID != "" {
			ports[p.ID] = p.HostID
		}
	}
	if len(objs) != 2 {
		t.Fatalf("%d routes, want the default route from each host: %+v", len(objs), objs)
	}
	seen := map[string]bool{}
	for _, o := range objs {
		r := o.(*topology.Route)
		if !r.Learned || r.DstPrefix != pfx("0.0.0.0/0") || r.Weight != 0 || !Owned(r) || Partition(r) != "" {
			t.Errorf("route %+v", r)
		}
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
		seen[ports[r.NextHopPort]] = true
	}
	if !seen[gwHost] || !seen[vmHost] {
		t.Errorf("the routes leave through the uplinks of %v, want both hosts'", seen)
	}
	var reasons []string
	for _, s := range skips {
		reasons = append(reasons, s.Reason)
	}
	got := strings.Join(reasons, "; ")
	for _, want := range []string{"inside the public pool 203.0.113.0/24", "overlaps the transit network", "the next hop is on no uplink network"} {
		if !strings.Contains(got, want) {
			t.Errorf("skips %q, want one saying %q", got, want)
		}
	}
	// Deterministic: the same input, the same objects.
	again, _ := LearnedRoutes(cc, d, map[string][]LearnedRoute{vmHost: {def2}, gwHost: {def}})
	if len(again) != 2 || again[0].GetMeta().ID != objs[0].GetMeta().ID || again[1].GetMeta().ID != objs[1].GetMeta().ID {
		t.Error("the learned routes' ids depend on more than their input")
	}
}
