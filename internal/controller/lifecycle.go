package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Retention of what AWS keeps visible for about an hour after it is gone.
const (
	// TerminatedRetention is how long a terminated instance stays visible
	// in DescribeInstances (as terminated) before it is removed.
	TerminatedRetention = time.Hour
	// NatDeletedRetention is how long a deleted NAT gateway stays visible
	// (as deleted) before it is removed.
	NatDeletedRetention = time.Hour
)

// recoveredReason is the state reason of an instance restarted on another
// host because its host died.
const recoveredReason = "Server.InternalError: the instance's host failed; it was recovered on another host"

// LifecycleConfig configures the life cycle reconcilers.
type LifecycleConfig struct {
	// Recovery restarts an instance whose host's agent is no longer alive
	// on another alive host of its zone (EC2's auto-recovery), unless the
	// instance opted out (AutoRecovery=disabled).
	Recovery bool
	// TerminatedRetention and NatDeletedRetention default to the
	// constants of the same names.
	TerminatedRetention time.Duration
	NatDeletedRetention time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Lead, when set, is the leadership the controller runs under: every
	// transition commits only while its term goes on, so a leader that
	// lost its term unnoticed writes nothing (nsdb.VPCStore.UpdateAs).
	Lead *nsdb.Leadership
}

// lifecycle moves instances and NAT gateways along their life cycles
// (DESIGN.md §6). API handlers only record intent (launch, stop, start,
// terminate, create, delete); this is the one writer of every transition
// that follows from what the cloud did, and it runs in the controller under
// its leader lease, so with several servers exactly one process makes them.
//
// Instances, from what the agents report (the agent of an instance's host
// writes its instance report, bound to the host's lease, once the instance
// is up and deletes it once it is torn down; the report vanishes with the
// lease when the host dies) and from which hosts are alive:
//
//	pending       → running     when the report says running on the instance's host
//	shutting-down → terminated  when the report is gone (interfaces with
//	                            DeleteOnTermination deleted, the others
//	                            detached, auto-assigned public IPs released)
//	stopping      → stopped     when the report is gone
//	terminated    → (removed)   TerminatedRetention after it terminated
//	pending|running on a dead host → pending on another alive host of its
//	                            zone, with recovery on (same id, interfaces,
//	                            addresses and metadata: only HostID changes,
//	                            the translator rebinds its ports there)
//
// NAT gateways, from the controller's progress (a gateway is realized once
// the applied watermark covers its last write):
//
//	pending  → available  when the topology realizes it
//	deleting → deleted    when the topology no longer holds it; its interface
//	                      is deleted and its elastic IP disassociated
//	deleted  → (removed)  NatDeletedRetention after it was deleted
//
// Every round is one VPC store Update, guarded by vpc-seq like any EC2
// write and by the leader's term: it computes transitions from the latest
// state, so a transition happens once even when a round races an API call,
// and a leader whose term ended cannot commit one.
type lifecycle struct {
	c   *Controller
	vs  *nsdb.VPCStore
	cfg LifecycleConfig

	mu         sync.Mutex
	reports    map[string]vpc.InstanceReport // by instance id; nil until listed
	alive      map[string]bool               // nil until listed
	wake       chan struct{}
	recoveries int64
}

