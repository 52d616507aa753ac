package neutron_test

import (
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestRoutersAndFloatingIPs: the external network, a router with a gateway
// and an interface (an internet gateway attached, the default route),
// static routes, floating IPs associated, moved, disassociated, and the
// deletes in dependency order.
func TestRoutersAndFloatingIPs(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	other := e.project("beta")
	ext := p.must(200, "GET", "/v2.0/networks?router:external=True", nil, "")["networks"].([]any)
	if len(ext) != 1 || ext[0].(map[string]any)["id"] != "public" {
		t.Fatalf("external networks: %v", ext)
	}
	// The public subnet is the admin's to see (Neutron hides a non-shared
	// external network's subnets from members).
	if sub := e.admin(p).must(200, "GET", "/v2.0/subnets/public-subnet", nil, "subnet"); sub["cidr"] != "203.0.113.0/29" {
		t.Errorf("external subnet: %v", sub)
	}
	if subs := p.must(200, "GET", "/v2.0/subnets?network_id=public", nil, "")["subnets"].([]any); len(subs) != 0 {
		t.Errorf("a member sees the public subnet: %v", subs)
	}
	net := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "n"}}, "network")["id"].(string)
	sub := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "subnet")["id"].(string)
	port := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net}}, "port")
	portID := port["id"].(string)
	port2 := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net}}, "port")["id"].(string)

	r := p.must(201, "POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r1",
		"external_gateway_info": map[string]any{"network_id": "public"}}}, "router")
	rid := r["id"].(string)
	gw, _ := r["external_gateway_info"].(map[string]any)
	if gw["network_id"] != "public" || gw["enable_snat"] != true || len(gw["external_fixed_ips"].([]any)) != 1 {
		t.Fatalf("router: %v", r)
	}
	gwIP := gw["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	// The gateway's port: an admin sees it (of no project, as in Neutron), a member does not.
	gwPorts := "/v2.0/ports?device_id=" + rid + "&device_owner=network:router_gateway&network_id=public"
	if ps := e.admin(p).must(200, "GET", gwPorts, nil, "")["ports"].([]any); len(ps) != 1 ||
		ps[0].(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != gwIP {
		t.Errorf("the gateway port: %v", ps)
	}
	if ps := p.must(200, "GET", gwPorts, nil, "")["ports"].([]any); len(ps) != 0 {
		t.Errorf("a member sees the gateway port: %v", ps)
	}
	snat := func() string {
		var s string
		e.vpcs.Read(func(st *vpc.State) { s = st.Vpcs[net].SNATAddress.String() })
		return s
	}
	// A floating IP before the router reaches the port's network: refused.
	fip := p.must(201, "POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{"floating_network_id": "public"}}, "floatingip")
	fid := fip["id"].(string)
	if fip["status"] != "DOWN" || fip["port_id"] != nil {
		t.Errorf("new floating IP: %v", fip)
	}
	p.must(404, "PUT", "/v2.0/floatingips/"+fid, map[string]any{"floatingip": map[string]any{"port_id": portID}}, "")

	p.must(200, "PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": sub}, "")
	gateway := func() (attached bool, route bool) {
		e.vpcs.Read(func(st *vpc.State) {
			g := st.InternetGateways[rid]
			attached = g != nil && g.AttachedTo(net)
			for _, rt := range st.MainRouteTable(net).Routes {
				if rt.GatewayID == rid && rt.DestinationCidrBlock == netip.MustParsePrefix("0.0.0.0/0") {
					route = true
				}
			}
		})
		return
	}
	if a, rt := gateway(); !a || !rt {
		t.Fatalf("after add_router_interface: attached %v, default route %v", a, rt)
	}
	if got := snat(); got != gwIP {
		t.Errorf("the network's SNAT address %s, want the gateway's %s", got, gwIP)
	}
	// Down (admin_state_up false) and up again: the gateway stays attached
	// and keeps its route, the translator makes it forward nothing
	// (internal/translate TestRouterDown).
	down := func() (d bool) {
		e.vpcs.Read(func(st *vpc.State) { d = st.InternetGateways[rid].Down })
		return
	}
	for _, up := range []bool{false, true} {
		r = p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"admin_state_up": up}}, "router")
		if r["admin_state_up"] != up || down() == up {
			t.Errorf("admin_state_up %v: shown %v, Down %v", up, r["admin_state_up"], down())
		}
		if a, rt := gateway(); !a || !rt {
			t.Errorf("admin_state_up %v: attached %v, default route %v", up, a, rt)
		}
	}
	p.must(400, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"admin_state_up": "sideways"}}, "")
	// SNAT off: the gateway keeps its address, the network translates no more.
	r = p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": "public", "enable_snat": false}}}, "router")
	if gw := r["external_gateway_info"].(map[string]any); gw["enable_snat"] != false || gw["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != gwIP {
		t.Errorf("SNAT off: %v", gw)
	}
	if got := snat(); got != "invalid IP" {
		t.Errorf("SNAT off: the network's SNAT address %s", got)
	}
	p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": "public", "enable_snat": true}}}, "")
	if got := snat(); got != gwIP {
		t.Errorf("SNAT on again: %s, want %s", got, gwIP)
	}
	// The gateway's address is not a floating IP.
	if fs := p.must(200, "GET", "/v2.0/floatingips", nil, "")["floatingips"].([]any); len(fs) != 1 {
		t.Errorf("floating IPs: %v", fs)
	}
	// Associate, move, disassociate.
	fip = p.must(200, "PUT", "/v2.0/floatingips/"+fid, map[string]any{"floatingip": map[string]any{"port_id": portID}}, "floatingip")
	fixed := port["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]
	if fip["port_id"] != portID || fip["fixed_ip_address"] != fixed || fip["router_id"] != rid || fip["status"] != "ACTIVE" {
		t.Errorf("associated: %v", fip)
	}
	e.vpcs.Read(func(st *vpc.State) {
		if d := translate.Translate(st, translate.CloudConfig{}); len(d.Skipped) > 0 {
			t.Errorf("skipped: %v", d.Skipped)
		}
		if a := st.Addresses[fid]; a.NetworkInterfaceID != portID || a.PrivateIPAddress.String() != fixed {
			t.Errorf("the elastic IP: %+v", a)
		}
	})
	other.must(404, "PUT", "/v2.0/floatingips/"+fid, map[string]any{"floatingip": map[string]any{"port_id": nil}}, "")
	fip = p.must(200, "PUT", "/v2.0/floatingips/"+fid, map[string]any{"floatingip": map[string]any{"port_id": port2}}, "floatingip")
	if fip["port_id"] != port2 {
		t.Errorf("moved: %v", fip)
	}
	// The gateway cannot go while a floating IP uses it.
	p.must(409, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"external_gateway_info": nil}}, "")
	p.must(409, "PUT", "/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sub}, "")
	fip = p.must(200, "PUT", "/v2.0/floatingips/"+fid, map[string]any{"floatingip": map[string]any{"port_id": nil}}, "floatingip")
	if fip["port_id"] != nil || fip["status"] != "DOWN" {
		t.Errorf("disassociated: %v", fip)
	}

	// Static routes: to a port's address.
	hop := port["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	r = p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"routes": []any{
		map[string]any{"destination": "172.16.0.0/16", "nexthop": hop}}}}, "router")
	if rs := r["routes"].([]any); len(rs) != 1 || rs[0].(map[string]any)["nexthop"] != hop {
		t.Errorf("routes: %v", r)
	}
	e.vpcs.Read(func(st *vpc.State) {
		found := false
		for _, rt := range st.MainRouteTable(net).Routes {
			found = found || rt.DestinationCidrBlock.String() == "172.16.0.0/16" && rt.NetworkInterfaceID == portID
		}
		if !found {
			t.Errorf("no route to 172.16.0.0/16 via %s: %+v", portID, st.MainRouteTable(net).Routes)
		}
	})

	// Gateway off: detached, route gone; on again.
	p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{}}}, "")
	if a, rt := gateway(); a || rt || snat() != "invalid IP" {
		t.Errorf("gateway cleared: attached %v, default route %v, SNAT %s", a, rt, snat())
	}
	e.vpcs.Read(func(st *vpc.State) {
		for _, a := range st.Addresses {
			if a.PublicIP.String() == gwIP {
				t.Errorf("the cleared gateway's address %s is still held", gwIP)
			}
		}
	})
	p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": "public"}}}, "")
	if a, rt := gateway(); !a || !rt {
		t.Errorf("gateway set again: attached %v, default route %v", a, rt)
	}

	// Deletes in dependency order.
	p.must(409, "DELETE", "/v2.0/routers/"+rid, nil, "")
	p.must(409, "DELETE", "/v2.0/subnets/"+sub, nil, "")
	p.must(204, "DELETE", "/v2.0/floatingips/"+fid, nil, "")
	p.must(200, "PUT", "/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": sub}, "")
	if a, rt := gateway(); a || rt || snat() != "invalid IP" {
		t.Errorf("interface removed: attached %v, default route %v, SNAT %s", a, rt, snat())
	}
	p.must(204, "DELETE", "/v2.0/routers/"+rid, nil, "")
	for _, id := range []string{portID, port2} {
		p.must(204, "DELETE", "/v2.0/ports/"+id, nil, "")
	}
	p.must(204, "DELETE", "/v2.0/networks/"+net, nil, "")
}

