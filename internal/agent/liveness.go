package agent

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/prometheus/client_golang/prometheus"
)

// Fast liveness between hosts, over the tunnels (OVN's BFD between
// chassis, in spirit). The etcd lease tells that an agent died only when it
// expires (seconds); return traffic routed through a dead gateway is lost
// until then. So agents exchange small heartbeats on the tunnel socket, every
// Config.LivenessInterval, with the hosts that matter: a host holding an
// exterior router port (an edge uplink) with every host of its tunnel zone,
// any other host with those. A peer heard from once and then silent for its
// own interval × multiplier (it says both in every heartbeat, like BFD's
// detection time) is down for the simulation — the union with the lease
// view (replica.setUnreachable, sim.WithHostsDown): the routes through its
// exterior ports are left out and the flows that chose them re-simulated at
// once. It is up again at its next heartbeat. A peer never heard from (not
// started yet, or an agent without heartbeats) is left to the lease.
//
// An agent stopping on purpose says so (state "leaving" in its last
// heartbeats, BFD's AdminDown), so its peers route around it before it
// stops forwarding.
//
// A heartbeat is a frame on StateVNI (so no port key is taken), told from
// a state message by its EtherType:
//
//	Ethernet header (zero MACs, EtherType 0x88B6) | version u8 | state u8 |
//	multiplier u8 | reserved u8 | interval µs u32
const (
	DefaultLivenessInterval   = 100 * time.Millisecond
	DefaultLivenessMultiplier = 3

	livenessEtherType = 0x88B6
	livenessVersion   = 1
	heartbeatLen      = packet.EthHeaderLen + 8

	heartbeatUp      = 1
	heartbeatLeaving = 2
)

// Peer states, as /peers and /metrics show them.
const (
	peerUnknown = "unknown" // never heard from
	peerUp      = "up"
	peerDown    = "down"    // silent for longer than its detection time
	peerLeaving = "leaving" // said it is stopping
)

// livePeer is one host this agent exchanges heartbeats with.
type livePeer struct {
	host string
	addr netip.AddrPort
	// Written by the tunnel reader.
	heard   atomic.Int64 // UnixNano of the last heartbeat, 0 = never
	detect  atomic.Int64 // the peer's interval × multiplier, ns
	leaving atomic.Bool
	up      atomic.Bool // mirrors state == peerUp, for the reader's fast check
	// Owned by runLiveness, read by status under liveness.mu.
	state string
	since time.Time
	downs uint64
}

// liveness is the agent's heartbeat exchange.
type liveness struct {
	interval time.Duration
	mult     int
	byAddr   atomic.Pointer[map[netip.AddrPort]*livePeer] // read by the tunnel reader
	wake     chan struct{}
	ready    atomic.Bool  // this host forwards: heartbeats go out
	readyAt  atomic.Int64 // UnixNano of the first heartbeat round
	leaving  atomic.Bool  // this host is stopping: heartbeats say so

	mu    sync.Mutex
	peers map[string]*livePeer // by host id

	sent, received, bad prometheus.Counter
	transitions         *prometheus.CounterVec
}

func newLiveness(interval time.Duration, mult int, m *metrics) *liveness {
	l := &liveness{interval: interval, mult: mult, wake: make(chan struct{}, 1), peers: map[string]*livePeer{},
		sent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "canopy_agent", Name: "heartbeats_sent_total",
			Help: "Liveness heartbeats sent to peers."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "canopy_agent", Name: "heartbeats_received_total",
			Help: "Liveness heartbeats received from peers."}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "canopy_agent", Name: "heartbeats_bad_total",
			Help: "Malformed heartbeats, or heartbeats from an address that is no peer."}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "canopy_agent", Name: "peer_transitions_total",
			Help: "Changes of a peer's liveness, by peer host and new state (up, down, leaving)."}, []string{"peer_host", "state"}),
	}
	m.reg.MustRegister(l.sent, l.received, l.bad, l.transitions, &livenessCollector{l: l})
	return l
}

func (l *liveness) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// heartbeat encodes this host's heartbeat.
func (l *liveness) heartbeat(b []byte) []byte {
	b = append(b[:0], make([]byte, heartbeatLen)...)
	binary.BigEndian.PutUint16(b[12:], livenessEtherType)
	h := b[packet.EthHeaderLen:]
	h[0] = livenessVersion
	h[1] = heartbeatUp
	if l.leaving.Load() {
		h[1] = heartbeatLeaving
	}
	h[2] = byte(l.mult)
	binary.BigEndian.PutUint32(h[4:], uint32(l.interval/time.Microsecond))
	return b
}

// isHeartbeat tells a heartbeat from a state message (both on StateVNI).
func isHeartbeat(frame []byte) bool {
	return len(frame) >= packet.EthHeaderLen && binary.BigEndian.Uint16(frame[12:]) == livenessEtherType
}

