package agent

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// deniedLog records every log record that mentions a refused permission.
type deniedLog struct {
	mu     sync.Mutex
	denied []string
}

func (d *deniedLog) Enabled(context.Context, slog.Level) bool { return true }
func (d *deniedLog) WithAttrs([]slog.Attr) slog.Handler       { return d }
func (d *deniedLog) WithGroup(string) slog.Handler            { return d }
func (d *deniedLog) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	if strings.Contains(line, "permission denied") {
		d.mu.Lock()
		d.denied = append(d.denied, line)
		d.mu.Unlock()
	}
	return nil
}

// TestAgentLeastPrivilege runs an agent as `canopy server` and `canopy host
// enroll` set it up: etcd over TLS with authentication on, the agent the
// etcd user of its host, the server's host registrar root. Everything the
// agent does — registering through its announcement, liveness, plugging a
// port, publishing a learned MAC, revoking its lease at a clean stop — works
// within its role, and nothing it does is refused.
func TestAgentLeastPrivilege(t *testing.T) {
	sec := nsdbtest.OpenSecure(t)
	root := sec.Store
	ctx := context.Background()
	rctx, stopReg := context.WithCancel(ctx)
	regDone := make(chan struct{})
	go func() { controller.NewHosts(root, nil).Run(rctx); close(regDone) }()
	t.Cleanup(func() { stopReg(); <-regDone })

	dir := t.TempDir()
	id, err := HostID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Create(ctx, &topology.Host{Meta: topology.Meta{ID: id, Name: "a"}}); err != nil {
		t.Fatal(err)
	}
	user, err := root.GrantHost(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tport := uint16(uc.LocalAddr().(*net.UDPAddr).Port)
	uc.Close()
	logs := &deniedLog{}
	w := newWire()
	ccfg := sec.ClientConfig(t, user)
	a, err := New(Config{Endpoints: ccfg.Endpoints, Etcd: ccfg.Credentials, HostName: "a", TunnelIP: netip.MustParseAddr("127.0.0.1"),
		TunnelPort: tport, StateDir: dir, OpenPort: w.open, LeaseTTL: 2 * time.Second, NoMetadata: true, Logger: slog.New(logs),
		Datapath: DatapathUserspace})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() { stop(); <-done })

	waitFor(t, "the host registered (interfaces from its announcement) and alive", func() bool {
		h, err := root.Get(ctx, topology.KindHost, id)
		alive, _ := root.HostAlive(ctx, id)
		return err == nil && len(h.(*topology.Host).Interfaces) > 0 && alive
	})
	br, err := root.Create(ctx, &topology.Bridge{Meta: topology.Meta{Name: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := root.Create(ctx, &topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID, HostID: id, Interface: "ext"})
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := w.vm(t, "ext")
	waitFor(t, "the port active", func() bool { on, _ := root.PortActive(ctx, id, p.GetMeta().ID); return on })

	x := topology.MAC{2, 0x20, 0, 0, 0, 1}
	send(t, ext, (&packet.Spec{EthSrc: x, EthDst: topology.MAC{2, 0x20, 0, 0, 0, 2}, Src: packet.U32(netip.MustParseAddr("10.9.0.2")),
		Dst: packet.U32(netip.MustParseAddr("10.9.0.1")), Proto: packet.ProtoUDP, SrcPort: 1000, DstPort: 7, Payload: []byte("x")}).Build())
	waitFor(t, "the learned MAC published", func() bool { return len(learnedOf(t, root, id, x)) == 1 })

	// A clean stop revokes the lease, which takes the permission to write
	// every key bound to it.
	stop()
	if err := <-done; err != nil {
		t.Fatalf("agent: %v", err)
	}
	done <- nil
	if alive, _ := root.HostAlive(ctx, id); alive {
		t.Error("the host still reads alive after the agent's clean stop (lease not revoked)")
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, l := range logs.denied {
		t.Errorf("refused: %s", l)
	}
}
