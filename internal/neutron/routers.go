package neutron

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Routers. Each network already has its router (the VPC's: its subnets are
// routed to each other, as in a VPC), so a Neutron router is what links a
// network to the outside: an internet gateway (igw-…, its id) with the
// router's attributes in tags. Interfaces on several networks join them
// (InternetGateway.Joins: their routers route to each other's blocks,
// internal/translate join.go); such a router takes no external gateway
// (yet). While it has an interface and an external gateway,
// the gateway is attached to that network and its main route table sends
// 0.0.0.0/0 to it (the whole network's, whichever of its subnets the
// interfaces are on): floating IPs (elastic IPs, 1:1 NAT at the network's
// uplink) then work both ways. A gateway holds a public address of the
// pool (an elastic IP tagged tagGatewayOf, external_fixed_ips); with
// enable_snat (the default, as in Neutron) it is the network's
// SNATAddress, which what leaves without a floating IP is translated to
// (stateful PAT at the network's uplink, internal/translate). Static routes
// ("routes") are routes of the main route table to the port holding the
// next hop.

// Tags of an internet gateway that is a Neutron router.
const (
	tagRouter   = "neutron:router"  // "1": made through this API
	tagGateway  = "neutron:gateway" // the external network, when set
	tagSubnets  = "neutron:subnets" // the interfaces' subnets, comma-separated
	tagSNAT     = "neutron:snat"    // "false" when the gateway does no SNAT
	defaultSNAT = true
	// tagGatewayOf marks the elastic IP a router's gateway holds (the
	// value is the router's id).
	tagGatewayOf = "neutron:gateway-of"
)

// gatewayAddress is the address router id's gateway holds (nil if none).
func gatewayAddress(st *vpc.State, id string) *vpc.Address {
	for _, a := range st.Addresses {
		if a.Tags[tagGatewayOf] == id {
			return a
		}
	}
	return nil
}

func routerNotFound(id string) *Error { return notFound("RouterNotFound", "Router", id) }

func isRouter(g *vpc.InternetGateway) bool { return g.Tags[tagRouter] == "1" }

// routerSubnets are the subnets of a router's interfaces.
func routerSubnets(g *vpc.InternetGateway) []string {
	if g.Tags[tagSubnets] == "" {
		return nil
	}
	return strings.Split(g.Tags[tagSubnets], ",")
}

// routerNetwork is the network of a router's first interface ("" when
// none).
func routerNetwork(st *vpc.State, g *vpc.InternetGateway) string {
	if ns := routerNetworks(st, g); len(ns) > 0 {
		return ns[0]
	}
	return ""
}

// routerNetworks are the networks of a router's interfaces, in the order
// of their first interfaces.
func routerNetworks(st *vpc.State, g *vpc.InternetGateway) []string {
	var out []string
	for _, id := range routerSubnets(g) {
		if sub := st.Subnets[id]; sub != nil && !slices.Contains(out, sub.VpcID) {
			out = append(out, sub.VpcID)
		}
	}
	return out
}

// routerOn is the router with an interface on subnet subID (nil if none).
func routerOn(st *vpc.State, subID string) *vpc.InternetGateway {
	for _, g := range st.InternetGateways {
		if isRouter(g) && slices.Contains(routerSubnets(g), subID) {
			return g
		}
	}
	return nil
}

func (c *call) router(st *vpc.State, id string) (*vpc.InternetGateway, error) {
	g := st.InternetGateways[id]
	if g == nil || !isRouter(g) || !c.sees(g.OwnerID) {
		return nil, routerNotFound(id)
	}
	return g, nil
}

func (s *Server) routers() *resource {
	return &resource{
		collection: "routers", member: "router", notFound: routerNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			err := c.read(func(st *vpc.State) error {
				for _, g := range st.InternetGateways {
					if isRouter(g) && c.sees(g.OwnerID) {
						out = append(out, renderRouter(st, g))
					}
				}
				return nil
			})
			return out, err
		},
		create: s.createRouter,
		update: s.updateRouter,
		del:    s.deleteRouter,
	}
}

