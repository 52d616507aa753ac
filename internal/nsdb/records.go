package nsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The EC2 server's records beside the VPC objects — access keys and client
// tokens — and the controller's status key. Their key names live here
// only; the other packages read and write them through these methods (and
// a VPCTx's PutKey/DeleteKey with the *Rel names).

const (
	accessKeysRel   = "ec2/keys/"
	clientTokensRel = "ec2/client-tokens/"
	// ControllerStatusRel is where the controller records how far it has
	// realized the VPC objects (and its gateways' states).
	ControllerStatusRel = "state/controller/applied"
)

// AccessKeyRel is the store-relative key of access key id's record.
func AccessKeyRel(id string) string { return accessKeysRel + id }

// ClientTokenRel is the store-relative key where a create call of account
// for action with a ClientToken (tokenHash: a digest of it) records what it
// made.
func ClientTokenRel(account, action, tokenHash string) string {
	return clientTokensRel + account + "/" + action + "/" + tokenHash
}

// get reads one key (relative to the prefix); found is false when absent.
func (s *Store) get(ctx context.Context, rel string) (value []byte, rev int64, found bool, err error) {
	resp, err := s.cli.Get(ctx, s.prefix+rel)
	if err != nil {
		return nil, 0, false, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, false, nil
	}
	return resp.Kvs[0].Value, resp.Kvs[0].ModRevision, true, nil
}

// AccessKey reads access key id's record.
func (s *Store) AccessKey(ctx context.Context, id string) (record []byte, found bool, err error) {
	v, _, found, err := s.get(ctx, AccessKeyRel(id))
	if err != nil {
		return nil, false, fmt.Errorf("reading access key: %w", err)
	}
	return v, found, nil
}

// AccessKeys reads every access key's record, by id.
func (s *Store) AccessKeys(ctx context.Context) (map[string][]byte, error) {
	pfx := s.prefix + accessKeysRel
	resp, err := s.cli.Get(ctx, pfx, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing access keys: %w", err)
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), pfx)] = kv.Value
	}
	return out, nil
}

// ClientTokenTarget reads what an earlier create with that ClientToken made.
func (s *Store) ClientTokenTarget(ctx context.Context, account, action, tokenHash string) (id string, found bool, err error) {
	v, _, found, err := s.get(ctx, ClientTokenRel(account, action, tokenHash))
	if err != nil {
		return "", false, fmt.Errorf("reading client token: %w", err)
	}
	return string(v), found, nil
}

// DeleteClientTokens forgets every ClientToken of account.
func (s *Store) DeleteClientTokens(ctx context.Context, account string) error {
	if _, err := s.cli.Delete(ctx, s.prefix+clientTokensRel+account+"/", clientv3.WithPrefix()); err != nil {
		return fmt.Errorf("deleting the client tokens of %s: %w", account, err)
	}
	return nil
}

// VPCObjectRevision reads the mod revision of VPC object id in collection
// coll (e.g. "nat_gateways"), straight from etcd.
func (s *Store) VPCObjectRevision(ctx context.Context, coll, id string) (rev int64, found bool, err error) {
	_, rev, found, err = s.get(ctx, VPCPrefix+coll+"/"+id)
	if err != nil {
		return 0, false, fmt.Errorf("reading %s %s: %w", coll, id, err)
	}
	return rev, found, nil
}

// VPCSeqRevision is the revision of the last write of VPC objects by any
// process (0 before the first).
func (s *Store) VPCSeqRevision(ctx context.Context) (int64, error) {
	_, rev, _, err := s.get(ctx, vpcSeqRel)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", vpcSeqRel, err)
	}
	return rev, nil
}

// ReadVPCState reads every VPC object straight from etcd (no cache).
func (s *Store) ReadVPCState(ctx context.Context) (*vpc.State, error) {
	resp, err := s.cli.Get(ctx, s.prefix+VPCPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading the VPC objects: %w", err)
	}
	kvs := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = KV{Key: string(kv.Key), Value: kv.Value, ModRevision: kv.ModRevision}
	}
	return DecodeVPCState(s.prefix, kvs)
}

