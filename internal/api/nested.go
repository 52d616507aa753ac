package api

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"slices"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/google/uuid"
)

// Binding is an exterior port bound to an interface of a host.
type Binding struct {
	HostID    string `json:"host_id,omitempty"` // from the path; optional in requests
	PortID    string `json:"port_id"`
	Interface string `json:"interface"`
}

// LinkRequest links a port to a peer port.
type LinkRequest struct {
	PeerID string `json:"peer_id"`
}

// PortRef is a member of a port group.
type PortRef struct {
	PortID string `json:"port_id"`
}

// AddressRef is a member of an IP address group.
type AddressRef struct {
	Address netip.Addr `json:"address"`
}

// RuleRequest is a rule to insert into a chain, at Position (0-based) or at
// the end when Position is absent.
type RuleRequest struct {
	topology.Rule
	Position *int `json:"position,omitempty"`
}

func (s *server) nestedRoutes() []route {
	var (
		tPort   = bodyType(topology.KindPort)
		tRoute  = bodyType(topology.KindRoute)
		tDHCP   = bodyType(topology.KindDHCP)
		tBGP    = reflect.TypeFor[topology.BGP]()
		tRule   = reflect.TypeFor[topology.Rule]()
		tRuleRq = reflect.TypeFor[RuleRequest]()
		tDHost  = reflect.TypeFor[topology.DHCPHost]()
		tBind   = reflect.TypeFor[Binding]()
		tMember = reflect.TypeFor[topology.TunnelZoneMember]()
		tLink   = reflect.TypeFor[LinkRequest]()
		tPRef   = reflect.TypeFor[PortRef]()
		tARef   = reflect.TypeFor[AddressRef]()
	)
	rev := []string{"revision"}
	return []route{
		{method: "GET", path: "/routers/{id}/ports", summary: "List a router's ports", resp: tPort, list: true, status: 200, query: []string{"name"}, h: s.devicePorts(topology.KindRouter)},
		{method: "POST", path: "/routers/{id}/ports", summary: "Add a port to a router", body: tPort, resp: tPort, status: 201, h: s.addDevicePort(topology.KindRouter)},
		{method: "GET", path: "/bridges/{id}/ports", summary: "List a bridge's ports", resp: tPort, list: true, status: 200, query: []string{"name"}, h: s.devicePorts(topology.KindBridge)},
		{method: "POST", path: "/bridges/{id}/ports", summary: "Add a port to a bridge", body: tPort, resp: tPort, status: 201, h: s.addDevicePort(topology.KindBridge)},
		{method: "GET", path: "/routers/{id}/routes", summary: "List a router's routes", resp: tRoute, list: true, status: 200, query: []string{"name"}, h: s.listRoutes},
		{method: "POST", path: "/routers/{id}/routes", summary: "Add a route to a router", body: tRoute, resp: tRoute, status: 201, h: s.addRoute},
		{method: "GET", path: "/routers/{id}/bgp", summary: "Get a router's BGP settings", resp: tBGP, status: 200, h: s.getBGP},
		{method: "PUT", path: "/routers/{id}/bgp", summary: "Set a router's BGP settings", body: tBGP, resp: tBGP, status: 200, query: rev, h: s.putBGP},
		{method: "DELETE", path: "/routers/{id}/bgp", summary: "Remove a router's BGP settings", status: 204, query: rev, h: s.deleteBGP},
		{method: "GET", path: "/bridges/{id}/dhcp", summary: "List a bridge's DHCP subnets", resp: tDHCP, list: true, status: 200, query: []string{"name"}, h: s.listDHCP},
		{method: "POST", path: "/bridges/{id}/dhcp", summary: "Add a DHCP subnet to a bridge", body: tDHCP, resp: tDHCP, status: 201, h: s.addDHCP},
		{method: "GET", path: "/bridges/{id}/dhcp/{dhcp_id}/hosts", summary: "List a DHCP subnet's static hosts", resp: tDHost, list: true, status: 200, h: s.listDHCPHosts},
		{method: "POST", path: "/bridges/{id}/dhcp/{dhcp_id}/hosts", summary: "Add a static host to a DHCP subnet", body: tDHost, resp: tDHost, status: 201, query: rev, h: s.addDHCPHost},
		{method: "DELETE", path: "/bridges/{id}/dhcp/{dhcp_id}/hosts/{mac}", summary: "Remove a static host from a DHCP subnet", status: 204, query: rev, h: s.deleteDHCPHost},
		{method: "GET", path: "/chains/{id}/rules", summary: "List a chain's rules in order", resp: tRule, list: true, status: 200, h: s.listRules},
		{method: "POST", path: "/chains/{id}/rules", summary: "Insert a rule into a chain", body: tRuleRq, resp: tRule, status: 201, query: rev, h: s.addRule},
		{method: "GET", path: "/chains/{id}/rules/{rule_id}", summary: "Get a rule", resp: tRule, status: 200, h: s.getRule},
		{method: "DELETE", path: "/chains/{id}/rules/{rule_id}", summary: "Remove a rule from a chain", status: 204, query: rev, h: s.deleteRule},
		{method: "GET", path: "/hosts/{id}/bindings", summary: "List the ports bound on a host", resp: tBind, list: true, status: 200, h: s.listBindings},
		{method: "POST", path: "/hosts/{id}/bindings", summary: "Bind an exterior port to an interface of a host", body: tBind, resp: tBind, status: 201, h: s.addBinding},
		{method: "DELETE", path: "/hosts/{id}/bindings/{port_id}", summary: "Unbind a port", status: 204, h: s.deleteBinding},
		{method: "GET", path: "/tunnel-zones/{id}/members", summary: "List a tunnel zone's members", resp: tMember, list: true, status: 200, h: s.listMembers},
		{method: "POST", path: "/tunnel-zones/{id}/members", summary: "Add a host to a tunnel zone", body: tMember, resp: tMember, status: 201, query: rev, h: s.addMember},
		{method: "DELETE", path: "/tunnel-zones/{id}/members/{host_id}", summary: "Remove a host from a tunnel zone", status: 204, query: rev, h: s.deleteMember},
		{method: "POST", path: "/ports/{id}/link", summary: "Link a port and a peer port (both sides)", body: tLink, resp: tPort, status: 200, h: s.link},
		{method: "DELETE", path: "/ports/{id}/link", summary: "Unlink a port and its peer (both sides)", status: 204, h: s.unlink},
		{method: "GET", path: "/port-groups/{id}/ports", summary: "List a port group's members", resp: tPRef, list: true, status: 200, h: s.listGroupPorts},
		{method: "POST", path: "/port-groups/{id}/ports", summary: "Add a port to a port group", body: tPRef, resp: tPRef, status: 201, query: rev, h: s.addGroupPort},
		{method: "DELETE", path: "/port-groups/{id}/ports/{port_id}", summary: "Remove a port from a port group", status: 204, query: rev, h: s.deleteGroupPort},
		{method: "GET", path: "/ip-address-groups/{id}/addresses", summary: "List an IP address group's addresses", resp: tARef, list: true, status: 200, h: s.listAddresses},
		{method: "POST", path: "/ip-address-groups/{id}/addresses", summary: "Add an address to an IP address group", body: tARef, resp: tARef, status: 201, query: rev, h: s.addAddress},
		{method: "DELETE", path: "/ip-address-groups/{id}/addresses/{address}", summary: "Remove an address from an IP address group", status: 204, query: rev, h: s.deleteAddress},
	}
}

