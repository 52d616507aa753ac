package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A gateway host's BGP speaker publishes what it learned from its peers and
// how its sessions stand under its own host's keys, bound to its liveness
// lease (a dead gateway's routes vanish with it):
//
//	state/hosts/<host>/bgp/routes   JSON []BGPRoute: the routes learned
//	state/hosts/<host>/bgp/status   JSON GatewayStatus
//
// An agent writes no topology object: the controller, under its leader
// lease, turns every host's learned routes into Route objects on the edge
// router (learned = true), which every agent's simulation then reads like
// any other route.

const (
	bgpRoutesLeaf  = "bgp/routes"
	bgpStatusLeaf  = "bgp/status"
	maxBGPRouteLen = 4096 // learned routes one host may publish
)

// BGPRoute is one route a gateway's speaker learned: Prefix via NextHop
// (the peer's address on the uplink's network, or a third party on it),
// from Peer.
type BGPRoute struct {
	Prefix  netip.Prefix `json:"prefix"`
	NextHop netip.Addr   `json:"next_hop"`
	Peer    netip.Addr   `json:"peer,omitzero"`
}

// GatewayStatus is what a gateway host reports about its speaker.
type GatewayStatus struct {
	ASN             uint32         `json:"asn"`
	RouterID        netip.Addr     `json:"router_id,omitzero"`
	Sessions        []BGPSession   `json:"sessions"`
	Advertised      []netip.Prefix `json:"advertised"` // the first of them, at most a few hundred
	AdvertisedCount int            `json:"advertised_count"`
	Uplinks         []UplinkStatus `json:"uplinks"`
	Learned         int            `json:"learned"` // routes learned (published under bgp/routes)
	// Drained: the operator drained the host; it advertises nothing and
	// publishes no learned route.
	Drained bool `json:"drained,omitempty"`
}

// BGPSession is one peer's session as the speaker sees it.
type BGPSession struct {
	Peer     netip.Addr `json:"peer"`
	PeerASN  uint32     `json:"peer_asn"`
	Local    netip.Addr `json:"local,omitzero"`
	State    string     `json:"state"` // idle, connect, active, opensent, openconfirm, established
	BFD      string     `json:"bfd,omitempty"`
	Received int        `json:"received"`        // prefixes received
	Since    string     `json:"since,omitempty"` // RFC 3339: when the session reached its state
}

// UplinkStatus is one edge uplink bound on the host.
type UplinkStatus struct {
	Port      string       `json:"port_id"`
	Interface string       `json:"interface"`
	Address   netip.Prefix `json:"address"`
	Up        bool         `json:"up"`
}

func (s *Store) bgpKey(hostID, leaf string) (string, error) {
	if hostID == "" || checkID(hostID) != nil {
		return "", &topology.FieldError{Field: "host_id", Reason: "is not a valid id"}
	}
	return s.prefix + hostStateRel(hostID) + leaf, nil
}

// PutBGPRoutes publishes the routes hostID's speaker learned, bound to
// lease; an empty list withdraws them all.
func (s *Store) PutBGPRoutes(ctx context.Context, hostID string, routes []BGPRoute, lease *Lease) error {
	if len(routes) > maxBGPRouteLen {
		return &topology.FieldError{Field: "routes", Reason: fmt.Sprintf("%d learned routes; a host publishes at most %d", len(routes), maxBGPRouteLen)}
	}
	k, err := s.bgpKey(hostID, bgpRoutesLeaf)
	if err != nil {
		return err
	}
	if len(routes) == 0 {
		if _, err := s.cli.Delete(ctx, k); err != nil {
			return fmt.Errorf("host %s learned routes: %w", hostID, err)
		}
		return nil
	}
	return s.putHostJSON(ctx, k, routes, lease)
}

// PutGatewayStatus publishes hostID's speaker status, bound to lease.
func (s *Store) PutGatewayStatus(ctx context.Context, hostID string, st GatewayStatus, lease *Lease) error {
	k, err := s.bgpKey(hostID, bgpStatusLeaf)
	if err != nil {
		return err
	}
	return s.putHostJSON(ctx, k, st, lease)
}

func (s *Store) putHostJSON(ctx context.Context, k string, v any, lease *Lease) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var opts []clientv3.OpOption
	if lease != nil {
		opts = append(opts, clientv3.WithLease(lease.id))
	}
	if _, err := s.cli.Put(ctx, k, string(b), opts...); err != nil {
		return fmt.Errorf("%s: %w", strings.TrimPrefix(k, s.prefix), err)
	}
	return nil
}

