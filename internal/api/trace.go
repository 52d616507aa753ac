package api

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TraceRequest describes a packet to simulate: where it enters the virtual
// network and its headers. Missing MACs are filled in the way the sending
// instance would have: its own port's MAC as source, and as destination the
// MAC of the port on the same bridge that holds the destination address, or
// else the bridge's router (the instance's gateway).
type TraceRequest struct {
	// Port is the ingress port: an id, a name, or DEVICE:NAME is resolved by
	// the CLI; the API takes an id or a port name (a VPC network interface
	// id names its port).
	Port     string     `json:"port"`
	Proto    string     `json:"proto"` // tcp, udp, icmp
	Src      netip.Addr `json:"src"`
	Dst      netip.Addr `json:"dst"`
	SrcPort  uint16     `json:"src_port,omitempty"`
	DstPort  uint16     `json:"dst_port,omitempty"`
	TTL      uint8      `json:"ttl,omitempty"`
	ICMPType *uint8     `json:"icmp_type,omitempty"` // default echo request
	SrcMAC   string     `json:"src_mac,omitempty"`
	DstMAC   string     `json:"dst_mac,omitempty"`
}

// TraceResult is the simulation's verdict and every step it took.
type TraceResult struct {
	Verdict   string       `json:"verdict"`
	Reason    string       `json:"reason,omitempty"`
	Outputs   []sim.Output `json:"outputs,omitempty"`
	Generated []string     `json:"generated,omitempty"`
	Steps     []sim.Step   `json:"steps"`
	Text      string       `json:"text"` // the whole result, human-readable
}

func (s *server) traceRoutes() []route {
	return []route{{method: "POST", path: "/trace", summary: "Simulate a packet through the current topology and the learned MAC and ARP entries, and return every step (nothing is sent; connection state starts empty)",
		body: reflect.TypeFor[TraceRequest](), resp: reflect.TypeFor[TraceResult](), status: 200, h: s.trace}}
}

func (s *server) trace(w http.ResponseWriter, r *http.Request) (int, any, error) {
	var req TraceRequest
	if err := decode(w, r, &req); err != nil {
		return 0, nil, err
	}
	spec, err := req.spec()
	if err != nil {
		return 0, nil, err
	}
	// The learned MAC and ARP entries every agent shares: the trace decides
	// as an agent would now (a MAC the network learned is not flooded).
	tables, err := learnedTables(r.Context(), s.store)
	if err != nil {
		return 0, nil, err
	}
	var res sim.Result
	var ferr error
	s.store.Read(func(rd topology.Reader) {
		port := findPort(rd, req.Port)
		if port == nil {
			ferr = &topology.FieldError{Field: "port", Reason: fmt.Sprintf("no port has the id or name %q", req.Port)}
			return
		}
		if err := fillMACs(rd, port, &req, spec); err != nil {
			ferr = err
			return
		}
		frame := spec.Build()
		var pkt packet.Packet
		pkt.Decode(frame)
		snap := sim.NewSnapshot(rd)
		opts := &sim.Options{Now: time.Now().UnixNano(), Tables: tables, Trace: true}
		sim.Simulate(snap, flow.NewState(), port.ID, frame, &pkt, opts, &res)
	})
	if ferr != nil {
		return 0, nil, ferr
	}
	out := TraceResult{Verdict: res.Verdict.String(), Reason: res.Reason, Outputs: res.Outputs, Steps: res.Trace, Text: sim.FormatResult(&res)}
	for _, g := range res.Generated {
		out.Generated = append(out.Generated, g.Reason+" → port "+g.PortID)
	}
	if out.Steps == nil {
		out.Steps = []sim.Step{}
	}
	return 200, out, nil
}

// learnedTables reads every host's learned entries into simulation tables;
// where two hosts hold one entry, the later write wins, as on the agents.
func learnedTables(ctx context.Context, st *nsdb.Store) (*sim.Tables, error) {
	es, _, err := st.ListLearned(ctx)
	if err != nil {
		return nil, err
	}
	t := sim.NewTables()
	macRev, arpRev := map[sim.MACKey]int64{}, map[sim.ARPKey]int64{}
	for _, e := range es {
		dev := flow.TagOf(string(e.Kind), e.Device)
		switch e.Kind {
		case topology.KindBridge:
			m, err := net.ParseMAC(e.Key)
			if err != nil || len(m) != 6 {
				continue
			}
			k := sim.MACKey{Bridge: dev, MAC: [6]byte(m)}
			if e.Revision > macRev[k] {
				macRev[k] = e.Revision
				t.MACs[k] = sim.MACEntry{Port: flow.TagOf(string(topology.KindPort), e.Value), Refresh: math.MaxInt64}
			}
		case topology.KindRouter:
			a, err := netip.ParseAddr(e.Key)
			m, merr := net.ParseMAC(e.Value)
			if err != nil || !a.Is4() || merr != nil || len(m) != 6 {
				continue
			}
			k := sim.ARPKey{Router: dev, IP: packet.U32(a)}
			if e.Revision > arpRev[k] {
				arpRev[k] = e.Revision
				t.ARP[k] = sim.ARPEntry{MAC: [6]byte(m), Refresh: math.MaxInt64}
			}
		}
	}
	return t, nil
}