// get returns the object named in the path, or a not-found error.
func (s *server) get(ctx context.Context, k topology.Kind, id string) (topology.Object, error) {
	return s.store.Get(ctx, k, id)
}

// mutate applies f to a copy of (k, id) and writes it back, in one store
// transaction; rev, when non-zero, must be the object's current revision.
// f may run more than once (the store retries on contention), so it must
// only touch the object and tx.
func (s *server) mutate(ctx context.Context, k topology.Kind, id string, rev int64, f func(tx *nsdb.Tx, o topology.Object) error) (topology.Object, error) {
	_, err := s.store.Txn(ctx, func(tx *nsdb.Tx) error {
		cur := tx.Get(k, id)
		if cur == nil {
			return notFound(string(k), id)
		}
		o := topology.Clone(cur)
		if rev != 0 && o.GetMeta().Revision != rev {
			return &nsdb.RevisionError{Key: topology.Key(o), Want: rev, Current: o.GetMeta().Revision}
		}
		if err := f(tx, o); err != nil {
			return err
		}
		_, err := tx.Update(o)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.store.Get(ctx, k, id)
}

// createChild creates o if its parent (named in the path) exists, in one
// transaction, so a missing parent is a 404 rather than a bad reference.
func (s *server) createChild(ctx context.Context, pk topology.Kind, pid string, o topology.Object) (topology.Object, error) {
	var id string
	_, err := s.store.Txn(ctx, func(tx *nsdb.Tx) error {
		if tx.Get(pk, pid) == nil {
			return notFound(string(pk), pid)
		}
		c, err := tx.Create(topology.Clone(o))
		if err != nil {
			return err
		}
		id = c.GetMeta().ID
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.store.Get(ctx, o.Kind(), id)
}

// fromPath fills a reference field from the path, refusing a body that
// names something else.
func fromPath(field string, dst *string, v string) error {
	if *dst != "" && *dst != v {
		return &topology.FieldError{Field: field, Reason: fmt.Sprintf("is %s but the path names %s", *dst, v)}
	}
	*dst = v
	return nil
}

func (s *server) devicePorts(dk topology.Kind) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id := r.PathValue("id")
		if _, err := s.get(r.Context(), dk, id); err != nil {
			return 0, nil, err
		}
		return s.listWhere(r, topology.KindPort, func(o topology.Object) bool {
			p := o.(*topology.Port)
			return p.DeviceKind == dk && p.DeviceID == id
		})
	}
}

func (s *server) addDevicePort(dk topology.Kind) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) (int, any, error) {
		id := r.PathValue("id")
		o, err := decodeObject(w, r, topology.KindPort)
		if err != nil {
			return 0, nil, err
		}
		p := o.(*topology.Port)
		kind := string(p.DeviceKind)
		if err := fromPath("device_kind", &kind, string(dk)); err != nil {
			return 0, nil, err
		}
		p.DeviceKind = dk
		if err := fromPath("device_id", &p.DeviceID, id); err != nil {
			return 0, nil, err
		}
		p.Revision = 0
		out, err := s.createChild(r.Context(), dk, id, p)
		return s.answer(r.Context(), http.StatusCreated, out, err)
	}
}

