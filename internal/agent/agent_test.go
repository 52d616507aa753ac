package agent

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/datapath/datapathfake"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// wire hands in-memory ports to agents and keeps the VM ends for the test.
type wire struct {
	mu  sync.Mutex
	vms map[string]chan []byte // iface → frames the VM received
	out map[string]*datapathfake.Port
}

func newWire() *wire {
	return &wire{vms: map[string]chan []byte{}, out: map[string]*datapathfake.Port{}}
}

func (w *wire) open(iface string) (datapath.Port, error) {
	agentEnd, vmEnd := datapathfake.Pair(iface, iface+"-vm")
	ch := make(chan []byte, 1024)
	w.mu.Lock()
	w.vms[iface], w.out[iface] = ch, vmEnd
	w.mu.Unlock()
	go func() {
		pkts := make([]datapath.Packet, 8)
		for i := range pkts {
			pkts[i].Buf = make([]byte, datapath.MaxFrame)
		}
		for {
			n, err := vmEnd.ReadBatch(pkts)
			if err != nil {
				return
			}
			for _, p := range pkts[:n] {
				// A VM's NIC completes partial checksums (the offloads).
				f := append([]byte(nil), p.Frame()...)
				_ = datapath.FinishChecksum(f, &p.Hdr)
				ch <- f
			}
		}
	}()
	return agentEnd, nil
}

// vm returns the VM end of iface once an agent has plugged it.
func (w *wire) vm(t *testing.T, iface string) (*datapathfake.Port, chan []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		p, ch := w.out[iface], w.vms[iface]
		w.mu.Unlock()
		if p != nil {
			return p, ch
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never plugged", iface)
	return nil, nil
}

func send(t *testing.T, p *datapathfake.Port, frame []byte) {
	t.Helper()
	if _, err := p.WriteBatch([]datapath.Packet{{Buf: frame, N: len(frame)}}); err != nil {
		t.Fatal(err)
	}
}

// expect waits for a frame on ch that match accepts.
func expect(t *testing.T, ch chan []byte, what string, match func(*packet.Packet) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second) // generous: a loaded CI machine, not a speed check
	for {
		select {
		case f := <-ch:
			var p packet.Packet
			p.Decode(f)
			if match(&p) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s", what)
		}
	}
}

func startAgent(t *testing.T, endpoints []string, name string, ip netip.Addr, w *wire) (string, context.CancelFunc, chan error) {
	t.Helper()
	_, id, cancel, done := runAgent(t, endpoints, name, ip, w, nil)
	return id, cancel, done
}

// runAgent starts an agent with its configuration adjusted by mod (if not
// nil) and returns it with its host id.
func runAgent(t *testing.T, endpoints []string, name string, ip netip.Addr, w *wire, mod func(*Config)) (*Agent, string, context.CancelFunc, chan error) {
	t.Helper()
	dir := t.TempDir()
	id, err := HostID(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A free UDP port: other tests may hold 6677 on loopback.
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	tport := uint16(uc.LocalAddr().(*net.UDPAddr).Port)
	uc.Close()
	cfg := Config{Endpoints: endpoints, HostName: name, TunnelIP: ip, TunnelPort: tport, StateDir: dir,
		OpenPort: w.open, LeaseTTL: 2 * time.Second, Datapath: DatapathUserspace}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runRegistrar(t, cfg.Endpoints)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := a.Run(ctx)
		if err != nil {
			t.Logf("agent %s: %v", name, err)
		}
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a, id, cancel, done
}

// registrars are the host registrars running, by test and endpoints.
var registrars sync.Map

// runRegistrar runs the server side of host registration (the controller's
// host registrar) on endpoints for the rest of the test, once per test: an
// agent waits for its Host object, which only the server writes.
func runRegistrar(t *testing.T, endpoints []string) {
	t.Helper()
	key := t.Name() + "|" + strings.Join(endpoints, ",")
	if _, loaded := registrars.LoadOrStore(key, true); loaded {
		return
	}
	s := nsdbtest.Open(t, nsdb.Config{Endpoints: endpoints})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { controller.NewHosts(s, nil).Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; registrars.Delete(key) })
}

