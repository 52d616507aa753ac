package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/canopy-sdn/canopy/internal/vpc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The VPC objects have partitions too, for the agents' metadata mirrors:
// every VPC object is also stored under the VPC it belongs to (a VPC's own
// id, else its VpcID field), or under CloudPartition (accounts, addresses,
// DHCP options, internet gateways…), in the same transaction:
//
//	vpcpart/<partition>/<collection>/<id>   copy of vpc/<collection>/<id>

func vpcPartitionPrefix(prefix, part string) string { return prefix + "vpcpart/" + part + "/" }

// vpcPartitionOf is the partition of a VPC object of collection coll.
func vpcPartitionOf(coll, id string, obj any) string {
	p := ""
	if coll == "vpcs" {
		p = id
	} else if v := reflect.Indirect(reflect.ValueOf(obj)); v.Kind() == reflect.Struct {
		if f := v.FieldByName("VpcID"); f.IsValid() && f.Kind() == reflect.String {
			p = f.String()
		}
	}
	if p == "" || checkID(p) != nil {
		return CloudPartition
	}
	return p
}

// vpcPartitionOps keeps the partition copy of one VPC object in step: old
// and obj are the stored and the new object (either may be nil), value
// obj's JSON.
func vpcPartitionOps(prefix, coll, id string, old, obj any, value string) []clientv3.Op {
	var ops []clientv3.Op
	oldPart := ""
	if old != nil {
		oldPart = vpcPartitionOf(coll, id, old)
	}
	newPart := ""
	if obj != nil {
		newPart = vpcPartitionOf(coll, id, obj)
		ops = append(ops, clientv3.OpPut(vpcPartitionPrefix(prefix, newPart)+coll+"/"+id, value))
	}
	if oldPart != "" && oldPart != newPart {
		ops = append(ops, clientv3.OpDelete(vpcPartitionPrefix(prefix, oldPart)+coll+"/"+id))
	}
	return ops
}

// WatchVPCPartition runs Watch on the copies of one partition's VPC objects.
// Apply their keys with ApplyVPCKV.
func (s *Store) WatchVPCPartition(ctx context.Context, part string, h Handler) error {
	return s.Watch(ctx, strings.TrimPrefix(vpcPartitionPrefix(s.prefix, part), s.prefix), h)
}

// VPCRel is the "<collection>/<id>" of a watched VPC key, under vpc/ or a
// partition.
func VPCRel(key string) string {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return key
	}
	j := strings.LastIndexByte(key[:i], '/')
	return key[j+1:]
}

// ApplyVPCKV applies one key ("<collection>/<id>", VPCRel) to st: a put with
// value, a delete without.
func ApplyVPCKV(st *vpc.State, rel string, value []byte, del bool) error {
	return applyVPCKV(st, rel, value, del)
}

// indexVPC writes the partition copies of every VPC object stored before
// they existed, each batch guarded by its objects' revisions.
func (s *Store) indexVPC(ctx context.Context) error {
	pfx := s.prefix + VPCPrefix
	for attempt := 0; attempt < maxAttempts; attempt++ {
		resp, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix())
		if err != nil {
			return unavailable(fmt.Errorf("indexing the VPC objects: %w", err))
		}
		stale := false
		for i := 0; i < len(resp.Kvs) && !stale; i += 200 {
			var cmps []clientv3.Cmp
			var ops []clientv3.Op
			for _, kv := range resp.Kvs[i:min(i+200, len(resp.Kvs))] {
				rel := strings.TrimPrefix(string(kv.Key), pfx)
				coll, id, ok := strings.Cut(rel, "/")
				m, known := stateMap(vpc.NewState(), coll)
				if !ok || !known {
					continue
				}
				obj := reflect.New(m.Type().Elem().Elem()).Interface()
				if json.Unmarshal(kv.Value, obj) != nil {
					continue
				}
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
				ops = append(ops, vpcPartitionOps(s.prefix, coll, id, nil, obj, string(kv.Value))...)
			}
			r, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
			if err != nil {
				return unavailable(fmt.Errorf("indexing the VPC objects: %w", err))
			}
			stale = !r.Succeeded
		}
		if !stale {
			return nil
		}
	}
	return fmt.Errorf("indexing the VPC objects: gave up after %d attempts: the store is changing too fast", maxAttempts)
}