// Applied is the controller's progress: the topology at TopologyRevision
// realizes the VPC objects as they were at VPCRevision. A VPC object whose
// mod revision is at most VPCRevision is therefore realized by (at the
// latest) TopologyRevision: this watermark is how each VPC object records
// the topology revision that realizes it, without a write per object.
type Applied struct {
	VPCRevision      int64 `json:"vpc_revision"`
	TopologyRevision int64 `json:"topology_revision"`
}

// ControllerStatus is what the leading controller records at
// ControllerStatusRel: its progress and how each gateway of the cloud config
// resolved to a host (a gateway whose host has not registered yet is
// pending there). The controller writes it; the APIs and `canopy up` read it.
type ControllerStatus struct {
	Applied
	Gateways []translate.GatewayStatus `json:"gateways,omitempty"`
}

// PutControllerStatus records the controller's status.
func (s *Store) PutControllerStatus(ctx context.Context, status ControllerStatus) error {
	b, err := json.Marshal(status)
	if err != nil {
		return fmt.Errorf("encoding the controller status: %w", err)
	}
	if _, err := s.cli.Put(ctx, s.prefix+ControllerStatusRel, string(b)); err != nil {
		return fmt.Errorf("writing the controller status: %w", err)
	}
	return nil
}

// ControllerStatus reads the controller's status (zero when it was never
// written).
func (s *Store) ControllerStatus(ctx context.Context) (ControllerStatus, error) {
	var st ControllerStatus
	v, _, found, err := s.get(ctx, ControllerStatusRel)
	if err != nil {
		return st, fmt.Errorf("read controller status: %w", err)
	}
	if !found {
		return st, nil
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, fmt.Errorf("decode controller status: %w", err)
	}
	return st, nil
}

// VPCObject is one VPC object for LoadVPCObjects.
type VPCObject struct {
	Collection string // e.g. "security_groups"
	ID         string
	Object     any // JSON-encoded as stored
}

// LoadVPCObjects writes VPC objects in transactions of up to 1,000 objects
// and 1 MiB of values (under the client's 2 MiB request limit, with the
// partition copies) that bump vpc-seq, as VPCStore.Update's commits do but
// without its checks: for tools and benchmarks loading a large state fast.
// It returns the last commit's revision.
func (s *Store) LoadVPCObjects(ctx context.Context, objs []VPCObject) (int64, error) {
	const maxObjs, maxBytes = 1000, 1 << 20
	var rev int64
	for len(objs) > 0 {
		var ops []clientv3.Op
		n, size := 0, 0
		for ; n < len(objs) && n < maxObjs && size < maxBytes; n++ {
			o := objs[n]
			b, err := json.Marshal(o.Object)
			if err != nil {
				return 0, err
			}
			size += 2 * len(b) // the object and its partition copy
			ops = append(ops, clientv3.OpPut(s.prefix+VPCPrefix+o.Collection+"/"+o.ID, string(b)))
			ops = append(ops, vpcPartitionOps(s.prefix, o.Collection, o.ID, nil, o.Object, string(b))...)
		}
		ops = append(ops, clientv3.OpPut(s.prefix+vpcSeqRel, strconv.FormatInt(time.Now().UnixNano(), 10)))
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return 0, fmt.Errorf("loading VPC objects: %w", err)
		}
		rev = resp.Header.Revision
		objs = objs[n:]
	}
	return rev, nil
}

// PutScratch writes one small key outside everything Canopy reads: the
// floor of a store commit, for benchmarks.
func (s *Store) PutScratch(ctx context.Context, value string) error {
	if _, err := s.cli.Put(ctx, s.prefix+"bench/scratch", value); err != nil {
		return fmt.Errorf("scratch write: %w", err)
	}
	return nil
}
