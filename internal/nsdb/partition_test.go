package nsdb_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A route of VPC B on a router of the cloud (an elastic IP's /32 on the
// edge) is copied into both partitions; a route on a router of its own
// partition only into that one. When the router changes partition the
// copies follow it, and deleting the route removes both.
func TestRouteCopiedIntoItsRoutersPartition(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	in := func(vpc string) topology.Meta {
		if vpc == "" {
			return topology.Meta{}
		}
		return topology.Meta{Labels: map[string]string{topology.LabelVPC: vpc}}
	}
	edge := create(t, s, &topology.Router{Meta: in("")})
	port := create(t, s, &topology.Port{Meta: in(""), DeviceKind: topology.KindRouter, DeviceID: edge.ID, MAC: mac(1),
		Address: netip.MustParsePrefix("169.254.0.1/24")})
	rB := create(t, s, &topology.Router{Meta: in("vpc-b")})
	pB := create(t, s, &topology.Port{Meta: in("vpc-b"), DeviceKind: topology.KindRouter, DeviceID: rB.ID, MAC: mac(2),
		Address: netip.MustParsePrefix("10.1.0.1/24")})
	door := create(t, s, &topology.Route{Meta: in("vpc-b"), RouterID: edge.ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("203.0.113.10/32"),
		NextHopPort: port.ID, NextHopGateway: netip.MustParseAddr("169.254.0.2")})
	inner := create(t, s, &topology.Route{Meta: in("vpc-b"), RouterID: rB.ID, Type: topology.RouteNormal, DstPrefix: netip.MustParsePrefix("203.0.113.10/32"),
		NextHopPort: pB.ID})
	partsOf := func(id string) []string {
		t.Helper()
		resp, err := s.Client().Get(ctx, s.Prefix()+"part/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, kv := range resp.Kvs {
			rel := strings.TrimPrefix(string(kv.Key), s.Prefix()+"part/")
			if strings.HasSuffix(rel, "/route/"+id) {
				parts = append(parts, strings.TrimSuffix(rel, "/route/"+id))
			}
		}
		slices.Sort(parts)
		return parts
	}
	check := func(what, id string, want ...string) {
		t.Helper()
		if got := partsOf(id); !slices.Equal(got, want) {
			t.Errorf("%s: copies in %v, want %v", what, got, want)
		}
	}
	check("the edge's route of VPC B", door.ID, nsdb.CloudPartition, "vpc-b")
	check("VPC B's own route", inner.ID, "vpc-b")

	edge.Labels = map[string]string{topology.LabelVPC: "vpc-x"}
	if _, err := s.Update(ctx, edge); err != nil {
		t.Fatal(err)
	}
	check("the route once its router moved to vpc-x", door.ID, "vpc-b", "vpc-x")

	if _, err := s.Delete(ctx, topology.KindRoute, door.ID, 0); err != nil {
		t.Fatal(err)
	}
	check("the deleted route", door.ID)
}
