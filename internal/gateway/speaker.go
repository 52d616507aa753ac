package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Settings is what a gateway host's speaker should be: the edge router's
// BGP settings restricted to the peers this host's uplinks reach.
type Settings struct {
	ASN      uint32
	RouterID netip.Addr
	// Local are the addresses of this host's uplinks: the speaker listens
	// on them and speaks to each peer from the one on the peer's network.
	Local []netip.Prefix
	Peers []Peer
	// Networks are advertised to every peer, with the uplink's address as
	// next hop (eBGP next-hop-self).
	Networks []netip.Prefix
}

// Peer is one BGP neighbour. Zero timers take the defaults.
type Peer struct {
	Address      netip.Addr
	ASN          uint32
	Local        netip.Addr // this host's uplink address on the peer's network
	HoldTime     time.Duration
	KeepAlive    time.Duration
	ConnectRetry time.Duration
	Password     string
	BFD          BFD
}

// BFD is a peer's BFD session (RFC 5880/5881 single hop); off when
// Multiplier is 0.
type BFD struct {
	MinTx, MinRx time.Duration
	Multiplier   uint32
}

// DefaultConnectRetry replaces GoBGP's 120 s: a gateway whose peer was not
// up yet should not wait two minutes to try again.
const DefaultConnectRetry = 5 * time.Second

// Route is a route learned from a peer: Prefix via NextHop.
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	Peer    netip.Addr
}

// Session is one peer's session state.
type Session struct {
	Peer     netip.Addr
	PeerASN  uint32
	Local    netip.Addr
	State    string // idle, connect, active, opensent, openconfirm, established
	BFD      string // "", down, init, up, admin_down
	Received int
	Since    time.Time
}

// Restart is a speaker's graceful restart (RFC 4724) with every peer.
type Restart struct {
	// Time is the restart time announced to the peers: how long they keep
	// this speaker's routes (stale, still used) after its sessions drop
	// without a NOTIFICATION (StopGraceful). 0 turns graceful restart off.
	Time time.Duration
	// Restarting says this speaker comes back from a graceful stop: its
	// OPEN carries the Restart State bit and the Forwarding State bit for
	// IPv4 unicast (the peers keep the stale routes until its End-of-RIB),
	// and it sends its routes once it has the peers' End-of-RIB.
	Restarting bool
}

// Speaker is the BGP speaker of one gateway host: GoBGP embedded, fed
// Settings (Apply), reporting what it learned and how its sessions stand
// through Config.OnChange. One goroutine (Start/Stop) follows GoBGP's
// events; Apply may be called from any goroutine.
type Speaker struct {
	log      *slog.Logger
	onChange func(learned []Route, sessions []Session)
	restart  Restart

	mu    sync.Mutex // guards everything below and serializes Apply
	bgp   *server.BgpServer
	cur   Settings
	peers map[netip.Addr]Peer
	paths map[netip.Prefix]struct{}
	wctx  context.Context // the event watch of the current server
	wstop context.CancelFunc

	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewSpeaker returns a stopped speaker. onChange is called from the
// speaker's goroutine with every change of the learned routes or sessions.
func NewSpeaker(log *slog.Logger, restart Restart, onChange func(learned []Route, sessions []Session)) *Speaker {
	if log == nil {
		log = slog.Default()
	}
	return &Speaker{log: log.With("component", "bgp"), onChange: onChange, restart: restart, kick: make(chan struct{}, 1),
		peers: map[netip.Addr]Peer{}, paths: map[netip.Prefix]struct{}{}}
}

// Start runs the goroutine that reports changes, until Stop or ctx ends.
func (s *Speaker) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() { s.run(ctx) })
}

// Stop stops GoBGP (its sessions close with a notification) and the
// speaker's goroutine, and waits for them.
func (s *Speaker) Stop() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.mu.Lock()
	s.stopServer()
	s.mu.Unlock()
}

// StopGraceful stops like Stop, but closes the sessions without a
// NOTIFICATION, so peers that agreed to graceful restart keep this
// speaker's routes for the restart time (RFC 4724): for a planned restart.
// Without graceful restart it is Stop.
func (s *Speaker) StopGraceful() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bgp != nil && s.restart.Time > 0 {
		if err := s.bgp.StopBgp(context.Background(), &api.StopBgpRequest{AllowGracefulRestart: true}); err != nil {
			s.log.Warn("bgp: graceful stop", "err", err)
		}
		s.log.Info("bgp: stopped for a graceful restart", "restart_time", s.restart.Time)
	}
	s.stopServer()
}

func (s *Speaker) stopServer() {
	if s.bgp == nil {
		return
	}
	s.wstop()
	s.bgp.Stop() // after StopGraceful's StopBgp, only the BFD server is left to stop
	s.bgp = nil
	s.restart.Restarting = false // a speaker restarted in-process is no graceful restart
	s.cur = Settings{}
	clear(s.peers)
	clear(s.paths)
}

