package neutron_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestSubnetChoicesReachTheDataPath: a subnet's gateway, pools, DNS
// servers, host routes and DHCP switch are what the translator gives the
// agent's DHCP and the network's router; a subnet without a gateway has no
// router port; a port without a fixed IP is realized nowhere, and one with
// admin_state_up false is a port down.
func TestSubnetChoicesReachTheDataPath(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	net := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "n"}}, "network")["id"].(string)
	// A port before any subnet: no address.
	bare := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net}}, "port")
	if ips := bare["fixed_ips"].([]any); len(ips) != 0 {
		t.Fatalf("a port on a network without subnet: %v", ips)
	}
	sub := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24",
		"gateway_ip": "10.0.0.254", "allocation_pools": []any{map[string]any{"start": "10.0.0.2", "end": "10.0.0.3"}, map[string]any{"start": "10.0.0.10", "end": "10.0.0.20"}},
		"dns_nameservers": []any{"192.0.2.53"}, "host_routes": []any{map[string]any{"destination": "198.51.100.0/24", "nexthop": "10.0.0.7"}}}}, "subnet")
	if sub["gateway_ip"] != "10.0.0.254" || len(sub["allocation_pools"].([]any)) != 2 || sub["dns_nameservers"].([]any)[0] != "192.0.2.53" {
		t.Errorf("subnet: %v", sub)
	}
	subID := sub["id"].(string)
	// Ports take the pools' lowest free addresses, then the next pool.
	var ips []string
	for range 3 {
		port := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net}}, "port")
		ips = append(ips, port["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string))
	}
	if !slices.Equal(ips, []string{"10.0.0.2", "10.0.0.3", "10.0.0.10"}) {
		t.Errorf("addresses from the pools: %v", ips)
	}
	// The bare port gets an address by update, and goes down.
	up := p.must(200, "PUT", "/v2.0/ports/"+bare["id"].(string), map[string]any{"port": map[string]any{
		"fixed_ips": []any{map[string]any{"subnet_id": subID}}, "admin_state_up": false}}, "port")
	if ip := up["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "10.0.0.11" || up["admin_state_up"] != false {
		t.Errorf("updated port: %v", up)
	}
	dark := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.1.0/24",
		"gateway_ip": nil, "enable_dhcp": false}}, "subnet")
	if dark["gateway_ip"] != nil || dark["enable_dhcp"] != false {
		t.Errorf("subnet without gateway: %v", dark)
	}
	var d *translate.Desired
	e.vpcs.Read(func(st *vpc.State) { d = translate.Translate(st, translate.CloudConfig{}) })
	var dhcp, darkDHCP *topology.DHCPSubnet
	routerPorts := map[netip.Addr]bool{}
	for _, o := range d.Objects {
		switch x := o.(type) {
		case *topology.DHCPSubnet:
			if x.ID == translate.ObjectID(subID, "dhcp") {
				dhcp = x
			}
			if x.ID == translate.ObjectID(dark["id"].(string), "dhcp") {
				darkDHCP = x
			}
		case *topology.Port:
			if x.DeviceKind == topology.KindRouter && x.Address.IsValid() {
				routerPorts[x.Address.Addr()] = true
			}
			if x.ID == translate.ObjectID(bare["id"].(string), "port") && !x.AdminDown {
				t.Errorf("port with admin_state_up false: %+v", x)
			}
		}
	}
	if dhcp == nil || dhcp.Gateway.String() != "10.0.0.254" || !slices.Equal(dhcp.DNSServers, []netip.Addr{netip.MustParseAddr("192.0.2.53")}) ||
		len(dhcp.Routes) != 1 || dhcp.Routes[0].Dest.String() != "198.51.100.0/24" || dhcp.Routes[0].Gateway.String() != "10.0.0.7" || dhcp.Disabled {
		t.Errorf("DHCP of the subnet: %+v", dhcp)
	}
	if !routerPorts[netip.MustParseAddr("10.0.0.254")] || routerPorts[netip.MustParseAddr("10.0.0.1")] {
		t.Errorf("the router's port is not at the chosen gateway: %v", routerPorts)
	}
	if darkDHCP == nil || !darkDHCP.Disabled || darkDHCP.Gateway.IsValid() {
		t.Errorf("DHCP of the subnet without gateway: %+v", darkDHCP)
	}
	for a := range routerPorts {
		if netip.MustParsePrefix("10.0.1.0/24").Contains(a) {
			t.Errorf("a router port %s on the subnet without gateway", a)
		}
	}
	if len(d.Skipped) > 0 {
		t.Errorf("skipped: %v", d.Skipped)
	}
	// The gateway moves (outside the pools) and the router port with it.
	p.must(200, "PUT", "/v2.0/subnets/"+subID, map[string]any{"subnet": map[string]any{"gateway_ip": "10.0.0.253", "dns_nameservers": []any{}}}, "subnet")
	e.vpcs.Read(func(st *vpc.State) { d = translate.Translate(st, translate.CloudConfig{}) })
	for _, o := range d.Objects {
		if x, ok := o.(*topology.DHCPSubnet); ok && x.ID == translate.ObjectID(subID, "dhcp") && (x.Gateway.String() != "10.0.0.253" || len(x.DNSServers) != 0) {
			t.Errorf("DHCP after the update: %+v", x)
		}
	}
}

