package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/google/uuid"
)

// Hosts is the host registrar: it makes each host's Host object and its
// tunnel-zone membership from what the host's agent announces under its own
// state keys (nsdb.HostInfo). The announced name names only a host made
// here, and only when no other host has it; an existing host's name is the
// operator's. Agents may not write topology (their etcd
// role forbids it), so this is how a host registers. It only creates and
// updates: a host whose agent is gone keeps its Host object (not alive), as
// an operator expects, until the operator deletes it.
//
// One writer loop owns it; a watch on the host state keys feeds it. The
// controller runs it under its leader lease.
type Hosts struct {
	store *nsdb.Store
	log   *slog.Logger

	mu    sync.Mutex
	infos map[string]nsdb.HostInfo // host id → latest announcement
	dirty map[string]bool          // hosts to (re)apply
	wake  chan struct{}
}

// NewHosts returns a registrar on store; RunHosts runs it.
func NewHosts(store *nsdb.Store, log *slog.Logger) *Hosts {
	if log == nil {
		log = slog.Default()
	}
	return &Hosts{store: store, log: log,
		infos: map[string]nsdb.HostInfo{}, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Run registers hosts until ctx ends.
func (h *Hosts) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { _ = h.store.WatchHostStates(ctx, h.handler()) })
	defer wg.Wait()
	backoff := minBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		if err := h.applyDirty(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("registering hosts", "err", err)
			h.kick()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
	}
}

func (h *Hosts) kick() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// handler keeps infos in step with the info keys.
func (h *Hosts) handler() nsdb.Handler {
	put := func(kv nsdb.KV) {
		id, kind, _, ok := h.store.HostStateKey(kv.Key)
		if !ok || kind != "info" {
			return
		}
		info, err := nsdb.DecodeHostInfo(kv.Value)
		if err != nil {
			h.log.Warn("undecodable host info ignored", "host_id", id, "err", err)
			return
		}
		h.infos[id], h.dirty[id] = info, true
	}
	return nsdb.Handler{
		Reset: func(kvs []nsdb.KV, _ int64) {
			h.mu.Lock()
			clear(h.infos)
			for _, kv := range kvs {
				put(kv)
			}
			h.mu.Unlock()
			h.kick()
		},
		Events: func(evs []nsdb.Event, _ int64) {
			h.mu.Lock()
			for _, e := range evs {
				if e.Delete {
					if id, kind, _, ok := h.store.HostStateKey(e.KV.Key); ok && kind == "info" {
						delete(h.infos, id)
					}
					continue
				}
				put(e.KV)
			}
			h.mu.Unlock()
			h.kick()
		},
	}
}

