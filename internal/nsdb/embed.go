package nsdb

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults of the embedded etcd.
const (
	DefaultDataDir   = "/var/lib/canopy/etcd"
	DefaultClientURL = "http://127.0.0.1:2379"
	DefaultPeerURL   = "http://127.0.0.1:2380"
	DefaultPrefix    = "/canopy/v1/"

	// MaxTxnOps is the largest transaction the store may commit: deleting a
	// router takes all its ports and routes in one transaction, far beyond
	// etcd's default of 128 operations. An external cluster needs
	// --max-txn-ops at least this large for such deletes.
	MaxTxnOps = 100000
	// maxRequestBytes lets such a transaction through (etcd's default is 1.5 MiB).
	maxRequestBytes = 64 << 20

	// readyTimeout bounds how long Open waits for the embedded etcd.
	readyTimeout = 60 * time.Second
)

// embedded is an etcd server running in this process.
type embedded struct {
	etcd    *embed.Etcd
	closing atomic.Bool
}

// Close stops the server. What it logs while shutting down (listeners
// closed under it) is noise, not errors, so it is dropped.
func (e *embedded) Close() {
	e.closing.Store(true)
	e.etcd.Close()
}

// quietCore passes etcd's error logs to stderr until the server is closing.
type quietCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c quietCore) With(f []zapcore.Field) zapcore.Core { return quietCore{c.Core.With(f), c.closing} }

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closing.Load() || !c.Enabled(e.Level) {
		return ce
	}
	return ce.AddCore(e, c)
}

// startEmbedded starts a single-member etcd serving one machine.
func startEmbedded(ctx context.Context, cfg Config) (*embedded, error) {
	em := &embedded{}
	curl, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("client url %q: %w", cfg.ClientURL, err)
	}
	purl, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("peer url %q: %w", cfg.PeerURL, err)
	}
	if cfg.Serve != nil {
		if curl.Scheme != "https" || purl.Scheme != "https" {
			return nil, fmt.Errorf("embedded etcd serving TLS: client and peer URLs must be https:// (have %s, %s)", cfg.ClientURL, cfg.PeerURL)
		}
	} else if curl.Scheme != "http" || purl.Scheme != "http" {
		return nil, fmt.Errorf("embedded etcd without TLS: client and peer URLs must be http:// (have %s, %s)", cfg.ClientURL, cfg.PeerURL)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd data dir: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = "canopy"
	ec.Dir = cfg.DataDir
	ec.ListenClientUrls = []url.URL{*curl}
	ec.AdvertiseClientUrls = []url.URL{*curl}
	ec.ListenPeerUrls = []url.URL{*purl}
	ec.AdvertisePeerUrls = []url.URL{*purl}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.InitialClusterToken = "canopy"
	if cfg.Serve != nil {
		ec.ClientTLSInfo = cfg.Serve.tlsInfo()
		ec.PeerTLSInfo = cfg.Serve.tlsInfo()
	}
	ec.MaxTxnOps = MaxTxnOps
	ec.MaxRequestBytes = maxRequestBytes
	// Keep an hour of history: watchers that fall further behind re-list.
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "1h"
	ec.Logger = "zap"
	ec.LogLevel = "error"
	// etcd formats a slow request in full for its warning before the
	// logger drops it (warnings are below our level): on a busy machine
	// every large transaction is "slow", and a controller resync spent an
	// eighth of its CPU printing its own transactions for nothing.
	ec.WarningApplyDuration = time.Hour
	ec.WarningUnaryRequestDuration = time.Hour
	// Raft keeps the last 5,000 entries in memory for a follower to catch
	// up with (etcd's default). A single member has no follower, and a
	// controller resync's entries are up to a megabyte each: they made
	// half the server's heap, and its garbage collections longer.
	ec.SnapshotCatchUpEntries = 10
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.Lock(os.Stderr), zapcore.ErrorLevel)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(quietCore{core, &em.closing}))

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	em.etcd = e
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return em, nil
	case err := <-e.Err():
		em.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-t.C:
		em.Close()
		return nil, fmt.Errorf("embedded etcd not ready after %s", readyTimeout)
	case <-ctx.Done():
		em.Close()
		return nil, fmt.Errorf("embedded etcd: %w", ctx.Err())
	}
}
