package role

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/server"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/google/uuid"
)

// DefaultEtcdClientURL is where the server's embedded etcd listens by
// default.
const DefaultEtcdClientURL = server.DefaultEtcdClientURL

// RootEtcd is how an operator's command on the server's machine reaches
// etcd as root: Endpoints, and the --etcd-* files of an external cluster
// (none: the data dir's root credentials).
type RootEtcd struct {
	Endpoints                 []string
	CAFile, CertFile, KeyFile string
}

// open opens the store as root, logging to log.
func (r RootEtcd) open(ctx context.Context, dataDir string, log *slog.Logger) (*nsdb.Store, nsdb.Config, error) {
	cfg := nsdb.Config{Endpoints: r.Endpoints, Logger: log,
		Credentials: nsdb.Credentials{CAFile: r.CAFile, CertFile: r.CertFile, KeyFile: r.KeyFile}}
	if r.CAFile == "" && r.CertFile == "" && r.KeyFile == "" {
		creds, err := server.RootCredentials(dataDir)
		if err != nil {
			return nil, cfg, err
		}
		cfg.Credentials = creds
	}
	s, err := nsdb.Open(ctx, cfg)
	return s, cfg, err
}

// HostEnrollment asks for a host's enrollment: the host's name, its id
// ("" = the existing host of that name, or a new id), the directory to
// write and the etcd endpoints its agent is told (default: Root's).
type HostEnrollment struct {
	Name, HostID, Dir string
	AgentEndpoints    []string
}

// Enrolled is what an enrollment made.
type Enrolled struct{ HostID, HostName, EtcdUser string }

// EnrollHost registers a host (or finds it again) and writes its agent's
// enrollment directory, with a certificate signed by the data dir's etcd CA
// whose etcd user may write only that host's state.
func EnrollHost(ctx context.Context, root RootEtcd, dataDir string, h HostEnrollment, log *slog.Logger) (Enrolled, error) {
	ca, err := pki.LoadOrCreateCA(server.EtcdCADir(dataDir), server.EtcdCAName)
	if err != nil {
		return Enrolled{}, err
	}
	s, rootCfg, err := root.open(ctx, dataDir, log)
	if err != nil {
		return Enrolled{}, err
	}
	defer s.Close()
	endpoints := h.AgentEndpoints
	if len(endpoints) == 0 {
		endpoints = rootCfg.Endpoints
	}
	e, err := enrollHost(ctx, s, enrollRequest{Name: h.Name, HostID: h.HostID, CA: ca, CAFile: rootCfg.CAFile,
		Endpoints: endpoints, Dir: h.Dir})
	if err != nil {
		return Enrolled{}, err
	}
	// On an external cluster the agent's certificate comes from the data
	// dir's CA, which the members may not trust: say so now, not when the
	// agent starts on its host.
	if root.CAFile != "" {
		_, creds, err := readEnrollment(h.Dir)
		if err != nil {
			return Enrolled{}, err
		}
		as, err := nsdb.Open(ctx, nsdb.Config{Endpoints: rootCfg.Endpoints, Credentials: creds, NoTopology: true, Logger: log})
		if err != nil {
			return Enrolled{}, fmt.Errorf("host %s enrolled into %s, but etcd refuses its agent's certificate, issued by %s: make that the CA of the cluster's client certificates (its ca.crt and ca.key) or add it to the members' --trusted-ca-file, then enroll again: %w",
				e.HostName, h.Dir, ca.CertFile(), err)
		}
		as.Close()
	}
	return Enrolled{HostID: e.HostID, HostName: e.HostName, EtcdUser: e.EtcdUser}, nil
}

// UnenrollHost deletes the etcd user and role of the host ref (an id or a
// unique name): its agent's certificate opens nothing any more. It returns
// the host's id and the user revoked.
func UnenrollHost(ctx context.Context, root RootEtcd, dataDir, ref string, log *slog.Logger) (id, user string, err error) {
	s, _, err := root.open(ctx, dataDir, log)
	if err != nil {
		return "", "", err
	}
	defer s.Close()
	if id, err = hostByRef(ctx, s, ref); err != nil {
		return "", "", err
	}
	if err := s.RevokeHost(ctx, id); err != nil {
		return "", "", err
	}
	return id, nsdb.HostUser(id), nil
}

// upEnroll enrolls canopy up's own agent (keeping the host id its state dir
// has) and points acfg at the enrollment. Against an external etcd without
// TLS there is nothing to enroll: the agent connects as the server does.
func upEnroll(ctx context.Context, cfg *server.Config, rootCfg nsdb.Config, acfg *agent.Config) error {
	if rootCfg.CAFile == "" {
		acfg.Endpoints = rootCfg.Endpoints
		return nil
	}
	id, err := agent.HostID(acfg.StateDir)
	if err != nil {
		return err
	}
	name, err := os.Hostname()
	if err != nil {
		return err
	}
	ca, err := pki.LoadOrCreateCA(server.EtcdCADir(cfg.DataDir), server.EtcdCAName)
	if err != nil {
		return err
	}
	s, err := nsdb.Open(ctx, rootCfg)
	if err != nil {
		return err
	}
	defer s.Close()
	dir := filepath.Join(acfg.StateDir, "enrollment")
	if _, err := enrollHost(ctx, s, enrollRequest{Name: name, HostID: id, CA: ca, CAFile: rootCfg.CAFile,
		Endpoints: rootCfg.Endpoints, Dir: dir}); err != nil {
		return err
	}
	e, creds, err := readEnrollment(dir)
	if err != nil {
		return err
	}
	if e.HostID != id {
		return errors.New("enrollment: host id changed")
	}
	acfg.Endpoints, acfg.Etcd, acfg.HostName = e.EtcdEndpoints, creds, e.HostName
	return nil
}

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
