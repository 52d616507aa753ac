package api

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

func routerPort(mac, addr string) map[string]any {
	return map[string]any{"mac": mac, "address": addr}
}

// TestPortsLinksAndRoutes walks the classic edge router: ports, a link to a
// bridge (both sides), routes via a port, and a bridge delete that unlinks.
func TestPortsLinksAndRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.id("/routers", map[string]any{"name": "edge"})
	b := e.id("/bridges", map[string]any{"name": "br"})
	up := e.id("/routers/"+r+"/ports", routerPort("02:00:00:00:00:01", "192.0.2.10/24"))
	down := e.id("/routers/"+r+"/ports", map[string]any{"mac": "02:00:00:00:00:02", "address": "10.0.0.1/24", "name": "down"})
	bp := e.id("/bridges/"+b+"/ports", map[string]any{})

	// The nested POST filled the device from the path.
	p := e.get(topology.KindPort, up).(*topology.Port)
	if p.DeviceKind != topology.KindRouter || p.DeviceID != r || p.TunnelKey == 0 {
		t.Fatalf("router port %+v", p)
	}
	var ports []topology.Port
	e.do("GET", "/routers/"+r+"/ports", nil, http.StatusOK, &ports)
	if len(ports) != 2 {
		t.Fatalf("router ports: %+v", ports)
	}
	e.do("GET", "/routers/"+r+"/ports?name=down", nil, http.StatusOK, &ports)
	if len(ports) != 1 || ports[0].ID != down {
		t.Fatalf("router ports named down: %+v", ports)
	}
	e.do("GET", "/bridges/"+b+"/ports", nil, http.StatusOK, &ports)
	if len(ports) != 1 || ports[0].ID != bp || ports[0].DeviceKind != topology.KindBridge {
		t.Fatalf("bridge ports: %+v", ports)
	}

	// Link: both sides point at each other.
	var linked topology.Port
	e.do("POST", "/ports/"+down+"/link", LinkRequest{PeerID: bp}, http.StatusOK, &linked)
	if linked.PeerID != bp {
		t.Fatalf("link answered %+v", linked)
	}
	if got := e.get(topology.KindPort, bp).(*topology.Port).PeerID; got != down {
		t.Fatalf("bridge side peer_id %q, want %q", got, down)
	}
	// Unlink from the other side clears both.
	e.do("DELETE", "/ports/"+bp+"/link", nil, http.StatusNoContent, nil)
	if a, z := e.get(topology.KindPort, down).(*topology.Port).PeerID, e.get(topology.KindPort, bp).(*topology.Port).PeerID; a != "" || z != "" {
		t.Fatalf("after unlink: peers %q %q", a, z)
	}
	e.do("DELETE", "/ports/"+bp+"/link", nil, http.StatusConflict, nil)
	e.do("POST", "/ports/"+bp+"/link", LinkRequest{PeerID: down}, http.StatusOK, nil)

	// Routes via a port of the router.
	rt := e.id("/routers/"+r+"/routes", map[string]any{"type": "normal", "dst_prefix": "0.0.0.0/0", "next_hop_port": up, "next_hop_gateway": "192.0.2.1"})
	if got := e.get(topology.KindRoute, rt).(*topology.Route); got.RouterID != r || got.NextHopPort != up {
		t.Fatalf("route %+v", got)
	}
	var routes []topology.Route
	e.do("GET", "/routers/"+r+"/routes", nil, http.StatusOK, &routes)
	if len(routes) != 1 || routes[0].ID != rt {
		t.Fatalf("routes %+v", routes)
	}

	// Deleting the bridge takes its port and unlinks the router side.
	e.do("DELETE", "/bridges/"+b, nil, http.StatusNoContent, nil)
	e.do("GET", "/ports/"+bp, nil, http.StatusNotFound, nil)
	if got := e.get(topology.KindPort, down).(*topology.Port).PeerID; got != "" {
		t.Fatalf("router port still linked to %q after the bridge went", got)
	}
	// Deleting the router takes its ports and routes.
	e.do("DELETE", "/routers/"+r, nil, http.StatusNoContent, nil)
	e.do("GET", "/routes/"+rt, nil, http.StatusNotFound, nil)
	e.do("GET", "/routers/"+r+"/ports", nil, http.StatusNotFound, nil)
}

