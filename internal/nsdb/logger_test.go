package nsdb_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
)

// lineWriter hands each log line to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

// TestStoreLogsToItsLogger: the store's own warnings go to the logger of its
// Config, at that logger's level — not to the process's default logger, which
// a role must never have to replace to see them or to silence them.
func TestStoreLogsToItsLogger(t *testing.T) {
	lines := make(lineWriter, 64)
	log := slog.New(slog.NewTextHandler(lines, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, _ := nsdbtest.OpenEmbeddedWith(t, func(c nsdb.Config) nsdb.Config { c.Logger = log; return c })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.PutKeyForTest(ctx, "topo/router/r1", "not json"); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case l := <-lines:
			if strings.Contains(l, "level=ERROR") && strings.Contains(l, "undecodable") && strings.Contains(l, "topo/router/r1") {
				return
			}
			if strings.Contains(l, "level=INFO") || strings.Contains(l, "level=DEBUG") {
				t.Fatalf("a line below the logger's level: %s", l)
			}
		case <-ctx.Done():
			t.Fatal("the undecodable object was not logged to the store's logger")
		}
	}
}
