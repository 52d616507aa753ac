package gateway

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/canopy-sdn/canopy/internal/netnstest"
)

// upstream is a provider's router: a plain GoBGP speaker on a loopback
// address, peering with the gateway at gw.
func upstream(t *testing.T, addr netip.Addr, asn uint32, gw netip.Addr, gwASN uint32) *server.BgpServer {
	t.Helper()
	srv := server.NewBgpServer()
	go srv.Serve()
	t.Cleanup(srv.Stop)
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: asn, RouterId: addr.String(), ListenPort: 179, ListenAddresses: []string{addr.String()},
	}}); err != nil {
		t.Fatalf("upstream %s: %v", addr, err)
	}
	if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: gw.String(), PeerAsn: gwASN},
		Transport: &api.Transport{LocalAddress: addr.String()},
		Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1}},
	}}); err != nil {
		t.Fatalf("upstream %s peer: %v", addr, err)
	}
	return srv
}

// received lists the prefixes srv has from its peers.
func received(t *testing.T, srv *server.BgpServer) []string {
	t.Helper()
	var got []string
	err := srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(p bgp.NLRI, _ []*apiutil.Path) { got = append(got, p.String()) })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// TestSpeakerIsNoTransit: a gateway peering with two providers (two
// upstream routers in different ASes) learns each one's default route
// but advertises only its own public pool to both — never one provider's
// routes to the other, which would carry their traffic through the cloud.
func TestSpeakerIsNoTransit(t *testing.T) {
	netnstest.RequireRoot(t) // BGP's port 179
	gw := netip.MustParseAddr("127.0.0.41")
	isp1, isp2 := netip.MustParseAddr("127.0.0.42"), netip.MustParseAddr("127.0.0.43")
	up1 := upstream(t, isp1, 65010, gw, 65001)
	up2 := upstream(t, isp2, 65020, gw, 65001)
	for _, up := range []struct {
		srv *server.BgpServer
		nh  netip.Addr
	}{{up1, isp1}, {up2, isp2}} {
		nlri, _ := bgp.NewIPAddrPrefix(netip.MustParsePrefix("0.0.0.0/0"))
		nh, _ := bgp.NewPathAttributeNextHop(up.nh)
		if _, err := up.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{{Family: bgp.RF_IPv4_UC, Nlri: nlri,
			Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh}}}}); err != nil {
			t.Fatal(err)
		}
	}

	var mu sync.Mutex
	var learned []Route
	s := NewSpeaker(nil, Restart{}, func(r []Route, _ []Session) {
		mu.Lock()
		learned = r
		mu.Unlock()
	})
	s.Start(context.Background())
	defer s.Stop()
	if err := s.Apply(Settings{ASN: 65001, RouterID: gw, Local: []netip.Prefix{netip.PrefixFrom(gw, 8)},
		Peers: []Peer{
			{Address: isp1, ASN: 65010, Local: gw, ConnectRetry: time.Second},
			{Address: isp2, ASN: 65020, Local: gw, ConnectRetry: time.Second},
		},
		Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}}); err != nil {
		t.Fatal(err)
	}

	want := []string{"0.0.0.0/0", "203.0.113.0/28"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(learned)
		mu.Unlock()
		r1, r2 := received(t, up1), received(t, up2)
		if n == 2 && slices.Equal(r1, want) && slices.Equal(r2, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: the gateway learned %d default routes (want 2, one per provider); provider 1 has %v, provider 2 has %v (want %v each)", n, r1, r2, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Each provider has its own default route and the pool; the other
	// provider's default must not arrive, even after a while.
	time.Sleep(2 * time.Second)
	for i, up := range []*server.BgpServer{up1, up2} {
		var from []string
		_ = up.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
			func(p bgp.NLRI, paths []*apiutil.Path) {
				for _, pa := range paths {
					if p.String() == "0.0.0.0/0" && pa.PeerAddress == gw {
						from = append(from, pa.PeerAddress.String())
					}
				}
			})
		if len(from) > 0 {
			t.Errorf("provider %d received a default route from the gateway (the other provider's): the cloud is a transit", i+1)
		}
	}
}