// heard records a heartbeat from addr (on the tunnel reader: no
// allocation, a wake-up only when the peer's state must change).
func (l *liveness) heard(from netip.AddrPort, frame []byte, now int64) {
	m := l.byAddr.Load()
	var p *livePeer
	if m != nil {
		p = (*m)[from]
	}
	if p == nil || len(frame) < heartbeatLen || frame[packet.EthHeaderLen] != livenessVersion {
		l.bad.Inc()
		return
	}
	l.received.Inc()
	h := frame[packet.EthHeaderLen:]
	mult, iv := int64(h[2]), int64(binary.BigEndian.Uint32(h[4:]))*int64(time.Microsecond)
	if mult == 0 || iv == 0 {
		l.bad.Inc()
		return
	}
	p.detect.Store(mult * iv)
	p.heard.Store(now)
	leaving := h[1] == heartbeatLeaving
	if p.leaving.Swap(leaving) != leaving || !leaving && !p.up.Load() {
		l.poke()
	}
}

// livenessPeers are the hosts that host exchanges heartbeats with: every
// peer for a host with an exterior router port, else the peers with one.
func livenessPeers(x *topology.Index, host string, peers map[string]netip.AddrPort) map[string]netip.AddrPort {
	edge := map[string]bool{}
	for _, o := range x.List(topology.KindPort) {
		p := o.(*topology.Port)
		if p.HostID != "" && p.Interface != "" && p.DeviceKind == topology.KindRouter {
			edge[p.HostID] = true
		}
	}
	out := map[string]netip.AddrPort{}
	for h, addr := range peers {
		if h != host && (edge[host] || edge[h]) {
			out[h] = addr
		}
	}
	return out
}

// runLiveness sends the heartbeats and judges the peers every interval
// (and at once when a heartbeat changes a peer's state), until ctx ends;
// down gets the set of peers down whenever it changes.
func (a *Agent) runLiveness(ctx context.Context, down func(map[string]bool)) {
	l := a.live
	t := time.NewTicker(l.interval)
	defer t.Stop()
	var gen uint64
	var buf []byte
	var out []datapath.TunnelPacket
	last := time.Now()
	var lastDown map[string]bool
	for {
		tick := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			tick = true
		case <-l.wake:
		}
		now := time.Now()
		if v := a.view.Load(); v != nil && v.gen != gen {
			gen = v.gen
			l.setPeers(v.live)
		}
		if tick && l.ready.Load() {
			l.readyAt.CompareAndSwap(0, now.UnixNano())
			buf = l.heartbeat(buf)
			out = out[:0]
			l.mu.Lock()
			for _, p := range l.peers {
				out = append(out, datapath.TunnelPacket{Addr: p.addr, VNI: StateVNI, Frame: buf})
			}
			l.mu.Unlock()
			if len(out) > 0 {
				a.tunMu.Lock()
				n, _ := a.tunnel.WriteBatch(out)
				a.tunMu.Unlock()
				l.sent.Add(float64(n))
			}
		}
		// A tick much later than due means this process was not running
		// (starved, stopped): the peers' silence may be ours. Judge again
		// at the next tick.
		stalled := tick && now.Sub(last) > time.Duration(l.mult)*l.interval
		if tick {
			last = now
		}
		if stalled {
			continue
		}
		d, back := l.judge(now, a)
		if !maps.Equal(d, lastDown) {
			lastDown = d
			down(d)
		}
		// A peer heard again (restarted, or reachable again) gets the
		// connection and NAT state this host exported to it: it may have
		// missed it, and will see the replies.
		for _, h := range back {
			a.refreshExports(now.UnixNano(), h)
		}
	}
}

// setPeers makes the peer set want (host → tunnel endpoint); a peer that
// stays keeps its state.
func (l *liveness) setPeers(want map[string]netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for h, p := range l.peers {
		if addr, ok := want[h]; !ok || addr != p.addr {
			delete(l.peers, h)
		}
	}
	for h, addr := range want {
		if _, ok := l.peers[h]; !ok {
			l.peers[h] = &livePeer{host: h, addr: addr, state: peerUnknown, since: time.Now()}
		}
	}
	m := make(map[netip.AddrPort]*livePeer, len(l.peers))
	for _, p := range l.peers {
		m[p.addr] = p
	}
	l.byAddr.Store(&m)
}

