package sim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// naiveLookup is the routing decision spelled out: every route whose source
// and destination prefixes match; the longest destination prefix; the lowest
// weight; ties broken by hash over the routes ordered by id.
func naiveLookup(rs []route, in int32, src, dst uint32, hash uint64) *route {
	var best []*route
	for i := range rs {
		r := &rs[i]
		if src&r.srcMask != r.src || dst&r.dstMask != r.dst || r.in != none && r.in != in {
			continue
		}
		if len(best) == 0 || r.plen > best[0].plen || r.plen == best[0].plen && r.weight < best[0].weight {
			best = []*route{r}
		} else if r.plen == best[0].plen && r.weight == best[0].weight {
			best = append(best, r)
		}
	}
	if len(best) == 0 {
		return nil
	}
	slices.SortFunc(best, func(a, b *route) int { return cmp.Compare(a.id, b.id) })
	return best[hash%uint64(len(best))]
}

func TestRouteLookupDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Addresses from a small space so that prefixes overlap often.
	addr := func() uint32 { return 0x0a000000 | rng.Uint32()&0x0003ff0f }
	for table := 0; table < 200; table++ {
		var rs []route
		n := 1 + rng.IntN(40)
		for i := 0; i < n; i++ {
			plen := []int{0, 8, 16, 20, 22, 24, 28, 30, 32}[rng.IntN(9)]
			m := maskOf(plen)
			r := route{id: fmt.Sprintf("r%03d", i), typ: topology.RouteNormal, dst: addr() & m, dstMask: m, plen: uint8(plen), weight: []int{10, 100, 100, 200}[rng.IntN(4)], in: none}
			if rng.IntN(4) == 0 {
				r.in = int32(rng.IntN(3)) // limited to one of three ingress ports
			}
			if rng.IntN(3) == 0 {
				sl := []int{8, 16, 24, 30}[rng.IntN(4)]
				r.srcMask = maskOf(sl)
				r.src = addr() & r.srcMask
			}
			rs = append(rs, r)
		}
		fast := buildTable(slices.Clone(rs))
		for q := 0; q < 500; q++ {
			src, dst, h, in := addr(), addr(), rng.Uint64(), int32(rng.IntN(4))
			got, _ := fast.lookup(in, src, dst, h)
			want := naiveLookup(rs, in, src, dst, h)
			if (got == nil) != (want == nil) || got != nil && got.id != want.id {
				t.Fatalf("table %d: lookup(in %d, %s, %s, %d) = %v, naive %v", table, in, ip(src), ip(dst), h, got, want)
			}
		}
	}
}

// A route that leads where the snapshot does not reach (WithElsewhere)
// stops the simulation there: not yet, naming the part to load, no outputs
// and no drop; with that part held the same packet is routed.
func TestRouteElsewhere(t *testing.T) {
	l := newLab()
	rt := l.route("to-b", "r", "203.0.113.0/24", "r2", "10.0.1.13")
	rt.Labels = map[string]string{"part": "vpc-b"}
	l.x.Put(rt)
	elsewhere := func(held bool) SnapshotOption {
		return WithElsewhere(func(rt *topology.Route) string {
			if p := rt.Labels["part"]; p != "" && !held {
				return p
			}
			return ""
		})
	}
	r := l.runner(t)
	r.snap = NewSnapshot(l.x, elsewhere(false))
	res := r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "203.0.113.10", 5000, 53))
	r.expect(res, VerdictNotYet)
	if res.Need != "vpc-b" || len(res.Actions) != 0 {
		t.Fatalf("need %q, actions %v; want vpc-b and none", res.Need, res.Actions)
	}
	// Routes that stay inside are unaffected.
	r.expect(r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "10.0.1.13", 5000, 53)), VerdictForward, "vm3")
	r.snap = NewSnapshot(l.x, elsewhere(true))
	res = r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "203.0.113.10", 5000, 53))
	r.expect(res, VerdictForward, "vm3")
	if res.Need != "" {
		t.Errorf("need %q once held", res.Need)
	}
	// The same route given beside the reader (WithRoutes, a partial
	// replica's far routes) is compiled as if the reader held it.
	l.x.Delete(topology.KindRoute, rt.ID)
	r.snap = NewSnapshot(l.x, elsewhere(false), WithRoutes([]*topology.Route{rt}))
	if res := r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "203.0.113.10", 5000, 53)); res.Need != "vpc-b" {
		t.Errorf("a route given with WithRoutes: need %q, want vpc-b", res.Need)
	}
	r.snap = NewSnapshot(l.x, elsewhere(false))
	if res := r.send("vm1", udp(mVM1, mR1, "10.0.0.11", "203.0.113.10", 5000, 53)); res.Need != "" {
		t.Errorf("without the route: need %q, want none", res.Need)
	}
}