// TestChainRules checks rule insertion by position, rule ids, reads and
// deletes, and the revision guard on the chain.
func TestChainRules(t *testing.T) {
	e := newEnv(t)
	c := e.id("/chains", map[string]any{"name": "c"})
	add := func(body map[string]any) topology.Rule {
		var r topology.Rule
		e.do("POST", "/chains/"+c+"/rules", body, http.StatusCreated, &r)
		if r.ID == "" {
			t.Fatalf("rule without id: %+v", r)
		}
		return r
	}
	drop := add(map[string]any{"action": "drop"})
	accept := add(map[string]any{"action": "accept", "nw_proto": 6, "tp_dst": map[string]any{"start": 22, "end": 22}, "position": 0})
	middle := add(map[string]any{"action": "continue", "position": 1})
	order := func() []string {
		var rules []topology.Rule
		e.do("GET", "/chains/"+c+"/rules", nil, http.StatusOK, &rules)
		var ids []string
		for _, r := range rules {
			ids = append(ids, r.ID)
		}
		return ids
	}
	if got, want := fmt.Sprint(order()), fmt.Sprint([]string{accept.ID, middle.ID, drop.ID}); got != want {
		t.Fatalf("rule order %s, want %s", got, want)
	}
	var one topology.Rule
	e.do("GET", "/chains/"+c+"/rules/"+accept.ID, nil, http.StatusOK, &one)
	if one.TpDst == nil || one.TpDst.Start != 22 || one.Action != topology.ActionAccept {
		t.Fatalf("rule %+v", one)
	}
	rev := e.get(topology.KindChain, c).GetMeta().Revision
	e.do("DELETE", fmt.Sprintf("/chains/%s/rules/%s?revision=%d", c, middle.ID, rev-1), nil, http.StatusConflict, nil)
	e.do("DELETE", fmt.Sprintf("/chains/%s/rules/%s?revision=%d", c, middle.ID, rev), nil, http.StatusNoContent, nil)
	e.do("DELETE", "/chains/"+c+"/rules/"+middle.ID, nil, http.StatusNotFound, nil)
	if got, want := fmt.Sprint(order()), fmt.Sprint([]string{accept.ID, drop.ID}); got != want {
		t.Fatalf("rule order %s, want %s", got, want)
	}
	// A jump rule to another chain; then that chain cannot go.
	target := e.id("/chains", map[string]any{"name": "target"})
	add(map[string]any{"action": "jump", "jump_chain": target})
	e.do("DELETE", "/chains/"+target, nil, http.StatusConflict, nil)
}

