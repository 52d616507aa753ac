package nsdb

import (
	"context"
	"errors"

	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors. Every error a Store returns for bad input is one of:
//   - *topology.FieldError          → the request is invalid (HTTP 400)
//   - errors.Is(err, ErrNotFound)   → the named object does not exist (HTTP 404)
//   - errors.Is(err, ErrConflict)   → it conflicts with the current state,
//     including a revision mismatch (HTTP 409)
var (
	ErrNotFound = topology.ErrNotFound
	ErrConflict = topology.ErrConflict
)

// RevisionError is returned when an update or delete names a revision the
// object is no longer at. errors.Is(err, ErrConflict) holds for it.
type RevisionError struct {
	Key     topology.ObjectKey
	Want    int64 // what the caller sent
	Current int64 // what the store holds
}

func (e *RevisionError) Error() string   { return "revision mismatch" }
func (e *RevisionError) Is(t error) bool { return t == ErrConflict }

var _ = errors.Is

// Config says where the store lives.
type Config struct {
	// Endpoints of an external etcd cluster. When empty, an etcd server is
	// embedded in this process.
	Endpoints []string
	// DataDir of the embedded etcd (default /var/lib/canopy/etcd).
	DataDir string
	// ClientURL and PeerURL of the embedded etcd (defaults
	// http://127.0.0.1:2379 and http://127.0.0.1:2380).
	ClientURL, PeerURL string
	// Prefix of every key (default "/canopy/v1/").
	Prefix string
}

// Store is the typed topology store. It is safe for concurrent use.
type Store struct {
	cli *clientv3.Client
}

// Open connects to (or embeds) etcd, loads the cache and starts watching.
func Open(ctx context.Context, cfg Config) (*Store, error) { panic("unimplemented") }

// Close stops the watcher, closes the client and stops an embedded etcd.
func (s *Store) Close() error { panic("unimplemented") }

// Client is the etcd client (for state keys and leases).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Create validates o, checks its references, assigns an id (a UUID) when it
// has none and a tunnel key to a port, and stores it. It returns the stored
// object with its Revision.
func (s *Store) Create(ctx context.Context, o topology.Object) (topology.Object, error) {
	panic("unimplemented")
}

// Update replaces an existing object. If o's Revision is non-zero it must be
// the stored one (else *RevisionError).
func (s *Store) Update(ctx context.Context, o topology.Object) (topology.Object, error) {
	panic("unimplemented")
}

// Delete removes an object and, atomically, everything topology.PlanDelete
// says goes with it. rev, when non-zero, must be the stored revision.
func (s *Store) Delete(ctx context.Context, k topology.Kind, id string, rev int64) (*topology.DeletePlan, error) {
	panic("unimplemented")
}

// Get returns a copy of one object (ErrNotFound if absent). Reads come from
// the cache, which has seen at least every write this Store made.
func (s *Store) Get(ctx context.Context, k topology.Kind, id string) (topology.Object, error) {
	panic("unimplemented")
}

// List returns copies of every object of kind k, sorted by id.
func (s *Store) List(ctx context.Context, k topology.Kind) ([]topology.Object, error) {
	panic("unimplemented")
}

// Txn runs f against a consistent view and commits every change it made in
// one etcd transaction (all or nothing). f may be run more than once if a
// concurrent writer got there first, so it must have no other side effects.
// It returns the revision of the commit.
func (s *Store) Txn(ctx context.Context, f func(tx *Tx) error) (int64, error) {
	panic("unimplemented")
}

// Tx is a set of changes being prepared inside Store.Txn. Each call checks
// integrity against the view as changed so far.
type Tx struct{}

func (tx *Tx) Get(k topology.Kind, id string) topology.Object    { panic("unimplemented") }
func (tx *Tx) List(k topology.Kind) []topology.Object            { panic("unimplemented") }
func (tx *Tx) Create(o topology.Object) (topology.Object, error) { panic("unimplemented") }
func (tx *Tx) Update(o topology.Object) (topology.Object, error) { panic("unimplemented") }
func (tx *Tx) Delete(k topology.Kind, id string, rev int64) (*topology.DeletePlan, error) {
	panic("unimplemented")
}

// Link links two ports (both sides, one transaction).
func (s *Store) Link(ctx context.Context, portID, peerID string) error { panic("unimplemented") }

// Unlink unlinks a port and its peer.
func (s *Store) Unlink(ctx context.Context, portID string) error { panic("unimplemented") }

// HostAlive reports whether the host's agent holds its liveness lease.
func (s *Store) HostAlive(ctx context.Context, hostID string) (bool, error) { panic("unimplemented") }
