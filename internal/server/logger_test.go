package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
)

// lineWriter hands each log line to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

// TestStoreWarningsReachTheServerLog: the logger a role hands the server
// (canopy up's, at its --log-level) is the one the server's store logs to:
// an object in etcd that this version cannot read is reported there, and
// nothing below the logger's level is.
func TestStoreWarningsReachTheServerLog(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Listen, cfg.EC2.Listen = freeAddr(t), freeAddr(t)
	cfg.EtcdClientURL, cfg.EtcdPeerURL = "https://"+freeAddr(t), "https://"+freeAddr(t)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	lines := make(lineWriter, 256)
	s := New(cfg, slog.New(slog.NewTextHandler(lines, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ready := make(chan string, 1)
	s.Ready = func(addr, _ string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready within 60 s")
	}

	rootCfg, err := cfg.ClientStoreConfig()
	if err != nil {
		t.Fatal(err)
	}
	rootCfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	octx, ocancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ocancel()
	root, err := nsdb.Open(octx, rootCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := root.Client().Put(octx, root.Prefix()+"topo/router/unreadable", "not json"); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, "level=INFO") || strings.Contains(l, "level=DEBUG") {
				t.Fatalf("a line below the server logger's level: %s", l)
			}
			if strings.Contains(l, "undecodable") && strings.Contains(l, "topo/router/unreadable") {
				return
			}
		case <-octx.Done():
			t.Fatal("the store's error did not reach the server's logger")
		}
	}
}
