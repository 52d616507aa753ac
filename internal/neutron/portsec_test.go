package neutron_test

import (
	"encoding/json"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestPortSecurity: port_security_enabled false on a network is its new
// ports' default; a port without it has no groups and a bridge port
// without chains; turning it off needs its groups gone in the same
// request, and back on it has none until given (Neutron's ML2).
func TestPortSecurity(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	net := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "n", "port_security_enabled": false}}, "network")
	if net["port_security_enabled"] != false {
		t.Fatalf("network: %v", net)
	}
	netID := net["id"].(string)
	p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "")
	open := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID}}, "port")
	if open["port_security_enabled"] != false || len(open["security_groups"].([]any)) != 0 {
		t.Errorf("port on a network without port security: %v", open)
	}
	// Asked for, on the same network: the default group.
	guarded := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "port_security_enabled": true}}, "port")
	if guarded["port_security_enabled"] != true || len(guarded["security_groups"].([]any)) != 1 {
		t.Errorf("port with port security: %v", guarded)
	}
	filters := func(id string) (in, out string) {
		t.Helper()
		var d *translate.Desired
		e.vpcs.Read(func(st *vpc.State) { d = translate.Translate(st, translate.CloudConfig{}) })
		for _, o := range d.Objects {
			if x, ok := o.(*topology.Port); ok && x.ID == translate.ObjectID(id, "port") {
				return x.InFilter, x.OutFilter
			}
		}
		t.Fatalf("no bridge port for %s", id)
		return
	}
	openID, guardedID := open["id"].(string), guarded["id"].(string)
	if in, out := filters(openID); in != "" || out != "" {
		t.Errorf("port without port security filtered by %q, %q", in, out)
	}
	if in, out := filters(guardedID); in == "" || out == "" {
		t.Errorf("port with port security unfiltered")
	}
	// Off with its groups in the same request; its filters go.
	off := p.must(200, "PUT", "/v2.0/ports/"+guardedID, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []any{}}}, "port")
	if off["port_security_enabled"] != false || len(off["security_groups"].([]any)) != 0 {
		t.Errorf("port turned off: %v", off)
	}
	if in, out := filters(guardedID); in != "" || out != "" {
		t.Errorf("port turned off filtered by %q, %q", in, out)
	}
	// Back on: no group (all but return flows and ARP dropped), filters back.
	on := p.must(200, "PUT", "/v2.0/ports/"+openID, map[string]any{"port": map[string]any{"port_security_enabled": true}}, "port")
	if on["port_security_enabled"] != true || len(on["security_groups"].([]any)) != 0 {
		t.Errorf("port turned on: %v", on)
	}
	if in, out := filters(openID); in == "" || out == "" {
		t.Errorf("port turned on unfiltered")
	}
	// The network's switch is its new ports' default only.
	p.must(200, "PUT", "/v2.0/networks/"+netID, map[string]any{"network": map[string]any{"port_security_enabled": true}}, "")
	if got := p.must(200, "GET", "/v2.0/ports/"+guardedID, nil, "port"); got["port_security_enabled"] != false {
		t.Errorf("an existing port followed its network: %v", got)
	}
	if got := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID}}, "port"); got["port_security_enabled"] != true {
		t.Errorf("a new port on the network turned on: %v", got)
	}
}

// TestAllowedAddressPairs: pairs are shown with the port's MAC when given
// none, reach the translation (the port's anti-spoofing jumps to a chain
// listing them), and go with an update to [].
func TestAllowedAddressPairs(t *testing.T) {
	e := newEnv(t)
	p := e.project("alpha")
	netID := p.must(201, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"name": "n"}}, "network")["id"].(string)
	p.must(201, "POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netID, "ip_version": 4, "cidr": "10.0.0.0/24"}}, "")
	port := p.must(201, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netID, "mac_address": "02:00:00:00:00:11",
		"allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.50"}, map[string]any{"ip_address": "10.0.0.128/25", "mac_address": "02:00:00:00:00:99"}}}}, "port")
	want := `[{"ip_address":"10.0.0.50","mac_address":"02:00:00:00:00:11"},{"ip_address":"10.0.0.128/25","mac_address":"02:00:00:00:00:99"}]`
	if got := must(json.Marshal(port["allowed_address_pairs"])); got != want {
		t.Errorf("pairs %s, want %s", got, want)
	}
	id := port["id"].(string)
	source := func() bool {
		var d *translate.Desired
		e.vpcs.Read(func(st *vpc.State) { d = translate.Translate(st, translate.CloudConfig{}) })
		for _, o := range d.Objects {
			if c, ok := o.(*topology.Chain); ok && c.ID == translate.ObjectID(id, "from-vm/source") {
				return c.RuleIndex("pair-0-ip") >= 0 && c.RuleIndex("pair-1-ip") >= 0
			}
		}
		return false
	}
	if !source() {
		t.Error("the port's pairs are not in its anti-spoofing chain")
	}
	// Other attributes updated: the pairs stay.
	if got := p.must(200, "PUT", "/v2.0/ports/"+id, map[string]any{"port": map[string]any{"name": "vrrp"}}, "port"); len(got["allowed_address_pairs"].([]any)) != 2 {
		t.Errorf("pairs after a rename: %v", got["allowed_address_pairs"])
	}
	cleared := p.must(200, "PUT", "/v2.0/ports/"+id, map[string]any{"port": map[string]any{"allowed_address_pairs": []any{}}}, "port")
	if len(cleared["allowed_address_pairs"].([]any)) != 0 || source() {
		t.Errorf("pairs after clearing: %v", cleared["allowed_address_pairs"])
	}
	// Without pairs and groups, port security can go.
	p.must(200, "PUT", "/v2.0/ports/"+id, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []any{}}}, "port")
}
