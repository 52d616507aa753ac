package agent

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/gateway"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/prometheus/client_golang/prometheus"
)

// The gateway role (DESIGN.md §8). A host holding an uplink of a router
// with BGP settings (the edge router, from the cloud config) runs one BGP
// speaker (package gateway, GoBGP embedded). Its sockets need an address on
// the physical network: each uplink gets a speaker port, a TAP in this
// host's namespace carrying the uplink's address and MAC, and the agent
// relays between the uplink and it the frames that are the speaker's
// (gateway.Claim: BGP, BFD, ARP replies to it) — everything else on the
// uplink is simulated as before. What the speaker learns is published as
// this host's state (nsdb.PutBGPRoutes, bound to the lease); the controller
// makes edge routes of it, which every agent then simulates.

// gatewayHost is the agent's gateway role; its zero value is idle.
type gatewayHost struct {
	// relay is read by the packet path: uplink port id → its speaker port.
	relay atomic.Pointer[map[string]*speakerPort]

	mu     sync.Mutex
	want   *gatewayWant // latest desired state (from the topology)
	kick   chan struct{}
	routes []gateway.Route
	sess   []gateway.Session
	// staleUntil: routes are the ones learned before a graceful restart,
	// kept until the speaker learns again or the restart time is over.
	staleUntil time.Time
	// Bumped by every change of what is published: the learned routes,
	// and the status (sessions, the settings applied).
	routesGen, statusGen uint64
	drained              bool // the operator drained this host (nsdb.SetGatewayDrain)
	// uplinks are the router ports bound on this host, BGP or not (static
	// and proxy-ARP gateways too): their up/down is on /metrics.
	uplinks []uplinkRef
	// stop asks runGateway for the planned stop (gatewaystop.go); it
	// closes stopped when done.
	stop, stopped chan struct{}
}

// uplinkRef is a router port bound to an interface of this host.
type uplinkRef struct{ port, iface string }

// uplinksOf lists the router ports bound to interfaces of hostID, by port id.
func uplinksOf(x *topology.Index, hostID string) []uplinkRef {
	var out []uplinkRef
	for _, ref := range x.Referrers(topology.KindHost, hostID) {
		if ref.Kind != topology.KindPort {
			continue
		}
		if p, _ := x.Get(topology.KindPort, ref.ID).(*topology.Port); p != nil && p.Interface != "" && p.DeviceKind == topology.KindRouter {
			out = append(out, uplinkRef{port: p.ID, iface: p.Interface})
		}
	}
	slices.SortFunc(out, func(a, b uplinkRef) int { return cmp.Compare(a.port, b.port) })
	return out
}

// speakerPort is one uplink's speaker port with the uplink's address.
type speakerPort struct {
	uplink string
	addr   uint32
	port   *gateway.Port
	done   chan struct{}
}

// gatewayWant is what this host's gateway role should be; nil: none.
type gatewayWant struct {
	settings gateway.Settings
	uplinks  []uplinkWant
	others   []string // the other hosts with uplinks of the router
}

type uplinkWant struct {
	port  string // uplink port id
	iface string
	mac   topology.MAC
	addr  netip.Prefix
	peers []netip.Addr
}

