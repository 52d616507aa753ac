package nsdb

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Secrets every server of a cloud shares: the REST API's admin token and
// the key that seals the tenants' EC2 secret keys. The first server to
// start stores its own; every later one takes the stored value, so any
// server accepts the same token and opens the same sealed keys. They live
// under secret/, which only etcd's root (the servers) may read: agents'
// roles do not cover it (auth.go).
//
//	secret/<name>   the secret's value
const (
	SecretAdminToken = "admin-token"
	SecretEC2Key     = "ec2-key"
)

// SharedSecret returns the stored value of secret name; when there is none
// yet, proposed is stored (in one transaction: of two servers starting at
// once, one wins and both return its value).
func (s *Store) SharedSecret(ctx context.Context, name, proposed string) (string, error) {
	if name == "" || proposed == "" {
		return "", fmt.Errorf("nsdb: shared secret %q: empty name or value", name)
	}
	key := s.prefix + "secret/" + name
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, proposed)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return "", unavailable(fmt.Errorf("shared secret %s: %w", name, err))
	}
	if resp.Succeeded {
		return proposed, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || len(kvs[0].Value) == 0 {
		return "", fmt.Errorf("nsdb: shared secret %s: stored empty", name)
	}
	return string(kvs[0].Value), nil
}
