// Package server runs the server role of the canopy binary: the network
// state database (etcd, embedded unless an external cluster is named), the
// REST topology API in front of it, the EC2 endpoint and, while this server
// is the elected leader, the VPC→topology controller. It owns process lifecycle only; the API
// and the store live in their own packages. internal/role runs it (alone, or
// inside canopy up) with the logger it hands to every piece, the store
// included.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/canopy-sdn/canopy/internal/api"
	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/pki"
	"github.com/canopy-sdn/canopy/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// shutdownGrace bounds how long in-flight API requests may take to finish
// once a shutdown starts.
const shutdownGrace = 10 * time.Second

// Server is a configured, not yet running, server role.
type Server struct {
	cfg Config
	log *slog.Logger

	// Ready, if set, is called once the API listens, with its address and the
	// path of the admin token file (canopy up prints them).
	Ready func(addr, tokenFile string)
	// EC2Ready, if set, is called once the EC2 endpoint listens, with its
	// address.
	EC2Ready func(addr string)
}

// New returns a server for cfg, which must have passed Validate.
func New(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, log: log}
}

// TokenFile is where the admin token of a data dir lives.
func TokenFile(dataDir string) string { return filepath.Join(dataDir, "admin-token") }

// Run opens the store, serves the API and returns when ctx is cancelled (after
// a graceful shutdown) or when serving fails.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	scfg, err := cfg.StoreConfig()
	if err != nil {
		return fmt.Errorf("etcd credentials: %w", err)
	}
	scfg.Logger = s.log
	if cfg.Embedded() {
		s.log.Info("starting embedded etcd", "data_dir", scfg.DataDir, "client_url", cfg.EtcdClientURL, "peer_url", cfg.EtcdPeerURL)
	} else {
		s.log.Info("connecting to external etcd", "endpoints", cfg.EtcdEndpoints)
	}
	store, err := nsdb.Open(ctx, scfg)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := store.Close(); err != nil {
			s.log.Warn("closing store", "err", err)
		}
		s.log.Info("store closed")
	}()
	if !cfg.Embedded() && !scfg.EnableAuth {
		// The server left etcd's authentication to the operator (its
		// certificate is not root's): say so if it is off, since then
		// every enrolled agent's certificate can write anything.
		if on, known, err := store.AuthEnabled(ctx); err != nil {
			s.log.Warn("cannot tell whether etcd's authentication is on", "err", err)
		} else if known && !on {
			s.log.Warn("etcd's authentication is off and this server's certificate is not root's, so it cannot turn it on: " +
				"every client certificate the cluster trusts, an enrolled agent's too, can read and write everything; " +
				"turn it on (etcdctl auth enable) or give the server root's certificate (docs/operations.md)")
		}
	}
	// A store written before partitions existed gets its copies and index
	// keys once; agents following partitions need them.
	if err := store.IndexTopology(ctx); err != nil {
		return fmt.Errorf("index the topology: %w", err)
	}

	// The admin token and the EC2 key are the cloud's, not this server's:
	// the store keeps the first server's, and each server keeps a copy in
	// its data dir (where the CLI and canopy up read the token).
	token, err := api.EnsureAdminToken(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if token, err = store.SharedSecret(ctx, nsdb.SecretAdminToken, token); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := api.SetAdminToken(cfg.DataDir, token); err != nil {
		return err
	}

	// The EC2 endpoint is made before the REST API, which serves its
	// account admin (/accounts); it listens on its own address below.
	var accounts api.Accounts
	var ec2srv *ec2.Server
	if cfg.EC2.Enabled() {
		key, err := sharedEC2Key(ctx, store, cfg.DataDir)
		if err != nil {
			return fmt.Errorf("ec2 key: %w", err)
		}
		if ec2srv, err = ec2.Open(ctx, store, cfg.EC2, key, s.log); err != nil {
			return fmt.Errorf("ec2: %w", err)
		}
		defer ec2srv.Close()
		accounts = ec2srv
	}

	var tlsCfg *tls.Config
	if cfg.TLSCert != "" {
		if tlsCfg, err = pki.ServerTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
	}
	if cfg.PprofListen != "" {
		pctx, stopPprof := context.WithCancel(ctx)
		_, waitPprof, err := telemetry.ServePprof(pctx, cfg.PprofListen, s.log)
		if err != nil {
			stopPprof()
			return err
		}
		defer func() { stopPprof(); waitPprof() }()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// No answer streams; a cascading delete or a trace is the longest.
	srv := &http.Server{
		Handler:           api.New(store, api.Options{Token: token, Logger: s.log, Accounts: accounts, Metrics: telemetry.MetricsHandler(newRegistry(store))}),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			// Plain HTTP gets net/http's 400 and never reaches the API.
			serveErr <- srv.ServeTLS(ln, "", "")
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	if ec2srv != nil {
		ec2Ctx, stopEC2 := context.WithCancel(ctx)
		ec2Done := make(chan struct{})
		defer func() { stopEC2(); <-ec2Done }()
		go func() {
			defer close(ec2Done)
			// The REST API keeps serving if the EC2 endpoint cannot (a
			// taken --ec2-listen port, say): the error is logged loudly.
			if err := ec2srv.Serve(ec2Ctx, cfg.EC2Options(), s.EC2Ready); err != nil {
				s.log.Error("EC2 API stopped", "err", err)
			}
		}()
	}
	cloud, err := LoadCloudConfig(cfg.CloudConfig, cfg.EC2.PublicPool)
	if err != nil {
		return err
	}
	if ec2srv != nil {
		key, err := ec2.EnsureKey(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("ec2 key: %w", err)
		}
		osCtx, stopOS := context.WithCancel(ctx)
		waitOS := s.startOpenStack(osCtx, ec2srv, key, token, cloud.VMMTU(), tlsCfg)
		defer func() { stopOS(); waitOS() }()
	}
	ctlCtx, stopCtl := context.WithCancel(ctx)
	ctlDone := make(chan struct{})
	defer func() { stopCtl(); <-ctlDone }()
	go func() {
		defer close(ctlDone)
		runController(ctlCtx, store, cloud, controller.LifecycleConfig{Recovery: cfg.InstanceRecovery}, s.log)
	}()
	addr := ln.Addr().String()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	s.log.Info("REST API listening", "url", scheme+"://"+addr, "token_file", TokenFile(cfg.DataDir))
	if tlsCfg == nil && !isLoopback(ln.Addr()) {
		s.log.Warn("the REST API serves plain HTTP beyond this machine: its token travels in clear text; give --tls-cert and --tls-key", "addr", addr)
	}
	if s.Ready != nil {
		s.Ready(addr, TokenFile(cfg.DataDir))
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("API shutdown", "err", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// isLoopback reports whether a listener's address is a loopback one.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// newRegistry is the server's /metrics: the Go runtime and process metrics,
// and whether the store answers (probed at each scrape).
func newRegistry(store *nsdb.Store) *prometheus.Registry {
	reg := telemetry.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "canopy_server", Name: "store_up",
		Help: "1 if the network state database (etcd) answered a linearizable read at this scrape, 0 if not (no quorum, no leader, unreachable).",
	}, func() float64 {
		if store.Health(context.Background()) != nil {
			return 0
		}
		return 1
	}))
	return reg
}

// sharedEC2Key is the cloud's EC2 key: the store's, proposed from this
// server's data dir (made there on first start) and written back to it.
func sharedEC2Key(ctx context.Context, store *nsdb.Store, dataDir string) ([]byte, error) {
	local, err := ec2.EnsureKey(dataDir)
	if err != nil {
		return nil, err
	}
	v, err := store.SharedSecret(ctx, nsdb.SecretEC2Key, ec2.FormatKey(local))
	if err != nil {
		return nil, err
	}
	key, err := ec2.ParseKey(v)
	if err != nil {
		return nil, fmt.Errorf("the store's: %w", err)
	}
	return key, ec2.WriteKey(dataDir, key)
}
