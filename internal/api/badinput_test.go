package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// fixture is a small topology the bad requests run against.
type fixture struct {
	r1, r2, b1, b2                 string // routers, bridges
	p1, p2, p3, bp1, bp2, bp3, bp4 string // ports
	c1, c2, c3                     string // chains: c1 jumps to c2; c3 filters p1
	h1, h2, tz, tz2, d1, pg, ig    string
}

func newFixture(e *env) *fixture {
	f := &fixture{}
	f.c2 = e.id("/chains", map[string]any{"name": "c2", "rules": []any{map[string]any{"action": "accept"}}})
	f.c1 = e.id("/chains", map[string]any{"name": "c1", "rules": []any{map[string]any{"action": "jump", "jump_chain": f.c2}}})
	f.c3 = e.id("/chains", map[string]any{"name": "c3"})
	f.r1 = e.id("/routers", map[string]any{"name": "r1"})
	f.r2 = e.id("/routers", map[string]any{"name": "r2"})
	f.b1 = e.id("/bridges", map[string]any{"name": "b1"})
	f.b2 = e.id("/bridges", map[string]any{"name": "b2"})
	f.p1 = e.id("/routers/"+f.r1+"/ports", map[string]any{"mac": "02:00:00:00:01:01", "address": "192.0.2.1/24", "in_filter": f.c3})
	f.p2 = e.id("/routers/"+f.r1+"/ports", map[string]any{"mac": "02:00:00:00:01:02", "address": "198.51.100.1/24"})
	f.p3 = e.id("/routers/"+f.r2+"/ports", map[string]any{"mac": "02:00:00:00:02:01", "address": "203.0.113.1/24"})
	f.bp1 = e.id("/bridges/"+f.b1+"/ports", map[string]any{})
	f.bp2 = e.id("/bridges/"+f.b1+"/ports", map[string]any{})
	f.bp3 = e.id("/bridges/"+f.b1+"/ports", map[string]any{})
	f.bp4 = e.id("/bridges/"+f.b2+"/ports", map[string]any{})
	e.do("POST", "/ports/"+f.p2+"/link", LinkRequest{PeerID: f.bp1}, http.StatusOK, nil)
	f.h1 = e.id("/hosts", map[string]any{"name": "h1"})
	f.h2 = e.id("/hosts", map[string]any{"name": "h2"})
	e.do("POST", "/hosts/"+f.h1+"/bindings", Binding{PortID: f.bp2, Interface: "eth1"}, http.StatusCreated, nil)
	f.tz = e.id("/tunnel-zones", map[string]any{"name": "tz", "type": "vxlan", "members": []any{map[string]any{"host_id": f.h1, "address": "172.16.0.1"}}})
	f.tz2 = e.id("/tunnel-zones", map[string]any{"name": "tz2", "type": "vxlan"})
	f.d1 = e.id("/bridges/"+f.b1+"/dhcp", map[string]any{"subnet": "10.1.0.0/24", "gateway": "10.1.0.1",
		"hosts": []any{map[string]any{"mac": "02:00:00:00:00:aa", "ip": "10.1.0.10"}}})
	f.pg = e.id("/port-groups", map[string]any{"name": "pg"})
	f.ig = e.id("/ip-address-groups", map[string]any{"name": "ig"})
	return f
}