// TestEmbeddedLists covers BGP, DHCP static hosts, bindings, tunnel-zone
// members, port-group ports and IP address group addresses.
func TestEmbeddedLists(t *testing.T) {
	e := newEnv(t)
	r := e.id("/routers", map[string]any{"name": "r"})
	b := e.id("/bridges", map[string]any{"name": "b"})

	// BGP
	e.do("GET", "/routers/"+r+"/bgp", nil, http.StatusNotFound, nil)
	var bgp topology.BGP
	e.do("PUT", "/routers/"+r+"/bgp", map[string]any{"asn": 64512, "peers": []any{map[string]any{"address": "192.0.2.254", "asn": 64513, "password": "s3cret"}}, "networks": []string{"198.51.100.0/24"}}, http.StatusOK, &bgp)
	if bgp.ASN != 64512 || len(bgp.Peers) != 1 || bgp.Peers[0].Password != "" || !bgp.Peers[0].PasswordSet {
		t.Fatalf("bgp %+v", bgp)
	}
	if got := e.get(topology.KindRouter, r).(*topology.Router).BGP; got == nil || got.ASN != 64512 {
		t.Fatalf("stored bgp %+v", got)
	}
	e.do("GET", "/routers/"+r+"/bgp", nil, http.StatusOK, &bgp)
	e.do("DELETE", "/routers/"+r+"/bgp", nil, http.StatusNoContent, nil)
	if got := e.get(topology.KindRouter, r).(*topology.Router).BGP; got != nil {
		t.Fatalf("bgp still there: %+v", got)
	}

	// DHCP and static hosts
	d := e.id("/bridges/"+b+"/dhcp", map[string]any{"subnet": "10.1.0.0/24", "gateway": "10.1.0.1", "dns_servers": []string{"10.1.0.2"}})
	if got := e.get(topology.KindDHCP, d).(*topology.DHCPSubnet); got.BridgeID != b {
		t.Fatalf("dhcp %+v", got)
	}
	var subnets []topology.DHCPSubnet
	e.do("GET", "/bridges/"+b+"/dhcp", nil, http.StatusOK, &subnets)
	if len(subnets) != 1 || subnets[0].ID != d {
		t.Fatalf("subnets %+v", subnets)
	}
	hosts := "/bridges/" + b + "/dhcp/" + d + "/hosts"
	e.do("POST", hosts, map[string]any{"mac": "02:00:00:00:00:aa", "ip": "10.1.0.10", "name": "vm1"}, http.StatusCreated, nil)
	e.do("POST", hosts, map[string]any{"mac": "02:00:00:00:00:bb", "ip": "10.1.0.11"}, http.StatusCreated, nil)
	var dh []topology.DHCPHost
	e.do("GET", hosts, nil, http.StatusOK, &dh)
	if len(dh) != 2 || dh[0].Name != "vm1" {
		t.Fatalf("dhcp hosts %+v", dh)
	}
	e.do("DELETE", hosts+"/02:00:00:00:00:aa", nil, http.StatusNoContent, nil)
	e.do("DELETE", hosts+"/02:00:00:00:00:aa", nil, http.StatusNotFound, nil)
	if got := e.get(topology.KindDHCP, d).(*topology.DHCPSubnet).Hosts; len(got) != 1 || got[0].IP.String() != "10.1.0.11" {
		t.Fatalf("after delete: %+v", got)
	}
	// A DHCP subnet is only reachable under its own bridge.
	other := e.id("/bridges", map[string]any{"name": "other"})
	e.do("GET", "/bridges/"+other+"/dhcp/"+d+"/hosts", nil, http.StatusNotFound, nil)

	// Bindings
	h := e.id("/hosts", map[string]any{"name": "h1"})
	vm := e.id("/bridges/"+b+"/ports", map[string]any{})
	var bind Binding
	e.do("POST", "/hosts/"+h+"/bindings", Binding{PortID: vm, Interface: "tap0"}, http.StatusCreated, &bind)
	if bind.HostID != h {
		t.Fatalf("binding %+v", bind)
	}
	if p := e.get(topology.KindPort, vm).(*topology.Port); p.HostID != h || p.Interface != "tap0" {
		t.Fatalf("bound port %+v", p)
	}
	var binds []Binding
	e.do("GET", "/hosts/"+h+"/bindings", nil, http.StatusOK, &binds)
	if len(binds) != 1 || binds[0] != (Binding{HostID: h, PortID: vm, Interface: "tap0"}) {
		t.Fatalf("bindings %+v", binds)
	}
	e.do("DELETE", "/hosts/"+h+"/bindings/"+vm, nil, http.StatusNoContent, nil)
	if p := e.get(topology.KindPort, vm).(*topology.Port); p.HostID != "" || p.Interface != "" {
		t.Fatalf("unbound port %+v", p)
	}
	e.do("DELETE", "/hosts/"+h+"/bindings/"+vm, nil, http.StatusNotFound, nil)

	// Tunnel-zone members
	h2 := e.id("/hosts", map[string]any{"name": "h2"})
	tz := e.id("/tunnel-zones", map[string]any{"name": "tz", "type": "vxlan"})
	e.do("POST", "/tunnel-zones/"+tz+"/members", map[string]any{"host_id": h, "address": "172.16.0.1"}, http.StatusCreated, nil)
	e.do("POST", "/tunnel-zones/"+tz+"/members", map[string]any{"host_id": h2, "address": "172.16.0.2"}, http.StatusCreated, nil)
	var members []topology.TunnelZoneMember
	e.do("GET", "/tunnel-zones/"+tz+"/members", nil, http.StatusOK, &members)
	if len(members) != 2 || members[1].HostID != h2 {
		t.Fatalf("members %+v", members)
	}
	e.do("DELETE", "/tunnel-zones/"+tz+"/members/"+h, nil, http.StatusNoContent, nil)
	if got := e.get(topology.KindTunnelZone, tz).(*topology.TunnelZone).Members; len(got) != 1 || got[0].HostID != h2 {
		t.Fatalf("after delete %+v", got)
	}

	// Port-group ports
	pg := e.id("/port-groups", map[string]any{"name": "pg"})
	e.do("POST", "/port-groups/"+pg+"/ports", PortRef{PortID: vm}, http.StatusCreated, nil)
	var refs []PortRef
	e.do("GET", "/port-groups/"+pg+"/ports", nil, http.StatusOK, &refs)
	if len(refs) != 1 || refs[0].PortID != vm {
		t.Fatalf("group ports %+v", refs)
	}
	e.do("DELETE", "/port-groups/"+pg+"/ports/"+vm, nil, http.StatusNoContent, nil)
	if got := e.get(topology.KindPortGroup, pg).(*topology.PortGroup).Ports; len(got) != 0 {
		t.Fatalf("group ports after delete %+v", got)
	}

	// IP address group addresses
	ig := e.id("/ip-address-groups", map[string]any{"name": "ig"})
	e.do("POST", "/ip-address-groups/"+ig+"/addresses", map[string]any{"address": "10.0.0.7"}, http.StatusCreated, nil)
	e.do("POST", "/ip-address-groups/"+ig+"/addresses", map[string]any{"address": "10.0.0.8"}, http.StatusCreated, nil)
	var addrs []AddressRef
	e.do("GET", "/ip-address-groups/"+ig+"/addresses", nil, http.StatusOK, &addrs)
	if len(addrs) != 2 || addrs[0].Address.String() != "10.0.0.7" {
		t.Fatalf("addresses %+v", addrs)
	}
	e.do("DELETE", "/ip-address-groups/"+ig+"/addresses/10.0.0.7", nil, http.StatusNoContent, nil)
	if got := e.get(topology.KindIPGroup, ig).(*topology.IPAddrGroup).Addresses; len(got) != 1 || got[0].String() != "10.0.0.8" {
		t.Fatalf("addresses after delete %+v", got)
	}
}