func (s *Speaker) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Apply makes the speaker match st: GoBGP is (re)started when the ASN,
// router id or listen addresses change; peers and advertised networks are
// added, changed and removed one by one otherwise, so a session survives a
// change that does not concern it.
func (s *Speaker) Apply(st Settings) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.poke()
	if s.bgp != nil && (st.ASN != s.cur.ASN || st.RouterID != s.cur.RouterID || !slices.Equal(st.Local, s.cur.Local)) {
		s.log.Info("bgp: restarting the speaker", "asn", st.ASN, "router_id", st.RouterID)
		s.stopServer()
	}
	if s.bgp == nil {
		if err := s.startServer(st); err != nil {
			return err
		}
	}
	s.cur = st
	var errs []error
	want := map[netip.Addr]Peer{}
	for _, p := range st.Peers {
		want[p.Address] = p
	}
	for a, old := range s.peers {
		if p, ok := want[a]; ok && p == old {
			continue
		}
		if err := s.bgp.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("delete peer %s: %w", a, err))
			continue
		}
		delete(s.peers, a)
		s.log.Info("bgp: peer removed", "peer", a)
	}
	for a, p := range want {
		if _, ok := s.peers[a]; ok {
			continue
		}
		if err := s.bgp.AddPeer(context.Background(), &api.AddPeerRequest{Peer: apiPeer(p, s.restart)}); err != nil {
			errs = append(errs, fmt.Errorf("add peer %s: %w", a, err))
			continue
		}
		s.peers[a] = p
		s.log.Info("bgp: peer added", "peer", a, "peer_asn", p.ASN, "local", p.Local, "bfd", p.BFD.Multiplier > 0)
	}
	nets := map[netip.Prefix]struct{}{}
	for _, n := range st.Networks {
		nets[n.Masked()] = struct{}{}
	}
	for n := range s.paths {
		if _, ok := nets[n]; ok {
			continue
		}
		if err := s.bgp.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{localPath(n)}}); err != nil {
			errs = append(errs, fmt.Errorf("withdraw %s: %w", n, err))
			continue
		}
		delete(s.paths, n)
	}
	for n := range nets {
		if _, ok := s.paths[n]; ok {
			continue
		}
		if _, err := s.bgp.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{localPath(n)}}); err != nil {
			errs = append(errs, fmt.Errorf("advertise %s: %w", n, err))
			continue
		}
		s.paths[n] = struct{}{}
	}
	return errors.Join(errs...)
}

func (s *Speaker) startServer(st Settings) error {
	srv := server.NewBgpServer(server.LoggerOption(s.log, nil))
	go srv.Serve() // GoBGP's own loop; Stop ends it
	var listen []string
	for _, l := range st.Local {
		listen = append(listen, l.Addr().String())
	}
	err := srv.StartBgp(context.Background(), &api.StartBgpRequest{Global: &api.Global{
		Asn: st.ASN, RouterId: st.RouterID.String(), ListenPort: 179, ListenAddresses: listen,
	}})
	if err != nil {
		srv.Stop()
		return fmt.Errorf("start bgp (asn %d, router id %s, listening on %v): %w", st.ASN, st.RouterID, listen, err)
	}
	if err := exportOwnOnly(srv); err != nil {
		srv.Stop()
		return err
	}
	wctx, wstop := context.WithCancel(context.Background())
	cb := func() { s.poke() }
	err = srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(*apiutil.WatchEventMessage_PeerEvent, time.Time) { cb() },
		OnBestPath:   func([]*apiutil.Path, time.Time) { cb() },
		OnPathUpdate: func([]*apiutil.Path, time.Time) { cb() },
	}, server.WatchPeer(), server.WatchBestPath(false), server.WatchPostUpdate(false, "", ""))
	if err != nil {
		wstop()
		srv.Stop()
		return fmt.Errorf("watch bgp events: %w", err)
	}
	s.bgp, s.wctx, s.wstop = srv, wctx, wstop
	s.log.Info("bgp: speaker started", "asn", st.ASN, "router_id", st.RouterID, "listen", listen)
	return nil
}

// exportOwnOnly makes the speaker advertise only the routes it
// originates (the public pools or addresses, AddPath): GoBGP would
// otherwise pass a route learned from one peer on to the others, and a
// gateway with two upstreams (two providers' routers) would offer each
// the other's default route, making the cloud a transit between them.
func exportOwnOnly(srv *server.BgpServer) error {
	const name = "canopy-own-routes-only"
	ctx := context.Background()
	err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: name, Statements: []*api.Statement{{
		Name:       name,
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT},
	}}}})
	if err == nil {
		err = srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT, Policies: []*api.Policy{{Name: name}},
			DefaultAction: api.RouteAction_ROUTE_ACTION_REJECT,
		}})
	}
	if err != nil {
		return fmt.Errorf("bgp export policy: %w", err)
	}
	return nil
}

