package nsdb

import (
	"context"
	"crypto/tls"
	"log/slog"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WithBeforeWatch returns cfg with a hook run by the cache's watcher between
// its list and its watch.
func WithBeforeWatch(cfg Config, f func(rev int64)) Config {
	cfg.beforeWatch = f
	return cfg
}

// CacheResets is how many times the store's cache was rebuilt from a list.
func CacheResets(s *Store) int {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.resets
}

// WatchWithHook is Watch with a hook between each list and the watch after it.
func WatchWithHook(ctx context.Context, cli *clientv3.Client, prefix string, h Handler, before func(rev int64)) error {
	return (&watcher{cli: cli, log: slog.Default(), prefix: prefix, h: h, beforeWatch: before}).run(ctx)
}

// PutKeyForTest puts a store-relative key (as root would).
func (s *Store) PutKeyForTest(ctx context.Context, rel, val string) error {
	_, err := s.cli.Put(ctx, s.prefix+rel, val)
	return err
}

// ClientTLSForTest is the client TLS configuration of cfg.
func ClientTLSForTest(cfg Config) (*tls.Config, error) {
	return cfg.Credentials.tlsConfig(cfg.Endpoints)
}

// Unavailable is the mapping of etcd errors to ErrUnavailable.
var Unavailable = unavailable