func renderRouter(st *vpc.State, g *vpc.InternetGateway) obj {
	var gw any
	if g.Tags[tagGateway] != "" {
		ips := []obj{}
		if a := gatewayAddress(st, g.ID); a != nil {
			ips = append(ips, obj{"subnet_id": externalSubnetID, "ip_address": a.PublicIP.String()})
		}
		gw = obj{"network_id": g.Tags[tagGateway], "enable_snat": g.Tags[tagSNAT] != "false", "external_fixed_ips": ips}
	}
	routes := []obj{}
	for _, n := range routerNetworks(st, g) {
		if t := st.MainRouteTable(n); t != nil {
			for _, r := range t.Routes {
				if e := st.NetworkInterfaces[r.NetworkInterfaceID]; e != nil && r.Origin == vpc.OriginCreateRoute {
					routes = append(routes, obj{"destination": r.DestinationCidrBlock.String(), "nexthop": e.PrimaryIP().String()})
				} else if r.NextHop.IsValid() {
					routes = append(routes, obj{"destination": r.DestinationCidrBlock.String(), "nexthop": r.NextHop.String()})
				}
			}
		}
	}
	return obj{"id": g.ID, "name": nameOf(g.Tags), "description": g.Tags[tagDescription],
		"tenant_id": g.OwnerID, "project_id": g.OwnerID, "admin_state_up": !g.Down, "status": "ACTIVE",
		"external_gateway_info": gw, "routes": routes, "distributed": false, "ha": false,
		"availability_zone_hints": []string{}, "availability_zones": []string{}, "flavor_id": nil, "tags": neutronTags(g.Tags)}
}

// gatewayAttr reads external_gateway_info: the external network's id, ""
// for none (null or {}); set is false when the attribute is absent.
func (s *Server) gatewayAttr(c *call, st *vpc.State, a attrs) (network string, snat, set bool, err error) {
	raw, ok := a["external_gateway_info"]
	if !ok {
		return "", false, false, nil
	}
	if string(raw) == "null" {
		return "", false, true, nil
	}
	var info attrs
	if err := json.Unmarshal(raw, &info); err != nil || info == nil {
		return "", false, false, badRequest("Invalid input for external_gateway_info. Reason: '%s' is not a dictionary.", raw)
	}
	if err := info.only("network_id", "enable_snat", "external_fixed_ips"); err != nil {
		return "", false, false, err
	}
	if snat, err = info.boolean("enable_snat", defaultSNAT); err != nil {
		return "", false, false, err
	}
	if raw, ok := info["external_fixed_ips"]; ok && string(raw) != "[]" && string(raw) != "null" {
		return "", false, false, badRequest("Invalid input for external_gateway_info. Reason: choosing the gateway's external fixed IPs is not supported.")
	}
	if network, err = info.str("network_id", "", 255); err != nil {
		return "", false, false, err
	}
	if network == "" {
		if len(info) == 0 {
			return "", false, true, nil
		}
		return "", false, false, badRequest("Invalid input for external_gateway_info. Reason: network_id is required.")
	}
	if err := s.checkExternal(st, c, network); err != nil {
		return "", false, false, err
	}
	return network, snat, true, nil
}

// setGateway records a router's gateway (network "" clears it) in its
// tags.
func setGateway(g *vpc.InternetGateway, network string, snat bool) {
	delete(g.Tags, tagGateway)
	delete(g.Tags, tagSNAT)
	if network != "" {
		g.Tags[tagGateway] = network
		if !snat {
			g.Tags[tagSNAT] = "false"
		}
	}
}

func routerText(a attrs) (name, desc string, err error) {
	if name, desc, err = a.nameDesc(); err != nil {
		return
	}
	for _, f := range []struct {
		k    string
		want any
		why  string
	}{
		{"distributed", false, "a router is distributed by nature on Canopy, and not configurable"},
		{"ha", false, "HA routers are not configurable (the gateways are)"},
		{"availability_zone_hints", []any{}, "availability zone hints are not supported"},
	} {
		if err = a.fixed(f.k, f.want, f.why); err != nil {
			return
		}
	}
	return
}

