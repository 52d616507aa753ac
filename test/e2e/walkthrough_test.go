package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// decode parses CLI JSON output into v.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decoding CLI output: %v\n%s", err, out)
	}
}

// portView is a port as `router port list -o json` prints it.
type portView struct {
	topology.Port
	PeerDeviceKind string `json:"peer_device_kind"`
	PeerDeviceID   string `json:"peer_device_id"`
	PeerDeviceName string `json:"peer_device_name"`
}

func portByName(t *testing.T, ports []portView, name string) portView {
	t.Helper()
	for _, p := range ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no port named %q in %+v", name, ports)
	return portView{}
}

// lineWith returns the first output line containing every one of subs.
func lineWith(out string, subs ...string) string {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			return l
		}
	}
	return ""
}

// TestWalkthrough is the classic MidoNet deployment done with the CLI: an
// edge router with an uplink on a public /24 and a port linked to a tenant
// bridge, a default route, a vxlan tunnel zone of two hosts, the uplink bound
// to a host interface, and DHCP with a static host on the bridge.
func TestWalkthrough(t *testing.T) {
	s := newServer(t)

	var edge topology.Router
	decode(t, s.cli("router", "create", "edge", "-o", "json"), &edge)
	var uplink, gw topology.Port
	decode(t, s.cli("router", "port", "add", "edge", "--name", "uplink", "--address", "198.51.100.1/24", "-o", "json"), &uplink)
	decode(t, s.cli("router", "port", "add", "edge", "--name", "tenant-gw", "--address", "10.0.0.1/24", "-o", "json"), &gw)
	if uplink.DeviceID != edge.ID || uplink.Address.String() != "198.51.100.1/24" || uplink.MAC.IsZero() || uplink.TunnelKey == 0 {
		t.Fatalf("uplink port as created: %+v", uplink)
	}
	var tenant topology.Bridge
	decode(t, s.cli("bridge", "create", "tenant", "-o", "json"), &tenant)
	var bport topology.Port
	decode(t, s.cli("bridge", "port", "add", "tenant", "--name", "to-edge", "-o", "json"), &bport)
	s.cli("port", "link", "edge:tenant-gw", "tenant:to-edge")

	s.cli("route", "add", "edge", "--dst", "0.0.0.0/0", "--port", "uplink", "--gateway", "198.51.100.254")
	routes := s.cli("router", "route", "list", "edge")
	if l := lineWith(routes, "0.0.0.0/0", uplink.ID, "198.51.100.254", "normal"); l == "" {
		t.Fatalf("route list does not show the default route via the uplink:\n%s", routes)
	}

	s.cli("host", "create", "gw1")
	s.cli("host", "create", "compute1")
	s.cli("tunnel-zone", "create", "underlay", "--type", "vxlan")
	s.cli("tunnel-zone", "member", "add", "underlay", "gw1", "192.0.2.11")
	s.cli("tunnel-zone", "member", "add", "underlay", "compute1", "192.0.2.12")
	var zones []topology.TunnelZone
	decode(t, s.cli("tunnel-zone", "list", "-o", "json"), &zones)
	if len(zones) != 1 || zones[0].Type != topology.TunnelVXLAN || len(zones[0].Members) != 2 {
		t.Fatalf("tunnel zones: %+v", zones)
	}
	members := s.cli("tunnel-zone", "member", "list", "underlay")
	if lineWith(members, "gw1", "192.0.2.11") == "" || lineWith(members, "compute1", "192.0.2.12") == "" {
		t.Fatalf("member list:\n%s", members)
	}
	hosts := s.cli("host", "list")
	if lineWith(hosts, "gw1", "no") == "" || lineWith(hosts, "compute1", "no") == "" {
		t.Fatalf("host list (no agent runs, so neither host is alive):\n%s", hosts)
	}

	s.cli("binding", "add", "gw1", "edge:uplink", "eth1")
	if b := s.cli("binding", "list", "gw1"); lineWith(b, uplink.ID, "eth1") == "" {
		t.Fatalf("binding list:\n%s", b)
	}

	s.cli("bridge", "dhcp", "add", "tenant", "--subnet", "10.0.0.0/24", "--gateway", "10.0.0.1", "--dns", "192.0.2.53")
	s.cli("bridge", "dhcp", "host", "add", "tenant", "10.0.0.0/24", "--mac", "02:00:00:00:00:05", "--ip", "10.0.0.5", "--name", "vm1")
	var subs []topology.DHCPSubnet
	decode(t, s.cli("bridge", "dhcp", "list", "tenant", "-o", "json"), &subs)
	if len(subs) != 1 || len(subs[0].Hosts) != 1 || subs[0].Hosts[0].IP.String() != "10.0.0.5" || subs[0].Hosts[0].MAC.String() != "02:00:00:00:00:05" {
		t.Fatalf("DHCP subnets: %+v", subs)
	}

	// The router's port list shows the link: the peer port and its device.
	table := s.cli("router", "port", "list", "edge")
	if l := lineWith(table, "tenant-gw", bport.ID, "bridge tenant"); l == "" {
		t.Fatalf("router port list does not show tenant-gw linked to bridge tenant port %s:\n%s", bport.ID, table)
	}
	if l := lineWith(table, "uplink", "198.51.100.1/24", "gw1/eth1"); l == "" {
		t.Fatalf("router port list does not show the uplink bound to gw1/eth1:\n%s", table)
	}
	var ports []portView
	decode(t, s.cli("router", "port", "list", "edge", "-o", "json"), &ports)
	p := portByName(t, ports, "tenant-gw")
	if p.PeerID != bport.ID || p.PeerDeviceKind != "bridge" || p.PeerDeviceID != tenant.ID || p.PeerDeviceName != "tenant" {
		t.Fatalf("tenant-gw in JSON: %+v", p)
	}
	if u := portByName(t, ports, "uplink"); u.HostID == "" || u.Interface != "eth1" || u.PeerID != "" {
		t.Fatalf("uplink in JSON: %+v", u)
	}
	// Both sides of the link are written.
	var bp topology.Port
	if _, err := s.client().Get(context.Background(), "/ports/"+bport.ID, &bp); err != nil || bp.PeerID != gw.ID {
		t.Fatalf("bridge port after link: %+v, %v", bp, err)
	}

	// API errors are printed with the API's message and exit code 1.
	s.cli("bridge", "port", "add", "tenant", "--name", "spare")
	if e := s.cliFail("port", "link", "edge:tenant-gw", "tenant:spare"); !strings.Contains(e, "already linked") || !strings.Contains(e, "409") {
		t.Fatalf("linking a linked port: stderr %q", e)
	}
	if e := s.cliFail("router", "port", "add", "edge", "--address", "198.51.100.300/24"); !strings.Contains(e, "--address") {
		t.Fatalf("bad address: stderr %q", e)
	}
	if e := s.cliFail("router", "show", "nosuch"); !strings.Contains(e, `no router named "nosuch"`) {
		t.Fatalf("unknown router: stderr %q", e)
	}
	s.cli("bridge", "create", "dup")
	s.cli("bridge", "create", "dup")
	if e := s.cliFail("bridge", "show", "dup"); !strings.Contains(e, "ambiguous") {
		t.Fatalf("ambiguous name: stderr %q", e)
	}

	// Deleting the bridge takes its ports and DHCP subnet and unlinks the router port.
	s.cli("bridge", "delete", "tenant")
	ports = nil // decode into a fresh slice: old elements would keep omitted fields
	decode(t, s.cli("router", "port", "list", "edge", "-o", "json"), &ports)
	if p := portByName(t, ports, "tenant-gw"); p.PeerID != "" || p.PeerDeviceID != "" {
		t.Fatalf("tenant-gw still linked after deleting the bridge: %+v", p)
	}
	if table := s.cli("router", "port", "list", "edge"); lineWith(table, "bridge tenant") != "" {
		t.Fatalf("router port list still shows the deleted bridge:\n%s", table)
	}
	var all []topology.DHCPSubnet
	if _, err := s.client().Get(context.Background(), "/dhcp-subnets", &all); err != nil || len(all) != 0 {
		t.Fatalf("DHCP subnets after deleting their bridge: %+v, %v", all, err)
	}
	if e := s.cliFail("port", "show", bport.ID); !strings.Contains(e, "404") {
		t.Fatalf("bridge port after deleting the bridge: stderr %q", e)
	}
}

