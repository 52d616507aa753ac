package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/keystone"
	"github.com/canopy-sdn/canopy/internal/neutron"
)

// startOpenStack serves the Neutron and Keystone endpoints over the EC2
// endpoint's accounts and objects until ctx is done; the returned function
// waits for them to stop. Like the EC2 endpoint, a listener that cannot
// open is logged loudly and the rest of the server keeps serving.
func (s *Server) startOpenStack(ctx context.Context, ec2srv *ec2.Server, key []byte, adminToken string, mtu int, tlsCfg *tls.Config) (wait func()) {
	cfg := s.cfg
	if cfg.NeutronListen == "off" && cfg.KeystoneListen == "off" {
		return func() {}
	}
	signer := keystone.NewSigner(key, nil)
	var done []chan struct{}
	serve := func(name, addr string, h func(ln net.Listener) http.Handler) string {
		if addr == "off" {
			return ""
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.log.Error(name+" API not started", "addr", addr, "err", err)
			return ""
		}
		ch := make(chan struct{})
		done = append(done, ch)
		go func() {
			defer close(ch)
			if err := serveHTTP(ctx, ln, h(ln), tlsCfg, s.log); err != nil {
				s.log.Error(name+" API stopped", "err", err)
			}
		}()
		scheme := "http"
		if tlsCfg != nil {
			scheme = "https"
		}
		s.log.Info(name+" API listening", "url", scheme+"://"+ln.Addr().String())
		return ln.Addr().String()
	}
	neutronAddr := serve("Neutron", cfg.NeutronListen, func(net.Listener) http.Handler {
		return neutron.New(neutron.Config{EC2: ec2srv, Signer: signer, MTU: mtu, Logger: s.log})
	})
	serve("Keystone", cfg.KeystoneListen, func(net.Listener) http.Handler {
		kc := keystone.Config{Accounts: ec2srv, Signer: signer, AdminToken: adminToken, Logger: s.log}
		if neutronAddr != "" {
			_, port, _ := net.SplitHostPort(neutronAddr)
			kc.NetworkURL = func(host string) string {
				scheme := "http"
				if tlsCfg != nil {
					scheme = "https"
				}
				return scheme + "://" + keystone.HostPort(host, port) + "/"
			}
		}
		return keystone.New(kc)
	})
	return func() {
		for _, ch := range done {
			<-ch
		}
	}
}

// serveHTTP serves h on ln (HTTPS when tlsCfg is set) until ctx is done,
// with the timeouts every API listener has.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) error {
	hs := &http.Server{Handler: h, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