func (s *Server) createRouter(c *call, a attrs) (string, error) {
	if err := a.only("name", "description", "admin_state_up", "external_gateway_info", "distributed", "ha",
		"availability_zone_hints", "tenant_id", "project_id"); err != nil {
		return "", err
	}
	name, desc, err := routerText(a)
	if err != nil {
		return "", err
	}
	up, err := a.boolean("admin_state_up", true)
	if err != nil {
		return "", err
	}
	var id string
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		owner, err := c.owner(a, func(p string) bool { return st.Accounts[p] != nil })
		if err != nil {
			return err
		}
		gw, snat, _, err := s.gatewayAttr(c, st, a)
		if err != nil {
			return err
		}
		if err := checkQuota(st, owner, "router"); err != nil {
			return err
		}
		tags := withText(nil, name, desc)
		if tags == nil {
			tags = vpc.Tags{}
		}
		tags[tagRouter] = "1"
		g := &vpc.InternetGateway{ID: ec2.NewID(vpc.KindInternetGW), OwnerID: owner, Tags: tags, Down: !up}
		setGateway(g, gw, snat)
		id = g.ID
		return s.realize(tx, g)
	})
	return id, err
}

func (s *Server) updateRouter(c *call, id string, a attrs) error {
	if err := a.only("name", "description", "admin_state_up", "external_gateway_info", "routes", "distributed", "ha"); err != nil {
		return err
	}
	name, desc, err := routerText(a)
	if err != nil {
		return err
	}
	up, err := a.boolean("admin_state_up", true)
	if err != nil {
		return err
	}
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := c.router(st, id)
		if err != nil {
			return err
		}
		gw, snat, gwSet, err := s.gatewayAttr(c, st, a)
		if err != nil {
			return err
		}
		g = clone(g)
		if a.has("name") {
			g.Tags = withText(g.Tags, name, g.Tags[tagDescription])
		}
		if a.has("description") {
			g.Tags = withText(g.Tags, nameOf(g.Tags), desc)
		}
		if gwSet {
			setGateway(g, gw, snat)
		}
		if a.has("admin_state_up") {
			g.Down = !up
		}
		if err := s.realize(tx, g); err != nil {
			return err
		}
		if raw, ok := a["routes"]; ok {
			return s.setRoutes(tx, g, raw)
		}
		return nil
	})
}

// realize puts router g (changed) and brings its gateway's address, its
// internet gateway's attachment, the network's default route and its
// SNAT address in line with it.
func (s *Server) realize(tx *nsdb.VPCTx, g *vpc.InternetGateway) error {
	st := tx.State()
	want := ""
	if g.Tags[tagGateway] != "" {
		want = routerNetwork(st, g)
	}
	// Interfaces on several networks: the router routes between them
	// (translate's joined VPCs).
	if g.Joins = routerNetworks(st, g); len(g.Joins) < 2 {
		g.Joins = nil
	} else if g.Tags[tagGateway] != "" {
		return badRequest("Bad router request: router %s has interfaces on %d networks; on Canopy a router with an external gateway serves one network (yet).", g.ID, len(g.Joins))
	}
	addr := gatewayAddress(st, g.ID)
	switch {
	case g.Tags[tagGateway] != "" && addr == nil:
		ip, err := s.cfg.EC2.AllocPublicIP(st)
		if err != nil {
			return conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", externalNetworkID)
		}
		addr = &vpc.Address{AllocationID: ec2.NewID(vpc.KindAllocation), OwnerID: g.OwnerID, PublicIP: ip, Domain: "vpc",
			Tags: vpc.Tags{tagGatewayOf: g.ID}}
		if err := tx.Put(addr.AllocationID, addr); err != nil {
			return err
		}
	case g.Tags[tagGateway] == "" && addr != nil:
		if err := tx.Delete("addresses", addr.AllocationID); err != nil {
			return err
		}
		addr = nil
	}
	// The SNAT address of every network this router served or serves.
	for _, v := range st.Vpcs {
		snat := netip.Addr{}
		if v.ID == want && addr != nil && g.Tags[tagSNAT] != "false" {
			snat = addr.PublicIP
		}
		if v.ID == want || (addr != nil && v.SNATAddress == addr.PublicIP) || g.AttachedTo(v.ID) {
			if v.SNATAddress != snat {
				v = clone(v)
				v.SNATAddress = snat
				if err := tx.Put(v.ID, v); err != nil {
					return err
				}
			}
		}
	}
	for _, at := range slices.Clone(g.Attachments) {
		if at.VpcID == want {
			continue
		}
		if err := vpc.CheckDetachInternetGateway(st, g, at.VpcID); err != nil {
			var ve *vpc.Error
			if asVPC(err, &ve) && ve.Code == vpc.CodeDependencyViolation {
				return conflict("RouterExternalGatewayInUseByFloatingIp", "Gateway of router %s cannot go or move: floating IPs of network %s use it (%s).", g.ID, at.VpcID, ve.Message)
			}
			return err
		}
		if t := st.MainRouteTable(at.VpcID); t != nil {
			t = clone(t)
			t.Routes = slices.DeleteFunc(t.Routes, func(r vpc.Route) bool { return r.GatewayID == g.ID })
			if err := tx.Put(t.ID, t); err != nil {
				return err
			}
		}
		g.Attachments = slices.DeleteFunc(g.Attachments, func(x vpc.IGWAttachment) bool { return x.VpcID == at.VpcID })
	}
	if want != "" && !g.AttachedTo(want) {
		if o := st.InternetGatewayOf(want); o != nil && o.ID != g.ID {
			return conflict("RouterInUse", "Network %s already has a gateway (%s): one router per network reaches the outside on Canopy.", want, o.ID)
		}
		g.Attachments = append(g.Attachments, vpc.IGWAttachment{VpcID: want, State: vpc.StateAvailable})
		if t := st.MainRouteTable(want); t != nil {
			all := netip.MustParsePrefix("0.0.0.0/0")
			if i := slices.IndexFunc(t.Routes, func(r vpc.Route) bool { return r.DestinationCidrBlock == all }); i >= 0 {
				return conflict("RouterInUse", "Network %s already has a route to 0.0.0.0/0.", want)
			}
			t = clone(t)
			t.Routes = append(t.Routes, vpc.Route{DestinationCidrBlock: all, GatewayID: g.ID, Origin: vpc.OriginCreateRoute, State: vpc.RouteActive})
			if err := tx.Put(t.ID, t); err != nil {
				return err
			}
		}
	}
	return tx.Put(g.ID, g)
}

