package nsdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Leadership is one term as the leader of an election (one writer for a
// piece of state among several servers): it ends when the session's lease
// is lost (Done) or on Resign.
type Leadership struct {
	sess *concurrency.Session
	el   *concurrency.Election
	// key and rev are the term's election key and its create revision,
	// kept because Resign forgets them.
	key string
	rev int64
}

// Campaign waits until this process leads election name (a store-relative
// key, e.g. "state/controller/leader") as value, on a session whose lease
// lives ttl after the process stops renewing it.
func (s *Store) Campaign(ctx context.Context, name, value string, ttl time.Duration) (*Leadership, error) {
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(int(max(ttl/time.Second, 1))), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	el := concurrency.NewElection(sess, s.prefix+name)
	if err := el.Campaign(ctx, value); err != nil {
		sess.Close()
		return nil, fmt.Errorf("campaign: %w", err)
	}
	return &Leadership{sess: sess, el: el, key: el.Key(), rev: el.Rev()}, nil
}

// ErrNotLeader is returned by a write guarded by a leadership whose term
// has ended.
var ErrNotLeader = errors.New("no longer the leader: another process may lead")

// stillLeads is the guard of a write made as the leader: its election key
// is still the one it created.
func (l *Leadership) stillLeads() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.key), "=", l.rev)
}

// Done is closed when the term ends without a Resign (the lease was lost).
func (l *Leadership) Done() <-chan struct{} { return l.sess.Done() }

// Resign ends the term at once (the next candidate need not wait for the
// lease to expire) and closes the session.
func (l *Leadership) Resign(ctx context.Context) error {
	err := l.el.Resign(ctx)
	l.sess.Close()
	return err
}

// Close ends the session (the term ends when its lease expires or is
// revoked).
func (l *Leadership) Close() { l.sess.Close() }
