package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/cli"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// collection is the REST collection of a kind.
func collection(k topology.Kind) string { return "/" + string(k) + "s" }

// snapshot returns every collection as the API lists it, compacted.
func snapshot(t *testing.T, c *cli.Client) map[topology.Kind]string {
	t.Helper()
	out := map[topology.Kind]string{}
	for _, k := range topology.Kinds {
		raw, err := c.Get(context.Background(), collection(k), nil)
		if err != nil {
			t.Fatalf("list %s: %v", k, err)
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatal(err)
		}
		out[k] = b.String()
	}
	return out
}

// load reads every object through the API into an index.
func load(t *testing.T, c *cli.Client) *topology.Index {
	t.Helper()
	x := topology.NewIndex()
	for _, k := range topology.Kinds {
		var raws []json.RawMessage
		if _, err := c.Get(context.Background(), collection(k), &raws); err != nil {
			t.Fatalf("list %s: %v", k, err)
		}
		for _, r := range raws {
			o := topology.New(k)
			if err := json.Unmarshal(r, o); err != nil {
				t.Fatalf("decode %s: %v\n%s", k, err, r)
			}
			x.Put(o)
		}
	}
	return x
}

// checkConsistent asserts the store's invariants over everything it holds:
// each object valid, every reference resolves, every cross-object rule holds,
// links are symmetric and tunnel keys unique.
func checkConsistent(t *testing.T, x *topology.Index) {
	t.Helper()
	keys := map[uint32]string{}
	for _, k := range topology.Kinds {
		for _, o := range x.List(k) {
			id := topology.Key(o)
			if err := o.Validate(); err != nil {
				t.Errorf("%s is invalid: %v", id, err)
			}
			for _, r := range o.Refs() {
				if x.Get(r.Kind, r.ID) == nil {
					t.Errorf("%s: %s refers to missing %s %s", id, r.Field, r.Kind, r.ID)
				}
			}
			if err := topology.Check(x, o, o); err != nil {
				t.Errorf("%s fails the integrity check: %v", id, err)
			}
			p, ok := o.(*topology.Port)
			if !ok {
				continue
			}
			if p.PeerID != "" {
				if peer, _ := x.Get(topology.KindPort, p.PeerID).(*topology.Port); peer == nil || peer.PeerID != p.ID {
					t.Errorf("port %s links to %s, which does not link back", p.ID, p.PeerID)
				}
			}
			if p.TunnelKey == 0 || p.TunnelKey > topology.MaxTunnelKey {
				t.Errorf("port %s has tunnel key %d", p.ID, p.TunnelKey)
			} else if other, dup := keys[p.TunnelKey]; dup {
				t.Errorf("ports %s and %s share tunnel key %d", other, p.ID, p.TunnelKey)
			}
			keys[p.TunnelKey] = p.ID
		}
	}
}

// TestRestartKeepsEverything stops the server with SIGTERM and starts it on
// the same data dir: every object and relation comes back unchanged.
func TestRestartKeepsEverything(t *testing.T) {
	s := newServer(t)
	s.cli("chain", "create", "filter")
	s.cli("chain", "rule", "add", "filter", "--action", "accept", "--nw-proto", "tcp", "--tp-dst", "443")
	s.cli("router", "create", "edge", "--in-filter", "filter")
	s.cli("router", "port", "add", "edge", "--name", "uplink", "--address", "198.51.100.1/24")
	s.cli("router", "port", "add", "edge", "--name", "down", "--address", "10.0.0.1/24")
	s.cli("bridge", "create", "tenant")
	s.cli("bridge", "port", "add", "tenant", "--name", "up", "--ip", "10.0.0.1")
	s.cli("bridge", "port", "add", "tenant", "--name", "vm1", "--mac", "02:00:00:00:00:05", "--ip", "10.0.0.5")
	s.cli("port", "link", "edge:down", "tenant:up")
	s.cli("route", "add", "edge", "--dst", "0.0.0.0/0", "--port", "uplink", "--gateway", "198.51.100.254")
	s.cli("host", "create", "h1")
	s.cli("host", "create", "h2")
	s.cli("tunnel-zone", "create", "tz")
	s.cli("tunnel-zone", "member", "add", "tz", "h1", "192.0.2.1")
	s.cli("tunnel-zone", "member", "add", "tz", "h2", "192.0.2.2")
	s.cli("binding", "add", "h2", "tenant:vm1", "tap-vm1")
	s.cli("bridge", "dhcp", "add", "tenant", "--subnet", "10.0.0.0/24", "--gateway", "10.0.0.1")
	s.cli("bridge", "dhcp", "host", "add", "tenant", "10.0.0.0/24", "--mac", "02:00:00:00:00:05", "--ip", "10.0.0.5")
	s.cli("port-group", "create", "pg", "--stateful")
	s.cli("port-group", "member", "add", "pg", "edge:uplink")
	s.cli("ip-address-group", "create", "ipg", "--address", "192.0.2.7")
	s.cli("router", "bgp", "set", "edge", "--asn", "64512", "--peer", "address=198.51.100.254,asn=64496")

	before := snapshot(t, s.client())
	s.stop()
	s.start()
	after := snapshot(t, s.client())
	for _, k := range topology.Kinds {
		if before[k] != after[k] {
			t.Errorf("%s changed across a restart:\nbefore %s\nafter  %s", k, before[k], after[k])
		}
		if before[k] == "[]" {
			t.Errorf("the test created no %s", k)
		}
	}
	checkConsistent(t, load(t, s.client()))
}

