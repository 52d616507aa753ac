package nsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Least privilege on the store. With etcd's authentication on, the server
// is etcd's root user and every agent is a user of its own, host-<id>, whose
// role of the same name may
//
//	read   topo…, vpc…, state/…            the topology, the VPC objects (for
//	                                        metadata and the instance driver),
//	                                        every host's state (liveness, tables)
//	       part/…, index/binding/<id>/…     the topology's partitions, its own
//	                                        ports' partitions (partition.go)
//	write  state/host/<id>                  its liveness
//	       state/hosts/<id>/…               everything else it announces
//	       state/learned/<id>/…             its learned MAC/ARP entries
//
// and nothing else: not another host's state, not a topology object, not a
// VPC object, not the EC2 keys (ec2/…, not even to read). The agent's host
// object and tunnel-zone membership are written by the server's controller
// from what the agent announces (HostInfo). Users authenticate by the
// common name of their client certificate: they have no password.

// HostUser is the etcd user and role of a host's agent.
func HostUser(hostID string) string { return "host-" + hostID }

// hostPerm is one permission of a host's role.
type hostPerm struct {
	key, end string
	perm     clientv3.PermissionType
}

// hostPerms are the permissions of the role of hostID.
func (s *Store) hostPerms(hostID string) []hostPerm {
	prefix := func(k string, p clientv3.PermissionType) hostPerm {
		return hostPerm{s.prefix + k, clientv3.GetPrefixRangeEnd(s.prefix + k), p}
	}
	read, rw := clientv3.PermissionType(clientv3.PermRead), clientv3.PermissionType(clientv3.PermReadWrite)
	return []hostPerm{
		prefix("topo", read), // topo/… and topo-seq (Sync)
		prefix("vpc", read),  // vpc/… and vpc-seq
		prefix("state/", read),
		prefix("part/", read), // the partitions a partial replica follows
		prefix(strings.TrimPrefix(bindingPrefix(s.prefix, hostID), s.prefix), read),
		{key: s.hostKey(hostID), perm: rw},
		prefix(hostStateRel(hostID), rw),
		prefix(hostLearnedRel(hostID), rw),
	}
}

// EnableAuth turns etcd's authentication on, first making the root user
// (no password: it authenticates with its certificate's common name) with
// the root role. The caller must be, or become, root. Idempotent.
func (s *Store) EnableAuth(ctx context.Context) error {
	st, err := s.cli.AuthStatus(ctx)
	switch {
	case status.Code(err) == codes.Unimplemented:
		// etcd 3.4 (Debian 12's) has no AuthStatus: every step below is
		// idempotent for root, so they run again.
	case err != nil:
		return fmt.Errorf("etcd auth status: %w", err)
	case st.Enabled:
		return nil
	}
	if err := s.addUser(ctx, RootUser); err != nil {
		return err
	}
	if _, err := s.cli.RoleAdd(ctx, RootUser); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("etcd role root: %w", err)
	}
	if _, err := s.cli.UserGrantRole(ctx, RootUser, RootUser); err != nil {
		return fmt.Errorf("etcd user root: %w", err)
	}
	if _, err := s.cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("etcd auth enable: %w", err)
	}
	return nil
}

// AuthEnabled says whether etcd's authentication is on, for a caller that
// is not etcd's root: from AuthStatus where etcd has it, else (etcd 3.4)
// from whether listing the users is refused — with authentication off
// anyone may list them; with it on only root may, and a certificate naming
// no etcd user is refused. (Root may list them either way, so on etcd 3.4
// root cannot tell this way; the server, as root, turns it on instead.)
// known is false when the answer was neither.
func (s *Store) AuthEnabled(ctx context.Context) (enabled, known bool, err error) {
	st, err := s.cli.AuthStatus(ctx)
	switch {
	case err == nil:
		return st.Enabled, true, nil
	case status.Code(err) != codes.Unimplemented:
		return false, false, fmt.Errorf("etcd auth status: %w", err)
	}
	_, err = s.cli.UserList(ctx)
	switch {
	case err == nil:
		return false, true, nil
	case errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrUserNotFound) ||
		status.Code(err) == codes.PermissionDenied:
		// Refused, or a certificate naming no etcd user: both only
		// with authentication on.
		return true, true, nil
	}
	return false, false, fmt.Errorf("etcd user list: %w", err)
}

func (s *Store) addUser(ctx context.Context, name string) error {
	_, err := s.cli.UserAddWithOptions(ctx, name, "", &clientv3.UserAddOptions{NoPassword: true})
	if err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("etcd user %s: %w", name, err)
	}
	return nil
}

// GrantHost makes (or completes) the etcd user and role of hostID's agent
// and returns the user name, the common name its client certificate must
// carry. The caller must be root (or etcd's authentication off).
func (s *Store) GrantHost(ctx context.Context, hostID string) (string, error) {
	if err := checkID(hostID); err != nil || hostID == "" {
		return "", &topology.FieldError{Field: "host_id", Reason: "is not a valid id"}
	}
	user := HostUser(hostID)
	if err := s.addUser(ctx, user); err != nil {
		return "", err
	}
	if _, err := s.cli.RoleAdd(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return "", fmt.Errorf("etcd role %s: %w", user, err)
	}
	want := s.hostPerms(hostID)
	// A role made by an older version may hold a permission no longer
	// granted: enrolling again leaves exactly the current set.
	role, err := s.cli.RoleGet(ctx, user)
	if err != nil {
		return "", fmt.Errorf("etcd role %s: %w", user, err)
	}
	for _, have := range role.Perm {
		if !slices.ContainsFunc(want, func(p hostPerm) bool {
			return p.key == string(have.Key) && p.end == string(have.RangeEnd) && p.perm == clientv3.PermissionType(have.PermType)
		}) {
			if _, err := s.cli.RoleRevokePermission(ctx, user, string(have.Key), string(have.RangeEnd)); err != nil {
				return "", fmt.Errorf("etcd role %s: revoke %s: %w", user, have.Key, err)
			}
		}
	}
	for _, p := range want {
		if _, err := s.cli.RoleGrantPermission(ctx, user, p.key, p.end, p.perm); err != nil {
			return "", fmt.Errorf("etcd role %s: grant %s: %w", user, p.key, err)
		}
	}
	if _, err := s.cli.UserGrantRole(ctx, user, user); err != nil {
		return "", fmt.Errorf("etcd user %s: %w", user, err)
	}
	return user, nil
}

// RevokeHost deletes the etcd user and role of hostID's agent: its
// certificate no longer opens anything.
func (s *Store) RevokeHost(ctx context.Context, hostID string) error {
	user := HostUser(hostID)
	if _, err := s.cli.UserDelete(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrUserNotFound) {
		return fmt.Errorf("etcd user %s: %w", user, err)
	}
	if _, err := s.cli.RoleDelete(ctx, user); err != nil && !errors.Is(err, rpctypes.ErrRoleNotFound) {
		return fmt.Errorf("etcd role %s: %w", user, err)
	}
	return nil
}
