package agent

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/gateway"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestWantGateway: a host holding an uplink of a router with BGP settings
// speaks for it, with the peers on that uplink's network only, from the
// uplink's address, which is also its router id; it advertises the
// networks, or with host_routes each routed /32 inside them. Another host,
// or a router without BGP, gives no gateway role.
func TestWantGateway(t *testing.T) {
	const host, other = "h1", "h2"
	pfx, ip := netip.MustParsePrefix, netip.MustParseAddr
	x := topology.NewIndex()
	r := &topology.Router{Meta: topology.Meta{ID: "edge"}, BGP: &topology.BGP{ASN: 65001,
		Networks: []netip.Prefix{pfx("203.0.113.0/24")},
		Peers: []topology.BGPPeer{
			{Address: ip("192.0.2.1"), ASN: 65000, HoldTime: 9, BFD: &topology.BFD{MinTxMS: 100}},
			{Address: ip("198.51.100.1"), ASN: 65000}, // another gateway's network
		}}}
	x.Put(r)
	x.Put(&topology.Port{Meta: topology.Meta{ID: "up1"}, DeviceKind: topology.KindRouter, DeviceID: "edge",
		HostID: host, Interface: "eth1", Address: pfx("192.0.2.2/24"), MAC: topology.MAC{2, 0, 0, 0, 0, 1}})
	x.Put(&topology.Port{Meta: topology.Meta{ID: "up2"}, DeviceKind: topology.KindRouter, DeviceID: "edge",
		HostID: other, Interface: "eth1", Address: pfx("198.51.100.2/24")})
	route := func(id, dst string, typ topology.RouteType, learned bool) {
		x.Put(&topology.Route{Meta: topology.Meta{ID: id}, RouterID: "edge", Type: typ, DstPrefix: pfx(dst), Learned: learned})
	}
	route("eip", "203.0.113.5/32", topology.RouteNormal, false)
	route("nat", "203.0.113.9/32", topology.RouteNormal, false)
	route("pool", "203.0.113.0/24", topology.RouteBlackhole, false)
	route("elsewhere", "10.0.0.1/32", topology.RouteNormal, false)
	route("learned", "203.0.113.77/32", topology.RouteNormal, true)

	w := wantGateway(x, host)
	if w == nil {
		t.Fatal("no gateway role on the uplink's host")
	}
	want := gateway.Settings{ASN: 65001, RouterID: ip("192.0.2.2"), Local: []netip.Prefix{pfx("192.0.2.2/24")},
		Networks: []netip.Prefix{pfx("203.0.113.0/24")},
		Peers: []gateway.Peer{{Address: ip("192.0.2.1"), ASN: 65000, Local: ip("192.0.2.2"), HoldTime: 9e9,
			BFD: gateway.BFD{MinTx: 100e6, MinRx: 300e6, Multiplier: 3}}}}
	if !slices.Equal(w.settings.Local, want.Local) || !slices.Equal(w.settings.Networks, want.Networks) ||
		!slices.Equal(w.settings.Peers, want.Peers) || w.settings.ASN != want.ASN || w.settings.RouterID != want.RouterID {
		t.Errorf("settings\n%+v\nwant\n%+v", w.settings, want)
	}
	if len(w.uplinks) != 1 || w.uplinks[0].port != "up1" || !slices.Equal(w.uplinks[0].peers, []netip.Addr{ip("192.0.2.1")}) {
		t.Errorf("uplinks %+v", w.uplinks)
	}

	r.BGP.HostRoutes = true
	x.Put(r)
	if got := wantGateway(x, host).settings.Networks; !slices.Equal(got, []netip.Prefix{pfx("203.0.113.5/32"), pfx("203.0.113.9/32")}) {
		t.Errorf("host routes advertised %v, want the two routed addresses of the pool", got)
	}

	if w := wantGateway(x, "h3"); w != nil {
		t.Errorf("a host without uplinks has a gateway role: %+v", w)
	}
	r.BGP = nil
	x.Put(r)
	if w := wantGateway(x, host); w != nil {
		t.Errorf("a router without BGP gives a gateway role: %+v", w)
	}
}