// wantGateway computes, from the topology, this host's gateway role: the
// uplinks bound here of the first router (by id) that has BGP settings,
// the peers on their networks, and what to advertise.
func wantGateway(x *topology.Index, hostID string) *gatewayWant {
	byRouter := map[string][]*topology.Port{}
	for _, ref := range x.Referrers(topology.KindHost, hostID) {
		if ref.Kind != topology.KindPort {
			continue
		}
		p, _ := x.Get(topology.KindPort, ref.ID).(*topology.Port)
		if p == nil || p.Interface == "" || p.DeviceKind != topology.KindRouter || !p.Address.IsValid() {
			continue
		}
		if r, _ := x.Get(topology.KindRouter, p.DeviceID).(*topology.Router); r != nil && r.BGP != nil {
			byRouter[r.ID] = append(byRouter[r.ID], p)
		}
	}
	if len(byRouter) == 0 {
		return nil
	}
	ids := make([]string, 0, len(byRouter))
	for id := range byRouter {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	r := x.Get(topology.KindRouter, ids[0]).(*topology.Router)
	ports := byRouter[r.ID]
	slices.SortFunc(ports, func(a, b *topology.Port) int { return cmp.Compare(a.ID, b.ID) })
	w := &gatewayWant{settings: gateway.Settings{ASN: r.BGP.ASN, Networks: advertised(x, r)}}
	for _, ref := range x.Referrers(topology.KindRouter, r.ID) {
		if p, _ := x.Get(topology.KindPort, ref.ID).(*topology.Port); ref.Kind == topology.KindPort && p != nil &&
			p.HostID != "" && p.HostID != hostID && p.Interface != "" && !slices.Contains(w.others, p.HostID) {
			w.others = append(w.others, p.HostID)
		}
	}
	slices.Sort(w.others)
	for _, p := range ports {
		u := uplinkWant{port: p.ID, iface: p.Interface, mac: p.MAC, addr: p.Address}
		for _, bp := range r.BGP.Peers {
			if !p.Address.Masked().Contains(bp.Address) || bp.Address == p.Address.Addr() {
				continue
			}
			u.peers = append(u.peers, bp.Address)
			peer := gateway.Peer{
				Address: bp.Address, ASN: bp.ASN, Local: p.Address.Addr(), Password: bp.Password,
				HoldTime: time.Duration(bp.HoldTime) * time.Second, KeepAlive: time.Duration(bp.KeepAlive) * time.Second,
				ConnectRetry: time.Duration(bp.ConnectRetry) * time.Second,
			}
			if bp.BFD != nil {
				b := bp.BFD.Effective()
				peer.BFD = gateway.BFD{MinTx: time.Duration(b.MinTxMS) * time.Millisecond,
					MinRx: time.Duration(b.MinRxMS) * time.Millisecond, Multiplier: uint32(b.Multiplier)}
			}
			w.settings.Peers = append(w.settings.Peers, peer)
		}
		w.settings.Local = append(w.settings.Local, p.Address)
		w.uplinks = append(w.uplinks, u)
	}
	// Each gateway host needs a router id of its own: the configured one
	// if it is this host's, else the first uplink's address.
	w.settings.RouterID = ports[0].Address.Addr()
	for _, p := range ports {
		if p.Address.Addr() == r.BGP.RouterID {
			w.settings.RouterID = r.BGP.RouterID
		}
	}
	return w
}

// advertised is what r's speakers advertise: its networks, or with
// HostRoutes each /32 inside them that r routes (an assigned elastic IP or
// NAT gateway address), sorted.
func advertised(x *topology.Index, r *topology.Router) []netip.Prefix {
	if !r.BGP.HostRoutes {
		return slices.Clone(r.BGP.Networks)
	}
	var out []netip.Prefix
	for _, ref := range x.Referrers(topology.KindRouter, r.ID) {
		if ref.Kind != topology.KindRoute {
			continue
		}
		rt, _ := x.Get(topology.KindRoute, ref.ID).(*topology.Route)
		if rt == nil || rt.Type != topology.RouteNormal || rt.Learned || rt.DstPrefix.Bits() != 32 {
			continue
		}
		for _, n := range r.BGP.Networks {
			if n.Contains(rt.DstPrefix.Addr()) {
				out = append(out, rt.DstPrefix)
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return slices.Compact(out)
}

// setGateway records the desired gateway role and this host's uplinks
// (after every snapshot).
func (a *Agent) setGateway(w *gatewayWant, uplinks []uplinkRef) {
	g := &a.gw
	g.mu.Lock()
	g.want, g.uplinks = w, uplinks
	kick := g.kick
	g.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// isUplink reports whether iface is the interface of an uplink bound here.
func (a *Agent) isUplink(iface string) bool {
	g := &a.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, u := range g.uplinks {
		if u.iface == iface {
			return true
		}
	}
	return false
}

// gatewayStatusChanged has the gateway's status published again (an
// uplink's carrier changed).
func (a *Agent) gatewayStatusChanged() {
	g := &a.gw
	g.mu.Lock()
	g.statusGen++
	kick := g.kick
	g.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// uplinkUp reports whether an uplink is up: plugged into the datapath and
// its interface with carrier.
func (a *Agent) uplinkUp(u uplinkRef) bool { return a.plugged(u.port) && a.carrier.has(u.iface) }

// toSpeaker hands a frame from an uplink to its speaker port when it is
// the speaker's; it reports whether the simulation is done with it.
func (a *Agent) toSpeaker(vp *vport, frame []byte, hdr datapath.VnetHdr, pkt *packet.Packet) bool {
	m := a.gw.relay.Load()
	if m == nil {
		return false
	}
	sp := (*m)[vp.id]
	if sp == nil {
		return false
	}
	speaker, simulate := gateway.Claim(pkt, sp.addr)
	if speaker {
		var one [1]datapath.Packet
		one[0] = datapath.Packet{Buf: frame, N: len(frame), Hdr: hdr}
		_, _ = sp.port.WriteBatch(one[:])
	}
	return !simulate
}

// runGateway keeps the gateway role in step with the topology until ctx
// ends: speaker ports, the speaker's settings, and the publication of what
// it learned and how its sessions stand.
func (a *Agent) runGateway(ctx context.Context) {
	g := &a.gw
	kick := make(chan struct{}, 1)
	g.mu.Lock()
	g.kick = kick
	g.mu.Unlock()
	kick <- struct{}{}

	kickNow := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	a.wg.Go(func() {
		_ = a.store.WatchGatewayDrains(ctx, func(m map[string]bool) {
			g.mu.Lock()
			if g.drained != m[a.hostID] {
				g.drained = m[a.hostID]
				g.routesGen++
				g.statusGen++
				a.log.Info("agent: gateway drain", "drained", g.drained)
			}
			g.mu.Unlock()
			kickNow()
		})
	})
	var sp *gateway.Speaker
	ports := map[string]*speakerPort{}
	a.m.reg.MustRegister(&gatewayCollector{a: a})
	defer func() {
		if sp != nil {
			sp.Stop()
		}
		g.relay.Store(nil)
		for _, p := range ports {
			p.close()
		}
	}()
	var pub gatewayPub
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	var applied *gatewayWant
	restart, learned := a.bgpRestart()
	if restart.Restarting && len(learned) > 0 {
		// Back from a graceful stop: the routes learned before it are
		// published again at once, as the forwarding state a restarting
		// speaker keeps (RFC 4724), until the peers send them again.
		g.mu.Lock()
		g.routes, g.staleUntil = learned, time.Now().Add(restart.Time)
		g.routesGen++
		g.mu.Unlock()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.stop:
			a.stopGatewayRole(sp, applied)
			sp = nil
			return
		case <-kick:
		case <-retry.C:
		}
		g.mu.Lock()
		w, drained := g.want, g.drained
		g.mu.Unlock()
		// Just started: no speaker until the peers have had time to send
		// this host the connection state it must hold (the retry tick
		// comes back). Not a speaker advertising nothing: back from a
		// graceful restart, its End-of-RIB would end the peers' stale
		// routes through this host.
		wait := w != nil && sp == nil && !a.live.synced()
		if w != nil && drained {
			// Drained: the same sessions, nothing advertised.
			d := *w
			d.settings.Networks = nil
			w = &d
		}

		if !wait && (!reflect.DeepEqual(w, applied) || w == nil && sp != nil) {
			ok := a.applyPorts(w, ports)
			switch {
			case w == nil && sp != nil:
				sp.Stop()
				sp = nil
				g.mu.Lock()
				g.routes, g.sess = nil, nil
				g.routesGen++
				g.statusGen++
				g.mu.Unlock()
				a.log.Info("agent: gateway role off")
			case w != nil:
				if sp == nil {
					sp = gateway.NewSpeaker(a.log, restart, func(routes []gateway.Route, sessions []gateway.Session) {
						g.mu.Lock()
						if len(routes) == 0 && time.Now().Before(g.staleUntil) {
							routes = g.routes // the stale routes until the peers send theirs
						} else {
							g.staleUntil = time.Time{}
						}
						if !slices.Equal(routes, g.routes) {
							g.routesGen++
						}
						g.routes, g.sess = routes, sessions
						g.statusGen++
						g.mu.Unlock()
						select {
						case kick <- struct{}{}:
						default:
						}
					})
					sp.Start(ctx)
					a.log.Info("agent: gateway role on", "uplinks", len(w.uplinks), "peers", len(w.settings.Peers))
				}
				if err := sp.Apply(w.settings); err != nil {
					a.log.Warn("agent: bgp settings not applied, will retry", "err", err)
					ok = false
				}
			}
			if ok {
				applied = w
			}
			g.mu.Lock()
			g.statusGen++ // what it advertises
			g.mu.Unlock()
		}

		// Publish what the speaker learned at once, and its status at most
		// every statusInterval, bound to the current lease (again whenever
		// the lease is replaced). A failed write is retried at the next
		// tick.
		a.leaseMu.Lock()
		lease := a.lease
		a.leaseMu.Unlock()
		g.mu.Lock()
		routes, sessions, rgen, sgen := g.routes, g.sess, g.routesGen, g.statusGen
		g.mu.Unlock()
		pubRoutes := routes
		if drained {
			pubRoutes = nil // the other gateways carry the outbound traffic
		}
		if lease == nil || sp == nil && (pub.lease == nil && len(routes) == 0 || w == nil && len(routes) > 0) {
			// No lease yet, or never a gateway: nothing to publish. Or the
			// routes kept from before a graceful restart, with the
			// gateway's role not known yet: not a withdrawal.
			continue
		}
		if lease != pub.lease {
			pub = gatewayPub{lease: lease}
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if rgen != pub.routes || !pub.routesOK {
			if err := a.publishRoutes(pctx, w, pubRoutes, lease); err != nil {
				a.log.Warn("agent: publishing learned routes, will retry", "err", err)
			} else {
				pub.routes, pub.routesOK = rgen, true
			}
		}
		if (sgen != pub.status || !pub.statusOK) && time.Since(pub.at) >= statusInterval {
			st := a.gatewayStatus(w, routes, sessions)
			st.Drained = drained
			if err := a.store.PutGatewayStatus(pctx, a.hostID, st, lease); err != nil {
				a.log.Warn("agent: publishing the gateway status, will retry", "err", err)
			} else {
				pub.status, pub.statusOK, pub.at = sgen, true, time.Now()
			}
		}
		cancel()
	}
}

// statusInterval spaces the writes of a gateway's status (a burst of
// topology changes, each changing what it advertises, is one write).
const statusInterval = 250 * time.Millisecond

// gatewayPub is what runGateway last wrote under lease.
type gatewayPub struct {
	lease              *nsdb.Lease
	routes, status     uint64 // generations written
	routesOK, statusOK bool
	at                 time.Time // of the last status write
}

// maxStatusPrefixes bounds the advertised prefixes a status lists (it has
// their count too): 10,000 elastic IPs as /32s are not for a status key.
const maxStatusPrefixes = 256

func (a *Agent) publishRoutes(ctx context.Context, w *gatewayWant, routes []gateway.Route, lease *nsdb.Lease) error {
	var rs []nsdb.BGPRoute
	for _, r := range routes {
		rs = append(rs, nsdb.BGPRoute{Prefix: r.Prefix, NextHop: r.NextHop, Peer: r.Peer})
	}
	if w == nil {
		rs = nil // the role is off: withdraw
	}
	return a.store.PutBGPRoutes(ctx, a.hostID, rs, lease)
}

func (a *Agent) gatewayStatus(w *gatewayWant, routes []gateway.Route, sessions []gateway.Session) nsdb.GatewayStatus {
	st := nsdb.GatewayStatus{Sessions: []nsdb.BGPSession{}, Advertised: []netip.Prefix{}, Uplinks: []nsdb.UplinkStatus{}}
	if w == nil {
		return st
	}
	st.Learned = len(routes)
	st.ASN, st.RouterID = w.settings.ASN, w.settings.RouterID
	st.AdvertisedCount = len(w.settings.Networks)
	st.Advertised = w.settings.Networks[:min(len(w.settings.Networks), maxStatusPrefixes)]
	for _, u := range w.uplinks {
		st.Uplinks = append(st.Uplinks, nsdb.UplinkStatus{Port: u.port, Interface: u.iface, Address: u.addr, Up: a.uplinkUp(uplinkRef{port: u.port, iface: u.iface})})
	}
	for _, s := range sessions {
		bs := nsdb.BGPSession{Peer: s.Peer, PeerASN: s.PeerASN, Local: s.Local, State: s.State, BFD: s.BFD, Received: s.Received}
		if !s.Since.IsZero() {
			bs.Since = s.Since.Format(time.RFC3339)
		}
		st.Sessions = append(st.Sessions, bs)
	}
	return st
}

// applyPorts makes the speaker ports match w and publishes the relay map;
// it reports whether every port is in place.
func (a *Agent) applyPorts(w *gatewayWant, ports map[string]*speakerPort) bool {
	want := map[string]uplinkWant{}
	if w != nil {
		for _, u := range w.uplinks {
			want[u.port] = u
		}
	}
	ok := true
	for id, p := range ports {
		if u, keep := want[id]; !keep || u.addr != p.port.Addr() {
			p.close()
			delete(ports, id)
		}
	}
	for id, u := range want {
		if p := ports[id]; p != nil {
			if err := p.port.SetPeers(u.peers); err != nil {
				a.log.Warn("agent: speaker port routes", "port_id", id, "err", err)
				ok = false
			}
			continue
		}
		mac := net.HardwareAddr(u.mac[:])
		port, err := gateway.OpenPort(gateway.PortName(id), mac, u.addr, u.peers)
		if err != nil {
			a.log.Warn("agent: cannot open the speaker port, will retry", "port_id", id, "err", err)
			ok = false
			continue
		}
		p := &speakerPort{uplink: id, addr: packet.U32(u.addr.Addr()), port: port, done: make(chan struct{})}
		ports[id] = p
		a.wg.Go(func() { a.fromSpeaker(p) })
		a.log.Info("agent: speaker port up", "port_id", id, "device", port.Name(), "address", u.addr.Addr())
	}
	if len(ports) == 0 {
		a.gw.relay.Store(nil) // the packet path's check stays a nil test
		return ok
	}
	m := make(map[string]*speakerPort, len(ports))
	for id, p := range ports {
		m[id] = p
	}
	a.gw.relay.Store(&m)
	return ok
}

func (p *speakerPort) close() {
	p.port.Close()
	<-p.done
}

// fromSpeaker sends what the speaker's stack emits out of the uplink.
func (a *Agent) fromSpeaker(p *speakerPort) {
	defer close(p.done)
	pkts := make([]datapath.Packet, 8)
	for i := range pkts {
		pkts[i].Buf = make([]byte, datapath.MaxFrame)
	}
	var pkt packet.Packet
	for {
		n, err := p.port.ReadBatch(pkts)
		if err != nil {
			if err == datapath.ErrClosed {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		var up *vport
		for _, vp := range a.ports.Load().list {
			if vp.id == p.uplink {
				up = vp
			}
		}
		for i := range n {
			frame := pkts[i].Frame()
			pkt.Decode(frame)
			if up != nil && gateway.Relayed(&pkt) {
				up.write(frame, pkts[i].Hdr)
			}
		}
	}
}

// plugged reports whether the port is plugged into the datapath here (its
// interface is open).
func (a *Agent) plugged(port string) bool {
	for _, vp := range a.ports.Load().list {
		if vp.id == port {
			return true
		}
	}
	return false
}

// gatewayCollector exports the gateway role on /metrics: the speaker's
// sessions and what it advertises, and every uplink of this host.
type gatewayCollector struct{ a *Agent }

var (
	descSession = prometheus.NewDesc("canopy_agent_bgp_session_established",
		"1 when the BGP session with the peer is established.", []string{"peer", "state"}, nil)
	descReceived = prometheus.NewDesc("canopy_agent_bgp_received_prefixes",
		"Prefixes received from the peer.", []string{"peer"}, nil)
	descLearned = prometheus.NewDesc("canopy_agent_bgp_learned_routes",
		"Routes learned from the peers and published to the store.", nil, nil)
	descAdvertised = prometheus.NewDesc("canopy_agent_bgp_advertised_prefixes",
		"Prefixes the speaker advertises to its peers (none while the host is drained).", nil, nil)
	descUplink = prometheus.NewDesc("canopy_agent_gateway_uplink_up",
		"1 when the uplink (a router port bound to an interface of this host) is plugged into the datapath and its interface has carrier.", []string{"port", "interface"}, nil)
)

func (c *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSession
	ch <- descReceived
	ch <- descLearned
	ch <- descAdvertised
	ch <- descUplink
}

func (c *gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	g := &c.a.gw
	g.mu.Lock()
	sess, routes, w, drained, uplinks := g.sess, len(g.routes), g.want, g.drained, g.uplinks
	g.mu.Unlock()
	for _, u := range uplinks {
		up := 0.0
		if c.a.uplinkUp(u) {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUplink, prometheus.GaugeValue, up, u.port, u.iface)
	}
	if w == nil {
		return // no speaker
	}
	for _, s := range sess {
		up := 0.0
		if s.State == "established" {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descSession, prometheus.GaugeValue, up, s.Peer.String(), s.State)
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.GaugeValue, float64(s.Received), s.Peer.String())
	}
	advertised := len(w.settings.Networks)
	if drained {
		advertised = 0
	}
	ch <- prometheus.MustNewConstMetric(descAdvertised, prometheus.GaugeValue, float64(advertised))
	ch <- prometheus.MustNewConstMetric(descLearned, prometheus.GaugeValue, float64(routes))
}
