package agent

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestZoneLabel: the agent labels its Host with the availability zone it
// serves (the EC2 scheduler reads it), and drops the label when restarted
// without a zone.
func TestZoneLabel(t *testing.T) {
	s, cfg := nsdbtest.OpenEmbedded(t)
	dir := t.TempDir()
	runRegistrar(t, []string{cfg.ClientURL})
	run := func(zone string) {
		a, err := New(Config{Endpoints: []string{cfg.ClientURL}, HostName: "z", TunnelIP: netip.MustParseAddr("127.0.0.1"),
			TunnelPort: 0, StateDir: dir, Zone: zone, OpenPort: newWire().open, LeaseTTL: 2 * time.Second, NoMetadata: true,
			Datapath: DatapathUserspace})
		if err != nil {
			t.Fatal(err)
		}
		id, err := HostID(dir)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		defer func() { cancel(); <-done }()
		waitFor(t, "host labelled "+zone, func() bool {
			h, err := s.Get(context.Background(), topology.KindHost, id)
			return err == nil && h.GetMeta().Labels[topology.LabelZone] == zone
		})
	}
	run("us-east-1b")
	run("")
}
