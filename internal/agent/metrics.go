package agent

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the agent's Prometheus counters, on its own registry beside
// the Go runtime and process metrics.
type metrics struct {
	reg                             *prometheus.Registry
	rx, tx, hits, misses            *prometheus.CounterVec
	drops                           *prometheus.CounterVec
	sims                            *prometheus.CounterVec
	snapshots                       prometheus.Counter
	tunnelRx, tunnelTx, tunnelDrops prometheus.Counter
	tunnelUnknown                   prometheus.Counter
	stateTx, stateRx, stateBad      prometheus.Counter
	dhcp, metadata, dns             *prometheus.CounterVec
	parked                          *prometheus.CounterVec
	learned, learnWrites            *prometheus.CounterVec
	learnCoalesced                  prometheus.Counter
	datapathKernel                  prometheus.Gauge
	kernelAttach                    *prometheus.GaugeVec
	kernelSkipped, kernelErrors     prometheus.Counter
	kernelStats                     *prometheus.GaugeVec
}

func newMetrics() *metrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "canopy_agent", Name: name, Help: help}, labels)
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "canopy_agent", Name: name, Help: help})
	}
	m := &metrics{
		reg: telemetry.NewRegistry(),
		datapathKernel: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "canopy", Name: "datapath_kernel",
			Help: "1 when this agent's flows run in the kernel fast path (eBPF at TC, kernel VXLAN), 0 on the userspace datapath."}),
		kernelAttach: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "canopy", Name: "datapath_kernel_attach",
			Help: "1 for the way the kernel fast path's program is attached to the devices: tcx (Linux 6.6 and later) or tc (a classic clsact filter); absent on the userspace datapath."}, []string{"mode"}),
		kernelSkipped: c("kernel_flows_skipped_total", "Cached flows the kernel cannot execute (too many actions, an unknown tunnel endpoint): they stay in userspace."),
		kernelErrors:  c("kernel_flow_errors_total", "Kernel flow map writes or deletes that failed."),
		kernelStats: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "canopy_agent", Name: "kernel_packets",
			Help: "The kernel fast path's counters, by event (hit, miss, miss_lost, drop, tunnel_tx, tunnel_rx, tunnel_unknown, injected, no_port, error)."}, []string{"event"}),
		rx:            cv("port_rx_frames_total", "Frames read from a port (a GSO super-frame counts once).", "port"),
		tx:            cv("port_tx_frames_total", "Frames written to a port.", "port"),
		hits:          cv("port_flow_hits_total", "Frames that matched a cached flow.", "port"),
		misses:        cv("port_flow_misses_total", "Frames that missed the flow cache.", "port"),
		drops:         cv("port_drops_total", "Frames dropped, by reason.", "port", "reason"),
		sims:          cv("simulations_total", "Simulations, by verdict.", "verdict"),
		snapshots:     c("snapshots_total", "Topology snapshots built."),
		tunnelRx:      c("tunnel_rx_frames_total", "Frames received from the tunnel."),
		tunnelTx:      c("tunnel_tx_frames_total", "Frames sent into the tunnel."),
		tunnelDrops:   c("tunnel_drops_total", "Frames that could not be tunnelled."),
		tunnelUnknown: c("tunnel_unknown_key_total", "Tunnelled frames for a key no local port has."),
		stateTx:       c("state_messages_sent_total", "Connection-state messages sent to peers."),
		stateRx:       c("state_messages_received_total", "Connection-state messages imported."),
		stateBad:      c("state_messages_bad_total", "Malformed connection-state messages."),
		dhcp:          cv("dhcp_requests_total", "DHCP requests from VM ports, by verdict (offer, ack, nak, ...).", "verdict"),
		dns:           cv("dns_queries_total", "Queries to the VPCs' resolvers (AmazonProvidedDNS), by what became of them.", "verdict"),
		metadata: cv("metadata_frames_total", "Frames of the metadata service (169.254.169.254), by what became of them.",
			"outcome"),
		parked: cv("parked_total", "Packets parked for their next hop's ARP reply, by what became of them "+
			"(resumed: re-simulated once the reply came; expired: no reply in time; overflow: not parked, the queue was full).",
			"outcome"),
		learned: cv("learned_entries_total", "Learned MAC and ARP entries applied, by table (mac, arp) and source "+
			"(local: learned here; remote: published by another host).", "table", "source"),
		learnWrites: cv("learned_writes_total", "Writes of this host's learned entries to the store, by operation (put, delete).", "op"),
		learnCoalesced: c("learned_writes_coalesced_total", "Learned-entry writes replaced by a newer value before they were "+
			"written (a MAC flapping between ports, an entry changing faster than the write interval)."),
	}
	m.reg.MustRegister(m.learned, m.learnWrites, m.learnCoalesced, m.rx, m.tx, m.hits, m.misses, m.drops, m.sims, m.snapshots, m.tunnelRx, m.tunnelTx,
		m.tunnelDrops, m.tunnelUnknown, m.stateTx, m.stateRx, m.stateBad, m.dhcp, m.metadata, m.parked,
		m.datapathKernel, m.kernelAttach, m.kernelSkipped, m.kernelErrors, m.kernelStats)
	return m
}

// forget removes an unplugged port's series.
func (m *metrics) forget(port string) {
	for _, v := range []*prometheus.CounterVec{m.rx, m.tx, m.hits, m.misses, m.drops} {
		v.DeletePartialMatch(prometheus.Labels{"port": port})
	}
}

// FlowView is one cached flow as /flows shows it.
type FlowView struct {
	InKey     uint32   `json:"in_tunnel_key"`
	EthSrc    string   `json:"eth_src"`
	EthDst    string   `json:"eth_dst"`
	EtherType uint16   `json:"eth_type"`
	Src       string   `json:"src,omitempty"`
	Dst       string   `json:"dst,omitempty"`
	Proto     uint8    `json:"proto,omitempty"`
	SrcPort   uint16   `json:"src_port,omitempty"`
	DstPort   uint16   `json:"dst_port,omitempty"`
	Actions   []string `json:"actions"`
	Drop      bool     `json:"drop,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Hits      uint64   `json:"hits"`
	ExpiresIn string   `json:"expires_in"`
	Tags      int      `json:"tags"`
}

func (a *Agent) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", telemetry.MetricsHandler(a.m.reg))
	mux.HandleFunc("/flows", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var out []FlowView
		for _, e := range a.flows.Snapshot() {
			k := e.Key
			fv := FlowView{InKey: k.In, EthSrc: macString(k.EthSrc), EthDst: macString(k.EthDst), EtherType: k.EtherType,
				Proto: k.Tuple.Proto, SrcPort: k.Tuple.SrcPort, DstPort: k.Tuple.DstPort, Drop: e.Drop, Reason: e.Reason,
				Hits: e.Hits(), ExpiresIn: time.Duration(e.Expiry() - now.UnixNano()).Round(time.Millisecond).String(), Tags: len(e.Tags)}
			if k.Tuple.Src != 0 || k.Tuple.Dst != 0 {
				fv.Src, fv.Dst = addrString(k.Tuple.Src), addrString(k.Tuple.Dst)
			}
			fv.Actions = []string{}
			for _, act := range e.Actions {
				fv.Actions = append(fv.Actions, act.String())
			}
			out = append(out, fv)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Hits > out[j].Hits })
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("/peers", a.live.serveHTTP)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if a.view.Load() == nil {
			http.Error(w, "no topology yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

func macString(m [6]byte) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[x>>4], hex[x&15])
	}
	return string(b)
}

func addrString(a uint32) string { return packet.AddrFrom(a).String() }