// TestKill9DuringWrites kills the server with SIGKILL while several clients
// create ports, link them and delete some as fast as they can. After a
// restart every acknowledged write is there, every acknowledged delete is
// gone, and the store is consistent: no half-written link, no dangling
// reference.
func TestKill9DuringWrites(t *testing.T) {
	s := newServer(t)
	c := s.client()
	ctx := context.Background()
	var router topology.Router
	var bridge topology.Bridge
	if _, err := c.Send(ctx, http.MethodPost, "/routers", &topology.Router{Meta: topology.Meta{Name: "r"}}, &router); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, http.MethodPost, "/bridges", &topology.Bridge{Meta: topology.Meta{Name: "b"}}, &bridge); err != nil {
		t.Fatal(err)
	}

	// pair is what one worker iteration wrote and was told succeeded.
	type pair struct {
		rp, bp          string // router and bridge port ids, "" if not created
		linked, deleted bool   // link acknowledged; bridge port delete acknowledged
		deleting        bool   // bridge port delete sent (maybe in flight at the kill)
	}
	const workers = 4
	var (
		mu    sync.Mutex
		pairs []*pair
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := w*10000 + i
				p := &pair{}
				var rp, bp topology.Port
				body := &topology.Port{Meta: topology.Meta{Name: fmt.Sprintf("rp%d", n)}, MAC: topology.MAC{2, 0, 0, byte(w), byte(i >> 8), byte(i)}}
				body.Address = mustPrefix(fmt.Sprintf("10.%d.%d.1/24", w*50+i/256%50, i%256))
				if _, err := c.Send(ctx, http.MethodPost, "/routers/"+router.ID+"/ports", body, &rp); err != nil {
					continue
				}
				p.rp = rp.ID
				mu.Lock()
				pairs = append(pairs, p)
				mu.Unlock()
				if _, err := c.Send(ctx, http.MethodPost, "/bridges/"+bridge.ID+"/ports", &topology.Port{Meta: topology.Meta{Name: fmt.Sprintf("bp%d", n)}}, &bp); err != nil {
					continue
				}
				mu.Lock()
				p.bp = bp.ID
				mu.Unlock()
				if _, err := c.Do(ctx, http.MethodPost, "/ports/"+rp.ID+"/link", map[string]string{"peer_id": bp.ID}); err != nil {
					continue
				}
				mu.Lock()
				p.linked = true
				mu.Unlock()
				if i%4 == 3 { // delete the bridge side: the router port must be unlinked with it
					mu.Lock()
					p.deleting = true
					mu.Unlock()
					if _, err := c.Do(ctx, http.MethodDelete, "/ports/"+bp.ID, nil); err == nil {
						mu.Lock()
						p.deleted = true
						mu.Unlock()
					}
				}
			}
		}()
	}

	// Let the writes run, then kill the server in the middle of them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(pairs)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(pairs) < 20 {
		t.Fatalf("only %d writes acknowledged before the kill; the test needs a stream", len(pairs))
	}

	s.start()
	x := load(t, s.client())
	checkConsistent(t, x)
	var acked, links, deletes int
	for _, p := range pairs {
		rp, _ := x.Get(topology.KindPort, p.rp).(*topology.Port)
		if rp == nil {
			t.Errorf("acknowledged router port %s is missing", p.rp)
			continue
		}
		acked++
		if p.bp == "" {
			continue
		}
		acked++
		bp, _ := x.Get(topology.KindPort, p.bp).(*topology.Port)
		switch {
		case p.deleted:
			deletes++
			if bp != nil {
				t.Errorf("acknowledged delete of bridge port %s is undone", p.bp)
			}
			if rp.PeerID != "" {
				t.Errorf("router port %s still links to deleted port %s", rp.ID, rp.PeerID)
			}
		case bp == nil && p.deleting:
			// The delete was in flight at the kill and committed: the router
			// side must have been unlinked in the same transaction.
			if rp.PeerID != "" {
				t.Errorf("router port %s still links to deleted port %s", rp.ID, rp.PeerID)
			}
		case bp == nil:
			t.Errorf("acknowledged bridge port %s is missing", p.bp)
		case p.linked:
			links++
			// A later delete may have been in flight at the kill: then both
			// sides are gone/unlinked together (checked by checkConsistent);
			// otherwise the link is intact.
			if rp.PeerID != bp.ID || bp.PeerID != rp.ID {
				t.Errorf("acknowledged link %s<->%s is not intact: %q, %q", rp.ID, bp.ID, rp.PeerID, bp.PeerID)
			}
		}
	}
	t.Logf("after kill -9: %d acknowledged ports, %d links and %d deletes checked; %d ports in the store",
		acked, links, deletes, len(x.List(topology.KindPort)))
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
