package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
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

// Per-host state keys. Everything an agent writes lives under its own
// host's keys (auth.go grants it exactly these):
//
//	state/host/<host>                         liveness (lease-bound)
//	state/hosts/<host>/info                   what the agent knows of itself (HostInfo)
//	state/hosts/<host>/port/<port>/active     a port plugged on the host
//	state/hosts/<host>/instance/<instance>    an instance running on the host
//	state/learned/<host>/…                    learned MAC/ARP entries
func (s *Store) hostKey(hostID string) string { return s.prefix + "state/host/" + hostID }

// HostStatesRel is the store-relative prefix of every host's state keys
// (to Watch: HostInfo, port and instance state).
const HostStatesRel = "state/hosts/"

func hostStateRel(hostID string) string   { return HostStatesRel + hostID + "/" }
func hostLearnedRel(hostID string) string { return learnedRel + hostID + "/" }

func (s *Store) portActiveKey(hostID, portID string) string {
	return s.prefix + hostStateRel(hostID) + "port/" + portID + "/active"
}

// HostStateKey splits a key under HostStatesRel into its host id, its kind
// ("info", "port", "instance") and the rest ("" for info; the port or
// instance id). ok is false for any other key.
func (s *Store) HostStateKey(key string) (hostID, kind, rest string, ok bool) {
	k, found := strings.CutPrefix(key, s.prefix+HostStatesRel)
	if !found {
		return "", "", "", false
	}
	hostID, k, _ = strings.Cut(k, "/")
	kind, rest, _ = strings.Cut(k, "/")
	switch kind {
	case "info":
		return hostID, kind, "", rest == ""
	case "port":
		rest, _, _ = strings.Cut(rest, "/")
		return hostID, kind, rest, rest != ""
	case "instance":
		return hostID, kind, rest, rest != "" && !strings.Contains(rest, "/")
	}
	return "", "", "", false
}

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
	if err := s.MarkHostAlive(ctx, hostID, l); err != nil {
		_ = l.Revoke(context.WithoutCancel(ctx))
		return nil, err
	}
	return l, nil
}

// MarkHostAlive announces that the agent of hostID is alive while lease
// lives.
func (s *Store) MarkHostAlive(ctx context.Context, hostID string, lease *Lease) error {
	if err := checkID(hostID); err != nil || hostID == "" {
		return &topology.FieldError{Field: "host_id", Reason: "is not a valid id"}
	}
	if _, err := s.cli.Put(ctx, s.hostKey(hostID), time.Now().UTC().Format(time.RFC3339), clientv3.WithLease(lease.id)); err != nil {
		return fmt.Errorf("announce host %s: %w", hostID, err)
	}
	return nil
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
func (s *Store) SetPortActive(ctx context.Context, hostID, portID string, lease *Lease) error {
	if _, err := s.cli.Put(ctx, s.portActiveKey(hostID, portID), "1", clientv3.WithLease(lease.id)); err != nil {
		return fmt.Errorf("port %s active: %w", portID, err)
	}
	return nil
}

// ClearPortActive marks a port as no longer plugged on its host.
func (s *Store) ClearPortActive(ctx context.Context, hostID, portID string) error {
	if _, err := s.cli.Delete(ctx, s.portActiveKey(hostID, portID)); err != nil {
		return fmt.Errorf("port %s inactive: %w", portID, err)
	}
	return nil
}

// PortActive reports whether a port is plugged on host hostID.
func (s *Store) PortActive(ctx context.Context, hostID, portID string) (bool, error) {
	resp, err := s.cli.Get(ctx, s.portActiveKey(hostID, portID), clientv3.WithCountOnly())
	if err != nil {
		return false, fmt.Errorf("port %s active: %w", portID, err)
	}
	return resp.Count > 0, nil
}

// PutInstanceState writes what host hostID reports about an instance
// running there (the value is the caller's), bound to lease.
func (s *Store) PutInstanceState(ctx context.Context, hostID, instanceID string, value []byte, lease *Lease) error {
	if instanceID == "" || strings.Contains(instanceID, "/") {
		return &topology.FieldError{Field: "instance_id", Reason: "must be non-empty without '/'"}
	}
	if _, err := s.cli.Put(ctx, s.prefix+hostStateRel(hostID)+"instance/"+instanceID, string(value), clientv3.WithLease(lease.id)); err != nil {
		return fmt.Errorf("instance %s state: %w", instanceID, err)
	}
	return nil
}

// InstanceState reads host hostID's report about an instance and the lease
// it is bound to; ok is false when there is none.
func (s *Store) InstanceState(ctx context.Context, hostID, instanceID string) (value []byte, lease clientv3.LeaseID, ok bool, err error) {
	resp, err := s.cli.Get(ctx, s.prefix+hostStateRel(hostID)+"instance/"+instanceID)
	if err != nil {
		return nil, 0, false, fmt.Errorf("instance %s state: %w", instanceID, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, false, nil
	}
	return resp.Kvs[0].Value, clientv3.LeaseID(resp.Kvs[0].Lease), true, nil
}

// DeleteInstanceState removes host hostID's report about an instance.
func (s *Store) DeleteInstanceState(ctx context.Context, hostID, instanceID string) error {
	if _, err := s.cli.Delete(ctx, s.prefix+hostStateRel(hostID)+"instance/"+instanceID); err != nil {
		return fmt.Errorf("instance %s state: %w", instanceID, err)
	}
	return nil
}

// HostInfo is what a host's agent announces about itself under its own
// keys. The server's controller makes the host's Host object and its
// tunnel-zone membership from it: an agent writes no topology.
type HostInfo struct {
	Name       string                   `json:"name"`
	Interfaces []topology.HostInterface `json:"interfaces,omitempty"`
	// AvailabilityZone is the EC2 zone the host serves ("" = every zone).
	AvailabilityZone string `json:"availability_zone,omitempty"`
	// TunnelZone (a name or id; "" = none) is joined with TunnelIP.
	TunnelZone string     `json:"tunnel_zone,omitempty"`
	TunnelIP   netip.Addr `json:"tunnel_ip,omitzero"`
}

// PutHostInfo announces info for hostID, bound to lease (it goes with the
// agent; the Host object made from it stays).
func (s *Store) PutHostInfo(ctx context.Context, hostID string, info HostInfo, lease *Lease) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := s.cli.Put(ctx, s.prefix+hostStateRel(hostID)+"info", string(b), clientv3.WithLease(lease.id)); err != nil {
		return fmt.Errorf("host %s info: %w", hostID, err)
	}
	return nil
}

// DecodeHostInfo decodes the value of a host's info key.
func DecodeHostInfo(value []byte) (HostInfo, error) {
	var h HostInfo
	if err := json.Unmarshal(value, &h); err != nil {
		return h, fmt.Errorf("host info: %w", err)
	}
	return h, nil
}

// ActivePorts returns every port plugged on some host, port id → host id
// (one read of every host's port keys).
func (s *Store) ActivePorts(ctx context.Context) (map[string]string, error) {
	resp, err := s.cli.Get(ctx, s.prefix+HostStatesRel, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("active ports: %w", err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		if host, kind, port, ok := s.HostStateKey(k); ok && kind == "port" && strings.HasSuffix(k, "/active") {
			out[port] = host
		}
	}
	return out, nil
}
