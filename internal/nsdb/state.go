package nsdb

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// State keys live next to the topology and are bound to leases: when an
// agent dies, its keep-alives stop, the lease expires and everything it
// announced (its liveness, its learned table entries) disappears with it.

// Lease is an etcd lease kept alive by a goroutine until Stop or Revoke.
type Lease struct {
	cli    *clientv3.Client
	id     clientv3.LeaseID
	cancel context.CancelFunc
	done   chan struct{} // closed when keep-alives have stopped
	once   sync.Once
}

// GrantLease grants a lease of ttl (rounded up to whole seconds; etcd's
// minimum is about 2s) and keeps it alive until Stop, Revoke or ctx ends.
func (s *Store) GrantLease(ctx context.Context, ttl time.Duration) (*Lease, error) {
	secs := int64((ttl + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	g, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	kctx, cancel := context.WithCancel(ctx)
	ch, err := s.cli.KeepAlive(kctx, g.ID)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("keep lease alive: %w", err)
	}
	l := &Lease{cli: s.cli, id: g.ID, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		// The client closes ch when kctx ends or the lease is lost; the
		// responses themselves carry nothing we need.
		for range ch {
		}
	}()
	return l, nil
}

// ID is the etcd lease id, to bind further keys to it.
func (l *Lease) ID() clientv3.LeaseID { return l.id }

// Done is closed when the lease is no longer kept alive (stopped, revoked,
// or lost because etcd could not be reached within its TTL).
func (l *Lease) Done() <-chan struct{} { return l.done }

// Stop stops the keep-alives and waits for them to end. The lease and its
// keys expire after the TTL, as if the process had died.
func (l *Lease) Stop() {
	l.once.Do(l.cancel)
	<-l.done
}

// Revoke stops the keep-alives and deletes the lease with every key bound to
// it at once (a clean shutdown).
func (l *Lease) Revoke(ctx context.Context) error {
	l.Stop()
	if _, err := l.cli.Revoke(ctx, l.id); err != nil {
		return fmt.Errorf("revoke lease: %w", err)
	}
	return nil
}

func (s *Store) hostKey(hostID string) string { return s.prefix + "state/host/" + hostID }

// KeepHostAlive announces that the agent of hostID is alive for as long as
// the returned lease is kept (ttl after the process stops refreshing it, the
// host reads as dead).
func (s *Store) KeepHostAlive(ctx context.Context, hostID string, ttl time.Duration) (*Lease, error) {
	if err := checkID(hostID); err != nil || hostID == "" {
		return nil, &topology.FieldError{Field: "host_id", Reason: "is not a valid id"}
	}
	l, err := s.GrantLease(ctx, ttl)
	if err != nil {
		return nil, err
	}
	if _, err := s.cli.Put(ctx, s.hostKey(hostID), time.Now().UTC().Format(time.RFC3339), clientv3.WithLease(l.id)); err != nil {
		_ = l.Revoke(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("announce host %s: %w", hostID, err)
	}
	return l, nil
}

// HostAlive reports whether the host's agent holds its liveness lease.
func (s *Store) HostAlive(ctx context.Context, hostID string) (bool, error) {
	resp, err := s.cli.Get(ctx, s.hostKey(hostID), clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("host %s liveness: %w", hostID, err)
	}
	return resp.Count > 0, nil
}

// AliveHosts returns the ids of every host whose agent is alive.
func (s *Store) AliveHosts(ctx context.Context) (map[string]bool, error) {
	pfx := s.prefix + "state/host/"
	resp, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("host liveness: %w", err)
	}
	out := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), pfx)] = true
	}
	return out, nil
}

// SetPortActive marks a port as plugged on its host while lease lives.
func (s *Store) SetPortActive(ctx context.Context, portID string, lease *Lease) error {
	if _, err := s.cli.Put(ctx, s.prefix+"state/port/"+portID+"/active", "1", clientv3.WithLease(lease.id)); err != nil {
		return fmt.Errorf("port %s active: %w", portID, err)
	}
	return nil
}

// PortActive reports whether a port is plugged on its host.
func (s *Store) PortActive(ctx context.Context, portID string) (bool, error) {
	resp, err := s.cli.Get(ctx, s.prefix+"state/port/"+portID+"/active", clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("port %s active: %w", portID, err)
	}
	return resp.Count > 0, nil
}