// WithLifecycle makes the controller also run the instance and NAT gateway
// life cycles (lifecycle above) over vs, which must follow the same store.
// Call it before Start.
func (c *Controller) WithLifecycle(vs *nsdb.VPCStore, cfg LifecycleConfig) *Controller {
	if cfg.TerminatedRetention <= 0 {
		cfg.TerminatedRetention = TerminatedRetention
	}
	if cfg.NatDeletedRetention <= 0 {
		cfg.NatDeletedRetention = NatDeletedRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c.life = &lifecycle{c: c, vs: vs, cfg: cfg, wake: make(chan struct{}, 1)}
	return c
}

// Recoveries counts the instances this controller restarted on another
// host since it started.
func (c *Controller) Recoveries() int64 {
	if c.life == nil {
		return 0
	}
	c.life.mu.Lock()
	defer c.life.mu.Unlock()
	return c.life.recoveries
}

func (l *lifecycle) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run is the life cycle's loop: fed by watches of the agents' reports, of
// host liveness and of the instance and NAT gateway objects, by the
// controller's progress, and by a timer for the removals.
func (l *lifecycle) run(ctx context.Context) {
	st := l.c.store
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		_ = st.WatchInstanceReports(ctx, func(r map[string]vpc.InstanceReport) {
			l.mu.Lock()
			l.reports = r
			l.mu.Unlock()
			l.kick()
		})
	})
	wg.Go(func() {
		_ = st.WatchAliveHosts(ctx, func(alive map[string]bool) {
			l.mu.Lock()
			l.alive = alive
			l.mu.Unlock()
			l.kick()
		})
	})
	for _, coll := range []string{"instances", "nat_gateways"} {
		wg.Go(func() { _ = st.WatchVPCCollection(ctx, coll, l.kick) })
	}
	l.c.log.Info("life cycle started", "instance_recovery", l.cfg.Recovery)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	backoff := minBackoff
	for {
		l.c.mu.Lock()
		progressed := l.c.changed
		l.c.mu.Unlock()
		wait := time.Hour
		next, err := l.settle(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			l.c.log.Warn("life cycle round failed; retrying", "err", err, "retry_in", backoff)
			wait, backoff = backoff, min(2*backoff, maxBackoff)
		case !next.IsZero():
			backoff = minBackoff
			wait = max(next.Sub(l.cfg.Now()), 10*time.Millisecond)
		default:
			backoff = minBackoff
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-progressed:
		case <-timer.C:
		}
	}
}

