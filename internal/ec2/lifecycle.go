package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TerminatedRetention is how long a terminated instance stays visible in
// DescribeInstances (as terminated) before it is removed; AWS keeps them
// for about an hour.
const TerminatedRetention = time.Hour

// lifecycle moves instances along their life cycle from what the agents
// report (DESIGN.md §6, issue 6 contract item 4): the agent of an
// instance's host writes its instance state key (nsdb.PutInstanceState,
// under that host's own state keys) once the instance is up and
// deletes it once it is torn down; the key is bound to the host's lease,
// so it also vanishes when the host dies. From that:
//
//	pending       → running     when the key says running on the instance's host
//	shutting-down → terminated  when the key is gone (interfaces with
//	                            DeleteOnTermination deleted, the others
//	                            detached, auto-assigned public IPs released)
//	stopping      → stopped     when the key is gone
//	terminated    → (removed)   TerminatedRetention after it terminated
//
// One loop owns this; it is fed by two watches (the agents' state keys and
// the instance objects) and a timer for the removals. Every transition is
// an Update guarded like any EC2 write, so several servers running the
// loop at once agree: the second finds nothing left to do.
type lifecycle struct {
	mu      sync.Mutex
	reports map[string]vpc.InstanceReport // by instance id
	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// kick wakes the loop (a no-op before Start).
func (l *lifecycle) kick() {
	if l.wake == nil {
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Start runs the instance life cycle loop until Stop or ctx ends. Without
// it instances stay pending (or shutting-down, or stopping).
func (s *Server) Start(ctx context.Context) error {
	l := &s.life
	if l.cancel != nil {
		return errors.New("ec2: already started")
	}
	ctx, l.cancel = context.WithCancel(ctx)
	l.reports = map[string]vpc.InstanceReport{}
	l.wake = make(chan struct{}, 1)
	st := s.store.Store()
	put := func(kv nsdb.KV) {
		host, kind, id, ok := st.HostStateKey(kv.Key)
		if !ok || kind != "instance" {
			return
		}
		var r vpc.InstanceReport
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			s.log.Warn("ec2: undecodable instance state ignored", "key", kv.Key, "err", err)
			return
		}
		// The key says which host reports: an agent may write only its
		// own host's keys, so it cannot speak for another host.
		r.HostID = host
		l.reports[id] = r
	}
	reports := nsdb.Handler{
		Reset: func(kvs []nsdb.KV, _ int64) {
			l.mu.Lock()
			clear(l.reports)
			for _, kv := range kvs {
				put(kv)
			}
			l.mu.Unlock()
			l.kick()
		},
		Events: func(evs []nsdb.Event, _ int64) {
			l.mu.Lock()
			for _, e := range evs {
				if e.Delete {
					if _, kind, id, ok := st.HostStateKey(e.KV.Key); ok && kind == "instance" {
						delete(l.reports, id)
					}
				} else {
					put(e.KV)
				}
			}
			l.mu.Unlock()
			l.kick()
		},
	}
	// Instance objects changing (launched, stopped, terminated — by this
	// server or another) may need a transition too.
	objects := nsdb.Handler{
		Reset:  func([]nsdb.KV, int64) { l.kick() },
		Events: func([]nsdb.Event, int64) { l.kick() },
	}
	l.wg.Add(3)
	go func() { defer l.wg.Done(); _ = st.Watch(ctx, nsdb.HostStatesRel, reports) }()
	go func() { defer l.wg.Done(); _ = st.Watch(ctx, nsdb.VPCPrefix+"instances/", objects) }()
	go func() { defer l.wg.Done(); s.lifecycleLoop(ctx) }()
	s.log.Info("instance life cycle started", "terminated_retention", s.cfg.TerminatedRetention)
	return nil
}

// Stop stops the life cycle loop and waits for it.
func (s *Server) Stop() {
	if s.life.cancel != nil {
		s.life.cancel()
		s.life.wg.Wait()
	}
}

func (s *Server) lifecycleLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	backoff := 50 * time.Millisecond
	for {
		next, err := s.settleInstances(ctx)
		wait := time.Hour
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("ec2: instance life cycle round failed; retrying", "err", err)
			wait, backoff = backoff, min(2*backoff, 5*time.Second)
		} else {
			backoff = 50 * time.Millisecond
			if !next.IsZero() {
				wait = max(time.Until(next), 10*time.Millisecond)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.life.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// settleInstances applies every transition due now and returns when the
// next removal of a terminated instance is due (zero if none).
func (s *Server) settleInstances(ctx context.Context) (time.Time, error) {
	// The mirror must hold every instance change committed so far (the
	// watch that woke us may be ahead of it).
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := s.store.Sync(sctx)
	cancel()
	if err != nil {
		return time.Time{}, err
	}
	s.life.mu.Lock()
	reports := make(map[string]vpc.InstanceReport, len(s.life.reports))
	for k, v := range s.life.reports {
		reports[k] = v
	}
	s.life.mu.Unlock()
	var next time.Time
	_, err = s.store.Update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		next = time.Time{}
		now := s.now().UTC()
		for _, i := range sortedInstances(st) {
			rep, reported := reports[i.ID]
			switch {
			case i.State == vpc.InstancePending && reported && rep.State == vpc.InstanceRunning && rep.HostID == i.HostID:
				i = clone(i)
				i.State, i.StateReason = vpc.InstanceRunning, ""
				if err := tx.Put(i.ID, i); err != nil {
					return err
				}
				s.log.Debug("instance running", "instance_id", i.ID, "host_id", i.HostID)
			case i.State == vpc.InstanceStopping && !reported:
				i = clone(i)
				i.State, i.HostID = vpc.InstanceStopped, ""
				i.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
				if err := tx.Put(i.ID, i); err != nil {
					return err
				}
				s.log.Debug("instance stopped", "instance_id", i.ID)
			case i.State == vpc.InstanceShuttingDown && !reported:
				if err := terminate(st, tx, i, now); err != nil {
					return err
				}
				s.log.Debug("instance terminated", "instance_id", i.ID)
			case i.State == vpc.InstanceTerminated:
				due := i.TerminateTime.Add(s.cfg.TerminatedRetention)
				if !due.After(now) {
					if err := tx.Delete("instances", i.ID); err != nil {
						return err
					}
				} else if next.IsZero() || due.Before(next) {
					next = due
				}
			}
		}
		return nil
	})
	return next, err
}

func sortedInstances(st *vpc.State) []*vpc.Instance {
	out := make([]*vpc.Instance, 0, len(st.Instances))
	for _, i := range st.Instances {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b *vpc.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// terminate finishes an instance's termination in tx: its interfaces with
// DeleteOnTermination go (with their auto-assigned public addresses;
// elastic IPs are disassociated), the others are detached, and its private
// addresses are free again.
func terminate(st *vpc.State, tx *nsdb.VPCTx, i *vpc.Instance, now time.Time) error {
	for _, e := range instanceInterfaces(st, i.ID) {
		del := e.Attachment.DeleteOnTermination
		for _, a := range st.AddressesOfInterface(e.ID) {
			if a.AutoAssigned {
				if err := tx.Delete("addresses", a.AllocationID); err != nil {
					return err
				}
				continue
			}
			if del || a.InstanceID != "" {
				a = clone(a)
				if del {
					a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress = "", "", netip.Addr{}
				}
				a.InstanceID = ""
				if err := tx.Put(a.AllocationID, a); err != nil {
					return err
				}
			}
		}
		if del {
			if err := tx.Delete("network_interfaces", e.ID); err != nil {
				return err
			}
			continue
		}
		e = clone(e)
		e.Attachment, e.Status = nil, vpc.StateAvailable
		if err := tx.Put(e.ID, e); err != nil {
			return err
		}
	}
	i = clone(i)
	i.State, i.HostID, i.TerminateTime = vpc.InstanceTerminated, "", now.Truncate(time.Second)
	return tx.Put(i.ID, i)
}