// TestBadInput sends malformed and inconsistent requests. Each must get the
// right status and an error naming the field and the reason, and must leave
// the store exactly as it was (compared by a full dump of every kind).
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	rp := "/routers/" + f.r1 + "/ports"
	rules := "/chains/" + f.c2 + "/rules"
	dhcpHosts := "/bridges/" + f.b1 + "/dhcp/" + f.d1 + "/hosts"
	okPort := func(extra string) string {
		return `{"mac":"02:00:00:00:09:01","address":"10.9.0.1/24"` + extra + `}`
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	rows := []struct {
		name         string
		method, path string
		body         string
		status       int
		field        string // exact error field; "" = not checked
		msg          string // substring of the message
	}{
		{"bad CIDR", "POST", rp, `{"mac":"02:00:00:00:09:01","address":"10.0.0.300/24"}`, 400, "address", "10.0.0.300"},
		{"/33 prefix", "POST", rp, `{"mac":"02:00:00:00:09:01","address":"10.0.0.1/33"}`, 400, "address", "prefix length"},
		{"/33 route destination", "POST", "/routers/" + f.r1 + "/routes", `{"type":"blackhole","dst_prefix":"10.0.0.0/33"}`, 400, "dst_prefix", "prefix length"},
		{"bad MAC", "POST", rp, `{"mac":"02:00:zz:00:09:01","address":"10.9.0.1/24"}`, 400, "mac", "MAC"},
		{"multicast MAC on a router port", "POST", rp, `{"mac":"01:00:5e:00:00:01","address":"10.9.0.1/24"}`, 400, "mac", "multicast"},
		{"router port with no MAC", "POST", rp, `{"address":"10.9.0.1/24"}`, 400, "mac", "required"},
		{"router port with no address", "POST", rp, `{"mac":"02:00:00:00:09:01"}`, 400, "address", "required"},
		{"reversed port range", "POST", rules, `{"action":"accept","nw_proto":6,"tp_dst":{"start":90,"end":80}}`, 400, "rules[1].tp_dst", "reversed"},
		{"tp_dst with nw_proto icmp", "POST", rules, `{"action":"accept","nw_proto":1,"tp_dst":{"start":80,"end":80}}`, 400, "rules[1].tp_dst", "nw_proto"},
		{"invalid action", "POST", rules, `{"action":"explode"}`, 400, "rules[1].action", "explode"},
		{"nat target with reversed address range", "POST", rules, `{"action":"dnat","nat_targets":[{"addr_from":"10.0.0.9","addr_to":"10.0.0.1"}]}`, 400, "rules[1].nat_targets[0].addr_to", "reversed"},
		{"rule position out of range", "POST", rules, `{"action":"accept","position":5}`, 400, "position", "0 to 1"},
		{"jump to a missing chain", "POST", rules, `{"action":"jump","jump_chain":"no-such-chain"}`, 400, "rules[1].jump_chain", "does not exist"},
		{"jump cycle", "POST", rules, fmt.Sprintf(`{"action":"jump","jump_chain":%q}`, f.c1), 400, "rules[1].jump_chain", "cycle"},
		{"port on a missing router", "POST", "/ports", `{"device_kind":"router","device_id":"no-such-router","mac":"02:00:00:00:09:01","address":"10.9.0.1/24"}`, 400, "device_id", "does not exist"},
		{"nested port on a missing router", "POST", "/routers/no-such-router/ports", okPort(""), 404, "", "no-such-router"},
		{"nested port naming another router", "POST", rp, okPort(fmt.Sprintf(`,"device_id":%q`, f.r2)), 400, "device_id", "path names"},
		{"route via a missing port", "POST", "/routers/" + f.r1 + "/routes", `{"type":"normal","dst_prefix":"10.5.0.0/16","next_hop_port":"no-such-port"}`, 400, "next_hop_port", "does not exist"},
		{"route via a port of another router", "POST", "/routers/" + f.r1 + "/routes", fmt.Sprintf(`{"type":"normal","dst_prefix":"10.5.0.0/16","next_hop_port":%q}`, f.p3), 400, "next_hop_port", "not a port of router"},
		{"route gateway outside the port's subnet", "POST", "/routers/" + f.r1 + "/routes", fmt.Sprintf(`{"type":"normal","dst_prefix":"10.5.0.0/16","next_hop_port":%q,"next_hop_gateway":"10.77.0.1"}`, f.p1), 400, "next_hop_gateway", "not in the subnet"},
		{"linking an already-linked port", "POST", "/ports/" + f.p1 + "/link", fmt.Sprintf(`{"peer_id":%q}`, f.bp1), 409, "peer_id", "already linked"},
		{"linking a linked port elsewhere", "POST", "/ports/" + f.p2 + "/link", fmt.Sprintf(`{"peer_id":%q}`, f.bp3), 409, "peer_id", "already linked"},
		{"linking a port to itself", "POST", "/ports/" + f.p1 + "/link", fmt.Sprintf(`{"peer_id":%q}`, f.p1), 400, "peer_id", "itself"},
		{"linking two bridge ports", "POST", "/ports/" + f.bp3 + "/link", fmt.Sprintf(`{"peer_id":%q}`, f.bp4), 400, "peer_id", "router ports"},
		{"linking to a missing peer", "POST", "/ports/" + f.p1 + "/link", `{"peer_id":"no-such-port"}`, 400, "peer_id", "does not exist"},
		{"linking a missing port", "POST", "/ports/no-such-port/link", fmt.Sprintf(`{"peer_id":%q}`, f.bp3), 404, "", "no-such-port"},
		{"unlinking an unlinked port", "DELETE", "/ports/" + f.p1 + "/link", "", 409, "peer_id", "not linked"},
		{"wrong revision on PUT", "PUT", "/routers/" + f.r2, `{"name":"r2x","revision":1}`, 409, "revision", "not 1"},
		{"wrong revision on DELETE", "DELETE", "/routers/" + f.r2 + "?revision=1", "", 409, "revision", "not 1"},
		{"wrong revision on a rule insert", "POST", rules + "?revision=1", `{"action":"accept"}`, 409, "revision", "not 1"},
		{"malformed revision", "DELETE", "/routers/" + f.r2 + "?revision=latest", "", 400, "revision", "latest"},
		{"no token", "GET", "/routers", "", 401, "", "missing token"},
		{"wrong token", "DELETE", "/routers/" + f.r2, "", 401, "", "invalid token"},
		{"wrong X-Auth-Token", "GET", "/routers", "", 401, "", "invalid token"},
		{"no token on an unknown path", "GET", "/nothing", "", 401, "", "missing token"},
		{"unknown JSON field", "POST", "/routers", `{"name":"x","colour":"red"}`, 400, "colour", "unknown field"},
		{"unknown nested JSON field", "POST", "/chains", `{"rules":[{"action":"accept","bogus":1}]}`, 400, "rules[0].bogus", "unknown field"},
		{"malformed JSON", "POST", "/routers", `{"name":`, 400, "", "malformed JSON"},
		{"malformed JSON syntax", "POST", "/routers", `{"name" "x"}`, 400, "", "offset"},
		{"trailing data", "POST", "/routers", `{"name":"x"} {}`, 400, "", "after the object"},
		{"empty body", "POST", "/routers", ``, 400, "", "empty"},
		{"body is not an object", "POST", "/routers", `["x"]`, 400, "", "expected a JSON object"},
		// Bad inputs that were stored altered or read as absent.
		{"name not UTF-8", "POST", "/routers", "{\"name\":\"r\xff\"}", 400, "", "not valid UTF-8 (byte 0xff at offset 10)"},
		{"label not UTF-8", "POST", "/bridges", "{\"name\":\"b\",\"labels\":{\"k\":\"\xc3\x28\"}}", 400, "", "not valid UTF-8"},
		{"name with a lone surrogate escape", "POST", "/routers", `{"name":"r\ud800"}`, 400, "", `unpaired UTF-16 surrogate \ud800`},
		{"name with a lone low surrogate escape", "PUT", "/routers/" + f.r2, `{"name":"\udc00x"}`, 400, "", "unpaired UTF-16 surrogate"},
		{"zero MAC on a bridge port", "POST", "/bridges/" + f.b1 + "/ports", `{"mac":"00:00:00:00:00:00"}`, 400, "mac", "00:00:00:00:00:00"},
		{"zero MAC on a router port", "POST", rp, `{"mac":"00-00-00-00-00-00","address":"10.9.0.1/24"}`, 400, "mac", "00:00:00:00:00:00"},
		{"zero MAC on a DHCP host", "POST", dhcpHosts, `{"mac":"00:00:00:00:00:00","ip":"10.1.0.11"}`, 400, "mac", "00:00:00:00:00:00"},
		{"zero MAC in a router's ARP table", "PUT", "/routers/" + f.r2, `{"name":"r2","arp_entries":[{"ip":"10.0.0.9","mac":"00:00:00:00:00:00"}]}`, 400, "arp_entries[0].mac", "00:00:00:00:00:00"},
		{"broadcast MAC on a bridge port", "POST", "/bridges/" + f.b1 + "/ports", `{"mac":"ff:ff:ff:ff:ff:ff"}`, 400, "mac", "broadcast"},
		{"multicast MAC on a bridge port", "POST", "/bridges/" + f.b1 + "/ports", `{"mac":"33:33:00:00:00:01"}`, 400, "mac", "multicast"},
		{"router port subnet inside another port's", "POST", rp, `{"mac":"02:00:00:00:09:01","address":"192.0.2.129/25"}`, 409, "address", "overlaps subnet 192.0.2.0/24"},
		{"router port subnet around another port's", "POST", rp, `{"mac":"02:00:00:00:09:01","address":"198.51.0.1/16"}`, 409, "address", "overlaps subnet 198.51.100.0/24"},
		{"router port moved onto another's subnet", "PUT", "/ports/" + f.p2, `{"device_kind":"router","device_id":"` + f.r1 + `","mac":"02:00:00:00:01:02","address":"192.0.2.7/24","peer_id":"` + f.bp1 + `","revision":0}`, 409, "address", "overlaps"},
		{"wrong type for a field", "POST", "/routers", `{"name":5}`, 400, "name", "expected a string"},
		{"wrong type for a number", "POST", rp, okPort(`,"mtu":"big"`), 400, "mtu", "expected an integer"},
		{"number out of range", "POST", rules, `{"action":"accept","nw_proto":300}`, 400, "nw_proto", "0 to 255"},
		{"PUT with another id in the body", "PUT", "/routers/" + f.r2, fmt.Sprintf(`{"id":%q}`, f.r1), 400, "id", "path names"},
		{"deleting a chain in use by a port", "DELETE", "/chains/" + f.c3, "", 409, "", "used by"},
		{"deleting a chain a rule jumps to", "DELETE", "/chains/" + f.c2, "", 409, "", "used by"},
		{"unknown object id in path", "GET", "/routers/no-such-router", "", 404, "", "no-such-router"},
		{"PUT to an unknown id", "PUT", "/bridges/no-such-bridge", `{"name":"x"}`, 404, "", "no-such-bridge"},
		{"DELETE an unknown id", "DELETE", "/chains/no-such-chain", "", 404, "", "no-such-chain"},
		{"unknown rule id", "DELETE", rules + "/no-such-rule", "", 404, "", "no-such-rule"},
		{"unknown path", "GET", "/widgets", "", 404, "", "no such resource"},
		{"unsupported method on an object", "PATCH", "/routers/" + f.r1, `{}`, 405, "", "PATCH"},
		{"unsupported method on a collection", "DELETE", "/routers", "", 405, "", "allowed: GET, HEAD, POST"},
		{"tunnel zone type gre", "POST", "/tunnel-zones", `{"name":"t","type":"gre"}`, 400, "type", "gre"},
		{"host already in this tunnel zone", "POST", "/tunnel-zones/" + f.tz + "/members", fmt.Sprintf(`{"host_id":%q,"address":"172.16.0.9"}`, f.h1), 409, "host_id", "already a member"},
		{"host already in another tunnel zone", "POST", "/tunnel-zones/" + f.tz2 + "/members", fmt.Sprintf(`{"host_id":%q,"address":"172.16.0.9"}`, f.h1), 409, "host_id", "already a member of tunnel zone " + f.tz},
		{"tunnel zone member on a missing host", "POST", "/tunnel-zones/" + f.tz2 + "/members", `{"host_id":"no-such-host","address":"172.16.0.9"}`, 400, "host_id", "does not exist"},
		{"binding an interface already bound", "POST", "/hosts/" + f.h1 + "/bindings", fmt.Sprintf(`{"port_id":%q,"interface":"eth1"}`, f.bp3), 409, "interface", "already bound"},
		{"binding an interior port", "POST", "/hosts/" + f.h1 + "/bindings", fmt.Sprintf(`{"port_id":%q,"interface":"eth7"}`, f.bp1), 409, "port_id", "linked"},
		{"binding without an interface", "POST", "/hosts/" + f.h1 + "/bindings", fmt.Sprintf(`{"port_id":%q}`, f.bp3), 400, "interface", "required"},
		{"binding a bad interface name", "POST", "/hosts/" + f.h1 + "/bindings", fmt.Sprintf(`{"port_id":%q,"interface":"a/b"}`, f.bp3), 400, "interface", "interface name"},
		{"binding on a missing host", "POST", "/hosts/no-such-host/bindings", fmt.Sprintf(`{"port_id":%q,"interface":"eth9"}`, f.bp3), 404, "", "no-such-host"},
		{"DHCP gateway outside the subnet", "POST", "/bridges/" + f.b1 + "/dhcp", `{"subnet":"10.2.0.0/24","gateway":"10.3.0.1"}`, 400, "gateway", "not in the subnet"},
		{"DHCP subnet overlapping another", "POST", "/bridges/" + f.b1 + "/dhcp", `{"subnet":"10.1.0.128/25","gateway":"10.1.0.129"}`, 409, "subnet", "overlaps"},
		{"DHCP host IP outside the subnet", "POST", dhcpHosts, `{"mac":"02:00:00:00:00:bb","ip":"10.9.9.9"}`, 400, "hosts[1].ip", "not in the subnet"},
		{"duplicate DHCP host MAC", "POST", dhcpHosts, `{"mac":"02:00:00:00:00:aa","ip":"10.1.0.11"}`, 409, "mac", "already exists"},
		{"DHCP host with a bad MAC in the path", "DELETE", dhcpHosts + "/not-a-mac", "", 400, "mac", "not-a-mac"},
		{"port group member that does not exist", "POST", "/port-groups/" + f.pg + "/ports", `{"port_id":"no-such-port"}`, 400, "port_id", "does not exist"},
		{"bad address for an IP group", "POST", "/ip-address-groups/" + f.ig + "/addresses", `{"address":"10.0.0.256"}`, 400, "address", "10.0.0.256"},
		{"BGP with ASN 0", "PUT", "/routers/" + f.r1 + "/bgp", `{"asn":0}`, 400, "bgp.asn", "required"},
	}
	// Requests sent with other headers than the right token.
	headers := map[string]http.Header{
		"no token":                    {},
		"wrong token":                 bearer("not-the-token"),
		"wrong X-Auth-Token":          {"X-Auth-Token": {"nope"}},
		"no token on an unknown path": {},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			e.t = t
			before := e.dump()
			var body any
			if row.body != "" {
				body = row.body
			}
			status, b := e.raw(row.method, row.path, body, headers[row.name])
			after := e.dump()
			t.Logf("%s %s → %d %s", row.method, row.path, status, b)
			if status != row.status {
				t.Errorf("status %d, want %d; body %s", status, row.status, b)
			}
			d := apiError(t, b)
			if d.Status != status {
				t.Errorf("body status %d, HTTP status %d", d.Status, status)
			}
			if row.field != "" && d.Field != row.field {
				t.Errorf("field %q, want %q; body %s", d.Field, row.field, b)
			}
			if !strings.Contains(d.Message, row.msg) || d.Reason == "" {
				t.Errorf("message %q does not contain %q (reason %q)", d.Message, row.msg, d.Reason)
			}
			if before != after {
				t.Errorf("the store changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	if len(rows) < 30 {
		t.Fatalf("only %d rows", len(rows))
	}
}

// TestTextStoredAsSent: names in UTF-8, raw or as \u escapes (surrogate
// pairs included), are stored exactly as sent; only text the decoder
// would alter is refused (TestBadInput).
func TestTextStoredAsSent(t *testing.T) {
	e := newEnv(t)
	for body, want := range map[string]string{
		`{"name":"café 🌿"}`:                 "café 🌿",
		`{"name":"caf\u00e9 \ud83c\udf3f"}`: "café 🌿",
		`{"name":"tab\\t\"q\"\\\\ud800"}`:   `tab\t"q"\\ud800`, // escaped backslashes: no surrogate
	} {
		id := e.id("/routers", body)
		if got := e.get(topology.KindRouter, id).(*topology.Router).Name; got != want {
			t.Errorf("%s stored as %q, want %q", body, got, want)
		}
	}
}