// TestRouterJoinsNetworks: a router with interfaces on two networks joins
// them (InternetGateway.Joins, which the translator routes: internal/
// translate TestJoinedNetworks), takes static routes to ports of either,
// refuses an overlapping network and an external gateway, and unjoins as
// the interfaces go.
func TestRouterJoinsNetworks(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	mk := func(cidr string) (string, string) {
		n := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": cidr}}, "network")["id"].(string)
		s := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n, "ip_version": 4, "cidr": cidr}}, "subnet")["id"].(string)
		return n, s
	}
	n1, s1 := mk("10.1.0.0/24")
	n2, s2 := mk("10.2.0.0/24")
	_, s3 := mk("10.1.0.128/25") // overlaps n1
	rid := p.must(201, "POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r", "admin_state_up": false}}, "router")["id"].(string)
	joins := func() (j []string) {
		e.vpcs.Read(func(st *vpc.State) { j = st.InternetGateways[rid].Joins })
		return
	}
	iface := func(status int, verb, sub string) {
		t.Helper()
		p.must(status, "PUT", "/v2.0/routers/"+rid+"/"+verb+"_router_interface", map[string]any{"subnet_id": sub}, "")
	}
	if out := p.must(200, "PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"subnet_id": s1}, ""); out["port_id"] == "" {
		t.Errorf("add_router_interface: %v", out)
	}
	if j := joins(); j != nil {
		t.Errorf("one network joined: %v", j)
	}
	iface(200, "add", s2)
	if j := joins(); len(j) != 2 || j[0] != n1 || j[1] != n2 {
		t.Errorf("joins %v, want [%s %s]", j, n1, n2)
	}
	iface(400, "add", s3)
	p.must(400, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": "public"}}}, "")
	// The interfaces show as the router's ports: each subnet's gateway
	// address, read only.
	ports := p.must(200, "GET", "/v2.0/ports?device_id="+rid, nil, "")["ports"].([]any)
	if len(ports) != 2 {
		t.Fatalf("the router's ports: %v", ports)
	}
	bySubnet := map[string]map[string]any{}
	for _, x := range ports {
		rp := x.(map[string]any)
		bySubnet[rp["fixed_ips"].([]any)[0].(map[string]any)["subnet_id"].(string)] = rp
	}
	for sub, net := range map[string]string{s1: n1, s2: n2} {
		rp := bySubnet[sub]
		if rp == nil {
			t.Fatalf("no interface port on %s: %v", sub, ports)
		}
		ip := rp["fixed_ips"].([]any)[0].(map[string]any)
		if rp["device_owner"] != "network:router_interface" || rp["network_id"] != net || ip["ip_address"] != map[string]string{s1: "10.1.0.1", s2: "10.2.0.1"}[sub] || rp["status"] != "DOWN" {
			t.Errorf("interface port on %s: %v", sub, rp)
		}
		p.must(409, "DELETE", "/v2.0/ports/"+rp["id"].(string), nil, "")
		p.must(200, "GET", "/v2.0/ports/"+rp["id"].(string), nil, "")
		// Its own subnet asked for again keeps its address (as Neutron);
		// another subnet or attribute is refused.
		u := p.must(200, "PUT", "/v2.0/ports/"+rp["id"].(string), map[string]any{"port": map[string]any{"fixed_ips": []any{map[string]any{"subnet_id": sub}}}}, "port")
		if u["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != ip["ip_address"] {
			t.Errorf("interface port updated: %v", u)
		}
		p.must(409, "PUT", "/v2.0/ports/"+rp["id"].(string), map[string]any{"port": map[string]any{"fixed_ips": []any{map[string]any{"subnet_id": s3}}}}, "")
		p.must(409, "PUT", "/v2.0/ports/"+rp["id"].(string), map[string]any{"port": map[string]any{"name": "x"}}, "")
	}
	// Static routes to a port of each network, in that network's main table.
	var hops []string
	for _, n := range []string{n1, n2} {
		port := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": n}}, "port")
		hops = append(hops, port["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string))
	}
	r := p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"routes": []any{
		map[string]any{"destination": "192.168.1.0/24", "nexthop": hops[0]}, map[string]any{"destination": "192.168.2.0/24", "nexthop": hops[1]}}}}, "router")
	if rs := r["routes"].([]any); len(rs) != 2 {
		t.Errorf("routes: %v", rs)
	}
	static := func(n string) (k int) {
		e.vpcs.Read(func(st *vpc.State) {
			for _, rt := range st.MainRouteTable(n).Routes {
				if rt.NetworkInterfaceID != "" {
					k++
				}
			}
		})
		return
	}
	if static(n1) != 1 || static(n2) != 1 {
		t.Errorf("static routes: %d in %s, %d in %s", static(n1), n1, static(n2), n2)
	}
	// The second network's interface goes: its route with it, the join.
	iface(200, "remove", s2)
	if j := joins(); j != nil || static(n2) != 0 || static(n1) != 1 {
		t.Errorf("after removing %s: joins %v, static routes %d and %d", s2, j, static(n1), static(n2))
	}
	r = p.must(200, "PUT", "/v2.0/routers/"+rid, map[string]any{"router": map[string]any{"routes": nil}}, "router")
	if rs := r["routes"].([]any); len(rs) != 0 || static(n1) != 0 {
		t.Errorf("routes null: %v", rs)
	}
	iface(200, "remove", s1)
	// By port: the port becomes the interface on its subnet (its id kept,
	// the router's address the subnet's gateway), and goes with it.
	q := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": n1}}, "port")["id"].(string)
	if out := p.must(200, "PUT", "/v2.0/routers/"+rid+"/add_router_interface", map[string]any{"port_id": q}, ""); out["port_id"] != q || out["subnet_id"] != s1 {
		t.Errorf("add_router_interface by port: %v", out)
	}
	qp := p.must(200, "GET", "/v2.0/ports/"+q, nil, "port")
	if qp["device_id"] != rid || qp["device_owner"] != "network:router_interface" || qp["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "10.1.0.1" {
		t.Errorf("the port become the interface: %v", qp)
	}
	if ps := p.must(200, "GET", "/v2.0/ports?device_id="+rid, nil, "")["ports"].([]any); len(ps) != 1 || ps[0].(map[string]any)["id"] != q {
		t.Errorf("the router's ports: %v", ps)
	}
	p.must(409, "DELETE", "/v2.0/ports/"+q, nil, "")
	p.must(200, "PUT", "/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"port_id": q}, "")
	p.must(404, "GET", "/v2.0/ports/"+q, nil, "")
	p.must(404, "PUT", "/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"port_id": q}, "")
	p.must(204, "DELETE", "/v2.0/routers/"+rid, nil, "")
}