// setRoutes replaces a router's static routes: routes of the main route
// table of the network holding each next hop (a port's address on one of
// the router's networks), to that port.
func (s *Server) setRoutes(tx *nsdb.VPCTx, g *vpc.InternetGateway, raw json.RawMessage) error {
	var routes []struct {
		Destination string `json:"destination"`
		Nexthop     string `json:"nexthop"`
	}
	if string(raw) == "null" {
		raw = json.RawMessage("[]")
	}
	if err := json.Unmarshal(raw, &routes); err != nil {
		return badRequest("Invalid input for routes. Reason: '%s' is not a list of {destination, nexthop}.", raw)
	}
	st := tx.State()
	nets := routerNetworks(st, g)
	if len(nets) == 0 && len(routes) > 0 {
		return badRequest("Router %s has no interface: its routes would have no network.", g.ID)
	}
	tables := map[string]*vpc.RouteTable{}
	for _, n := range nets {
		if t := st.MainRouteTable(n); t != nil {
			tables[n] = withoutStaticRoutes(t)
		}
	}
	for _, r := range routes {
		dst, err := netip.ParsePrefix(r.Destination)
		if err != nil || !dst.Addr().Is4() || dst.Masked() != dst {
			return badRequest("Invalid input for routes. Reason: '%s' is not a valid IPv4 CIDR.", r.Destination)
		}
		hop, err := netip.ParseAddr(r.Nexthop)
		if err != nil || !hop.Is4() {
			return badRequest("Invalid input for routes. Reason: '%s' is not a valid IPv4 address.", r.Nexthop)
		}
		// To the port holding the next hop, else to the address on the
		// router's subnet holding it.
		route := vpc.Route{DestinationCidrBlock: dst, Origin: vpc.OriginCreateRoute, State: vpc.RouteActive}
		network := ""
		for _, n := range nets {
			for _, e := range st.InterfacesOf(n) {
				if slices.ContainsFunc(e.PrivateIPs, func(p vpc.PrivateIP) bool { return p.Address == hop }) {
					route.NetworkInterfaceID, network = e.ID, n
				}
			}
		}
		if network == "" {
			for _, id := range routerSubnets(g) {
				sub := st.Subnets[id]
				if sub == nil || !sub.CidrBlock.Contains(hop) {
					continue
				}
				if gw, _ := sub.Gateway(); gw == hop {
					return &Error{http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: the nexthop " + hop.String() + " is used by router " + g.ID + "."}
				}
				route.NextHop, network = hop, sub.VpcID
			}
		}
		if network == "" {
			return &Error{http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: the nexthop " + hop.String() + " is not connected with router " + g.ID + " (no interface subnet holds it)."}
		}
		t := tables[network]
		if t == nil {
			return invalidInput("network %s has no main route table", network)
		}
		if slices.ContainsFunc(t.Routes, func(x vpc.Route) bool { return x.DestinationCidrBlock == dst && x.GatewayID != vpc.LocalGateway }) {
			return &Error{http.StatusBadRequest, "InvalidRoutes", "Invalid format for routes: the destination " + dst.String() + " is routed already."}
		}
		t.Routes = append(t.Routes, route)
	}
	for _, t := range tables {
		if err := tx.Put(t.ID, t); err != nil {
			return err
		}
	}
	return nil
}

// withoutStaticRoutes is a copy of main route table t without a router's
// static routes (routes to ports).
func withoutStaticRoutes(t *vpc.RouteTable) *vpc.RouteTable {
	t = clone(t)
	t.Routes = slices.DeleteFunc(t.Routes, func(r vpc.Route) bool {
		return (r.NetworkInterfaceID != "" && r.Origin == vpc.OriginCreateRoute) || r.NextHop.IsValid()
	})
	return t
}

func (s *Server) deleteRouter(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		g, err := c.router(st, id)
		if err != nil {
			return err
		}
		if len(routerSubnets(g)) > 0 {
			return conflict("RouterInUse", "Router %s still has ports", id)
		}
		if a := gatewayAddress(st, id); a != nil {
			if err := tx.Delete("addresses", a.AllocationID); err != nil {
				return err
			}
		}
		return tx.Delete("internet_gateways", id)
	})
}