func (s *server) listRoutes(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	if _, err := s.get(r.Context(), topology.KindRouter, id); err != nil {
		return 0, nil, err
	}
	return s.listWhere(r, topology.KindRoute, func(o topology.Object) bool { return o.(*topology.Route).RouterID == id })
}

func (s *server) addRoute(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	o, err := decodeObject(w, r, topology.KindRoute)
	if err != nil {
		return 0, nil, err
	}
	rt := o.(*topology.Route)
	if err := fromPath("router_id", &rt.RouterID, id); err != nil {
		return 0, nil, err
	}
	rt.Revision = 0
	out, err := s.createChild(r.Context(), topology.KindRouter, id, rt)
	return s.answer(r.Context(), http.StatusCreated, out, err)
}

func (s *server) getBGP(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	o, err := s.get(r.Context(), topology.KindRouter, id)
	if err != nil {
		return 0, nil, err
	}
	if o.(*topology.Router).BGP == nil {
		return 0, nil, notFound("BGP settings of router", id)
	}
	return http.StatusOK, redactBGP(o.(*topology.Router).BGP), nil
}

func (s *server) putBGP(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	var b topology.BGP
	if err := decode(w, r, &b); err != nil {
		return 0, nil, err
	}
	o, err := s.mutate(r.Context(), topology.KindRouter, r.PathValue("id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		bgp := b
		rt := o.(*topology.Router)
		if err := keepBGPPasswords("", &bgp, rt.BGP); err != nil {
			return err
		}
		rt.BGP = &bgp
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, redactBGP(o.(*topology.Router).BGP), nil
}

func (s *server) deleteBGP(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	id := r.PathValue("id")
	_, err = s.mutate(r.Context(), topology.KindRouter, id, rev, func(_ *nsdb.Tx, o topology.Object) error {
		rt := o.(*topology.Router)
		if rt.BGP == nil {
			return notFound("BGP settings of router", id)
		}
		rt.BGP = nil
		return nil
	})
	return http.StatusNoContent, nil, err
}

func (s *server) listDHCP(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	if _, err := s.get(r.Context(), topology.KindBridge, id); err != nil {
		return 0, nil, err
	}
	return s.listWhere(r, topology.KindDHCP, func(o topology.Object) bool { return o.(*topology.DHCPSubnet).BridgeID == id })
}

func (s *server) addDHCP(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	o, err := decodeObject(w, r, topology.KindDHCP)
	if err != nil {
		return 0, nil, err
	}
	d := o.(*topology.DHCPSubnet)
	if err := fromPath("bridge_id", &d.BridgeID, id); err != nil {
		return 0, nil, err
	}
	d.Revision = 0
	out, err := s.createChild(r.Context(), topology.KindBridge, id, d)
	return s.answer(r.Context(), http.StatusCreated, out, err)
}

// dhcpOf returns the DHCP subnet in the path, which must be on the bridge in
// the path.
func dhcpOf(r *http.Request, o topology.Object) (*topology.DHCPSubnet, error) {
	d := o.(*topology.DHCPSubnet)
	if bid := r.PathValue("id"); d.BridgeID != bid {
		return nil, notFound("dhcp-subnet", d.ID+" on bridge "+bid)
	}
	return d, nil
}

func (s *server) listDHCPHosts(w http.ResponseWriter, r *http.Request) (int, any, error) {
	o, err := s.get(r.Context(), topology.KindDHCP, r.PathValue("dhcp_id"))
	if err != nil {
		return 0, nil, err
	}
	d, err := dhcpOf(r, o)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nonNil(d.Hosts), nil
}

func (s *server) addDHCPHost(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	var h topology.DHCPHost
	if err := decode(w, r, &h); err != nil {
		return 0, nil, err
	}
	if h.MAC.IsZero() {
		return 0, nil, &topology.FieldError{Field: "mac", Reason: "is required"}
	}
	if !h.IP.IsValid() {
		return 0, nil, &topology.FieldError{Field: "ip", Reason: "is required"}
	}
	o, err := s.mutate(r.Context(), topology.KindDHCP, r.PathValue("dhcp_id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		d, err := dhcpOf(r, o)
		if err != nil {
			return err
		}
		for _, x := range d.Hosts {
			if x.MAC == h.MAC {
				return &topology.ConflictError{Field: "mac", Reason: fmt.Sprintf("a static host with MAC %s (%s) already exists in this subnet", h.MAC, x.IP)}
			}
		}
		d.Hosts = append(d.Hosts, h)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	for _, x := range o.(*topology.DHCPSubnet).Hosts {
		if x.MAC == h.MAC {
			return http.StatusCreated, x, nil
		}
	}
	return 0, nil, fmt.Errorf("static host %s missing after it was added", h.MAC)
}

func (s *server) deleteDHCPHost(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	mac, err := topology.ParseMAC(r.PathValue("mac"))
	if err != nil {
		return 0, nil, &topology.FieldError{Field: "mac", Reason: err.Error()}
	}
	_, err = s.mutate(r.Context(), topology.KindDHCP, r.PathValue("dhcp_id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		d, err := dhcpOf(r, o)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(d.Hosts, func(h topology.DHCPHost) bool { return h.MAC == mac })
		if i < 0 {
			return notFound("static host", mac.String()+" in DHCP subnet "+d.ID)
		}
		d.Hosts = slices.Delete(d.Hosts, i, i+1)
		return nil
	})
	return http.StatusNoContent, nil, err
}

func (s *server) listRules(w http.ResponseWriter, r *http.Request) (int, any, error) {
	o, err := s.get(r.Context(), topology.KindChain, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nonNil(o.(*topology.Chain).Rules), nil
}

func (s *server) getRule(w http.ResponseWriter, r *http.Request) (int, any, error) {
	o, err := s.get(r.Context(), topology.KindChain, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	c := o.(*topology.Chain)
	i := c.RuleIndex(r.PathValue("rule_id"))
	if i < 0 {
		return 0, nil, notFound("rule", r.PathValue("rule_id")+" in chain "+c.ID)
	}
	return http.StatusOK, c.Rules[i], nil
}

func (s *server) addRule(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	var req RuleRequest
	if err := decode(w, r, &req); err != nil {
		return 0, nil, err
	}
	rule := req.Rule
	if rule.ID == "" {
		rule.ID = uuid.NewString()
	}
	o, err := s.mutate(r.Context(), topology.KindChain, r.PathValue("id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		c := o.(*topology.Chain)
		if c.RuleIndex(rule.ID) >= 0 {
			return &topology.ConflictError{Field: "id", Reason: "chain " + c.ID + " already has a rule " + rule.ID}
		}
		pos := len(c.Rules)
		if req.Position != nil {
			pos = *req.Position
			if pos < 0 || pos > len(c.Rules) {
				return &topology.FieldError{Field: "position", Reason: fmt.Sprintf("must be from 0 to %d (the number of rules in the chain), got %d", len(c.Rules), pos)}
			}
		}
		c.Rules = slices.Insert(c.Rules, pos, rule)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	c := o.(*topology.Chain)
	i := c.RuleIndex(rule.ID)
	if i < 0 {
		return 0, nil, fmt.Errorf("rule %s missing from chain %s after it was added", rule.ID, c.ID)
	}
	return http.StatusCreated, c.Rules[i], nil
}

func (s *server) deleteRule(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	rid := r.PathValue("rule_id")
	_, err = s.mutate(r.Context(), topology.KindChain, r.PathValue("id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		c := o.(*topology.Chain)
		i := c.RuleIndex(rid)
		if i < 0 {
			return notFound("rule", rid+" in chain "+c.ID)
		}
		c.Rules = slices.Delete(c.Rules, i, i+1)
		return nil
	})
	return http.StatusNoContent, nil, err
}

func (s *server) listBindings(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	if _, err := s.get(r.Context(), topology.KindHost, id); err != nil {
		return 0, nil, err
	}
	ports, err := s.store.List(r.Context(), topology.KindPort)
	if err != nil {
		return 0, nil, err
	}
	out := []Binding{}
	for _, o := range ports {
		if p := o.(*topology.Port); p.HostID == id {
			out = append(out, Binding{HostID: id, PortID: p.ID, Interface: p.Interface})
		}
	}
	return http.StatusOK, out, nil
}

func (s *server) addBinding(w http.ResponseWriter, r *http.Request) (int, any, error) {
	hostID := r.PathValue("id")
	var b Binding
	if err := decode(w, r, &b); err != nil {
		return 0, nil, err
	}
	if err := fromPath("host_id", &b.HostID, hostID); err != nil {
		return 0, nil, err
	}
	if b.PortID == "" {
		return 0, nil, &topology.FieldError{Field: "port_id", Reason: "is required"}
	}
	if b.Interface == "" {
		return 0, nil, &topology.FieldError{Field: "interface", Reason: "is required"}
	}
	_, err := s.store.Txn(r.Context(), func(tx *nsdb.Tx) error {
		if tx.Get(topology.KindHost, hostID) == nil {
			return notFound("host", hostID)
		}
		cur := tx.Get(topology.KindPort, b.PortID)
		if cur == nil {
			return &topology.FieldError{Field: "port_id", Reason: "port " + b.PortID + " does not exist"}
		}
		p := topology.Clone(cur).(*topology.Port)
		if p.HostID == hostID && p.Interface == b.Interface {
			return nil
		}
		if p.HostID != "" {
			return &topology.ConflictError{Field: "port_id", Reason: fmt.Sprintf("port %s is already bound to interface %s of host %s; unbind it first", p.ID, p.Interface, p.HostID)}
		}
		if p.PeerID != "" {
			return &topology.ConflictError{Field: "port_id", Reason: fmt.Sprintf("port %s is linked to port %s; an interior port cannot be bound", p.ID, p.PeerID)}
		}
		p.HostID, p.Interface = hostID, b.Interface
		_, err := tx.Update(p)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, b, nil
}

func (s *server) deleteBinding(w http.ResponseWriter, r *http.Request) (int, any, error) {
	hostID, portID := r.PathValue("id"), r.PathValue("port_id")
	_, err := s.mutate(r.Context(), topology.KindPort, portID, 0, func(_ *nsdb.Tx, o topology.Object) error {
		p := o.(*topology.Port)
		if p.HostID != hostID {
			return notFound("binding of port", portID+" on host "+hostID)
		}
		p.HostID, p.Interface = "", ""
		return nil
	})
	return http.StatusNoContent, nil, err
}

func (s *server) listMembers(w http.ResponseWriter, r *http.Request) (int, any, error) {
	o, err := s.get(r.Context(), topology.KindTunnelZone, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, nonNil(o.(*topology.TunnelZone).Members), nil
}

func (s *server) addMember(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	var m topology.TunnelZoneMember
	if err := decode(w, r, &m); err != nil {
		return 0, nil, err
	}
	if m.HostID == "" {
		return 0, nil, &topology.FieldError{Field: "host_id", Reason: "is required"}
	}
	if !m.Address.IsValid() {
		return 0, nil, &topology.FieldError{Field: "address", Reason: "is required"}
	}
	_, err = s.mutate(r.Context(), topology.KindTunnelZone, r.PathValue("id"), rev, func(tx *nsdb.Tx, o topology.Object) error {
		z := o.(*topology.TunnelZone)
		if tx.Get(topology.KindHost, m.HostID) == nil {
			return &topology.FieldError{Field: "host_id", Reason: "host " + m.HostID + " does not exist"}
		}
		// A host tunnels from one underlay address, so it is in one zone;
		// the store enforces this too, but names the field inside the zone.
		for _, o := range tx.List(topology.KindTunnelZone) {
			if o.(*topology.TunnelZone).MemberIndex(m.HostID) >= 0 {
				return &topology.ConflictError{Field: "host_id", Reason: "host " + m.HostID + " is already a member of tunnel zone " + o.GetMeta().ID}
			}
		}
		z.Members = append(z.Members, m)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, m, nil
}

func (s *server) deleteMember(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	hostID := r.PathValue("host_id")
	_, err = s.mutate(r.Context(), topology.KindTunnelZone, r.PathValue("id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		z := o.(*topology.TunnelZone)
		i := z.MemberIndex(hostID)
		if i < 0 {
			return notFound("member", hostID+" of tunnel zone "+z.ID)
		}
		z.Members = slices.Delete(z.Members, i, i+1)
		return nil
	})
	return http.StatusNoContent, nil, err
}

// link links both sides in one transaction (store.Link). The store checks
// the rules of a link: not itself, not on the same device, not two bridge
// ports, neither side bound to a host nor linked elsewhere.
func (s *server) link(w http.ResponseWriter, r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	var req LinkRequest
	if err := decode(w, r, &req); err != nil {
		return 0, nil, err
	}
	if req.PeerID == "" {
		return 0, nil, &topology.FieldError{Field: "peer_id", Reason: "is required"}
	}
	if err := s.store.Link(r.Context(), id, req.PeerID); err != nil {
		return 0, nil, err
	}
	out, err := s.store.Get(r.Context(), topology.KindPort, id)
	return s.answer(r.Context(), http.StatusOK, out, err)
}

func (s *server) unlink(w http.ResponseWriter, r *http.Request) (int, any, error) {
	if err := s.store.Unlink(r.Context(), r.PathValue("id")); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (s *server) listGroupPorts(w http.ResponseWriter, r *http.Request) (int, any, error) {
	o, err := s.get(r.Context(), topology.KindPortGroup, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	out := []PortRef{}
	for _, p := range o.(*topology.PortGroup).Ports {
		out = append(out, PortRef{PortID: p})
	}
	return http.StatusOK, out, nil
}

func (s *server) addGroupPort(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	var ref PortRef
	if err := decode(w, r, &ref); err != nil {
		return 0, nil, err
	}
	if ref.PortID == "" {
		return 0, nil, &topology.FieldError{Field: "port_id", Reason: "is required"}
	}
	_, err = s.mutate(r.Context(), topology.KindPortGroup, r.PathValue("id"), rev, func(tx *nsdb.Tx, o topology.Object) error {
		g := o.(*topology.PortGroup)
		if tx.Get(topology.KindPort, ref.PortID) == nil {
			return &topology.FieldError{Field: "port_id", Reason: "port " + ref.PortID + " does not exist"}
		}
		if slices.Contains(g.Ports, ref.PortID) {
			return &topology.ConflictError{Field: "port_id", Reason: "port " + ref.PortID + " is already in port group " + g.ID}
		}
		g.Ports = append(g.Ports, ref.PortID)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, ref, nil
}

func (s *server) deleteGroupPort(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	pid := r.PathValue("port_id")
	_, err = s.mutate(r.Context(), topology.KindPortGroup, r.PathValue("id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		g := o.(*topology.PortGroup)
		i := slices.Index(g.Ports, pid)
		if i < 0 {
			return notFound("port", pid+" in port group "+g.ID)
		}
		g.Ports = slices.Delete(g.Ports, i, i+1)
		return nil
	})
	return http.StatusNoContent, nil, err
}

func (s *server) listAddresses(w http.ResponseWriter, r *http.Request) (int, any, error) {
	o, err := s.get(r.Context(), topology.KindIPGroup, r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	out := []AddressRef{}
	for _, a := range o.(*topology.IPAddrGroup).Addresses {
		out = append(out, AddressRef{Address: a})
	}
	return http.StatusOK, out, nil
}

func (s *server) addAddress(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	var ref AddressRef
	if err := decode(w, r, &ref); err != nil {
		return 0, nil, err
	}
	if !ref.Address.IsValid() {
		return 0, nil, &topology.FieldError{Field: "address", Reason: "is required"}
	}
	_, err = s.mutate(r.Context(), topology.KindIPGroup, r.PathValue("id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		g := o.(*topology.IPAddrGroup)
		if slices.Contains(g.Addresses, ref.Address) {
			return &topology.ConflictError{Field: "address", Reason: ref.Address.String() + " is already in IP address group " + g.ID}
		}
		g.Addresses = append(g.Addresses, ref.Address)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, ref, nil
}

func (s *server) deleteAddress(w http.ResponseWriter, r *http.Request) (int, any, error) {
	rev, err := queryRevision(r)
	if err != nil {
		return 0, nil, err
	}
	a, err := netip.ParseAddr(r.PathValue("address"))
	if err != nil {
		return 0, nil, &topology.FieldError{Field: "address", Reason: err.Error()}
	}
	_, err = s.mutate(r.Context(), topology.KindIPGroup, r.PathValue("id"), rev, func(_ *nsdb.Tx, o topology.Object) error {
		g := o.(*topology.IPAddrGroup)
		i := slices.Index(g.Addresses, a)
		if i < 0 {
			return notFound("address", a.String()+" in IP address group "+g.ID)
		}
		g.Addresses = slices.Delete(g.Addresses, i, i+1)
		return nil
	})
	return http.StatusNoContent, nil, err
}

// nonNil makes an absent list encode as [] rather than null.
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
