package role

import (
	"context"
	"io"
	"log/slog"

	"github.com/canopy-sdn/canopy/internal/server"
)

// ServerConfig is the server role's configuration, flags and environment
// included (server.Config).
type ServerConfig = server.Config

// DefaultServerConfig is the server role's defaults.
func DefaultServerConfig() ServerConfig { return server.DefaultConfig() }

// DefaultDataDir is the server's default data dir.
const DefaultDataDir = server.DefaultDataDir

// RunServer runs the server role with cfg (validated) until ctx is done.
func RunServer(ctx context.Context, cfg ServerConfig, log *slog.Logger) error {
	return server.New(cfg, log).Run(ctx)
}

// NewLogger is a role's logger: text lines on w at level (debug, info, warn
// or error; anything else is info).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
