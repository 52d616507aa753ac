package nsdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrUnavailable is the one error for "the store cannot answer now": etcd has
// no quorum or no leader, no member can be reached, or a call did not finish
// within its deadline. It is transient: the caller may retry later, and the
// API boundaries answer it with HTTP 503 (EC2: ServiceUnavailable, which the
// AWS SDKs retry). Like any timeout it leaves a write's outcome unknown: a
// transaction that reached a member before the deadline may still commit
// once quorum returns (EC2 callers retry with a ClientToken; REST callers
// read before re-creating).
//
// Every etcd error of that family (context deadline, "etcdserver: request
// timed out", "etcdserver: no leader", gRPC Unavailable, …) comes out of this
// package, and out of the client returned by Store.Client, wrapped so that
// errors.Is(err, ErrUnavailable) holds; the original error stays in the chain
// and in the message.
var ErrUnavailable = errors.New("the network state database (etcd) is unavailable")

// CallTimeout bounds every unary etcd call made through a Store's client
// (reads, writes, transactions, lease grants, the user and role calls of
// host enrollment) whose context has no earlier deadline. Without it a call
// to a cluster without quorum waits forever: the client keeps retrying reads,
// and a write waits for a leader that does not come. Watches and lease
// keep-alives are streams and are not bounded.
const CallTimeout = 5 * time.Second

// RequestTimeout is the store budget of one API request (REST and EC2 set it
// on the request's context): with the store gone, a client gets its 503
// within 2 s, and a healthy store answers in milliseconds.
const RequestTimeout = 1500 * time.Millisecond

// HealthTimeout bounds Store.Health's probe.
const HealthTimeout = time.Second

// unavailable wraps err with ErrUnavailable when it says the store could not
// answer; any other error (nil included) is returned unchanged. A context
// cancelled by the caller is not unavailability: the caller gave up.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// failed is unavailable for the error of a call made with ctx: a call that
// failed once its deadline had passed did not get its answer in time, however
// the error reads (a member whose own wait timed out answers a bare
// "context deadline exceeded" as an Unknown gRPC status).
func failed(ctx context.Context, err error) error {
	if err != nil && !errors.Is(err, ErrUnavailable) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return unavailable(err)
}

func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded ||
			errors.Is(err, rpctypes.ErrTooManyRequests)
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		case codes.Unknown:
			// A member whose own wait ran out (the deadline travels with
			// the request, so this races the client's) answers the bare
			// context error as an Unknown status; etcd's client matches
			// its errors by their text too (rpctypes).
			return s.Message() == context.DeadlineExceeded.Error()
		}
	}
	return false
}

// bound gives ctx the CallTimeout deadline (unless it has an earlier one) and
// asks etcd to refuse the call at once when the member it reaches has no
// leader, instead of queueing it.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	return clientv3.WithRequireLeader(ctx), cancel
}

// boundKV is the client's KV with a deadline on every call and its
// availability errors mapped to ErrUnavailable. Store.Open installs it in
// the client, so every caller of Store.Client gets it too. GetStream (a
// stream) passes through.
type boundKV struct{ clientv3.KV }

func (b boundKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.PutResponse, error) { return b.KV.Put(ctx, key, val, opts...) })
}

func (b boundKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.GetResponse, error) { return b.KV.Get(ctx, key, opts...) })
}

func (b boundKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.DeleteResponse, error) { return b.KV.Delete(ctx, key, opts...) })
}

func (b boundKV) Compact(ctx context.Context, rev int64, opts ...clientv3.CompactOption) (*clientv3.CompactResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.CompactResponse, error) { return b.KV.Compact(ctx, rev, opts...) })
}

func (b boundKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	return call(ctx, func(ctx context.Context) (clientv3.OpResponse, error) { return b.KV.Do(ctx, op) })
}

// Txn's deadline starts when the transaction is built and ends at Commit
// (a transaction never committed releases it when it fires).
func (b boundKV) Txn(ctx context.Context) clientv3.Txn {
	ctx, cancel := bound(ctx)
	return &boundTxn{t: b.KV.Txn(ctx), ctx: ctx, cancel: cancel}
}

type boundTxn struct {
	t      clientv3.Txn
	ctx    context.Context
	cancel context.CancelFunc
}

func (b *boundTxn) If(cs ...clientv3.Cmp) clientv3.Txn   { b.t = b.t.If(cs...); return b }
func (b *boundTxn) Then(ops ...clientv3.Op) clientv3.Txn { b.t = b.t.Then(ops...); return b }
func (b *boundTxn) Else(ops ...clientv3.Op) clientv3.Txn { b.t = b.t.Else(ops...); return b }

