package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// TestLearnedRoutes: what a gateway host's speaker publishes under its own
// state keys becomes learned routes on the edge router, out of that host's
// uplink; a route the host stops publishing goes, a route into the public
// pool is never made, and when the host's lease expires every route it
// learned goes with it.
func TestLearnedRoutes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.start()
	e.wait(c, e.put(fixture(1)...))

	uplink := translate.ObjectID(translate.CloudObject, "uplink/"+gwHost+"/eth1")
	learned := func() []string {
		var out []string
		e.store.Read(func(r topology.Reader) {
			for _, o := range r.List(topology.KindRoute) {
				if rt := o.(*topology.Route); rt.Learned {
					if rt.NextHopPort != uplink || rt.RouterID != translate.ObjectID(translate.CloudObject, "edge-router") {
						t.Errorf("learned route %s leaves through %s of router %s", rt.Name, rt.NextHopPort, rt.RouterID)
					}
					out = append(out, rt.DstPrefix.String()+" via "+rt.NextHopGateway.String())
				}
			}
		})
		slices.Sort(out)
		return out
	}
	waitRoutes := func(want ...string) {
		t.Helper()
		waitFor(t, "learned routes "+fmtList(want), func() bool { return slices.Equal(learned(), want) })
	}

	lease, err := e.store.GrantLease(ctx, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	put := func(rs ...nsdb.BGPRoute) {
		t.Helper()
		if err := e.store.PutBGPRoutes(ctx, gwHost, rs, lease); err != nil {
			t.Fatal(err)
		}
	}
	put(nsdb.BGPRoute{Prefix: pfx("0.0.0.0/0"), NextHop: ip("192.0.2.1"), Peer: ip("192.0.2.1")},
		nsdb.BGPRoute{Prefix: pfx("198.51.100.0/24"), NextHop: ip("192.0.2.9"), Peer: ip("192.0.2.1")},
		// Refused: inside the public pool, and a next hop on no uplink.
		nsdb.BGPRoute{Prefix: pfx("203.0.113.16/28"), NextHop: ip("192.0.2.1"), Peer: ip("192.0.2.1")},
		nsdb.BGPRoute{Prefix: pfx("10.9.0.0/16"), NextHop: ip("172.16.0.1"), Peer: ip("192.0.2.1")})
	waitRoutes("0.0.0.0/0 via 192.0.2.1", "198.51.100.0/24 via 192.0.2.9")

	// Withdrawn by the speaker.
	put(nsdb.BGPRoute{Prefix: pfx("0.0.0.0/0"), NextHop: ip("192.0.2.1"), Peer: ip("192.0.2.1")})
	waitRoutes("0.0.0.0/0 via 192.0.2.1")

	// The agent dies: its lease expires, the routes go.
	lease.Stop()
	waitRoutes()
	e.assertRealizes() // exactly the translation again
	if n := c.Stats().Refused; n != 0 {
		t.Errorf("%d writes refused", n)
	}
}

func fmtList(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += ", " + x
	}
	return out
}
