package controller

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// lockedBuf is a log sink the controller's goroutines write while the test
// reads it.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

const (
	lateHost  = "7d3c0c1e-0000-4000-8000-0000000000c1"
	otherHost = "7d3c0c1e-0000-4000-8000-0000000000c2"
)

// TestGatewayHostRegistersLater: a gateway named by host name, whose host
// registers after the controller started, is bound when it does, without
// a restart (also when that write first fails) and without a refused
// write; renaming the host unbinds it, a second host of that name makes it
// ambiguous, and it converges again when the name is unique. The status
// key and the log say pending once per change.
func TestGatewayHostRegistersLater(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cc := testCloud()
	cc.Gateways[0].HostID, cc.Gateways[0].Host = "", "gw-late"
	logs := &lockedBuf{}
	c := New(e.store, cc, slog.New(slog.NewTextHandler(logs, nil)))
	var fails atomic.Int32
	next := c.txn
	c.txn = func(ctx context.Context, f func(tx *nsdb.Tx) error) (int64, error) {
		if fails.Add(-1) >= 0 {
			return 0, errors.New("injected: etcd unavailable")
		}
		return next(ctx, f)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)

	uplinkID := translate.ObjectID(translate.CloudObject, "uplink/gw-late/eth1")
	uplink := func() *topology.Port {
		o, err := e.store.Get(ctx, topology.KindPort, uplinkID)
		if err != nil {
			t.Fatalf("uplink port: %v", err)
		}
		return o.(*topology.Port)
	}
	status := func() translate.GatewayStatus {
		st, err := ReadFullStatus(ctx, e.store)
		if err != nil || len(st.Gateways) != 1 {
			return translate.GatewayStatus{}
		}
		return st.Gateways[0]
	}
	waitBound := func(hostID string) {
		t.Helper()
		waitFor(t, "the uplink bound to "+hostID, func() bool {
			p := uplink()
			return p.HostID == hostID && p.Interface == "eth1"
		})
		waitFor(t, "the status to say bound", func() bool {
			s := status()
			return s.State == translate.GatewayBound && s.HostID == hostID
		})
	}
	waitUnbound := func(state translate.GatewayState) {
		t.Helper()
		waitFor(t, "the uplink unbound", func() bool { return !uplink().Exterior() })
		waitFor(t, "the status to say "+string(state), func() bool { return status().State == state })
	}

	// The server starts first: the gateway is pending, its uplink port is
	// there unbound, and VPC rounds go on without retrying it.
	e.wait(c, e.put(fixture(1)...))
	if p := uplink(); p.Exterior() || p.Address != pfx("192.0.2.2/24") {
		t.Fatalf("pending uplink: %+v", p)
	}
	if s := c.Gateways(); len(s) != 1 || s[0].State != translate.GatewayPending || s[0].Host != "gw-late" || !strings.Contains(s[0].Reason, "no host is named gw-late") {
		t.Fatalf("gateways %+v, want one pending", s)
	}
	// The status key is written after the round, off the writer loop.
	waitFor(t, "the status key to say pending", func() bool { return status() == c.Gateways()[0] })
	v := find[*vpc.Vpc](fixture(1))
	v2 := clone(v)
	v2.EnableDNSSupport = false
	e.wait(c, e.put(v2))
	if n := logs.count("gateway pending"); n != 1 {
		t.Errorf("the pending gateway is logged %d times, want once:\n%s", n, logs.b.String())
	}

	// Its agent registers: the uplink is bound, no restart, also when the
	// first write of the binding fails.
	fails.Store(1)
	if _, err := e.store.Create(ctx, &topology.Host{Meta: topology.Meta{ID: lateHost, Name: "gw-late"}}); err != nil {
		t.Fatal(err)
	}
	waitBound(lateHost)
	if n := logs.count("gateway bound"); n != 1 {
		t.Errorf("gateway bound logged %d times", n)
	}

	// Renamed: nothing answers to gw-late any more.
	rename := func(id, name string) {
		t.Helper()
		o, err := e.store.Get(ctx, topology.KindHost, id)
		if err != nil {
			t.Fatal(err)
		}
		h := o.(*topology.Host)
		h.Name = name
		if _, err := e.store.Update(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	rename(lateHost, "gw-renamed")
	waitUnbound(translate.GatewayPending)

	// Two hosts of the name: ambiguous, bound to neither, said so.
	rename(lateHost, "gw-late")
	waitBound(lateHost)
	if _, err := e.store.Create(ctx, &topology.Host{Meta: topology.Meta{ID: otherHost, Name: "gw-late"}}); err != nil {
		t.Fatal(err)
	}
	waitUnbound(translate.GatewayAmbiguous)
	if s := status(); !strings.Contains(s.Reason, "2 hosts are named gw-late") || !strings.Contains(s.Reason, lateHost) || !strings.Contains(s.Reason, otherHost) {
		t.Errorf("ambiguous status reason: %q", s.Reason)
	}

	// The first host is deleted (nothing binds it now): the name is
	// unique again and the uplink follows it to the other host.
	if _, err := e.store.Delete(ctx, topology.KindHost, lateHost, 0); err != nil {
		t.Fatal(err)
	}
	waitBound(otherHost)

	if s := c.Stats(); s.Refused != 0 || s.Errors != 1 {
		t.Errorf("stats %+v: want no refused write and the one injected failure", s)
	}
	if n := logs.count("write refused"); n != 0 {
		t.Errorf("%d refused writes logged", n)
	}
	if n := logs.count("gateway pending"); n != 2 {
		t.Errorf("gateway pending logged %d times, want 2 (at start, after the rename)", n)
	}
}
