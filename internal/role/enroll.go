package role

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/server"
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
	return Enrolled{HostID: e.HostID, HostName: e.HostName, EtcdUser: e.EtcdUser}, err
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
