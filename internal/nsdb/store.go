package nsdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Errors. Every error a Store returns for bad input is one of:
//   - *topology.FieldError          → the request is invalid (HTTP 400)
//   - errors.Is(err, ErrNotFound)   → the named object does not exist (HTTP 404)
//   - errors.Is(err, ErrConflict)   → it conflicts with the current state,
//     including a revision mismatch (HTTP 409)
var (
	ErrNotFound = topology.ErrNotFound
	ErrConflict = topology.ErrConflict
	// ErrNoTopology: a Store opened with Config.NoTopology was asked to
	// write the topology.
	ErrNoTopology = errors.New("nsdb: this store was opened without the topology (Config.NoTopology)")
)

// RevisionError is returned when an update or delete names a revision the
// object is no longer at. errors.Is(err, ErrConflict) holds for it.
type RevisionError struct {
	Key     topology.ObjectKey
	Want    int64 // what the caller sent
	Current int64 // what the store holds
}

func (e *RevisionError) Error() string {
	return fmt.Sprintf("revision mismatch: %s is at revision %d, not %d", e.Key, e.Current, e.Want)
}
func (e *RevisionError) Is(t error) bool { return t == ErrConflict }

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
	// Credentials are what this process presents to etcd: TLS (required
	// when etcd serves https) and, with etcd's authentication on, who it is.
	Credentials
	// Serve, when set, makes the embedded etcd serve TLS on its client and
	// peer listeners and refuse any client or peer without a certificate
	// signed by Serve.CAFile. Its URLs must then be https://.
	Serve *ServeTLS
	// EnableAuth turns etcd's authentication on once connected (EnableAuth
	// below): the credentials must then be root's. From then on every
	// client is the user its certificate names, allowed only what its role
	// grants (auth.go).
	EnableAuth bool
	// Logger receives the store's own warnings (a watch that broke, an
	// object this version cannot read); default slog.Default(). The roles
	// pass theirs, so the warnings reach the log at the role's level.
	Logger *slog.Logger

	// NoTopology opens the store without its cache of the whole topology:
	// for an agent, which follows only its partitions (WatchPartition) and
	// writes no topology. Reads and writes of topology objects through such
	// a Store fail with ErrNoTopology.
	NoTopology bool

	// beforeWatch, for tests, runs in the cache's watcher between its list
	// and its watch.
	beforeWatch func(rev int64)
}

func (c *Config) setDefaults() {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.ClientURL == "" {
		c.ClientURL = DefaultClientURL
	}
	if c.PeerURL == "" {
		c.PeerURL = DefaultPeerURL
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
}

// openTimeout bounds Open when its context has no deadline.
const openTimeout = 60 * time.Second

// Store is the typed topology store. It is safe for concurrent use.
type Store struct {
	cli    *clientv3.Client
	etcd   *embedded // nil with an external cluster
	prefix string
	log    *slog.Logger
	cache  *cache

	keys       keyReservations // tunnel keys this process's writers are handing out
	noTopology bool

	stop      context.CancelFunc
	done      chan struct{} // closed when the cache's watcher has returned
	closeOnce sync.Once
}

// Open connects to (or embeds) etcd, loads the cache and starts watching.
// It returns once the cache holds the whole topology.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.setDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Store{prefix: cfg.Prefix, log: log, cache: newCache(cfg.Prefix, log), done: make(chan struct{})}
	endpoints := cfg.Endpoints
	if len(endpoints) == 0 {
		e, err := startEmbedded(ctx, cfg)
		if err != nil {
			return nil, err
		}
		s.etcd = e
		endpoints = []string{cfg.ClientURL}
	}
	tlsCfg, err := cfg.Credentials.tlsConfig(endpoints)
	if err != nil {
		s.closeEtcd()
		return nil, err
	}
	if tlsCfg != nil && s.etcd == nil {
		if err := checkTLS(ctx, endpoints, tlsCfg); err != nil {
			return nil, err
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// A dead member is noticed within seconds and the client moves on.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	if err != nil {
		s.closeEtcd()
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	bindClient(cli)
	s.cli = cli
	if cfg.EnableAuth {
		if err := s.EnableAuth(ctx); err != nil {
			s.closeClient()
			return nil, err
		}
	}

	wctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if cfg.NoTopology {
		s.noTopology = true
		close(s.done)
		return s, nil
	}
	ready := make(chan struct{})
	w := &watcher{cli: cli, log: log, prefix: cfg.Prefix + "topo", h: s.cache.handler(),
		beforeWatch: cfg.beforeWatch, onReady: func() { close(ready) }}
	go func() {
		defer close(s.done)
		_ = w.run(wctx) // returns only when Close cancels it
	}()
	// Without a deadline from the caller, an unreachable etcd would make
	// Open wait forever.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, openTimeout)
		defer cancel()
	}
	select {
	case <-ready:
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("loading the topology from etcd %v: %w", endpoints, ctx.Err())
	}
}

// Close stops the watcher, closes the client and stops an embedded etcd.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		err = s.cli.Close()
		s.closeEtcd()
	})
	return err
}

