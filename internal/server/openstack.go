package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"

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
			if err := ec2.ServeListener(ctx, ln, h(ln), tlsCfg, s.log); err != nil {
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
