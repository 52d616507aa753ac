package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// What the controller's life cycle reconcilers follow: the agents'
// instance reports, the instance and NAT gateway objects, and the
// controller's own election. Their keys stay here.

// controllerElectionRel is the election of the controller leader among the
// servers sharing the store.
const controllerElectionRel = "state/controller/leader"

// CampaignController waits until this process leads the controller
// election (the one writer of every reconciled state) as value.
func (s *Store) CampaignController(ctx context.Context, value string, ttl time.Duration) (*Leadership, error) {
	return s.Campaign(ctx, controllerElectionRel, value, ttl)
}

// ControllerLeader reads who leads the controller election now: the value
// its leader campaigned with (found false: nobody).
func (s *Store) ControllerLeader(ctx context.Context) (value string, found bool, err error) {
	resp, err := s.cli.Get(ctx, s.prefix+controllerElectionRel+"/", clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1))
	if err != nil {
		return "", false, fmt.Errorf("controller leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", false, nil
	}
	return string(resp.Kvs[0].Value), true, nil
}

// WatchInstanceReports follows the agents' instance reports until ctx is
// done: h gets every report, by instance id, first and after each change.
// A report's HostID is the host whose key holds it (an agent may write
// only its own host's keys, so it cannot speak for another host).
func (s *Store) WatchInstanceReports(ctx context.Context, h func(reports map[string]vpc.InstanceReport)) error {
	reports := map[string]vpc.InstanceReport{}
	put := func(kv KV) {
		host, kind, id, ok := s.HostStateKey(kv.Key)
		if !ok || kind != "instance" {
			return
		}
		var r vpc.InstanceReport
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			s.log.Warn("nsdb: undecodable instance report ignored", "key", kv.Key, "err", err)
			return
		}
		r.HostID = host
		reports[id] = r
	}
	copyOf := func() map[string]vpc.InstanceReport {
		out := make(map[string]vpc.InstanceReport, len(reports))
		for k, v := range reports {
			out[k] = v
		}
		return out
	}
	return s.WatchHostStates(ctx, Handler{
		Reset: func(kvs []KV, _ int64) {
			clear(reports)
			for _, kv := range kvs {
				put(kv)
			}
			h(copyOf())
		},
		Events: func(evs []Event, _ int64) {
			changed := false
			for _, e := range evs {
				host, kind, id, ok := s.HostStateKey(e.KV.Key)
				if !ok || kind != "instance" {
					continue
				}
				changed = true
				if e.Delete {
					if r, ok := reports[id]; ok && r.HostID == host {
						delete(reports, id)
					}
					continue
				}
				put(e.KV)
			}
			if changed {
				h(copyOf())
			}
		},
	})
}

// WatchVPCCollection calls changed once the objects of VPC collection coll
// ("instances", "nat_gateways", …) are listed and after every change to
// them, until ctx is done.
func (s *Store) WatchVPCCollection(ctx context.Context, coll string, changed func()) error {
	return s.Watch(ctx, VPCPrefix+coll+"/", Handler{
		Reset:  func([]KV, int64) { changed() },
		Events: func([]Event, int64) { changed() },
	})
}

// VPCObjectHistory is one revision of a VPC object (audits: which states
// an object went through, in order).
type VPCObjectHistory struct {
	ID       string
	Revision int64
	Value    []byte // nil: deleted
}

// VPCHistory returns every change to the objects of collection coll in the
// revisions after from up to and including to, in revision order, from
// etcd's history (an error if it was compacted meanwhile). from and to are
// revisions of VPC commits (VPCSeqRevision): every VPC commit writes
// vpc-seq, so the watch, which covers vpc-seq and the collection in one key
// range, knows it has read the history up to to when it sees vpc-seq's
// change at to (the events of one revision arrive together) or anything
// later. It does not rely on progress notifications: etcd 3.4 (Debian 12's)
// answers a progress request with the store's revision even for a watch
// that has not caught up yet, and an audit that trusted it read an empty
// history.
func (s *Store) VPCHistory(ctx context.Context, coll string, from, to int64) ([]VPCObjectHistory, error) {
	seq := s.prefix + vpcSeqRel
	pfx := s.prefix + VPCPrefix + coll + "/"
	if seq >= pfx {
		return nil, fmt.Errorf("history of %s: %s does not sort before %s", coll, seq, pfx)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := s.cli.Watch(clientv3.WithRequireLeader(cctx), seq,
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(pfx)), clientv3.WithRev(from+1))
	var out []VPCObjectHistory
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return nil, fmt.Errorf("history of %s: %w", coll, err)
		}
		done := false
		for _, e := range resp.Events {
			rev := e.Kv.ModRevision
			if rev > to || rev == to && string(e.Kv.Key) == seq {
				done = true
			}
			if rev > to || !strings.HasPrefix(string(e.Kv.Key), pfx) {
				continue
			}
			h := VPCObjectHistory{ID: strings.TrimPrefix(string(e.Kv.Key), pfx), Revision: rev}
			if e.Type != clientv3.EventTypeDelete {
				h.Value = e.Kv.Value
			}
			out = append(out, h)
		}
		if done {
			return out, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("history of %s: the watch ended", coll)
}
