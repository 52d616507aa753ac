package nsdb

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
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

// startEmbedded starts a single-member etcd serving one machine.
func startEmbedded(ctx context.Context, cfg Config) (*embed.Etcd, error) {
	curl, err := url.Parse(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("client url %q: %w", cfg.ClientURL, err)
	}
	purl, err := url.Parse(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("peer url %q: %w", cfg.PeerURL, err)
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
	ec.MaxTxnOps = MaxTxnOps
	ec.MaxRequestBytes = maxRequestBytes
	// Keep an hour of history: watchers that fall further behind re-list.
	ec.AutoCompactionMode = embed.CompactorModePeriodic
	ec.AutoCompactionRetention = "1h"
	ec.Logger = "zap"
	ec.LogLevel = "error"
	ec.LogOutputs = []string{"stderr"}

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-t.C:
		e.Close()
		return nil, fmt.Errorf("embedded etcd not ready after %s", readyTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", ctx.Err())
	}
}
