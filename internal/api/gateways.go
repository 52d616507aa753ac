package api

import (
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
)

// Gateway is a gateway host as the REST API shows it: a host with uplinks
// (router ports bound to its interfaces), whether its agent is alive, and
// what its BGP speaker reports (absent when it runs none, or when the
// agent is gone: the report is bound to its lease).
type Gateway struct {
	HostID   string `json:"host_id"`
	HostName string `json:"host_name"`
	Alive    bool   `json:"alive"`
	// Drained: an operator drained the host (canopy gateway drain); its
	// agent says it took it into account with bgp.drained.
	Drained bool                `json:"drained,omitempty"`
	Uplinks []GatewayLink       `json:"uplinks"`
	BGP     *nsdb.GatewayStatus `json:"bgp,omitempty"`
	// State is set for a gateway of the cloud config whose uplink is bound
	// to no host: pending (no host of that name or id has registered),
	// ambiguous (several have that name) or conflict; Reason says why.
	// host_name is then the config's name for the host, host_id empty.
	State  string `json:"state,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// GatewayLink is one uplink of a gateway host.
type GatewayLink struct {
	PortID    string `json:"port_id"`
	PortName  string `json:"port_name"`
	RouterID  string `json:"router_id"`
	Interface string `json:"interface"`
	Address   string `json:"address"`
}

func (s *server) gatewayRoutes() []route {
	t := reflect.TypeFor[Gateway]()
	return []route{
		{method: "GET", path: "/gateways", summary: "List the gateway hosts (hosts with uplinks): their uplinks, liveness and BGP sessions", resp: t, list: true, status: 200, h: s.listGateways},
		{method: "GET", path: "/gateways/{id}", summary: "Show a gateway host (by host id or name)", resp: t, status: 200, h: s.getGateway},
		{method: "PUT", path: "/gateways/{id}/drain", summary: "Drain a gateway host for planned work: its speaker withdraws what it advertises and its learned routes are withdrawn, so the other gateways carry its traffic", resp: t, status: 200, h: s.drainGateway(true)},
		{method: "DELETE", path: "/gateways/{id}/drain", summary: "Put a drained gateway host back into service", resp: t, status: 200, h: s.drainGateway(false)},
	}
}

// gateways collects every gateway host from the store.
func (s *server) gateways(r *http.Request) ([]Gateway, error) {
	alive, err := s.store.AliveHosts(r.Context())
	if err != nil {
		return nil, err
	}
	st, err := s.store.GatewayStatuses(r.Context())
	if err != nil {
		return nil, err
	}
	drains, err := s.store.GatewayDrains(r.Context())
	if err != nil {
		return nil, err
	}
	byHost := map[string]*Gateway{}
	s.store.Read(func(rd topology.Reader) {
		for _, o := range rd.List(topology.KindPort) {
			p := o.(*topology.Port)
			if p.DeviceKind != topology.KindRouter || p.HostID == "" || p.Interface == "" {
				continue
			}
			g := byHost[p.HostID]
			if g == nil {
				g = &Gateway{HostID: p.HostID, Alive: alive[p.HostID], Drained: drains[p.HostID]}
				if h, ok := rd.Get(topology.KindHost, p.HostID).(*topology.Host); ok && h != nil {
					g.HostName = h.Name
				}
				byHost[p.HostID] = g
			}
			g.Uplinks = append(g.Uplinks, GatewayLink{PortID: p.ID, PortName: p.Name, RouterID: p.DeviceID,
				Interface: p.Interface, Address: p.Address.String()})
		}
	})
	// The cloud config's gateways no host holds yet, from the controller's
	// status.
	cs, err := s.store.ControllerStatus(r.Context())
	if err != nil {
		return nil, err
	}
	for _, gs := range cs.Gateways {
		if gs.State == translate.GatewayBound {
			continue
		}
		key := "unbound/" + gs.Host
		g := byHost[key]
		if g == nil {
			g = &Gateway{HostName: gs.Host, State: string(gs.State), Reason: gs.Reason}
			byHost[key] = g
		}
		g.Uplinks = append(g.Uplinks, GatewayLink{Interface: gs.Interface})
	}
	out := make([]Gateway, 0, len(byHost))
	for id, g := range byHost {
		if b, ok := st[id]; ok {
			g.BGP = &b
		}
		slices.SortFunc(g.Uplinks, func(a, b GatewayLink) int { return strings.Compare(a.PortName, b.PortName) })
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Gateway) int {
		return strings.Compare(a.HostName+"/"+a.HostID, b.HostName+"/"+b.HostID)
	})
	return out, nil
}

func (s *server) listGateways(w http.ResponseWriter, r *http.Request) (int, any, error) {
	gws, err := s.gateways(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, gws, nil
}

func (s *server) getGateway(w http.ResponseWriter, r *http.Request) (int, any, error) {
	g, err := s.findGateway(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, g, nil
}

// findGateway is the gateway host the path's {id} names (id, or a name
// exactly one gateway host has).
func (s *server) findGateway(r *http.Request) (Gateway, error) {
	id := r.PathValue("id")
	gws, err := s.gateways(r)
	if err != nil {
		return Gateway{}, err
	}
	var named []Gateway
	for _, g := range gws {
		if g.HostID == id {
			return g, nil
		}
		if g.HostName == id {
			named = append(named, g)
		}
	}
	if len(named) == 1 {
		return named[0], nil
	}
	if len(named) > 1 {
		// A registered host and a gateway of the config naming it by
		// another's id, say: the registered one.
		for _, g := range named {
			if g.HostID != "" {
				return g, nil
			}
		}
	}
	return Gateway{}, notFound("gateway host", id)
}

func (s *server) drainGateway(drain bool) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		g, err := s.findGateway(r)
		if err != nil {
			return 0, nil, err
		}
		if g.HostID == "" {
			return 0, nil, &httpError{status: http.StatusConflict, reason: "gateway host " + g.HostName + " is " + g.State + ": " + g.Reason}
		}
		if err := s.store.SetGatewayDrain(r.Context(), g.HostID, drain); err != nil {
			return 0, nil, err
		}
		g.Drained = drain
		return http.StatusOK, g, nil
	}
}