// interfaceBody reads an add/remove_router_interface body: a subnet or a
// port.
func interfaceBody(c *call) (sub, port string, err error) {
	var a attrs
	if err := json.NewDecoder(io.LimitReader(c.r.Body, maxBody)).Decode(&a); err != nil || a == nil {
		return "", "", badRequest("Malformed request body: a JSON object with subnet_id or port_id.")
	}
	if err := a.only("subnet_id", "port_id"); err != nil {
		return "", "", err
	}
	if sub, err = a.str("subnet_id", "", 255); err != nil {
		return "", "", err
	}
	if port, err = a.str("port_id", "", 255); err != nil {
		return "", "", err
	}
	switch {
	case sub != "" && port != "":
		return "", "", badRequest("Bad router request: Cannot specify both subnet-id and port-id.")
	case sub == "" && port == "":
		return "", "", badRequest("Bad router request: Either subnet_id or port_id must be specified.")
	}
	return sub, port, nil
}

// tagPortOf is the tag prefix of the port an interface was added with
// (+ the subnet's id; the value is the port's id).
const tagPortOf = "neutron:port:"

// interfacePortOf is the id of router g's interface port on subnet subID:
// the port it was added with, else rif-<subnet>.
func interfacePortOf(g *vpc.InternetGateway, subID string) string {
	if p := g.Tags[tagPortOf+subID]; p != "" {
		return p
	}
	return interfacePortID(subID)
}