// TestBulkAndSubnetPools: a bulk create makes every object in one go; a
// subnet pool hands out blocks to subnets and cannot go while they use it.
func TestBulkAndSubnetPools(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	nets := p.must(201, "POST", "/v2.0/networks", map[string]any{"networks": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}}, "")["networks"].([]any)
	if len(nets) != 2 || nets[0].(map[string]any)["name"] != "a" || nets[1].(map[string]any)["name"] != "b" {
		t.Fatalf("bulk networks: %v", nets)
	}
	a, b := nets[0].(map[string]any)["id"].(string), nets[1].(map[string]any)["id"].(string)
	pool := p.must(201, "POST", "/v2.0/subnetpools", map[string]any{"subnetpool": map[string]any{"name": "pool", "prefixes": []any{"10.10.0.0/16"}, "default_prefixlen": 24}}, "subnetpool")
	poolID := pool["id"].(string)
	subs := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnets": []any{
		map[string]any{"network_id": a, "ip_version": 4, "subnetpool_id": poolID},
		map[string]any{"network_id": b, "ip_version": 4, "subnetpool_id": poolID, "prefixlen": 26},
		map[string]any{"network_id": b, "ip_version": 4, "subnetpool_id": poolID, "cidr": "10.10.9.0/24"},
	}}, "")["subnets"].([]any)
	var cidrs []string
	for _, s := range subs {
		cidrs = append(cidrs, s.(map[string]any)["cidr"].(string))
		if s.(map[string]any)["subnetpool_id"] != poolID {
			t.Errorf("subnet not from the pool: %v", s)
		}
	}
	if !slices.Equal(cidrs, []string{"10.10.0.0/24", "10.10.1.0/26", "10.10.9.0/24"}) {
		t.Errorf("blocks from the pool: %v", cidrs)
	}
	ports := p.must(201, "POST", "/v2.0/ports", map[string]any{"ports": []any{map[string]any{"network_id": a}, map[string]any{"network_id": b}}}, "")["ports"].([]any)
	if len(ports) != 2 || ports[1].(map[string]any)["network_id"] != b {
		t.Errorf("bulk ports: %v", ports)
	}
	// The operator's port on a project's network is the project's.
	if port := e.admin(e.project("gamma")).must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": a}}, "port"); port["project_id"] != p.id {
		t.Errorf("the admin's port on alpha's network: %v", port)
	} else {
		p.must(204, "DELETE", "/v2.0/ports/"+port["id"].(string), nil, "")
	}
	p.must(409, "DELETE", "/v2.0/subnetpools/"+poolID, nil, "")
	grown := p.must(200, "PUT", "/v2.0/subnetpools/"+poolID, map[string]any{"subnetpool": map[string]any{"name": "bigger", "prefixes": []any{"10.10.0.0/16", "10.20.0.0/16"}}}, "subnetpool")
	if grown["name"] != "bigger" || len(grown["prefixes"].([]any)) != 2 {
		t.Errorf("grown pool: %v", grown)
	}
	if other := e.project("beta"); true {
		other.must(404, "GET", "/v2.0/subnetpools/"+poolID, nil, "")
	}
	for _, port := range ports {
		p.must(204, "DELETE", "/v2.0/ports/"+port.(map[string]any)["id"].(string), nil, "")
	}
	for _, s := range subs {
		p.must(204, "DELETE", "/v2.0/subnets/"+s.(map[string]any)["id"].(string), nil, "")
	}
	p.must(204, "DELETE", "/v2.0/subnetpools/"+poolID, nil, "")
	p.must(404, "GET", "/v2.0/subnetpools/"+poolID, nil, "")
}

// TestKeystoneDomains: the one domain, Default, by id and by name, to any
// caller with a token (Tempest looks it up by name); another is not found.
func TestKeystoneDomains(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	get := func(token, path string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", e.keystone+path, nil)
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, doc
	}
	if status, doc := get(p.token, "/v3/domains?name=Default"); status != 200 || len(doc["domains"].([]any)) != 1 ||
		doc["domains"].([]any)[0].(map[string]any)["id"] != "default" {
		t.Errorf("domains named Default: %d %v", status, doc)
	}
	if status, doc := get(p.token, "/v3/domains?name=Other"); status != 200 || len(doc["domains"].([]any)) != 0 {
		t.Errorf("domains named Other: %d %v", status, doc)
	}
	if status, doc := get(p.token, "/v3/domains/default"); status != 200 || doc["domain"].(map[string]any)["name"] != "Default" {
		t.Errorf("domain default: %d %v", status, doc)
	}
	if status, _ := get(p.token, "/v3/domains/other"); status != 404 {
		t.Errorf("domain other: %d, want 404", status)
	}
	if status, _ := get("", "/v3/domains"); status != 401 {
		t.Errorf("domains without a token: %d, want 401", status)
	}
}