// TestAgent runs an agent on an embedded etcd with in-memory ports:
// registration and liveness, bindings, ARP answered locally, frames
// forwarded (a miss, then a flow hit), a drop filter that takes effect, and
// a clean stop that turns the host and its ports not-alive at once. Tunnels
// need non-loopback addresses (the store refuses loopback tunnel-zone
// members): test/e2e covers them on network namespaces.
func TestAgent(t *testing.T) {
	s, cfg := nsdbtest.OpenEmbedded(t)
	ctx := context.Background()
	eps := []string{cfg.ClientURL}
	w := newWire()
	agA, idA, stopA, doneA := runAgent(t, eps, "a", netip.MustParseAddr("127.0.0.1"), w, nil)
	waitFor(t, "the host registered and alive", func() bool {
		alive, _ := s.AliveHosts(ctx)
		h, err := s.Get(ctx, topology.KindHost, idA)
		return alive[idA] && err == nil && h.GetMeta().Name == "a" && len(h.(*topology.Host).Interfaces) > 0
	})

	br, err := s.Create(ctx, &topology.Bridge{Meta: topology.Meta{Name: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	mac1, mac2 := topology.MAC{2, 0, 0, 0, 0, 1}, topology.MAC{2, 0, 0, 0, 0, 2}
	ip1, ip2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	port := func(mac topology.MAC, ip netip.Addr, host, iface string) *topology.Port {
		o, err := s.Create(ctx, &topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID, MAC: mac,
			IPs: []netip.Addr{ip}, HostID: host, Interface: iface})
		if err != nil {
			t.Fatal(err)
		}
		return o.(*topology.Port)
	}
	p1 := port(mac1, ip1, idA, "vm1")
	p2 := port(mac2, ip2, idA, "vm2")
	vm1, rx1 := w.vm(t, "vm1")
	_, rx2 := w.vm(t, "vm2")
	waitFor(t, "ports active", func() bool {
		a1, _ := s.PortActive(ctx, idA, p1.ID)
		a2, _ := s.PortActive(ctx, idA, p2.ID)
		return a1 && a2
	})

	// ARP for vm2 is answered at vm1's port, from the bridge's table.
	send(t, vm1, packet.BuildARP(packet.ARPRequest, mac1, packet.U32(ip1), [6]byte{}, packet.U32(ip2)))
	expect(t, rx1, "ARP reply", func(p *packet.Packet) bool {
		return p.Has(packet.FlagARP) && p.ARPOp == packet.ARPReply && p.ARPSHA == [6]byte(mac2)
	})

	// UDP vm1 → vm2 (twice: a miss, then a flow hit).
	udp := func(sport uint16) []byte {
		sp := packet.Spec{EthSrc: mac1, EthDst: mac2, Src: packet.U32(ip1), Dst: packet.U32(ip2), Proto: packet.ProtoUDP,
			SrcPort: sport, DstPort: 53, Payload: []byte("hello")}
		return sp.Build()
	}
	for range 2 {
		send(t, vm1, udp(1000))
		expect(t, rx2, "UDP at vm2", func(p *packet.Packet) bool { return p.Proto == packet.ProtoUDP && p.SrcPort == 1000 })
	}

	// A drop filter on vm2's port stops the cached flow.
	ch, err := s.Create(ctx, &topology.Chain{Rules: []topology.Rule{{Action: topology.ActionDrop}}})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := s.Get(ctx, topology.KindPort, p2.ID)
	p2 = o.(*topology.Port)
	p2.OutFilter = ch.GetMeta().ID
	if _, err := s.Update(ctx, p2); err != nil {
		t.Fatal(err)
	}
	// Each probe is either delivered (the filter is not in force yet) or
	// counted as dropped at vm1's port: wait for one or the other, never
	// for a delivery not to happen.
	dropped := agA.m.drops.WithLabelValues(p1.ID, "flow")
	waitFor(t, "the drop filter to take effect", func() bool {
		for len(rx2) > 0 {
			<-rx2
		}
		before := counter(dropped)
		send(t, vm1, udp(1000))
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			select {
			case <-rx2:
				return false
			default:
			}
			if counter(dropped) > before {
				return true
			}
		}
		t.Fatal("a probe was neither delivered nor dropped")
		return false
	})

	// A clean stop revokes the lease: the host is not alive any more.
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	doneA <- nil // for the cleanup
	if alive, _ := s.HostAlive(ctx, idA); alive {
		t.Error("host a still alive after its agent stopped")
	}
	if act, _ := s.PortActive(ctx, idA, p1.ID); act {
		t.Error("port 1 still active after its agent stopped")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