// judge updates every peer's state at now and returns the hosts down and
// the hosts that came up.
//
// When every peer that was up falls silent at once (two or more), the
// fault is most likely this host's own (its receive path, or the whole
// machine, stalled): they keep their state until one is heard again.
// Taking them all down would leave the traffic no way out anyway.
func (l *liveness) judge(now time.Time, a *Agent) (down map[string]bool, up []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := make(map[*livePeer]string, len(l.peers))
	wasUp, silent := 0, 0
	for _, p := range l.peers {
		heard := p.heard.Load()
		switch {
		case heard == 0:
			next[p] = peerUnknown
		case p.leaving.Load():
			next[p] = peerLeaving
		case now.UnixNano()-heard > p.detect.Load():
			next[p] = peerDown
		default:
			next[p] = peerUp
		}
		if p.state == peerUp {
			wasUp++
			if next[p] == peerDown {
				silent++
			}
		}
	}
	allSilent := silent >= 2 && silent == wasUp
	down = map[string]bool{}
	for p, st := range next {
		if allSilent && st == peerDown && p.state == peerUp {
			st = peerUp
		}
		if st != p.state {
			if st != peerUnknown {
				l.transitions.WithLabelValues(p.host, st).Inc()
			}
			if st == peerDown || st == peerLeaving {
				p.downs++
			}
			a.log.Info("agent: peer "+st, "peer_host", p.host, "address", p.addr.Addr(),
				"silent", time.Duration(now.UnixNano()-p.heard.Load()).Round(time.Millisecond), "was", p.state)
			p.state, p.since = st, now
			p.up.Store(st == peerUp)
			if st == peerUp {
				up = append(up, p.host)
			}
		}
		if st == peerDown || st == peerLeaving {
			down[p.host] = true
		}
	}
	if allSilent {
		a.log.Debug("agent: every peer silent at once: this host stalled, not they", "peers", silent)
	}
	return down, up
}

// PeerStatus is one peer's liveness, as /peers shows it.
type PeerStatus struct {
	Host      string `json:"host_id"`
	Address   string `json:"address"`
	State     string `json:"state"`
	Since     string `json:"since"`
	LastHeard string `json:"last_heard,omitempty"` // how long ago
	DetectMS  int64  `json:"detect_ms,omitempty"`  // the peer's interval × multiplier
	Downs     uint64 `json:"downs"`
}

func (l *liveness) status() []PeerStatus {
	now := time.Now()
	l.mu.Lock()
	out := make([]PeerStatus, 0, len(l.peers))
	for _, p := range l.peers {
		ps := PeerStatus{Host: p.host, Address: p.addr.Addr().String(), State: p.state,
			Since: p.since.UTC().Format(time.RFC3339Nano), DetectMS: p.detect.Load() / int64(time.Millisecond), Downs: p.downs}
		if h := p.heard.Load(); h != 0 {
			ps.LastHeard = now.Sub(time.Unix(0, h)).Round(time.Millisecond).String()
		}
		out = append(out, ps)
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerStatus) int {
		if a.Host < b.Host {
			return -1
		}
		if a.Host > b.Host {
			return 1
		}
		return 0
	})
	return out
}

func (l *liveness) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(l.status())
}

// livenessCollector exports each peer's state on /metrics.
type livenessCollector struct{ l *liveness }

var descPeerUp = prometheus.NewDesc("canopy_agent_peer_up",
	"1 while heartbeats arrive from the peer host, 0 when it is down or leaving (absent until first heard).",
	[]string{"peer_host", "address", "state"}, nil)

func (c *livenessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descPeerUp }

func (c *livenessCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.l.status() {
		if p.State == peerUnknown {
			continue
		}
		v := 0.0
		if p.State == peerUp {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descPeerUp, prometheus.GaugeValue, v, p.Host, p.Address, p.State)
	}
}

// sayLeaving tells every peer at once that this host is stopping (three
// copies, against a lost datagram); the heartbeats that follow say so too.
func (a *Agent) sayLeaving() {
	l := a.live
	l.leaving.Store(true)
	if !l.ready.Load() {
		return
	}
	buf := l.heartbeat(nil)
	var out []datapath.TunnelPacket
	l.mu.Lock()
	for _, p := range l.peers {
		out = append(out, datapath.TunnelPacket{Addr: p.addr, VNI: StateVNI, Frame: buf})
	}
	l.mu.Unlock()
	if len(out) == 0 {
		return
	}
	for range 3 {
		a.tunMu.Lock()
		n, _ := a.tunnel.WriteBatch(out)
		a.tunMu.Unlock()
		l.sent.Add(float64(n))
	}
}

// synced reports whether this host has forwarded for long enough that its
// peers, which send it their connection state when they first hear it,
// have done so: twice its detection time since its first heartbeat.
func (l *liveness) synced() bool {
	at := l.readyAt.Load()
	return at != 0 && time.Since(time.Unix(0, at)) >= 2*time.Duration(l.mult)*l.interval
}

// anyUp reports whether any of hosts is heard from now.
func (l *liveness) anyUp(hosts []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range hosts {
		if p := l.peers[h]; p != nil && p.state == peerUp {
			return true
		}
	}
	return false
}
