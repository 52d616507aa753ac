package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// Applied is the controller's progress (nsdb.Applied: the record is the
// store's).
type Applied = nsdb.Applied

// Stats counts what the controller did since it started.
type Stats struct {
	Rounds  int64 // reconcile rounds that completed (full or incremental)
	Resyncs int64 // full resyncs that completed
	Errors  int64 // rounds that failed (each is retried with a full resync)
	// Translated counts partitions translated (a VPC, or the cloud's edge):
	// a change to one VPC translates one partition, a full resync all.
	Translated int64
	Txns       int64 // store transactions committed
	Creates    int64 // objects created
	Updates    int64 // objects updated
	Deletes    int64 // objects deleted (asked for; cascades not counted)
	// Refused counts writes the controller declined because they would
	// have touched an object it does not own (an operator's object in the
	// way of a create, or in a delete's cascade) or that the store rejected.
	Refused int64
	// Skipped is how many VPC objects the last translations could not
	// realize (translate.Skip), summed over the partitions.
	Skipped int
}

// ErrStopped is returned by WaitApplied once the controller has stopped.
var ErrStopped = errors.New("controller stopped")

// defaultChunk bounds the objects written in one store transaction: a full
// resync of a large cloud is split, at partition boundaries where it can
// be, so no transaction holds the store's cache for long.
const defaultChunk = 500

// Backoff after a failed round.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Controller keeps the topology in step with the VPC objects (DESIGN.md §6).
// One writer loop owns its state; watchers feed it events.
type Controller struct {
	store *nsdb.Store
	cloud translate.CloudConfig
	log   *slog.Logger

	q queue

	// txn commits a change set; tests wrap it to inject store failures.
	txn   func(ctx context.Context, f func(tx *nsdb.Tx) error) (int64, error)
	chunk int

	mu      sync.Mutex // guards what other goroutines read: below
	applied Applied
	changed chan struct{} // closed and replaced when applied moves or the controller stops
	stats   Stats
	// gateways: how the cloud config's gateways resolved to hosts.
	gateways []translate.GatewayStatus
	started  bool
	stopped  bool
	status   chan struct{} // wakes the status writer (capacity 1)

	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by the writer loop.
	m           *mirror
	vpcReady    bool
	full        bool
	dirty       idset
	parts       map[string]*partition
	present     map[string]map[topology.ObjectKey]struct{} // owned objects in the store, by partition
	presentPart map[topology.ObjectKey]string
	wantedBy    map[topology.ObjectKey]string // desired key → partition
	ownRevs     map[int64]bool                // revisions of this controller's commits not yet seen by its topology watch
	topoGen     int
	topoSeen    int64 // revision of the last topology change by someone else
	topoCancel  context.CancelFunc
	learned     map[string][]translate.LearnedRoute // host id → routes its BGP speaker learned (bgp.go)

	life *lifecycle // instance and NAT gateway life cycles (WithLifecycle), nil if not asked for
}

// New returns a controller that realizes the VPC objects in store as
// topology objects for a cloud configured by cloud. It does nothing until
// Start.
func New(store *nsdb.Store, cloud translate.CloudConfig, logger *slog.Logger) *Controller {
	if logger == nil {
		logger = slog.Default()
	}
	c := &Controller{
		store: store, cloud: cloud, log: logger.With("component", "controller"),
		q:     queue{wake: make(chan struct{}, 1)},
		chunk: defaultChunk, changed: make(chan struct{}), status: make(chan struct{}, 1),
		m: newMirror(), dirty: idset{}, parts: map[string]*partition{},
		present: map[string]map[topology.ObjectKey]struct{}{}, presentPart: map[topology.ObjectKey]string{},
		wantedBy: map[topology.ObjectKey]string{}, ownRevs: map[int64]bool{},
		learned: map[string][]translate.LearnedRoute{},
	}
	c.txn = store.Txn
	return c
}

// Start starts the watchers, the writer loop and the status writer. They
// run until Stop or until ctx is done. A controller starts once.
func (c *Controller) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("controller: already started")
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Add(3)
	go func() {
		defer c.wg.Done()
		c.watchVPC(ctx)
	}()
	go func() {
		defer c.wg.Done()
		c.run(ctx)
	}()
	go func() {
		defer c.wg.Done()
		c.writeStatus(ctx)
	}()
	// Hosts register through what their agents announce (hosts.go).
	c.wg.Go(func() { NewHosts(c.store, c.log).Run(ctx) })
	c.wg.Go(func() { c.watchBGP(ctx) }) // learned routes (bgp.go)
	if c.life != nil {
		c.wg.Go(func() { c.life.run(ctx) })
	}
	c.log.Info("controller started")
	return nil
}

// Stop stops every goroutine of the controller and waits for them.
func (c *Controller) Stop() {
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.wg.Wait()
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
	c.log.Info("controller stopped")
}

// Applied returns the progress so far.
func (c *Controller) Applied() Applied {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

// Stats returns the counters.
func (c *Controller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// WaitApplied waits until the VPC objects as of revision vpcRev are
// realized, and returns the topology revision that realizes them. vpcRev is
// the revision a VPC write committed at (what nsdb.VPCStore.Update
// returns): the controller's watermark advances with the VPC writes it
// sees, so a revision no VPC write reaches waits for the next VPC write or
// for ctx.
func (c *Controller) WaitApplied(ctx context.Context, vpcRev int64) (int64, error) {
	for {
		c.mu.Lock()
		a, ch, stopped := c.applied, c.changed, c.stopped
		c.mu.Unlock()
		if a.VPCRevision >= vpcRev && a.VPCRevision > 0 {
			return a.TopologyRevision, nil
		}
		if stopped {
			return 0, ErrStopped
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (c *Controller) count(f func(s *Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// publish records progress, wakes WaitApplied callers and the status writer.
func (c *Controller) publish(a Applied) {
	c.mu.Lock()
	if a == c.applied {
		c.mu.Unlock()
		return
	}
	c.applied = a
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	c.wakeStatus()
}

func (c *Controller) wakeStatus() {
	select {
	case c.status <- struct{}{}:
	default:
	}
}

// run is the writer loop: it drains every pending event, then acts once, so
// a burst of events costs one round and a lone event is acted on at once.
func (c *Controller) run(ctx context.Context) {
	defer func() {
		if c.topoCancel != nil {
			c.topoCancel()
		}
	}()
	c.full = true // at start
	backoff := time.Duration(0)
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.q.wake:
		case <-retry:
			retry = nil
		}
		for _, e := range c.q.drain() {
			c.handle(e)
		}
		if !c.vpcReady || retry != nil {
			continue
		}
		if !c.full && len(c.dirty) == 0 && c.m.rev <= c.Applied().VPCRevision {
			continue
		}
		vrev := c.m.rev
		if err := c.reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			c.count(func(s *Stats) { s.Errors++ })
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			c.log.Warn("reconcile failed, resyncing", "err", err, "retry_in", backoff)
			c.full = true
			retry = time.After(backoff)
			continue
		}
		backoff = 0
		c.count(func(s *Stats) { s.Rounds++ })
		c.publish(Applied{VPCRevision: vrev, TopologyRevision: c.store.Revision()})
	}
}

// queue hands events from the watchers to the loop without ever blocking
// a watcher.
type queue struct {
	mu    sync.Mutex
	items []event
	wake  chan struct{}
}

func (q *queue) push(e event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) drain() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
