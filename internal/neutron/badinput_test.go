package neutron_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestBadInput sends malformed and conflicting requests: each gets
// Neutron's status and error type, and the store does not change.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	other := e.project("beta")
	if _, err := e.store.Create(context.Background(), &topology.Host{Meta: topology.Meta{ID: "8d0c4a8e-5d4c-4a8b-9a62-2f2d4d1d2a02", Name: "compute1"}}); err != nil {
		t.Fatal(err)
	}
	net := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "n"}}, "network")["id"].(string)
	empty := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "empty"}}, "network")["id"].(string)
	sub := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "subnet")["id"].(string)
	port := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net, "mac_address": "02:00:00:00:00:01",
		"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}}}}, "port")["id"].(string)
	theirs := other.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "theirs"}}, "network")["id"].(string)
	theirSub := other.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": theirs, "ip_version": 4, "cidr": "10.1.0.0/24"}}, "subnet")["id"].(string)

	nw := func(a map[string]any) map[string]any { return map[string]any{"network": a} }
	sn := func(a map[string]any) map[string]any {
		m := map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.5.0/24"}
		for k, v := range a {
			m[k] = v
		}
		return map[string]any{"subnet": m}
	}
	pt := func(a map[string]any) map[string]any {
		m := map[string]any{"network_id": net}
		for k, v := range a {
			m[k] = v
		}
		return map[string]any{"port": m}
	}
	noToken := &project{token: "", e: e}
	var defaultSG string
	for _, g := range p.must(200, "GET", "/v2.0/security-groups?name=default", nil, "")["security_groups"].([]any) {
		if g := g.(map[string]any); g["id"] != "" && defaultSG == "" {
			defaultSG = g["id"].(string)
		}
	}
	// An existing rule, for the duplicate.
	p.must(201, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": defaultSG, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}}, "")
	sg := func(a map[string]any) map[string]any { return map[string]any{"security_group": a} }
	web := p.must(201, "POST", "/v2.0/security-groups", sg(map[string]any{"name": "web"}), "security_group")["id"].(string)
	p.must(201, "POST", "/v2.0/ports", pt(map[string]any{"security_groups": []string{web}}), "")
	theirPort := other.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": theirs}}, "port")["id"].(string)
	var theirSG string
	for _, g := range other.must(200, "GET", "/v2.0/security-groups?name=default", nil, "")["security_groups"].([]any) {
		theirSG = g.(map[string]any)["id"].(string)
	}
	router := p.must(201, "POST", "/v2.0/routers", map[string]any{"router": map[string]any{"name": "r",
		"external_gateway_info": map[string]any{"network_id": "public"}}}, "router")["id"].(string)
	p.must(200, "PUT", "/v2.0/routers/"+router+"/add_router_interface", map[string]any{"subnet_id": sub}, "")
	sub2 := p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": "10.0.1.0/24"}}, "subnet")["id"].(string)
	port2 := p.must(201, "POST", "/v2.0/ports", pt(nil), "port")["id"].(string)
	spool := p.must(201, "POST", "/v2.0/subnetpools", map[string]any{"subnetpool": map[string]any{"name": "pool", "prefixes": []any{"10.50.0.0/16"}, "default_prefixlen": 24}}, "subnetpool")["id"].(string)
	p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": spool}}, "")
	spl := func(a map[string]any) map[string]any { return map[string]any{"subnetpool": a} }
	fip := p.must(201, "POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{"floating_network_id": "public", "port_id": port}}, "floatingip")["id"].(string)
	rt := func(a map[string]any) map[string]any { return map[string]any{"router": a} }
	fp := func(a map[string]any) map[string]any { return map[string]any{"floatingip": a} }
	rl := func(a map[string]any) map[string]any {
		m := map[string]any{"security_group_id": defaultSG, "direction": "ingress", "protocol": "tcp", "remote_ip_prefix": "0.0.0.0/0"}
		for k, v := range a {
			m[k] = v
		}
		return map[string]any{"security_group_rule": m}
	}
	paired := p.must(201, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.100"}}}), "port")["id"].(string)
	var elevenPairs []any
	for i := range 11 {
		elevenPairs = append(elevenPairs, map[string]any{"ip_address": fmt.Sprintf("10.0.0.%d", 50+i)})
	}
	cases := []struct {
		name         string
		who          *project
		method, path string
		body         any
		status       int
		typ          string
	}{
		{"no token", noToken, "GET", "/v2.0/networks", nil, 401, ""},
		{"not JSON", p, "POST", "/v2.0/networks", "{", 400, "HTTPBadRequest"},
		{"no member", p, "POST", "/v2.0/networks", map[string]any{"net": map[string]any{}}, 400, "HTTPBadRequest"},
		{"bulk empty", p, "POST", "/v2.0/networks", map[string]any{"networks": []any{}}, 400, "HTTPBadRequest"},
		{"bulk not objects", p, "POST", "/v2.0/networks", map[string]any{"networks": []any{"n1"}}, 400, "HTTPBadRequest"},
		{"bulk networks, one bad: none made", p, "POST", "/v2.0/networks", map[string]any{"networks": []any{map[string]any{"name": "ok"}, map[string]any{"shared": true}}}, 400, "HTTPBadRequest"},
		{"bulk subnets, the second overlapping the first: none made", p, "POST", "/v2.0/subnets", map[string]any{"subnets": []any{
			map[string]any{"network_id": empty, "ip_version": 4, "cidr": "10.9.0.0/24"}, map[string]any{"network_id": empty, "ip_version": 4, "cidr": "10.9.0.0/25"}}}, 400, "InvalidInput"},
		{"bulk ports, one on another project's network: none made", p, "POST", "/v2.0/ports", map[string]any{"ports": []any{
			map[string]any{"network_id": net}, map[string]any{"network_id": theirs}}}, 404, "NetworkNotFound"},
		{"bulk routers", p, "POST", "/v2.0/routers", map[string]any{"routers": []any{map[string]any{}}}, 400, "HTTPBadRequest"},
		{"unknown attribute", p, "POST", "/v2.0/networks", nw(map[string]any{"colour": "red"}), 400, "HTTPBadRequest"},
		{"name not a string", p, "POST", "/v2.0/networks", nw(map[string]any{"name": 5}), 400, "HTTPBadRequest"},
		{"name too long", p, "POST", "/v2.0/networks", nw(map[string]any{"name": string(make([]byte, 300))}), 400, "HTTPBadRequest"},
		{"shared network", p, "POST", "/v2.0/networks", nw(map[string]any{"shared": true}), 400, "HTTPBadRequest"},
		{"admin down", p, "POST", "/v2.0/networks", nw(map[string]any{"admin_state_up": false}), 400, "HTTPBadRequest"},
		{"other mtu", p, "POST", "/v2.0/networks", nw(map[string]any{"mtu": 9000}), 400, "HTTPBadRequest"},
		{"member creates in another project", p, "POST", "/v2.0/networks", nw(map[string]any{"project_id": other.id}), 403, "PolicyNotAuthorized"},
		{"tenant and project differ", p, "POST", "/v2.0/networks", nw(map[string]any{"project_id": p.id, "tenant_id": other.id}), 400, "HTTPBadRequest"},
		{"another project's network", p, "GET", "/v2.0/networks/" + theirs, nil, 404, "NetworkNotFound"},
		{"unknown network", p, "GET", "/v2.0/networks/vpc-0123456789abcdef0", nil, 404, "NetworkNotFound"},
		{"delete another project's network", p, "DELETE", "/v2.0/networks/" + theirs, nil, 404, "NetworkNotFound"},
		{"delete network in use", p, "DELETE", "/v2.0/networks/" + net, nil, 409, "NetworkInUse"},
		{"subnet without network", p, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"ip_version": 4, "cidr": "10.0.0.0/24"}}, 400, "HTTPBadRequest"},
		{"subnet without cidr", p, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4}}, 400, "HTTPBadRequest"},
		{"subnet IPv6", p, "POST", "/v2.0/subnets", sn(map[string]any{"ip_version": 6, "cidr": "2001:db8::/64"}), 400, "HTTPBadRequest"},
		{"subnet ip_version 5", p, "POST", "/v2.0/subnets", sn(map[string]any{"ip_version": 5}), 400, "HTTPBadRequest"},
		{"subnet bad cidr", p, "POST", "/v2.0/subnets", sn(map[string]any{"cidr": "10.0.0.0/33"}), 400, "HTTPBadRequest"},
		{"subnet host bits", p, "POST", "/v2.0/subnets", sn(map[string]any{"cidr": "10.0.5.7/24"}), 400, "HTTPBadRequest"},
		{"subnet too small", p, "POST", "/v2.0/subnets", sn(map[string]any{"cidr": "10.0.5.0/30"}), 400, "InvalidInput"},
		{"overlapping subnets on a network", p, "POST", "/v2.0/subnets", sn(map[string]any{"cidr": "10.0.0.128/25"}), 400, "InvalidInput"},
		{"subnet on another project's network", p, "POST", "/v2.0/subnets", sn(map[string]any{"network_id": theirs}), 404, "NetworkNotFound"},
		{"subnet gateway outside", p, "POST", "/v2.0/subnets", sn(map[string]any{"gateway_ip": "10.0.6.1"}), 400, "InvalidInput"},
		{"subnet gateway the broadcast", p, "POST", "/v2.0/subnets", sn(map[string]any{"gateway_ip": "10.0.5.255"}), 400, "InvalidInput"},
		{"subnet gateway not an address", p, "POST", "/v2.0/subnets", sn(map[string]any{"gateway_ip": "10.0.5"}), 400, "HTTPBadRequest"},
		{"subnet gateway in the pool", p, "POST", "/v2.0/subnets", sn(map[string]any{"gateway_ip": "10.0.5.5", "allocation_pools": []any{map[string]any{"start": "10.0.5.2", "end": "10.0.5.9"}}}), 409, "GatewayConflictWithAllocationPools"},
		{"subnet DHCP not a boolean", p, "POST", "/v2.0/subnets", sn(map[string]any{"enable_dhcp": "maybe"}), 400, "HTTPBadRequest"},
		{"subnet pool outside", p, "POST", "/v2.0/subnets", sn(map[string]any{"allocation_pools": []any{map[string]any{"start": "10.0.5.2", "end": "10.0.6.9"}}}), 400, "OutOfBoundsAllocationPool"},
		{"subnet pool with the network address", p, "POST", "/v2.0/subnets", sn(map[string]any{"allocation_pools": []any{map[string]any{"start": "10.0.5.0", "end": "10.0.5.9"}}}), 400, "OutOfBoundsAllocationPool"},
		{"subnet pool reversed", p, "POST", "/v2.0/subnets", sn(map[string]any{"allocation_pools": []any{map[string]any{"start": "10.0.5.9", "end": "10.0.5.2"}}}), 400, "InvalidAllocationPool"},
		{"subnet pools overlapping", p, "POST", "/v2.0/subnets", sn(map[string]any{"allocation_pools": []any{map[string]any{"start": "10.0.5.2", "end": "10.0.5.9"}, map[string]any{"start": "10.0.5.9", "end": "10.0.5.20"}}}), 409, "OverlappingAllocationPools"},
		{"subnet pools empty", p, "POST", "/v2.0/subnets", sn(map[string]any{"allocation_pools": []any{}}), 400, "HTTPBadRequest"},
		{"subnet DNS server not an address", p, "POST", "/v2.0/subnets", sn(map[string]any{"dns_nameservers": []any{"dns.example"}}), 400, "HTTPBadRequest"},
		{"subnet DNS server twice", p, "POST", "/v2.0/subnets", sn(map[string]any{"dns_nameservers": []any{"8.8.8.8", "8.8.8.8"}}), 400, "HTTPBadRequest"},
		{"subnet six DNS servers", p, "POST", "/v2.0/subnets", sn(map[string]any{"dns_nameservers": []any{"8.8.8.1", "8.8.8.2", "8.8.8.3", "8.8.8.4", "8.8.8.5", "8.8.8.6"}}), 400, "DNSNameServersExhausted"},
		{"subnet host route without nexthop", p, "POST", "/v2.0/subnets", sn(map[string]any{"host_routes": []any{map[string]any{"destination": "10.20.0.0/16"}}}), 400, "HTTPBadRequest"},
		{"subnet host route twice", p, "POST", "/v2.0/subnets", sn(map[string]any{"host_routes": []any{map[string]any{"destination": "10.20.0.0/16", "nexthop": "10.0.5.9"}, map[string]any{"destination": "10.20.0.0/16", "nexthop": "10.0.5.9"}}}), 400, "HTTPBadRequest"},
		{"update subnet gateway onto a port", p, "PUT", "/v2.0/subnets/" + sub, map[string]any{"subnet": map[string]any{"gateway_ip": "10.0.0.9"}}, 409, "GatewayIpInUse"},
		{"update subnet gateway into the pool", p, "PUT", "/v2.0/subnets/" + sub, map[string]any{"subnet": map[string]any{"gateway_ip": "10.0.0.20"}}, 409, "GatewayConflictWithAllocationPools"},
		{"update subnet pool outside", p, "PUT", "/v2.0/subnets/" + sub, map[string]any{"subnet": map[string]any{"allocation_pools": []any{map[string]any{"start": "10.0.0.2", "end": "10.0.1.9"}}}}, 400, "OutOfBoundsAllocationPool"},
		{"update subnet DNS server not a list", p, "PUT", "/v2.0/subnets/" + sub, map[string]any{"subnet": map[string]any{"dns_nameservers": "8.8.8.8"}}, 400, "HTTPBadRequest"},
		{"update subnet without gateway while routed", p, "PUT", "/v2.0/subnets/" + sub, map[string]any{"subnet": map[string]any{"gateway_ip": nil}}, 409, "SubnetInUse"},
		{"subnet pool without prefixes", p, "POST", "/v2.0/subnetpools", spl(map[string]any{"name": "x"}), 400, "HTTPBadRequest"},
		{"subnet pool bad prefix", p, "POST", "/v2.0/subnetpools", spl(map[string]any{"prefixes": []any{"10.60.0.0/33"}}), 400, "HTTPBadRequest"},
		{"subnet pool default above max", p, "POST", "/v2.0/subnetpools", spl(map[string]any{"prefixes": []any{"10.60.0.0/16"}, "default_prefixlen": 27, "max_prefixlen": 26}), 400, "IllegalSubnetPoolPrefixBounds"},
		{"subnet pool shared", p, "POST", "/v2.0/subnetpools", spl(map[string]any{"prefixes": []any{"10.60.0.0/16"}, "shared": true}), 400, "HTTPBadRequest"},
		{"subnet pool shrunk", p, "PUT", "/v2.0/subnetpools/" + spool, spl(map[string]any{"prefixes": []any{"10.50.0.0/17"}}), 400, "HTTPBadRequest"},
		{"subnet pool in use deleted", p, "DELETE", "/v2.0/subnetpools/" + spool, nil, 409, "SubnetPoolInUse"},
		{"another project's subnet pool", other, "GET", "/v2.0/subnetpools/" + spool, nil, 404, "SubnetPoolNotFound"},
		{"subnet from an unknown pool", p, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": "subnetpool-0123456789abcdef0"}}, 404, "SubnetPoolNotFound"},
		{"subnet from a pool outside it", p, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": spool, "cidr": "10.51.0.0/24"}}, 400, "HTTPBadRequest"},
		{"subnet from a pool too long a prefix", p, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "subnetpool_id": spool, "prefixlen": 30}}, 400, "HTTPBadRequest"},
		{"subnet prefixlen without pool", p, "POST", "/v2.0/subnets", sn(map[string]any{"prefixlen": 24}), 400, "HTTPBadRequest"},
		{"delete subnet in use", p, "DELETE", "/v2.0/subnets/" + sub, nil, 409, "SubnetInUse"},
		{"another project's subnet", p, "GET", "/v2.0/subnets/" + theirSub, nil, 404, "SubnetNotFound"},
		{"port without network", p, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"name": "x"}}, 400, "HTTPBadRequest"},
		{"port on another project's network", p, "POST", "/v2.0/ports", pt(map[string]any{"network_id": theirs}), 404, "NetworkNotFound"},
		{"port address on a network without subnet", p, "POST", "/v2.0/ports", pt(map[string]any{"network_id": empty, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.5"}}}), 400, "InvalidIpForNetwork"},
		{"port admin state not a boolean", p, "POST", "/v2.0/ports", pt(map[string]any{"admin_state_up": "up"}), 400, "HTTPBadRequest"},
		{"port fixed_ips not a list", p, "POST", "/v2.0/ports", pt(map[string]any{"fixed_ips": "10.0.0.5"}), 400, "HTTPBadRequest"},
		{"port address taken", p, "POST", "/v2.0/ports", pt(map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}}}), 409, "IpAddressAlreadyAllocated"},
		{"port address reserved", p, "POST", "/v2.0/ports", pt(map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.2"}}}), 400, "InvalidIpForSubnet"},
		{"port address off network", p, "POST", "/v2.0/ports", pt(map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "192.168.0.5"}}}), 400, "InvalidIpForNetwork"},
		{"port address off subnet", p, "POST", "/v2.0/ports", pt(map[string]any{"fixed_ips": []any{map[string]any{"subnet_id": sub, "ip_address": "10.0.1.5"}}}), 400, "InvalidIpForSubnet"},
		{"port in another project's subnet", p, "POST", "/v2.0/ports", pt(map[string]any{"fixed_ips": []any{map[string]any{"subnet_id": theirSub}}}), 400, "InvalidInput"},
		{"port MAC taken", p, "POST", "/v2.0/ports", pt(map[string]any{"mac_address": "02:00:00:00:00:01"}), 409, "MacAddressInUse"},
		{"port multicast MAC", p, "POST", "/v2.0/ports", pt(map[string]any{"mac_address": "01:00:5e:00:00:01"}), 400, "HTTPBadRequest"},
		{"port unknown host", p, "POST", "/v2.0/ports", pt(map[string]any{"binding:host_id": "nowhere"}), 400, "InvalidInput"},
		{"port unknown group", p, "POST", "/v2.0/ports", pt(map[string]any{"security_groups": []any{"sg-0123456789abcdef0"}}), 404, "SecurityGroupNotFound"},
		{"address pair without port security", p, "POST", "/v2.0/ports", pt(map[string]any{"port_security_enabled": false, "allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50"}}}), 409, "AddressPairAndPortSecurityRequired"},
		{"port security off, address pairs kept", p, "PUT", "/v2.0/ports/" + paired, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []any{}}}, 409, "AddressPairAndPortSecurityRequired"},
		{"address pairs not a list", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": "10.0.0.50"}), 400, "HTTPBadRequest"},
		{"address pair bad address", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.300"}}}), 400, "HTTPBadRequest"},
		{"address pair CIDR not its network", p, "PUT", "/v2.0/ports/" + port2, map[string]any{"port": map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.5/24"}}}}, 400, "HTTPBadRequest"},
		{"address pair IPv6", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "2001:db8::1"}}}), 400, "HTTPBadRequest"},
		{"address pair multicast MAC", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50", "mac_address": "01:00:5e:00:00:01"}}}), 400, "HTTPBadRequest"},
		{"address pair bad MAC", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50", "mac_address": "02:00:00"}}}), 400, "HTTPBadRequest"},
		{"address pair without address", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"mac_address": "02:00:00:00:00:50"}}}), 400, "AllowedAddressPairsMissingIP"},
		{"address pair unknown attribute", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50", "vrrp": true}}}), 400, "HTTPBadRequest"},
		{"address pair twice", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50"}, map[string]any{"ip_address": "10.0.0.50"}}}), 400, "DuplicateAddressPairInRequest"},
		{"address pair twice, once with the port's MAC", p, "PUT", "/v2.0/ports/" + port, map[string]any{"port": map[string]any{"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50"}, map[string]any{"ip_address": "10.0.0.50", "mac_address": "02:00:00:00:00:01"}}}}, 400, "DuplicateAddressPairInRequest"},
		{"address pairs above 10", p, "POST", "/v2.0/ports", pt(map[string]any{"allowed_address_pairs": elevenPairs}), 400, "AllowedAddressPairExhausted"},
		{"port without port security, with a group", p, "POST", "/v2.0/ports", pt(map[string]any{"port_security_enabled": false, "security_groups": []string{web}}), 400, "PortSecurityAndIPRequiredForSecurityGroups"},
		{"port security not a boolean", p, "POST", "/v2.0/ports", pt(map[string]any{"port_security_enabled": "maybe"}), 400, "HTTPBadRequest"},
		{"port security off, groups kept", p, "PUT", "/v2.0/ports/" + port, map[string]any{"port": map[string]any{"port_security_enabled": false}}, 409, "PortSecurityPortHasSecurityGroup"},
		{"port security off, a group given", p, "PUT", "/v2.0/ports/" + port, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []string{web}}}, 400, "PortSecurityAndIPRequiredForSecurityGroups"},
		{"network port security not a boolean", p, "POST", "/v2.0/networks", nw(map[string]any{"port_security_enabled": 1}), 400, "HTTPBadRequest"},
		{"port vnic direct", p, "POST", "/v2.0/ports", pt(map[string]any{"binding:vnic_type": "direct"}), 400, "HTTPBadRequest"},
		{"update port fixed_ips under a floating IP", p, "PUT", "/v2.0/ports/" + port, map[string]any{"port": map[string]any{"fixed_ips": []any{}}}, 409, "PortInUse"},
		{"update port fixed_ips taken", p, "PUT", "/v2.0/ports/" + port2, map[string]any{"port": map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}}}}, 409, "IpAddressAlreadyAllocated"},
		{"update port fixed_ips in two subnets", p, "PUT", "/v2.0/ports/" + port2, map[string]any{"port": map[string]any{"fixed_ips": []any{map[string]any{"subnet_id": sub}, map[string]any{"subnet_id": sub2}}}}, 400, "InvalidInput"},
		{"update port admin state not a boolean", p, "PUT", "/v2.0/ports/" + port2, map[string]any{"port": map[string]any{"admin_state_up": 0}}, 400, "HTTPBadRequest"},
		{"update unknown port", p, "PUT", "/v2.0/ports/eni-0123456789abcdef0", map[string]any{"port": map[string]any{"name": "x"}}, 404, "PortNotFound"},
		{"another project's port", other, "DELETE", "/v2.0/ports/" + port, nil, 404, "PortNotFound"},
		{"group named default", p, "POST", "/v2.0/security-groups", sg(map[string]any{"name": "default"}), 409, "SecurityGroupDefaultAlreadyExists"},
		{"group not stateful", p, "POST", "/v2.0/security-groups", sg(map[string]any{"stateful": false}), 400, "HTTPBadRequest"},
		{"group unknown attribute", p, "POST", "/v2.0/security-groups", sg(map[string]any{"colour": "red"}), 400, "HTTPBadRequest"},
		{"group name not a string", p, "POST", "/v2.0/security-groups", sg(map[string]any{"name": 7}), 400, "HTTPBadRequest"},
		{"group in another project", p, "POST", "/v2.0/security-groups", sg(map[string]any{"project_id": other.id}), 403, "PolicyNotAuthorized"},
		{"rename the default group", p, "PUT", "/v2.0/security-groups/" + defaultSG, sg(map[string]any{"name": "x"}), 409, "SecurityGroupCannotUpdateDefault"},
		{"rename a group default", p, "PUT", "/v2.0/security-groups/" + web, sg(map[string]any{"name": "default"}), 409, "SecurityGroupCannotUpdateDefault"},
		{"delete the default group", p, "DELETE", "/v2.0/security-groups/" + defaultSG, nil, 409, "SecurityGroupCannotRemoveDefault"},
		{"delete a group in use", p, "DELETE", "/v2.0/security-groups/" + web, nil, 409, "SecurityGroupInUse"},
		{"delete another project's group", other, "DELETE", "/v2.0/security-groups/" + web, nil, 404, "SecurityGroupNotFound"},
		{"rule remote group of another project", other, "POST", "/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
			"security_group_id": theirSG, "direction": "ingress", "remote_group_id": web}}, 404, "SecurityGroupNotFound"},
		{"port with another project's group", other, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": theirs, "security_groups": []string{web}}}, 404, "SecurityGroupNotFound"},
		{"port group twice", p, "POST", "/v2.0/ports", pt(map[string]any{"security_groups": []string{web, web}}), 400, "InvalidInput"},
		{"router gateway on a network that is not external", p, "POST", "/v2.0/routers", rt(map[string]any{"external_gateway_info": map[string]any{"network_id": net}}), 400, "HTTPBadRequest"},
		{"router gateway on an unknown network", p, "POST", "/v2.0/routers", rt(map[string]any{"external_gateway_info": map[string]any{"network_id": "vpc-0123456789abcdef0"}}), 404, "NetworkNotFound"},
		{"router enable_snat not a boolean", p, "POST", "/v2.0/routers", rt(map[string]any{"external_gateway_info": map[string]any{"network_id": "public", "enable_snat": "maybe"}}), 400, "HTTPBadRequest"},
		{"router gateway address chosen", p, "POST", "/v2.0/routers", rt(map[string]any{"external_gateway_info": map[string]any{"network_id": "public", "external_fixed_ips": []any{map[string]any{"ip_address": "203.0.113.6"}}}}), 400, "HTTPBadRequest"},
		{"router ha", p, "POST", "/v2.0/routers", rt(map[string]any{"ha": true}), 400, "HTTPBadRequest"},
		{"router interface twice", p, "PUT", "/v2.0/routers/" + router + "/add_router_interface", map[string]any{"subnet_id": sub}, 400, "HTTPBadRequest"},
		{"router interface on another project's subnet", p, "PUT", "/v2.0/routers/" + router + "/add_router_interface", map[string]any{"subnet_id": theirSub}, 404, "SubnetNotFound"},
		{"router interface by a port on a subnet it has", p, "PUT", "/v2.0/routers/" + router + "/add_router_interface", map[string]any{"port_id": port}, 400, "HTTPBadRequest"},
		{"router interface by subnet and port", p, "PUT", "/v2.0/routers/" + router + "/add_router_interface", map[string]any{"port_id": port, "subnet_id": sub}, 400, "HTTPBadRequest"},
		{"router interface without subnet", p, "PUT", "/v2.0/routers/" + router + "/add_router_interface", map[string]any{}, 400, "HTTPBadRequest"},
		{"router interface on the external subnet", p, "PUT", "/v2.0/routers/" + router + "/add_router_interface", map[string]any{"subnet_id": "public-subnet"}, 403, "PolicyNotAuthorized"},
		{"remove an interface the router lacks", p, "PUT", "/v2.0/routers/" + router + "/remove_router_interface", map[string]any{"subnet_id": sub + "x"}, 404, "SubnetNotFound"},
		{"remove the interface a floating IP needs", p, "PUT", "/v2.0/routers/" + router + "/remove_router_interface", map[string]any{"subnet_id": sub}, 409, "RouterInterfaceInUseByFloatingIP"},
		{"clear the gateway a floating IP needs", p, "PUT", "/v2.0/routers/" + router, rt(map[string]any{"external_gateway_info": nil}), 409, "RouterExternalGatewayInUseByFloatingIp"},
		{"delete a router with interfaces", p, "DELETE", "/v2.0/routers/" + router, nil, 409, "RouterInUse"},
		{"delete a subnet with a router interface", p, "DELETE", "/v2.0/subnets/" + sub, nil, 409, "SubnetInUse"},
		{"route to an unconnected next hop", p, "PUT", "/v2.0/routers/" + router, rt(map[string]any{"routes": []any{map[string]any{"destination": "172.16.0.0/16", "nexthop": "10.99.0.200"}}}), 400, "InvalidRoutes"},
		{"route via the router itself", p, "PUT", "/v2.0/routers/" + router, rt(map[string]any{"routes": []any{map[string]any{"destination": "172.16.0.0/16", "nexthop": "10.0.0.1"}}}), 400, "InvalidRoutes"},
		{"route bad destination", p, "PUT", "/v2.0/routers/" + router, rt(map[string]any{"routes": []any{map[string]any{"destination": "172.16.0.1/16", "nexthop": "10.0.0.9"}}}), 400, "HTTPBadRequest"},
		{"another project's router", other, "GET", "/v2.0/routers/" + router, nil, 404, "RouterNotFound"},
		{"floating IP on a network that is not external", p, "POST", "/v2.0/floatingips", fp(map[string]any{"floating_network_id": net}), 400, "HTTPBadRequest"},
		{"floating IP without network", p, "POST", "/v2.0/floatingips", fp(map[string]any{}), 400, "HTTPBadRequest"},
		{"floating IP chosen address", p, "POST", "/v2.0/floatingips", fp(map[string]any{"floating_network_id": "public", "floating_ip_address": "203.0.113.5"}), 400, "HTTPBadRequest"},
		{"floating IP on another project's port", other, "POST", "/v2.0/floatingips", fp(map[string]any{"floating_network_id": "public", "port_id": port}), 404, "PortNotFound"},
		{"floating IP on a port without a router", other, "POST", "/v2.0/floatingips", fp(map[string]any{"floating_network_id": "public", "port_id": theirPort}), 404, "ExternalGatewayForFloatingIPNotFound"},
		{"second floating IP on one fixed IP", p, "POST", "/v2.0/floatingips", fp(map[string]any{"floating_network_id": "public", "port_id": port}), 409, "FloatingIPPortAlreadyAssociated"},
		{"floating IP fixed address not the port's", p, "PUT", "/v2.0/floatingips/" + fip, fp(map[string]any{"port_id": port, "fixed_ip_address": "10.0.0.99"}), 400, "HTTPBadRequest"},
		{"another project's floating IP", other, "DELETE", "/v2.0/floatingips/" + fip, nil, 404, "FloatingIPNotFound"},
		{"delete the external network", p, "DELETE", "/v2.0/networks/public", nil, 403, "PolicyNotAuthorized"},
		{"subnet on the external network", p, "POST", "/v2.0/subnets", sn(map[string]any{"network_id": "public"}), 403, "PolicyNotAuthorized"},
		{"port on the external network", p, "POST", "/v2.0/ports", pt(map[string]any{"network_id": "public"}), 403, "PolicyNotAuthorized"},
		{"rule without direction", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"direction": ""}), 400, "HTTPBadRequest"},
		{"rule bad direction", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"direction": "inbound"}), 400, "HTTPBadRequest"},
		{"rule IPv6", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"ethertype": "IPv6"}), 400, "HTTPBadRequest"},
		{"rule bad protocol", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"protocol": "tcpx"}), 400, "SecurityGroupRuleInvalidProtocol"},
		{"rule ports reversed", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"port_range_min": 90, "port_range_max": 80}), 400, "SecurityGroupInvalidPortRange"},
		{"rule port below 0", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"port_range_min": -16, "port_range_max": 80}), 400, "SecurityGroupInvalidPortValue"},
		{"rule port above 65535", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"port_range_min": 80, "port_range_max": 65536}), 400, "SecurityGroupInvalidPortValue"},
		{"rule ICMP type explicitly -1", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"protocol": "icmp", "port_range_min": -1, "port_range_max": 25}), 400, "SecurityGroupInvalidPortValue"},
		{"rule ICMP code without type", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"protocol": "icmp", "port_range_max": 6}), 400, "SecurityGroupMissingIcmpType"},
		{"rule ICMP type above 255", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"protocol": "icmp", "port_range_min": 300, "port_range_max": 1}), 400, "SecurityGroupInvalidIcmpValue"},
		{"rule ICMP code above 255", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"protocol": "icmp", "port_range_min": 1, "port_range_max": 256}), 400, "SecurityGroupInvalidIcmpValue"},
		{"rule ports without protocol", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"protocol": nil, "port_range_min": 80, "port_range_max": 80}), 400, "SecurityGroupInvalidPortRange"},
		{"rule prefix and group", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"remote_group_id": defaultSG}), 400, "HTTPBadRequest"},
		{"rule bad prefix", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"remote_ip_prefix": "10.0.0.300/8"}), 400, "HTTPBadRequest"},
		{"rule on another project's group", other, "POST", "/v2.0/security-group-rules", rl(nil), 404, "SecurityGroupNotFound"},
		{"rule duplicate", p, "POST", "/v2.0/security-group-rules", rl(map[string]any{"port_range_min": 22, "port_range_max": 22}), 409, "SecurityGroupRuleExists"},
		{"delete unknown rule", p, "DELETE", "/v2.0/security-group-rules/sgr-0123456789abcdef0", nil, 404, "SecurityGroupRuleNotFound"},
		{"unknown filter", p, "GET", "/v2.0/networks?colour=red", nil, 400, "HTTPBadRequest"},
		{"bad limit", p, "GET", "/v2.0/networks?limit=-1", nil, 400, "HTTPBadRequest"},
		{"unknown marker", p, "GET", "/v2.0/networks?limit=1&marker=vpc-0123456789abcdef0", nil, 404, "NetworkNotFound"},
		{"bad sort_dir", p, "GET", "/v2.0/networks?sort_key=name&sort_dir=up", nil, 400, "HTTPBadRequest"},
		{"unknown agent", p, "GET", "/v2.0/agents/dhcp-1", nil, 404, "AgentNotFound"},
		{"unknown extension", p, "GET", "/v2.0/extensions/fwaas", nil, 404, "HTTPNotFound"},
		{"unknown collection", p, "GET", "/v2.0/lbaas/loadbalancers", nil, 404, "HTTPNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.vpcs.Revision()
			status, doc := c.who.do(c.method, c.path, c.body)
			if status != c.status {
				t.Fatalf("%s %s: %d, want %d: %v", c.method, c.path, status, c.status, doc)
			}
			if c.typ != "" {
				ne, _ := doc["NeutronError"].(map[string]any)
				if ne == nil || ne["type"] != c.typ || ne["message"] == "" {
					t.Errorf("error document %v, want type %s", doc, c.typ)
				}
			}
			if after := e.vpcs.Revision(); after != before {
				t.Errorf("the store changed (revision %d → %d)", before, after)
			}
		})
	}
	if len(cases) < 30 {
		t.Errorf("%d cases; the issue asks for at least 30", len(cases))
	}
}