func (req *TraceRequest) spec() (*packet.Spec, error) {
	if req.Port == "" {
		return nil, &topology.FieldError{Field: "port", Reason: "is required"}
	}
	if !req.Src.Is4() {
		return nil, &topology.FieldError{Field: "src", Reason: "an IPv4 source address is required"}
	}
	if !req.Dst.Is4() {
		return nil, &topology.FieldError{Field: "dst", Reason: "an IPv4 destination address is required"}
	}
	sp := &packet.Spec{Src: packet.U32(req.Src), Dst: packet.U32(req.Dst), TTL: req.TTL, SrcPort: req.SrcPort, DstPort: req.DstPort}
	switch strings.ToLower(req.Proto) {
	case "tcp":
		sp.Proto, sp.TCPFlags = packet.ProtoTCP, 0x02 // a SYN: the first packet of a connection
	case "udp":
		sp.Proto = packet.ProtoUDP
	case "icmp", "":
		sp.Proto, sp.ICMPType = packet.ProtoICMP, packet.ICMPEchoRequest
		if req.ICMPType != nil {
			sp.ICMPType = *req.ICMPType
		}
	default:
		return nil, &topology.FieldError{Field: "proto", Reason: fmt.Sprintf("%q is not one of tcp, udp, icmp", req.Proto)}
	}
	if sp.Proto != packet.ProtoICMP && req.DstPort == 0 {
		return nil, &topology.FieldError{Field: "dst_port", Reason: "is required for " + req.Proto}
	}
	if sp.Proto != packet.ProtoICMP && sp.SrcPort == 0 {
		sp.SrcPort = 40000
	}
	return sp, nil
}

// findPort resolves an id, then a unique name.
func findPort(rd topology.Reader, ref string) *topology.Port {
	if p, ok := rd.Get(topology.KindPort, ref).(*topology.Port); ok {
		return p
	}
	var found *topology.Port
	for _, o := range rd.List(topology.KindPort) {
		if o.GetMeta().Name == ref {
			if found != nil {
				return nil
			}
			found = o.(*topology.Port)
		}
	}
	return found
}

func fillMACs(rd topology.Reader, in *topology.Port, req *TraceRequest, sp *packet.Spec) error {
	var err error
	parse := func(field, v string, dst *[6]byte) {
		if v == "" || err != nil {
			return
		}
		m, perr := topology.ParseMAC(v)
		if perr != nil {
			err = &topology.FieldError{Field: field, Reason: perr.Error()}
			return
		}
		*dst = m
	}
	parse("src_mac", req.SrcMAC, &sp.EthSrc)
	parse("dst_mac", req.DstMAC, &sp.EthDst)
	if err != nil {
		return err
	}
	if req.SrcMAC == "" {
		sp.EthSrc = in.MAC
		if in.MAC.IsZero() {
			sp.EthSrc = [6]byte{0x02, 0, 0, 0, 0, 0x01}
		}
	}
	if req.DstMAC != "" || in.DeviceKind != topology.KindBridge {
		if req.DstMAC == "" {
			return &topology.FieldError{Field: "dst_mac", Reason: "is required when the ingress port is a router port"}
		}
		return nil
	}
	var gw topology.MAC
	for _, k := range rd.Referrers(topology.KindBridge, in.DeviceID) {
		p, ok := rd.Get(k.Kind, k.ID).(*topology.Port)
		if !ok {
			continue
		}
		for _, ip := range p.IPs {
			if ip == req.Dst {
				sp.EthDst = p.MAC
				return nil
			}
		}
		if peer, ok := rd.Get(topology.KindPort, p.PeerID).(*topology.Port); ok && p.PeerID != "" && peer.DeviceKind == topology.KindRouter {
			gw = peer.MAC
		}
	}
	if gw.IsZero() {
		return &topology.FieldError{Field: "dst_mac", Reason: fmt.Sprintf("no port on the ingress bridge holds %s and the bridge has no router; give dst_mac", req.Dst)}
	}
	sp.EthDst = gw
	return nil
}