// settle applies every transition due now and returns when the next
// removal is due (zero if none).
func (l *lifecycle) settle(ctx context.Context) (time.Time, error) {
	l.mu.Lock()
	reports, alive := l.reports, l.alive
	l.mu.Unlock()
	if reports == nil || alive == nil {
		return time.Time{}, nil // not listed yet: a missing report would read as torn down
	}
	// The mirror must hold every change committed so far (the watch that
	// woke us may be ahead of it).
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := l.vs.Sync(sctx)
	cancel()
	if err != nil {
		return time.Time{}, err
	}
	realized, err := l.realizedNats(ctx)
	if err != nil {
		return time.Time{}, err
	}
	hosts := l.c.store.HostCandidates(alive)
	var next time.Time
	var recovered []string
	update := l.vs.Update
	if l.cfg.Lead != nil {
		update = func(ctx context.Context, f func(*vpc.State, *nsdb.VPCTx) error) (int64, error) {
			return l.vs.UpdateAs(ctx, l.cfg.Lead, f)
		}
	}
	_, err = update(ctx, func(st *vpc.State, tx *nsdb.VPCTx) error {
		next, recovered = time.Time{}, recovered[:0]
		now := l.cfg.Now().UTC()
		due := func(t time.Time) {
			if next.IsZero() || t.Before(next) {
				next = t
			}
		}
		var load map[string]int
		for _, i := range st.SortedInstances() {
			rep, reported := reports[i.ID]
			switch {
			case i.Placed() && !alive[i.HostID] && i.Recoverable(l.cfg.Recovery):
				if load == nil {
					load = vpc.HostLoad(st)
				}
				host, ok := vpc.PickHost(hosts, load, i.AvailabilityZone)
				if !ok {
					continue // impaired until a host of its zone is alive
				}
				load[host]++
				load[i.HostID]--
				from := i.HostID
				i = clone(i)
				i.State, i.HostID, i.StateReason = vpc.InstancePending, host, recoveredReason
				i.Recoveries++
				if err := tx.Put(i.ID, i); err != nil {
					return err
				}
				recovered = append(recovered, i.ID+" "+from+"→"+host)
			case i.State == vpc.InstancePending && reported && rep.State == vpc.InstanceRunning && rep.HostID == i.HostID:
				i = clone(i)
				i.State, i.StateReason = vpc.InstanceRunning, ""
				if err := tx.Put(i.ID, i); err != nil {
					return err
				}
			case i.State == vpc.InstanceStopping && !reported:
				i = clone(i)
				i.State, i.HostID = vpc.InstanceStopped, ""
				i.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
				if err := tx.Put(i.ID, i); err != nil {
					return err
				}
			case i.State == vpc.InstanceShuttingDown && !reported:
				if err := terminate(st, tx, i, now); err != nil {
					return err
				}
			case i.State == vpc.InstanceTerminated:
				if t := i.TerminateTime.Add(l.cfg.TerminatedRetention); t.After(now) {
					due(t)
				} else if err := tx.Delete("instances", i.ID); err != nil {
					return err
				}
			}
		}
		for _, n := range st.NatGateways {
			switch {
			case n.State == vpc.StatePending && realized[n.ID]:
				n = clone(n)
				n.State = vpc.StateAvailable
				if err := tx.Put(n.ID, n); err != nil {
					return err
				}
			case n.State == vpc.StateDeleting && realized[n.ID]:
				if err := deleteNat(st, tx, n, now); err != nil {
					return err
				}
			case n.State == vpc.StateDeleted:
				if t := n.DeleteTime.Add(l.cfg.NatDeletedRetention); t.After(now) {
					due(t)
				} else if err := tx.Delete("nat_gateways", n.ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil && len(recovered) > 0 {
		l.mu.Lock()
		l.recoveries += int64(len(recovered))
		l.mu.Unlock()
		for _, r := range recovered {
			l.c.log.Info("instance recovered on another host", "instance", r)
		}
	}
	return next, err
}

// realizedNats returns the NAT gateways in transition (pending, deleting)
// whose last write the topology realizes: the controller's applied
// watermark covers its revision.
func (l *lifecycle) realizedNats(ctx context.Context) (map[string]bool, error) {
	var ids []string
	l.vs.Read(func(st *vpc.State) {
		for _, n := range st.NatGateways {
			if n.State == vpc.StatePending || n.State == vpc.StateDeleting {
				ids = append(ids, n.ID)
			}
		}
	})
	applied := l.c.Applied().VPCRevision
	out := map[string]bool{}
	if len(ids) == 0 || applied == 0 {
		return out, nil
	}
	for _, id := range ids {
		rev, found, err := l.c.store.VPCObjectRevision(ctx, "nat_gateways", id)
		if err != nil {
			return nil, fmt.Errorf("NAT gateway %s: %w", id, err)
		}
		out[id] = found && rev <= applied
	}
	return out, nil
}

// terminate finishes an instance's termination in tx: its interfaces with
// DeleteOnTermination go (with their auto-assigned public addresses;
// elastic IPs are disassociated), the others are detached, and its private
// addresses are free again.
func terminate(st *vpc.State, tx *nsdb.VPCTx, i *vpc.Instance, now time.Time) error {
	for _, e := range st.InstanceInterfaces(i.ID) {
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

// deleteNat finishes a NAT gateway's deletion in tx: its elastic IP is
// disassociated and its interface deleted.
func deleteNat(st *vpc.State, tx *nsdb.VPCTx, n *vpc.NatGateway, now time.Time) error {
	if a := st.Addresses[n.AllocationID]; a != nil && a.NetworkInterfaceID == n.NetworkInterfaceID {
		a = clone(a)
		a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress = "", "", netip.Addr{}
		if err := tx.Put(a.AllocationID, a); err != nil {
			return err
		}
	}
	if st.NetworkInterfaces[n.NetworkInterfaceID] != nil {
		if err := tx.Delete("network_interfaces", n.NetworkInterfaceID); err != nil {
			return err
		}
	}
	n = clone(n)
	n.State, n.DeleteTime = vpc.StateDeleted, now.Truncate(time.Second)
	return tx.Put(n.ID, n)
}

// clone deep-copies a VPC object (objects in the store's mirror are
// replaced, never modified).
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("controller: clone %T: %v", v, err))
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("controller: clone %T: %v", v, err))
	}
	return out
}