func (b *boundTxn) Commit() (*clientv3.TxnResponse, error) {
	defer b.cancel()
	r, err := b.t.Commit()
	return r, failed(b.ctx, err)
}

// boundLease bounds the lease calls that are one request each; KeepAlive
// (a stream kept for the lease's life) passes through.
type boundLease struct{ clientv3.Lease }

func (b boundLease) Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.LeaseGrantResponse, error) { return b.Lease.Grant(ctx, ttl) })
}

func (b boundLease) Revoke(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseRevokeResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.LeaseRevokeResponse, error) { return b.Lease.Revoke(ctx, id) })
}

func (b boundLease) TimeToLive(ctx context.Context, id clientv3.LeaseID, opts ...clientv3.LeaseOption) (*clientv3.LeaseTimeToLiveResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.LeaseTimeToLiveResponse, error) {
		return b.Lease.TimeToLive(ctx, id, opts...)
	})
}

func (b boundLease) Leases(ctx context.Context) (*clientv3.LeaseLeasesResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.LeaseLeasesResponse, error) { return b.Lease.Leases(ctx) })
}

func (b boundLease) KeepAliveOnce(ctx context.Context, id clientv3.LeaseID) (*clientv3.LeaseKeepAliveResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.LeaseKeepAliveResponse, error) {
		return b.Lease.KeepAliveOnce(ctx, id)
	})
}

// call runs one bounded unary call.
func call[R any](ctx context.Context, f func(context.Context) (R, error)) (R, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	r, err := f(ctx)
	return r, failed(ctx, err)
}

// boundAuth bounds the user and role calls this package makes (enrolling and
// revoking hosts, enabling authentication); the others pass through.
type boundAuth struct{ clientv3.Auth }

func (b boundAuth) AuthStatus(ctx context.Context) (*clientv3.AuthStatusResponse, error) {
	return call(ctx, b.Auth.AuthStatus)
}

func (b boundAuth) AuthEnable(ctx context.Context) (*clientv3.AuthEnableResponse, error) {
	return call(ctx, b.Auth.AuthEnable)
}

func (b boundAuth) UserAddWithOptions(ctx context.Context, name, password string, opt *clientv3.UserAddOptions) (*clientv3.AuthUserAddResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.AuthUserAddResponse, error) {
		return b.Auth.UserAddWithOptions(ctx, name, password, opt)
	})
}

func (b boundAuth) UserDelete(ctx context.Context, name string) (*clientv3.AuthUserDeleteResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.AuthUserDeleteResponse, error) {
		return b.Auth.UserDelete(ctx, name)
	})
}

func (b boundAuth) UserGrantRole(ctx context.Context, user, role string) (*clientv3.AuthUserGrantRoleResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.AuthUserGrantRoleResponse, error) {
		return b.Auth.UserGrantRole(ctx, user, role)
	})
}

func (b boundAuth) RoleAdd(ctx context.Context, name string) (*clientv3.AuthRoleAddResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.AuthRoleAddResponse, error) { return b.Auth.RoleAdd(ctx, name) })
}

func (b boundAuth) RoleDelete(ctx context.Context, name string) (*clientv3.AuthRoleDeleteResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.AuthRoleDeleteResponse, error) {
		return b.Auth.RoleDelete(ctx, name)
	})
}

func (b boundAuth) RoleGrantPermission(ctx context.Context, name, key, rangeEnd string, perm clientv3.PermissionType) (*clientv3.AuthRoleGrantPermissionResponse, error) {
	return call(ctx, func(ctx context.Context) (*clientv3.AuthRoleGrantPermissionResponse, error) {
		return b.Auth.RoleGrantPermission(ctx, name, key, rangeEnd, perm)
	})
}

// bindClient installs the bounded KV, Lease and Auth in cli.
func bindClient(cli *clientv3.Client) {
	cli.KV = boundKV{KV: cli.KV}
	cli.Lease = boundLease{Lease: cli.Lease}
	cli.Auth = boundAuth{Auth: cli.Auth}
}

// Health checks that the store can answer a linearizable read now, that is,
// that etcd has a leader and a quorum behind it. It answers within
// HealthTimeout; the error wraps ErrUnavailable.
func (s *Store) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
	defer cancel()
	if _, err := s.cli.Get(ctx, s.cache.seqKey(), clientv3.WithCountOnly()); err != nil {
		return failed(ctx, err)
	}
	return nil
}