// routerInterface serves add_router_interface and remove_router_interface.
func (s *Server) routerInterface(add bool) func(c *call, w http.ResponseWriter) {
	return func(c *call, w http.ResponseWriter) {
		id := c.r.PathValue("id")
		subID, portID, err := interfaceBody(c)
		var out obj
		if err == nil {
			err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
				g, err := c.router(st, id)
				if err != nil {
					return err
				}
				// By port: adding, the port becomes the interface on its
				// subnet (it keeps its id; its address is given back, the
				// router's being the subnet's gateway); removing, the
				// interface it names goes.
				var byPort *vpc.NetworkInterface
				switch {
				case portID != "" && add:
					if byPort, err = c.port(st, portID); err != nil {
						return err
					}
					if byPort.Attachment != nil || byPort.Binding != nil || byPort.DeviceID != "" {
						return conflict("PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device.", portID, byPort.VpcID)
					}
					subID = byPort.SubnetID
				case portID != "":
					subID = ""
					for _, o := range routerSubnets(g) {
						if interfacePortOf(g, o) == portID {
							subID = o
						}
					}
					if subID == "" {
						return notFound("RouterInterfaceNotFound", "Router "+id+" interface for port", portID)
					}
				}
				sub, err := c.subnet(st, subID)
				if err != nil {
					return err
				}
				subs := routerSubnets(g)
				g = clone(g)
				if add {
					if slices.Contains(subs, subID) {
						return badRequest("Bad router request: Router already has a port on subnet %s.", subID)
					}
					if o := routerOn(st, subID); o != nil {
						return conflict("RouterInUse", "Subnet %s has an interface on router %s already: one router per subnet.", subID, o.ID)
					}
					if err := checkJoin(st, g, sub); err != nil {
						return err
					}
					if sub.OwnerID != g.OwnerID {
						return forbidden("Subnet %s is not of router %s's project.", subID, id)
					}
					if _, ok := sub.Gateway(); !ok {
						return badRequest("Bad router request: Subnet for router interface must have a gateway IP (%s has none).", subID)
					}
					subs = append(subs, subID)
					if byPort != nil {
						if err := ec2.DeleteInterface(st, tx, byPort); err != nil {
							return err
						}
						g.Tags[tagPortOf+subID] = byPort.ID
					}
				} else {
					i := slices.Index(subs, subID)
					if i < 0 {
						return notFound("RouterInterfaceNotFoundForSubnet", "Router "+id+" interface for subnet", subID)
					}
					subs = slices.Delete(subs, i, i+1)
					if len(subs) == 0 && g.AttachedTo(sub.VpcID) {
						if err := vpc.CheckDetachInternetGateway(st, g, sub.VpcID); err != nil {
							return conflict("RouterInterfaceInUseByFloatingIP", "Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", subID, id)
						}
					}
					if !slices.ContainsFunc(subs, func(o string) bool { return st.Subnets[o] != nil && st.Subnets[o].VpcID == sub.VpcID }) {
						// Its static routes on a network go with its last
						// interface there.
						if t := st.MainRouteTable(sub.VpcID); t != nil {
							if err := tx.Put(t.ID, withoutStaticRoutes(t)); err != nil {
								return err
							}
						}
					}
				}
				if len(subs) == 0 {
					delete(g.Tags, tagSubnets)
				} else {
					g.Tags[tagSubnets] = strings.Join(subs, ",")
				}
				out = obj{"id": id, "subnet_id": subID, "subnet_ids": []string{subID}, "port_id": interfacePortOf(g, subID),
					"network_id": sub.VpcID, "tenant_id": g.OwnerID, "project_id": g.OwnerID}
				if !add {
					delete(g.Tags, tagPortOf+subID)
				}
				return s.realize(tx, g)
			})
		}
		if err != nil {
			writeError(w, toError(err))
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// checkJoin checks adding an interface on subnet sub to router g: on
// another network than its interfaces', the router joins the networks
// (their routers route to each other's blocks), which needs blocks that do
// not overlap (Neutron refuses overlapping subnets on one router) and no
// external gateway (a router with a gateway serves one network on Canopy,
// yet).
func checkJoin(st *vpc.State, g *vpc.InternetGateway, sub *vpc.Subnet) error {
	nets := routerNetworks(st, g)
	if len(nets) == 0 || slices.Contains(nets, sub.VpcID) {
		return nil
	}
	if g.Tags[tagGateway] != "" {
		return badRequest("Bad router request: router %s has an external gateway and interfaces on network %s; on Canopy a router with an external gateway serves one network (yet).", g.ID, nets[0])
	}
	mine := st.Vpcs[sub.VpcID]
	for _, n := range nets {
		o := st.Vpcs[n]
		if mine == nil || o == nil || !mine.CidrBlock.Overlaps(o.CidrBlock) {
			continue
		}
		for _, a := range st.SubnetsOf(sub.VpcID) {
			for _, b := range st.SubnetsOf(n) {
				if a.CidrBlock.Overlaps(b.CidrBlock) {
					return badRequest("Bad router request: Cidr %s of subnet %s overlaps with cidr %s of subnet %s.", a.CidrBlock, a.ID, b.CidrBlock, b.ID)
				}
			}
		}
		return badRequest("Bad router request: network %s (%s) and network %s (%s) overlap: on Canopy a router routes between networks' blocks, the smallest prefixes covering their subnets.", sub.VpcID, mine.CidrBlock, n, o.CidrBlock)
	}
	return nil
}

// Router ports. Neutron shows a router's interfaces and its gateway as
// ports of the router (device_id), which clients list to find them. On
// Canopy an interface is the network router's port on the subnet (the
// subnet's gateway address and the MAC it answers with) and the gateway
// is the pool address the router holds: they are shown as ports, read only
// (409 L3PortInUse to a change or delete, as Neutron answers a delete).
const (
	ownerInterface = "network:router_interface"
	ownerGateway   = "network:router_gateway"
)

func interfacePortID(subnetID string) string { return "rif-" + strings.TrimPrefix(subnetID, "subnet-") }
func gatewayPortID(routerID string) string   { return "rgw-" + strings.TrimPrefix(routerID, "igw-") }

// routerPorts renders the ports of the routers the caller sees: an
// interface port per interface; the gateway port (of no project, as in
// Neutron) to an admin only.
func routerPorts(c *call, st *vpc.State) []obj {
	var out []obj
	port := func(id, network, project, owner, device, subnet, ip, mac string, up bool) obj {
		status := "DOWN"
		if up {
			status = "ACTIVE"
		}
		return obj{
			"id": id, "name": "", "description": "", "network_id": network, "tenant_id": project, "project_id": project,
			"mac_address": mac, "admin_state_up": true, "status": status, "device_id": device, "device_owner": owner,
			"fixed_ips":       []obj{{"subnet_id": subnet, "ip_address": ip}},
			"security_groups": []string{}, "allowed_address_pairs": []obj{}, "port_security_enabled": false,
			"binding:host_id": "", "binding:vif_type": "unbound", "binding:vif_details": obj{},
			"binding:vnic_type": "normal", "binding:profile": obj{}, "extra_dhcp_opts": []obj{}, "tags": []string{},
		}
	}
	for _, g := range st.InternetGateways {
		if !isRouter(g) || !c.sees(g.OwnerID) {
			continue
		}
		for _, id := range routerSubnets(g) {
			if sub := st.Subnets[id]; sub != nil {
				gw, _ := sub.Gateway() // an interface needs one
				out = append(out, port(interfacePortOf(g, id), sub.VpcID, g.OwnerID, ownerInterface, g.ID, id,
					gw.String(), translate.GatewayMAC(id).String(), !g.Down))
			}
		}
		if a := gatewayAddress(st, g.ID); a != nil && c.admin {
			out = append(out, port(gatewayPortID(g.ID), externalNetworkID, "", ownerGateway, g.ID, externalSubnetID,
				a.PublicIP.String(), translate.GatewayMAC(g.ID).String(), !g.Down))
		}
	}
	return out
}

// routerPortOf is the router port id names (nil if none the caller sees).
func routerPortOf(c *call, st *vpc.State, id string) obj {
	if st.NetworkInterfaces[id] != nil {
		return nil // a port that became an interface is no interface any more
	}
	for _, p := range routerPorts(c, st) {
		if p["id"] == id {
			return p
		}
	}
	return nil
}

// updateRouterPort answers an update of a router's port (done false when
// id is none): fixed_ips that each name the port's subnet, by subnet_id
// alone or with its address, keep its address, as Neutron keeps a port's
// address on a subnet asked for by subnet_id; anything else is 409
// L3PortInUse.
func updateRouterPort(c *call, id string, a attrs) (done bool, err error) {
	var p obj
	if err := c.read(func(st *vpc.State) error { p = routerPortOf(c, st, id); return nil }); err != nil {
		return true, err
	}
	if p == nil {
		return false, nil
	}
	ip := p["fixed_ips"].([]obj)[0]
	refused := conflict("L3PortInUse", "Port %s has owner %s: only its fixed_ips on its own subnet, unchanged, can be given.", id, p["device_owner"])
	if err := a.only("fixed_ips"); err != nil {
		return true, refused
	}
	var want []struct {
		Subnet string `json:"subnet_id"`
		IP     string `json:"ip_address"`
	}
	if raw, ok := a["fixed_ips"]; ok && (json.Unmarshal(raw, &want) != nil || len(want) == 0) {
		return true, refused
	}
	for _, w := range want {
		if (w.Subnet != "" && w.Subnet != ip["subnet_id"]) || (w.IP != "" && w.IP != ip["ip_address"]) || (w.Subnet == "" && w.IP == "") {
			return true, refused
		}
	}
	return true, nil
}
