package controller

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestHostsRegistrar: hosts register through what their agents announce.
// The registrar makes the Host object (name, interfaces, zone label) and the
// tunnel-zone membership, follows a changed announcement, refuses one it
// cannot store without holding up the others, and keeps a host whose agent
// is gone.
func TestHostsRegistrar(t *testing.T) {
	s, _ := nsdbtest.OpenEmbedded(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { NewHosts(s, nil).Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	const hostA, hostB, hostC = "5b1e0000-0000-4000-8000-00000000000a", "5b1e0000-0000-4000-8000-00000000000b", "5b1e0000-0000-4000-8000-00000000000f"
	lease := func() *nsdb.Lease {
		l, err := s.GrantLease(ctx, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Stop)
		return l
	}
	announce := func(id string, info nsdb.HostInfo, l *nsdb.Lease) {
		t.Helper()
		if err := s.PutHostInfo(ctx, id, info, l); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(what string, cond func(r topology.Reader) bool) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := s.WaitUntil(wctx, cond); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	host := func(r topology.Reader, id string) *topology.Host {
		h, _ := r.Get(topology.KindHost, id).(*topology.Host)
		return h
	}
	member := func(r topology.Reader, zone, id string) (topology.TunnelZoneMember, bool) {
		for _, o := range r.List(topology.KindTunnelZone) {
			if z := o.(*topology.TunnelZone); z.Name == zone {
				if i := z.MemberIndex(id); i >= 0 {
					return z.Members[i], true
				}
			}
		}
		return topology.TunnelZoneMember{}, false
	}

	ifs := []topology.HostInterface{{Name: "eth0", MTU: 1500, Addresses: []netip.Prefix{pfx("10.0.0.1/24")}}}
	la := lease()
	announce(hostA, nsdb.HostInfo{Name: "a", Interfaces: ifs, AvailabilityZone: "us-east-1a", TunnelZone: "tz", TunnelIP: ip("10.0.0.1")}, la)
	wait("host a registered in tz", func(r topology.Reader) bool {
		h := host(r, hostA)
		m, ok := member(r, "tz", hostA)
		return h != nil && h.Name == "a" && reflect.DeepEqual(h.Interfaces, ifs) && h.Labels[topology.LabelZone] == "us-east-1a" &&
			ok && m.Address == ip("10.0.0.1")
	})

	// A changed announcement: no zone, another tunnel address, and a new
	// name, which does not rename the host (its name is the operator's).
	announce(hostA, nsdb.HostInfo{Name: "a2", Interfaces: ifs, TunnelZone: "tz", TunnelIP: ip("10.0.0.2")}, la)
	wait("host a updated", func(r topology.Reader) bool {
		h := host(r, hostA)
		m, _ := member(r, "tz", hostA)
		_, labelled := h.Labels[topology.LabelZone]
		return !labelled && m.Address == ip("10.0.0.2")
	})
	if h, _ := s.Get(ctx, topology.KindHost, hostA); h.GetMeta().Name != "a" {
		t.Errorf("the agent renamed host a to %q", h.GetMeta().Name)
	}

	// B claims A's tunnel address: its host is made, its membership
	// refused; D claims A's name: refused, no host; C, announced after
	// (and applied after them: its id sorts last), registers all the same.
	const hostD = "5b1e0000-0000-4000-8000-00000000000d"
	announce(hostB, nsdb.HostInfo{Name: "b", TunnelZone: "tz", TunnelIP: ip("10.0.0.2")}, lease())
	announce(hostD, nsdb.HostInfo{Name: "a"}, lease())
	announce(hostC, nsdb.HostInfo{Name: "c", TunnelZone: "tz", TunnelIP: ip("10.0.0.3")}, lease())
	wait("host c registered", func(r topology.Reader) bool {
		_, ok := member(r, "tz", hostC)
		return ok && host(r, hostB) != nil
	})
	if _, err := s.Get(ctx, topology.KindHost, hostD); !errors.Is(err, nsdb.ErrNotFound) {
		t.Errorf("host d registered under host a's name: %v", err)
	}
	s.Read(func(r topology.Reader) {
		if m, ok := member(r, "tz", hostB); ok {
			t.Errorf("host b joined tz at %s, the address of host a", m.Address)
		}
		if m, _ := member(r, "tz", hostA); m.Address != ip("10.0.0.2") {
			t.Errorf("host a moved to %s", m.Address)
		}
	})

	// A's agent goes (its lease and announcement with it): the host stays.
	if err := la.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, topology.KindHost, hostA); errors.Is(err, nsdb.ErrNotFound) {
		t.Error("host a deleted when its agent went")
	}
}