// localPath is the path advertising n; eBGP rewrites the next hop to the
// session's local address (the uplink's).
func localPath(n netip.Prefix) *apiutil.Path {
	nlri, _ := bgp.NewIPAddrPrefix(n)
	nh, _ := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
	return &apiutil.Path{Family: bgp.RF_IPv4_UC, Nlri: nlri,
		Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nh}}
}

func apiPeer(p Peer, gr Restart) *api.Peer {
	retry := cmp.Or(p.ConnectRetry, DefaultConnectRetry)
	ap := &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
		Transport: &api.Transport{LocalAddress: p.Local.String()},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: uint64(retry / time.Second), HoldTime: uint64(p.HoldTime / time.Second),
			KeepaliveInterval: uint64(p.KeepAlive / time.Second),
			// Re-establish at once after a reset (BFD down, a flap).
			IdleHoldTimeAfterReset: 1,
		}},
	}
	if gr.Time > 0 {
		ap.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(gr.Time / time.Second),
			LocalRestarting: gr.Restarting}
		ap.AfiSafis = []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
		}}
	}
	if p.BFD.Multiplier > 0 {
		ap.Bfd = &api.BfdPeerConfig{Enabled: true,
			DesiredMinimumTxInterval: uint32(p.BFD.MinTx / time.Microsecond),
			RequiredMinimumReceive:   uint32(p.BFD.MinRx / time.Microsecond),
			DetectionMultiplier:      p.BFD.Multiplier}
	}
	return ap
}

// run reports the learned routes and the sessions after every burst of
// GoBGP events (and once a second, for the sessions' counters and timers).
func (s *Speaker) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastRoutes []Route
	var lastSessions []Session
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		routes, sessions := s.snapshot()
		if first || !slices.Equal(routes, lastRoutes) || !slices.Equal(sessions, lastSessions) {
			first = false
			lastRoutes, lastSessions = routes, sessions
			if s.onChange != nil {
				s.onChange(routes, sessions)
			}
		}
	}
}

// snapshot reads the routes learned from peers and the sessions.
func (s *Speaker) snapshot() ([]Route, []Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bgp == nil {
		return nil, nil
	}
	var routes []Route
	_ = s.bgp.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: bgp.RF_IPv4_UC},
		func(nlri bgp.NLRI, paths []*apiutil.Path) {
			pfx, ok := nlri.(*bgp.IPAddrPrefix)
			if !ok {
				return
			}
			for _, p := range paths {
				if !p.PeerAddress.IsValid() || p.Withdrawal || p.IsNexthopInvalid || p.Filtered {
					continue // ours, or unusable
				}
				nh := nextHop(p)
				if !nh.IsValid() {
					continue
				}
				routes = append(routes, Route{Prefix: pfx.Prefix, NextHop: nh, Peer: p.PeerAddress})
			}
		})
	slices.SortFunc(routes, func(a, b Route) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
			a.NextHop.Compare(b.NextHop), a.Peer.Compare(b.Peer))
	})
	var sessions []Session
	_ = s.bgp.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: false}, func(p *api.Peer) {
		se := Session{}
		if p.State != nil {
			se.Peer, _ = netip.ParseAddr(p.State.NeighborAddress)
			se.PeerASN = p.State.PeerAsn
			se.State = sessionState(p.State.SessionState)
			if b := p.State.BfdState; b != nil {
				se.BFD = strings.ToLower(strings.TrimPrefix(b.SessionState.String(), "BFD_SESSION_STATE_"))
			}
		}
		if p.Transport != nil {
			se.Local, _ = netip.ParseAddr(p.Transport.LocalAddress)
		}
		if p.Timers != nil && p.Timers.State != nil {
			ts := p.Timers.State.Uptime
			if se.State != "established" {
				ts = p.Timers.State.Downtime
			}
			if ts != nil && ts.Seconds > 0 {
				se.Since = ts.AsTime().UTC()
			}
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				se.Received += int(af.State.Received)
			}
		}
		sessions = append(sessions, se)
	})
	slices.SortFunc(sessions, func(a, b Session) int { return a.Peer.Compare(b.Peer) })
	return routes, sessions
}

func sessionState(st api.PeerState_SessionState) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "SESSION_STATE_"))
}

func nextHop(p *apiutil.Path) netip.Addr {
	for _, a := range p.Attrs {
		switch v := a.(type) {
		case *bgp.PathAttributeNextHop:
			return v.Value
		case *bgp.PathAttributeMpReachNLRI:
			return v.Nexthop
		}
	}
	return netip.Addr{}
}