// closeClient undoes a half-done Open.
func (s *Store) closeClient() {
	_ = s.cli.Close()
	s.closeEtcd()
}

func (s *Store) closeEtcd() {
	if s.etcd != nil {
		s.etcd.Close()
	}
}

// Client is the etcd client (for state keys and leases).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the prefix of every key of this store.
func (s *Store) Prefix() string { return s.prefix }

// Revision is the etcd revision the cache reflects.
func (s *Store) Revision() int64 {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.rev
}

// Sync waits until the cache has every topology change committed before the
// call, by any process: a read barrier for a reader that must see another
// process's write.
func (s *Store) Sync(ctx context.Context) error {
	resp, err := s.cli.Get(ctx, s.cache.seqKey())
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	var seq int64
	if len(resp.Kvs) > 0 {
		seq = resp.Kvs[0].ModRevision
	}
	return unavailable(s.cache.waitSeq(ctx, seq))
}

// Watch runs the list-then-watch loop of the package-level Watch on the keys
// under the store's prefix + rel (e.g. "state/table/"), until ctx is done.
func (s *Store) Watch(ctx context.Context, rel string, h Handler) error {
	return (&watcher{cli: s.cli, log: s.log, prefix: s.prefix + rel, h: h}).run(ctx)
}

// WatchVPC runs Watch on the VPC objects (vpc/<collection>/<id>) and
// vpc-seq, which every VPC commit writes: each commit's revision reaches h
// even when no object changed. Not the objects' partition copies (vpcpart/,
// which the prefix "vpc" also covers): they would double the list and the
// events. vpc-seq sorts just before vpc/, so the two are one key range.
func (s *Store) WatchVPC(ctx context.Context, h Handler) error {
	return (&watcher{cli: s.cli, log: s.log, prefix: s.prefix + vpcSeqRel,
		end: clientv3.GetPrefixRangeEnd(s.prefix + VPCPrefix), h: h}).run(ctx)
}

// Read runs f on the cache as one consistent view, without copying: f must
// not modify or keep what it reads, and must not call the Store's methods.
// It suits read-mostly walks such as "the ports of this router"
// (r.Referrers).
func (s *Store) Read(f func(r topology.Reader)) {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	f(s.cache.idx)
}

