package role

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/google/uuid"
)

// An enrollment directory is what `canopy host enroll` hands to one host's
// agent: the CA of etcd's certificates (ca.crt), the agent's client
// certificate and key (agent.crt, agent.key; its common name is the host's
// etcd user) and enrollment.json. Nothing in it works for another host.
const (
	enrollmentFile = "enrollment.json"
	enrollCAFile   = "ca.crt"
	enrollCertName = "agent" // agent.crt, agent.key
)

// enrollment is enrollment.json.
type enrollment struct {
	HostID        string   `json:"host_id"`
	HostName      string   `json:"host_name"`
	EtcdEndpoints []string `json:"etcd_endpoints"`
	EtcdUser      string   `json:"etcd_user"`
	// EtcdPassword is set only when etcd authenticates the agent by
	// password rather than by its certificate's name.
	EtcdPassword string `json:"etcd_password,omitempty"`
}

// readEnrollment reads an enrollment directory.
func readEnrollment(dir string) (enrollment, nsdb.Credentials, error) {
	var e enrollment
	b, err := os.ReadFile(filepath.Join(dir, enrollmentFile))
	if err != nil {
		return e, nsdb.Credentials{}, fmt.Errorf("--enrollment: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, nsdb.Credentials{}, fmt.Errorf("--enrollment %s: %w", dir, err)
	}
	if _, err := uuid.Parse(e.HostID); err != nil {
		return e, nsdb.Credentials{}, fmt.Errorf("--enrollment %s: host_id %q: %w", dir, e.HostID, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return e, nsdb.Credentials{}, err
	}
	creds := nsdb.Credentials{CAFile: filepath.Join(abs, enrollCAFile),
		CertFile: filepath.Join(abs, enrollCertName+".crt"), KeyFile: filepath.Join(abs, enrollCertName+".key")}
	if e.EtcdPassword != "" {
		creds.Username, creds.Password = e.EtcdUser, e.EtcdPassword
	}
	return e, creds, nil
}

// adoptHostID makes stateDir/host-id the enrolled id: written when absent,
// an error when the state dir belongs to another host (its ports, instances
// and records would be another host's).
func adoptHostID(stateDir, id string) error {
	path := filepath.Join(stateDir, "host-id")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if have := strings.TrimSpace(string(b)); have != id {
			return fmt.Errorf("%s holds host id %s but the enrollment is for host %s: use another --state-dir or enroll with --host-id %s", path, have, id, have)
		}
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", []byte(id+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// enrollRequest is what enrollHost needs.
type enrollRequest struct {
	Name   string
	HostID string // "" = the existing host of that name, or a new id
	// CA signs the agent's certificate; CAFile is the trust bundle of
	// etcd's server certificate given to the agent.
	CA        *pki.CA
	CAFile    string
	Endpoints []string // the etcd endpoints the agent is told
	Dir       string   // the enrollment directory to write
}

// enrollHost creates (or finds) the host, gives it an etcd user limited to
// its own keys, and writes its enrollment directory. Enrolling again
// reissues the credentials and keeps the host.
func enrollHost(ctx context.Context, s *nsdb.Store, r enrollRequest) (enrollment, error) {
	id, err := enrollHostObject(ctx, s, r.Name, r.HostID)
	if err != nil {
		return enrollment{}, err
	}
	user, err := s.GrantHost(ctx, id)
	if err != nil {
		return enrollment{}, err
	}
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return enrollment{}, err
	}
	if _, _, err := r.CA.Issue(r.Dir, enrollCertName, pki.IssueOptions{CommonName: user, Client: true}); err != nil {
		return enrollment{}, err
	}
	if err := copyFile(r.CAFile, filepath.Join(r.Dir, enrollCAFile)); err != nil {
		return enrollment{}, err
	}
	e := enrollment{HostID: id, HostName: r.Name, EtcdEndpoints: r.Endpoints, EtcdUser: user}
	b, _ := json.MarshalIndent(e, "", "  ")
	path := filepath.Join(r.Dir, enrollmentFile)
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return enrollment{}, err
	}
	return e, os.Rename(path+".tmp", path)
}

// enrollHostObject returns the host's id: id itself when that host exists,
// else the host named name (which must then have id, if one was asked
// for), else a new host named name (with id, or a new one).
func enrollHostObject(ctx context.Context, s *nsdb.Store, name, id string) (string, error) {
	for attempt := 0; ; attempt++ {
		if id != "" {
			if _, err := s.Get(ctx, topology.KindHost, id); err == nil {
				return id, nil
			}
		}
		hs, err := s.List(ctx, topology.KindHost)
		if err != nil {
			return "", err
		}
		for _, o := range hs {
			if o.GetMeta().Name != name {
				continue
			}
			if id != "" && o.GetMeta().ID != id {
				return "", fmt.Errorf("a host named %q exists with id %s, not %s", name, o.GetMeta().ID, id)
			}
			return o.GetMeta().ID, nil
		}
		o, err := s.Create(ctx, &topology.Host{Meta: topology.Meta{ID: id, Name: name}})
		if err == nil {
			return o.GetMeta().ID, nil
		}
		if !errors.Is(err, nsdb.ErrConflict) || attempt > 10 {
			return "", fmt.Errorf("create host %q: %w", name, err)
		}
		_ = s.Sync(ctx)
	}
}

// hostByRef resolves a host id or a unique host name.
func hostByRef(ctx context.Context, s *nsdb.Store, ref string) (string, error) {
	if _, err := s.Get(ctx, topology.KindHost, ref); err == nil {
		return ref, nil
	}
	hs, err := s.List(ctx, topology.KindHost)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, o := range hs {
		if o.GetMeta().Name == ref {
			ids = append(ids, o.GetMeta().ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("host %q: %w", ref, nsdb.ErrNotFound)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("host name %q is ambiguous: %s", ref, strings.Join(ids, ", "))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(to+".tmp", to)
}