// GatewayStatuses returns the status every gateway host published, by
// host id.
func (s *Store) GatewayStatuses(ctx context.Context) (map[string]GatewayStatus, error) {
	resp, err := s.cli.Get(ctx, s.prefix+HostStatesRel, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("gateway status: %w", err)
	}
	out := map[string]GatewayStatus{}
	for _, kv := range resp.Kvs {
		host, ok := s.bgpHost(string(kv.Key), bgpStatusLeaf)
		if !ok {
			continue
		}
		var st GatewayStatus
		if json.Unmarshal(kv.Value, &st) == nil {
			out[host] = st
		}
	}
	return out, nil
}

// bgpHost returns the host of key if it is that host's leaf key.
func (s *Store) bgpHost(key, leaf string) (string, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix+HostStatesRel)
	if !ok {
		return "", false
	}
	host, l, ok := strings.Cut(rest, "/")
	return host, ok && l == leaf && host != ""
}

// BGPRoutesHandler receives every host's learned routes: Reset with all of
// them (first, and after a re-list), then Changed with the hosts whose
// routes changed (a nil list: withdrawn, the host's key is gone).
type BGPRoutesHandler struct {
	Reset   func(byHost map[string][]BGPRoute)
	Changed func(byHost map[string][]BGPRoute)
}

// WatchBGPRoutes follows every host's learned routes until ctx is done. A
// value that does not decode reads as no routes (and is logged by nobody:
// the writer validated it).
func (s *Store) WatchBGPRoutes(ctx context.Context, h BGPRoutesHandler) error {
	decode := func(kv KV) (string, []BGPRoute, bool) {
		host, ok := s.bgpHost(kv.Key, bgpRoutesLeaf)
		if !ok {
			return "", nil, false
		}
		var rs []BGPRoute
		_ = json.Unmarshal(kv.Value, &rs)
		return host, rs, true
	}
	return s.Watch(ctx, HostStatesRel, Handler{
		Reset: func(kvs []KV, _ int64) {
			out := map[string][]BGPRoute{}
			for _, kv := range kvs {
				if host, rs, ok := decode(kv); ok {
					out[host] = rs
				}
			}
			h.Reset(out)
		},
		Events: func(evs []Event, _ int64) {
			out := map[string][]BGPRoute{}
			for _, ev := range evs {
				host, rs, ok := decode(ev.KV)
				if !ok {
					continue
				}
				if ev.Delete {
					rs = nil
				}
				out[host] = rs
			}
			if len(out) > 0 {
				h.Changed(out)
			}
		},
	})
}

// Draining. An operator drains a gateway host before planned work: its
// speaker withdraws what it advertises and the host withdraws the routes it
// learned, so the upstream routers and the other agents send its traffic
// to the other gateways. The server writes the mark (agents only read it):
//
//	state/gateway/drain/<host>   "1" while the host is drained
const drainRel = "state/gateway/drain/"

// SetGatewayDrain marks hostID drained (or not).
func (s *Store) SetGatewayDrain(ctx context.Context, hostID string, drain bool) error {
	if hostID == "" || checkID(hostID) != nil {
		return &topology.FieldError{Field: "host_id", Reason: "is not a valid id"}
	}
	k := s.prefix + drainRel + hostID
	var err error
	if drain {
		_, err = s.cli.Put(ctx, k, "1")
	} else {
		_, err = s.cli.Delete(ctx, k)
	}
	if err != nil {
		return fmt.Errorf("gateway %s drain: %w", hostID, err)
	}
	return nil
}

// GatewayDrains returns the drained hosts.
func (s *Store) GatewayDrains(ctx context.Context) (map[string]bool, error) {
	resp, err := s.cli.Get(ctx, s.prefix+drainRel, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("gateway drains: %w", err)
	}
	out := map[string]bool{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), s.prefix+drainRel)] = true
	}
	return out, nil
}

// WatchGatewayDrains calls f with the set of drained hosts, first and after
// every change, until ctx is done.
func (s *Store) WatchGatewayDrains(ctx context.Context, f func(drained map[string]bool)) error {
	pfx := s.prefix + drainRel
	set := map[string]bool{}
	return s.Watch(ctx, drainRel, Handler{
		Reset: func(kvs []KV, _ int64) {
			clear(set)
			for _, kv := range kvs {
				set[strings.TrimPrefix(kv.Key, pfx)] = true
			}
			f(maps.Clone(set))
		},
		Events: func(evs []Event, _ int64) {
			for _, ev := range evs {
				h := strings.TrimPrefix(ev.KV.Key, pfx)
				if ev.Delete {
					delete(set, h)
				} else {
					set[h] = true
				}
			}
			f(maps.Clone(set))
		},
	})
}