// Create validates o, checks its references, assigns an id (a UUID) when it
// has none and a tunnel key to a port, and stores it. It returns the stored
// object with its Revision.
func (s *Store) Create(ctx context.Context, o topology.Object) (topology.Object, error) {
	var key topology.ObjectKey
	_, tx, err := s.txn(ctx, func(tx *Tx) error {
		c, err := tx.Create(o)
		if err == nil {
			key = topology.Key(c)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return topology.Clone(tx.changes[key]), nil
}

// Update replaces an existing object. If o's Revision is non-zero it must be
// the stored one (else *RevisionError).
func (s *Store) Update(ctx context.Context, o topology.Object) (topology.Object, error) {
	if o == nil {
		return nil, &topology.FieldError{Reason: "no object"}
	}
	key := topology.Key(o)
	_, tx, err := s.txn(ctx, func(tx *Tx) error {
		_, err := tx.Update(o)
		return err
	})
	if err != nil {
		return nil, err
	}
	return topology.Clone(tx.changes[key]), nil
}

// Delete removes an object and, atomically, everything topology.PlanDelete
// says goes with it. rev, when non-zero, must be the stored revision.
func (s *Store) Delete(ctx context.Context, k topology.Kind, id string, rev int64) (*topology.DeletePlan, error) {
	var plan *topology.DeletePlan
	_, _, err := s.txn(ctx, func(tx *Tx) error {
		var err error
		plan, err = tx.Delete(k, id, rev)
		return err
	})
	if err != nil {
		return nil, err
	}
	return plan, nil
}

// Get returns a copy of one object (ErrNotFound if absent). Reads come from
// the cache, which has seen at least every write this Store made.
func (s *Store) Get(ctx context.Context, k topology.Kind, id string) (topology.Object, error) {
	s.cache.mu.RLock()
	o := s.cache.idx.Get(k, id)
	if o != nil {
		o = topology.Clone(o)
	}
	s.cache.mu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("%s %s: %w", k, id, ErrNotFound)
	}
	return o, nil
}

// List returns copies of every object of kind k, sorted by id.
func (s *Store) List(ctx context.Context, k topology.Kind) ([]topology.Object, error) {
	if !k.Valid() {
		return nil, &topology.FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q", k)}
	}
	s.cache.mu.RLock()
	objs := s.cache.idx.List(k)
	s.cache.mu.RUnlock()
	// Cloning outside the lock is safe: the cache replaces objects, it never
	// modifies one in place.
	for i, o := range objs {
		objs[i] = topology.Clone(o)
	}
	return objs, nil
}

// Link links two ports (both sides, one transaction). Both must exist and
// neither may be linked already.
func (s *Store) Link(ctx context.Context, portID, peerID string) error {
	_, _, err := s.txn(ctx, func(tx *Tx) error {
		p, _ := tx.Get(topology.KindPort, portID).(*topology.Port)
		if p == nil {
			return fmt.Errorf("port %s: %w", portID, ErrNotFound)
		}
		if tx.Get(topology.KindPort, peerID) == nil {
			return &topology.FieldError{Field: "peer_id", Reason: fmt.Sprintf("port %s does not exist", peerID)}
		}
		if p.PeerID != "" {
			return &topology.ConflictError{Field: "peer_id", Reason: fmt.Sprintf("port %s is already linked to port %s", portID, p.PeerID)}
		}
		p.PeerID = peerID
		_, err := tx.Update(p) // links the peer back, after checking it
		return err
	})
	return err
}

// Unlink unlinks a port and its peer.
func (s *Store) Unlink(ctx context.Context, portID string) error {
	_, _, err := s.txn(ctx, func(tx *Tx) error {
		p, _ := tx.Get(topology.KindPort, portID).(*topology.Port)
		if p == nil {
			return fmt.Errorf("port %s: %w", portID, ErrNotFound)
		}
		if p.PeerID == "" {
			return &topology.ConflictError{Field: "peer_id", Reason: fmt.Sprintf("port %s is not linked", portID)}
		}
		p.PeerID = ""
		_, err := tx.Update(p) // unlinks the peer too
		return err
	})
	return err
}

// WaitUntil blocks until cond holds on the cached topology (another
// process's write arriving, say) or ctx ends. cond runs under the cache's
// read lock after every change: like Read's f, it must not keep or modify
// what it reads.
func (s *Store) WaitUntil(ctx context.Context, cond func(r topology.Reader) bool) error {
	return s.cache.waitFor(ctx, func() bool { return cond(s.cache.idx) })
}