// applyDirty applies every announcement not applied yet.
func (h *Hosts) applyDirty(ctx context.Context) error {
	h.mu.Lock()
	ids := slices.Sorted(maps.Keys(h.dirty))
	h.mu.Unlock()
	var errs []error
	for _, id := range ids {
		h.mu.Lock()
		info, ok := h.infos[id]
		delete(h.dirty, id)
		h.mu.Unlock()
		if !ok {
			continue
		}
		err := h.apply(ctx, id, info)
		if fe := (*topology.FieldError)(nil); errors.As(err, &fe) {
			// What the agent announced cannot be stored (say, a tunnel
			// address another member has): retrying will not help, its
			// next announcement may.
			h.log.Warn("host announcement refused", "host_id", id, "name", info.Name, "err", err)
			continue
		}
		if err != nil {
			h.mu.Lock()
			if _, newer := h.dirty[id]; !newer {
				h.dirty[id] = true
			}
			h.mu.Unlock()
			errs = append(errs, fmt.Errorf("host %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// apply makes host id's Host object and tunnel-zone membership what info
// says, retrying when another writer got in between.
func (h *Hosts) apply(ctx context.Context, id string, info nsdb.HostInfo) error {
	for attempt := 0; ; attempt++ {
		err := h.applyHost(ctx, id, info)
		if err == nil && info.TunnelZone != "" {
			err = h.applyZone(ctx, id, info)
		}
		if err == nil || !errors.Is(err, nsdb.ErrConflict) || attempt > 20 {
			return err
		}
		_ = h.store.Sync(ctx)
	}
}

func (h *Hosts) applyHost(ctx context.Context, id string, info nsdb.HostInfo) error {
	o, err := h.store.Get(ctx, topology.KindHost, id)
	if errors.Is(err, nsdb.ErrNotFound) {
		// A host's name is how an operator (and the cloud config's
		// gateways) names it: an agent may not take one another host has.
		hs, err := h.store.List(ctx, topology.KindHost)
		if err != nil {
			return err
		}
		for _, o := range hs {
			if o.GetMeta().Name == info.Name {
				return &topology.FieldError{Field: "name", Reason: fmt.Sprintf("host %s already has the name %q", o.GetMeta().ID, info.Name)}
			}
		}
		host := &topology.Host{Meta: topology.Meta{ID: id, Name: info.Name}, Interfaces: info.Interfaces}
		setZone(host, info.AvailabilityZone)
		if _, err := h.store.Create(ctx, host); err != nil {
			return err
		}
		h.log.Info("host registered", "host_id", id, "name", info.Name)
		return nil
	}
	if err != nil {
		return err
	}
	host := o.(*topology.Host)
	want := topology.Clone(host).(*topology.Host)
	// The name stays the operator's (canopy host enroll NAME, the REST
	// API): an agent names only a host it registers first.
	want.Interfaces = info.Interfaces
	setZone(want, info.AvailabilityZone)
	if reflect.DeepEqual(host, want) {
		return nil
	}
	_, err = h.store.Update(ctx, want)
	return err
}

// setZone labels h with the availability zone its agent serves, or removes
// the label: the agent's flag is the truth, so a host moved between zones
// follows.
func setZone(h *topology.Host, zone string) {
	if zone == "" {
		delete(h.Labels, topology.LabelZone)
		if len(h.Labels) == 0 {
			h.Labels = nil
		}
		return
	}
	if h.Labels == nil {
		h.Labels = map[string]string{}
	}
	h.Labels[topology.LabelZone] = zone
}

// zoneNamespace is the UUID namespace of the tunnel zones made for agents:
// the id derives from the name, so a zone is made once whoever asks first.
var zoneNamespace = uuid.MustParse("6f1c3c2e-5b0e-4d7a-9a51-3c1b2f8e7d40")

// applyZone adds the host to its tunnel zone (made if absent) at its
// tunnel address, or moves its address there.
func (h *Hosts) applyZone(ctx context.Context, id string, info nsdb.HostInfo) error {
	var zone *topology.TunnelZone
	zs, err := h.store.List(ctx, topology.KindTunnelZone)
	if err != nil {
		return err
	}
	for _, o := range zs {
		if z := o.(*topology.TunnelZone); z.Name == info.TunnelZone || z.ID == info.TunnelZone {
			zone = z
			break
		}
	}
	member := topology.TunnelZoneMember{HostID: id, Address: info.TunnelIP}
	if zone == nil {
		z := &topology.TunnelZone{Meta: topology.Meta{ID: uuid.NewSHA1(zoneNamespace, []byte(info.TunnelZone)).String(), Name: info.TunnelZone},
			Type: topology.TunnelVXLAN, Members: []topology.TunnelZoneMember{member}}
		_, err = h.store.Create(ctx, z)
	} else {
		i := zone.MemberIndex(id)
		if i >= 0 && zone.Members[i] == member {
			return nil
		}
		if i >= 0 {
			zone.Members[i] = member
		} else {
			zone.Members = append(zone.Members, member)
		}
		_, err = h.store.Update(ctx, zone)
	}
	if err == nil {
		h.log.Info("host joined tunnel zone", "host_id", id, "zone", info.TunnelZone, "address", info.TunnelIP)
	}
	return err
}