// TestChainsAndGroups drives the rule flags, NAT targets, groups and the
// refusal to delete a chain still in use.
func TestChainsAndGroups(t *testing.T) {
	s := newServer(t)
	s.cli("router", "create", "edge")
	s.cli("router", "port", "add", "edge", "--name", "up1", "--address", "198.51.100.1/24")
	s.cli("router", "port", "add", "edge", "--name", "up2", "--address", "203.0.113.1/24")
	s.cli("port-group", "create", "uplinks", "--stateful")
	s.cli("port-group", "member", "add", "uplinks", "edge:up1")
	s.cli("port-group", "member", "add", "uplinks", "edge:up2")
	var pgs []topology.PortGroup
	decode(t, s.cli("port-group", "list", "-o", "json"), &pgs)
	if len(pgs) != 1 || !pgs[0].Stateful || len(pgs[0].Ports) != 2 {
		t.Fatalf("port groups: %+v", pgs)
	}
	s.cli("ip-address-group", "create", "admins", "--address", "192.0.2.10")
	s.cli("ip-address-group", "address", "add", "admins", "192.0.2.11")

	s.cli("chain", "create", "ssh")
	s.cli("chain", "rule", "add", "ssh", "--action", "accept", "--nw-proto", "tcp", "--tp-dst", "22", "--ip-group-src", "admins")
	s.cli("chain", "create", "edge-in")
	s.cli("chain", "rule", "add", "edge-in", "--action", "jump", "--jump-chain", "ssh", "--in-port-group", "uplinks")
	s.cli("chain", "rule", "add", "edge-in", "--action", "snat", "--nw-src", "10.0.0.0/24", "--inv-nw-dst", "--nw-dst", "10.0.0.0/8",
		"--nat-target", "198.51.100.2-198.51.100.9:1000-2000")
	s.cli("chain", "rule", "add", "edge-in", "--position", "0", "--action", "drop", "--ether-type", "arp", "--inv-ether-type")
	var rules []topology.Rule
	decode(t, s.cli("chain", "rule", "list", "edge-in", "-o", "json"), &rules)
	if len(rules) != 3 || rules[0].Action != topology.ActionDrop || !rules[0].InvEtherType || rules[0].EtherType != 0x0806 {
		t.Fatalf("rules: %+v", rules)
	}
	nat := rules[2]
	if len(nat.NATTargets) != 1 || nat.NATTargets[0].AddrFrom.String() != "198.51.100.2" || nat.NATTargets[0].AddrTo.String() != "198.51.100.9" ||
		nat.NATTargets[0].PortFrom != 1000 || nat.NATTargets[0].PortTo != 2000 || !nat.InvNwDst {
		t.Fatalf("snat rule: %+v", nat)
	}
	list := s.cli("chain", "rule", "list", "edge-in")
	if lineWith(list, "snat", "198.51.100.2-198.51.100.9:1000-2000", "!nw_dst=10.0.0.0/8") == "" {
		t.Fatalf("rule list:\n%s", list)
	}
	s.cli("router", "update", "edge", "--in-filter", "edge-in")

	// A chain still referenced (by a jump rule, by a router) cannot go.
	if e := s.cliFail("chain", "delete", "ssh"); !strings.Contains(e, "409") {
		t.Fatalf("deleting a jumped-to chain: stderr %q", e)
	}
	if e := s.cliFail("chain", "delete", "edge-in"); !strings.Contains(e, "409") {
		t.Fatalf("deleting a router's filter: stderr %q", e)
	}
	s.cli("chain", "rule", "delete", "edge-in", "1") // the jump, by position
	s.cli("chain", "delete", "ssh")
	rules = nil
	decode(t, s.cli("chain", "rule", "list", "edge-in", "-o", "json"), &rules)
	if len(rules) != 2 {
		t.Fatalf("rules after deleting the jump: %+v", rules)
	}

	// BGP settings round-trip.
	s.cli("router", "bgp", "set", "edge", "--asn", "64512", "--peer", "address=198.51.100.254,asn=64496,hold=90,keepalive=30,password=s3cret",
		"--network", "203.0.113.0/24")
	var bgp topology.BGP
	shown := s.cli("router", "bgp", "show", "edge", "-o", "json")
	decode(t, shown, &bgp)
	// The password is write-only: neither the BGP settings nor the router show it.
	if shown += s.cli("router", "show", "edge") + s.cli("router", "bgp", "show", "edge"); strings.Contains(shown, "s3cret") {
		t.Fatalf("the CLI shows the BGP password:\n%s", shown)
	}
	if bgp.ASN != 64512 || len(bgp.Peers) != 1 || bgp.Peers[0].ASN != 64496 || bgp.Peers[0].HoldTime != 90 || bgp.Peers[0].Password != "" || !bgp.Peers[0].PasswordSet || len(bgp.Networks) != 1 {
		t.Fatalf("bgp: %+v", bgp)
	}
	s.cli("router", "bgp", "delete", "edge")
	var r topology.Router
	decode(t, s.cli("router", "show", "edge", "-o", "json"), &r)
	if r.BGP != nil {
		t.Fatalf("router still has BGP: %+v", r.BGP)
	}
}