// TestConcurrentNestedChanges shows that nested changes to an embedded list
// are atomic read-modify-writes: concurrent inserts all survive.
func TestConcurrentNestedChanges(t *testing.T) {
	e := newEnv(t)
	c := e.id("/chains", map[string]any{"name": "busy"})
	ig := e.id("/ip-address-groups", map[string]any{"name": "busy"})
	const n = 12
	errs := make(chan string, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if st, b := e.raw("POST", "/chains/"+c+"/rules", map[string]any{"action": "accept", "nw_proto": 6, "tp_dst": map[string]any{"start": 1000 + i, "end": 1000 + i}}, nil); st != http.StatusCreated {
				errs <- fmt.Sprintf("rule %d: %d %s", i, st, b)
			}
		}()
		go func() {
			defer wg.Done()
			if st, b := e.raw("POST", "/ip-address-groups/"+ig+"/addresses", map[string]any{"address": fmt.Sprintf("10.0.0.%d", i+1)}, nil); st != http.StatusCreated {
				errs <- fmt.Sprintf("address %d: %d %s", i, st, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if got := len(e.get(topology.KindChain, c).(*topology.Chain).Rules); got != n {
		t.Errorf("chain has %d rules, want %d", got, n)
	}
	if got := len(e.get(topology.KindIPGroup, ig).(*topology.IPAddrGroup).Addresses); got != n {
		t.Errorf("group has %d addresses, want %d", got, n)
	}
}
