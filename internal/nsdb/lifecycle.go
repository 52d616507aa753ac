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
// etcd's history (an error if it was compacted meanwhile). It waits until
// the watch has caught up with revision to.
func (s *Store) VPCHistory(ctx context.Context, coll string, from, to int64) ([]VPCObjectHistory, error) {
	pfx := s.prefix + VPCPrefix + coll + "/"
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The progress requests must carry the watch's own context: the
	// client finds the watch stream by it.
	wctx := clientv3.WithRequireLeader(cctx)
	wch := s.cli.Watch(wctx, pfx, clientv3.WithPrefix(), clientv3.WithRev(from+1))
	// A progress notification comes once the watch has caught up; its
	// header's revision tells how far the history goes.
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				_ = s.cli.RequestProgress(wctx)
			}
		}
	}()
	var out []VPCObjectHistory
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return nil, fmt.Errorf("history of %s: %w", coll, err)
		}
		for _, e := range resp.Events {
			if e.Kv.ModRevision > to {
				return out, nil
			}
			h := VPCObjectHistory{ID: strings.TrimPrefix(string(e.Kv.Key), pfx), Revision: e.Kv.ModRevision}
			if e.Type != clientv3.EventTypeDelete {
				h.Value = e.Kv.Value
			}
			out = append(out, h)
		}
		if len(resp.Events) == 0 && resp.Header.Revision >= to {
			return out, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("history of %s: the watch ended", coll)
}
