package topology

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// vcase is one Validate table entry: field == "" means the object is valid;
// otherwise Validate must return a *FieldError for exactly that JSON path
// whose reason contains reason.
type vcase struct {
	name   string
	obj    Object
	field  string
	reason string
}

func runValidate(t *testing.T, cases []vcase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.obj.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v (%T), want *FieldError{Field: %q, Reason: ~%q}", err, err, c.field, c.reason)
			}
			if fe.Field != c.field || !strings.Contains(fe.Reason, c.reason) {
				t.Fatalf("Validate() mismatch\n got field %q reason %q\nwant field %q reason containing %q", fe.Field, fe.Reason, c.field, c.reason)
			}
		})
	}
}

var (
	ip  = netip.MustParseAddr
	pfx = netip.MustParsePrefix
)

func mac(s string) MAC {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func u8(v uint8) *uint8 { return &v }

func testRouter(mod func(*Router)) *Router {
	r := &Router{
		Meta:       Meta{ID: "r1", Name: "edge", Labels: map[string]string{"canopy.owner": "vpc-1"}},
		InFilter:   "c-in",
		ARPEntries: []ARPEntry{{IP: ip("10.0.0.5"), MAC: mac("02:00:00:00:00:05")}},
		BGP: &BGP{
			ASN:      64512,
			RouterID: ip("192.0.2.1"),
			Peers:    []BGPPeer{{Address: ip("192.0.2.254"), ASN: 65000, HoldTime: 9, KeepAlive: 3, Password: "s3cret"}},
			Networks: []netip.Prefix{pfx("198.51.100.0/24")},
		},
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func TestValidateRouter(t *testing.T) {
	runValidate(t, []vcase{
		{"full", testRouter(nil), "", ""},
		{"minimal", &Router{}, "", ""},
		{"bgp default timers", testRouter(func(r *Router) { r.BGP.Peers[0].HoldTime, r.BGP.Peers[0].KeepAlive = 0, 0 }), "", ""},
		{"bgp hold 0 keepalive 30", testRouter(func(r *Router) { r.BGP.Peers[0].HoldTime, r.BGP.Peers[0].KeepAlive = 0, 30 }), "", ""},
		{"asn max", testRouter(func(r *Router) { r.BGP.ASN = 4294967295 }), "", ""},
		{"password 80", testRouter(func(r *Router) { r.BGP.Peers[0].Password = strings.Repeat("x", 80) }), "", ""},

		{"id with slash", testRouter(func(r *Router) { r.ID = "a/b" }), "id", `"a/b" is not a valid id`},
		{"id with space", testRouter(func(r *Router) { r.ID = "a b" }), "id", "no '/', spaces"},
		{"id too long", testRouter(func(r *Router) { r.ID = strings.Repeat("a", 129) }), "id", "at most 128"},
		{"name too long", testRouter(func(r *Router) { r.Name = strings.Repeat("é", 256) }), "name", "256 characters long; at most 255"},
		{"name control char", testRouter(func(r *Router) { r.Name = "a\nb" }), "name", "control character (U+000A)"},
		{"name bad utf8", testRouter(func(r *Router) { r.Name = "a\xffb" }), "name", "not valid UTF-8"},
		{"label key empty", testRouter(func(r *Router) { r.Labels[""] = "x" }), "labels", "key cannot be empty"},
		{"label key long", testRouter(func(r *Router) { r.Labels[strings.Repeat("k", 64)] = "x" }), `labels["` + strings.Repeat("k", 64) + `"]`, "64 characters long; at most 63"},
		{"label value control", testRouter(func(r *Router) { r.Labels["k"] = "\t" }), `labels["k"]`, "control character"},
		{"negative revision", testRouter(func(r *Router) { r.Revision = -1 }), "revision", "negative"},
		{"in_filter bad id", testRouter(func(r *Router) { r.InFilter = "x y" }), "in_filter", "not a valid id"},
		{"out_filter bad id", testRouter(func(r *Router) { r.OutFilter = "x/y" }), "out_filter", "not a valid id"},

		{"arp ip missing", testRouter(func(r *Router) { r.ARPEntries[0].IP = netip.Addr{} }), "arp_entries[0].ip", "is required"},
		{"arp ip v6", testRouter(func(r *Router) { r.ARPEntries[0].IP = ip("2001:db8::1") }), "arp_entries[0].ip", "2001:db8::1 is not an IPv4 address"},
		{"arp ip mapped", testRouter(func(r *Router) { r.ARPEntries[0].IP = ip("::ffff:10.0.0.5") }), "arp_entries[0].ip", "IPv4-mapped IPv6 address; write it as 10.0.0.5"},
		{"arp ip multicast", testRouter(func(r *Router) { r.ARPEntries[0].IP = ip("224.0.0.5") }), "arp_entries[0].ip", "multicast address"},
		{"arp mac zero", testRouter(func(r *Router) { r.ARPEntries[0].MAC = MAC{} }), "arp_entries[0].mac", "is required"},
		{"arp mac multicast", testRouter(func(r *Router) { r.ARPEntries[0].MAC = mac("01:00:5e:00:00:01") }), "arp_entries[0].mac", "01:00:5e:00:00:01 is a multicast MAC"},
		{"arp mac broadcast", testRouter(func(r *Router) { r.ARPEntries[0].MAC = Broadcast }), "arp_entries[0].mac", "broadcast MAC"},
		{"arp duplicate ip", testRouter(func(r *Router) {
			r.ARPEntries = append(r.ARPEntries, ARPEntry{IP: ip("10.0.0.5"), MAC: mac("02:00:00:00:00:06")})
		}), "arp_entries[1].ip", "10.0.0.5 is already in arp_entries[0]"},

		{"asn zero", testRouter(func(r *Router) { r.BGP.ASN = 0 }), "bgp.asn", "is required (1..4294967295; 0 is reserved)"},
		{"asn trans", testRouter(func(r *Router) { r.BGP.ASN = 23456 }), "bgp.asn", "AS_TRANS"},
		{"router id zero", testRouter(func(r *Router) { r.BGP.RouterID = ip("0.0.0.0") }), "bgp.router_id", "0.0.0.0 is not a unicast address"},
		{"router id v6", testRouter(func(r *Router) { r.BGP.RouterID = ip("::1") }), "bgp.router_id", "not an IPv4 address"},
		{"peer address missing", testRouter(func(r *Router) { r.BGP.Peers[0].Address = netip.Addr{} }), "bgp.peers[0].address", "is required"},
		{"peer address v6", testRouter(func(r *Router) { r.BGP.Peers[0].Address = ip("fe80::1") }), "bgp.peers[0].address", "fe80::1 is not an IPv4 address"},
		{"peer address broadcast", testRouter(func(r *Router) { r.BGP.Peers[0].Address = ip("255.255.255.255") }), "bgp.peers[0].address", "broadcast address"},
		{"peer address loopback", testRouter(func(r *Router) { r.BGP.Peers[0].Address = ip("127.0.0.1") }), "bgp.peers[0].address", "loopback"},
		{"peer asn zero", testRouter(func(r *Router) { r.BGP.Peers[0].ASN = 0 }), "bgp.peers[0].asn", "is required"},
		{"hold 1", testRouter(func(r *Router) { r.BGP.Peers[0].HoldTime, r.BGP.Peers[0].KeepAlive = 1, 0 }), "bgp.peers[0].hold_time", "1 s is too short"},
		{"hold 2", testRouter(func(r *Router) { r.BGP.Peers[0].HoldTime, r.BGP.Peers[0].KeepAlive = 2, 0 }), "bgp.peers[0].hold_time", "at least 3 s"},
		{"keepalive = hold", testRouter(func(r *Router) { r.BGP.Peers[0].HoldTime, r.BGP.Peers[0].KeepAlive = 9, 9 }), "bgp.peers[0].keepalive", "9 s must be shorter than the hold time (9 s)"},
		{"keepalive above default hold", testRouter(func(r *Router) { r.BGP.Peers[0].HoldTime, r.BGP.Peers[0].KeepAlive = 0, 90 }), "bgp.peers[0].keepalive", "shorter than the hold time (90 s)"},
		{"password 81", testRouter(func(r *Router) { r.BGP.Peers[0].Password = strings.Repeat("x", 81) }), "bgp.peers[0].password", "81 bytes long; TCP MD5 keys are at most 80"},
		{"duplicate peer", testRouter(func(r *Router) { r.BGP.Peers = append(r.BGP.Peers, r.BGP.Peers[0]) }), "bgp.peers[1].address", "192.0.2.254 is already peer 0"},
		{"network host bits", testRouter(func(r *Router) { r.BGP.Networks[0] = pfx("198.51.100.1/24") }), "bgp.networks[0]", `"198.51.100.1/24" has host bits set (the network is 198.51.100.0/24)`},
		{"network v6", testRouter(func(r *Router) { r.BGP.Networks[0] = pfx("2001:db8::/32") }), "bgp.networks[0]", `"2001:db8::/32" is not an IPv4 prefix`},
		{"network bad length", testRouter(func(r *Router) { r.BGP.Networks[0] = netip.PrefixFrom(ip("10.0.0.0"), 33) }), "bgp.networks[0]", "is not a valid prefix"},
		{"network duplicate", testRouter(func(r *Router) { r.BGP.Networks = append(r.BGP.Networks, pfx("198.51.100.0/24")) }), "bgp.networks[1]", "already networks[0]"},
	})
}

func TestValidateBridge(t *testing.T) {
	runValidate(t, []vcase{
		{"empty", &Bridge{}, "", ""},
		{"full", &Bridge{Meta: Meta{ID: "b1", Name: "subnet-1"}, InFilter: "c1", OutFilter: "c2", AdminDown: true}, "", ""},
		{"bad in_filter", &Bridge{InFilter: "c 1"}, "in_filter", "not a valid id"},
		{"bad out_filter", &Bridge{OutFilter: "c\x00"}, "out_filter", "not a valid id"},
		{"bad name", &Bridge{Meta: Meta{Name: "x\x7f"}}, "name", "control character"},
	})
}

func routerPort(mod func(*Port)) *Port {
	p := &Port{
		Meta: Meta{ID: "rp1"}, DeviceKind: KindRouter, DeviceID: "r1",
		MAC: mac("02:00:00:00:00:01"), Address: pfx("10.0.0.1/24"), MTU: 1500,
	}
	if mod != nil {
		mod(p)
	}
	return p
}

func bridgePort(mod func(*Port)) *Port {
	p := &Port{
		Meta: Meta{ID: "bp1"}, DeviceKind: KindBridge, DeviceID: "b1",
		MAC: mac("02:00:00:00:00:10"), IPs: []netip.Addr{ip("10.0.0.10")},
		HostID: "h1", Interface: "tap-bp1", TunnelKey: 42,
	}
	if mod != nil {
		mod(p)
	}
	return p
}

func TestValidatePort(t *testing.T) {
	runValidate(t, []vcase{
		{"router port", routerPort(nil), "", ""},
		{"router port /32 uplink", routerPort(func(p *Port) { p.Address = pfx("192.0.2.2/32") }), "", ""},
		{"router port /31", routerPort(func(p *Port) { p.Address = pfx("192.0.2.0/31") }), "", ""},
		{"router port /8", routerPort(func(p *Port) { p.Address = pfx("10.0.0.1/8") }), "", ""},
		{"router port link-local", routerPort(func(p *Port) { p.Address = pfx("169.254.0.1/17") }), "", ""},
		{"router port linked", routerPort(func(p *Port) { p.PeerID = "bp9" }), "", ""},
		{"bridge port bound", bridgePort(nil), "", ""},
		{"bridge port bare", &Port{DeviceKind: KindBridge, DeviceID: "b1"}, "", ""},
		{"mtu 576", routerPort(func(p *Port) { p.MTU = 576 }), "", ""},
		{"mtu 9000", routerPort(func(p *Port) { p.MTU = 9000 }), "", ""},
		{"max tunnel key", bridgePort(func(p *Port) { p.TunnelKey = MaxTunnelKey }), "", ""},
		{"router port proxy arp", routerPort(func(p *Port) { p.ProxyARP = true }), "", ""},
		{"bridge port proxy arp", bridgePort(func(p *Port) { p.ProxyARP = true }), "proxy_arp", "only router ports answer ARP for others"},

		{"no device kind", routerPort(func(p *Port) { p.DeviceKind = "" }), "device_kind", "is required (router or bridge)"},
		{"bad device kind", routerPort(func(p *Port) { p.DeviceKind = KindChain }), "device_kind", `"chain" is not a device kind`},
		{"no device id", routerPort(func(p *Port) { p.DeviceID = "" }), "device_id", "is required"},
		{"router port no mac", routerPort(func(p *Port) { p.MAC = MAC{} }), "mac", "is required"},
		{"router port multicast mac", routerPort(func(p *Port) { p.MAC = mac("33:33:00:00:00:01") }), "mac", "multicast MAC"},
		{"router port no address", routerPort(func(p *Port) { p.Address = netip.Prefix{} }), "address", "is required on a router port"},
		{"router port /0", routerPort(func(p *Port) { p.Address = pfx("10.0.0.1/0") }), "address", "/0 is too short"},
		{"router port /7", routerPort(func(p *Port) { p.Address = pfx("10.0.0.1/7") }), "address", "/7 is too short"},
		{"router port v6", routerPort(func(p *Port) { p.Address = pfx("2001:db8::1/64") }), "address", "not an IPv4 prefix"},
		{"router port network address", routerPort(func(p *Port) { p.Address = pfx("10.0.0.0/24") }), "address", "10.0.0.0 is the network address of 10.0.0.0/24"},
		{"router port broadcast", routerPort(func(p *Port) { p.Address = pfx("10.0.0.255/24") }), "address", "10.0.0.255 is the broadcast address of 10.0.0.0/24"},
		{"router port multicast address", routerPort(func(p *Port) { p.Address = pfx("224.0.0.1/24") }), "address", "multicast"},
		{"router port ips", routerPort(func(p *Port) { p.IPs = []netip.Addr{ip("10.0.0.2")} }), "ips", "only bridge ports have ips"},
		{"bridge port address", bridgePort(func(p *Port) { p.Address = pfx("10.0.0.10/24") }), "address", "only router ports have an address"},
		{"bridge port multicast mac", bridgePort(func(p *Port) { p.MAC = mac("01:00:00:00:00:00") }), "mac", "multicast MAC"},
		{"bridge port broadcast mac", bridgePort(func(p *Port) { p.MAC = Broadcast }), "mac", "broadcast MAC"},
		{"router port zero mac", routerPort(func(p *Port) { p.MAC = MAC{} }), "mac", "is required"},
		{"port name bad utf8", bridgePort(func(p *Port) { p.Name = "p\xc3\x28" }), "name", "not valid UTF-8"},
		{"label value bad utf8", bridgePort(func(p *Port) { p.Labels = map[string]string{"k": "\xff"} }), `labels["k"]`, "not valid UTF-8"},
		{"bridge port ip v6", bridgePort(func(p *Port) { p.IPs = []netip.Addr{ip("10.0.0.10"), ip("fd00::1")} }), "ips[1]", "fd00::1 is not an IPv4 address"},
		{"bridge port ip zero", bridgePort(func(p *Port) { p.IPs = []netip.Addr{ip("0.0.0.0")} }), "ips[0]", "not a unicast address"},
		{"bridge port dup ip", bridgePort(func(p *Port) { p.IPs = []netip.Addr{ip("10.0.0.10"), ip("10.0.0.10")} }), "ips[1]", "already ips[0]"},
		{"mtu low", routerPort(func(p *Port) { p.MTU = 575 }), "mtu", "575 is out of range"},
		{"mtu high", routerPort(func(p *Port) { p.MTU = 9001 }), "mtu", "9001 is out of range"},
		{"mtu negative", routerPort(func(p *Port) { p.MTU = -1 }), "mtu", "-1 is out of range"},
		{"peer self", routerPort(func(p *Port) { p.PeerID = "rp1" }), "peer_id", "cannot be linked to itself"},
		{"peer and host", routerPort(func(p *Port) { p.PeerID, p.HostID, p.Interface = "bp1", "h1", "eth1" }), "host_id", "either linked to a peer (peer_id bp1) or bound"},
		{"host without interface", bridgePort(func(p *Port) { p.Interface = "" }), "interface", "is required when host_id is set"},
		{"interface without host", bridgePort(func(p *Port) { p.HostID = "" }), "host_id", "is required when interface is set"},
		{"interface too long", bridgePort(func(p *Port) { p.Interface = "tap0123456789abc" }), "interface", "16 bytes long; Linux interface names are at most 15"},
		{"interface slash", bridgePort(func(p *Port) { p.Interface = "eth0/1" }), "interface", `contains '/'`},
		{"interface space", bridgePort(func(p *Port) { p.Interface = "eth 0" }), "interface", `contains ' '`},
		{"interface colon", bridgePort(func(p *Port) { p.Interface = "eth0:1" }), "interface", `contains ':'`},
		{"interface dot", bridgePort(func(p *Port) { p.Interface = "." }), "interface", "not a valid interface name"},
		{"tunnel key reserved for state", bridgePort(func(p *Port) { p.TunnelKey = StateTunnelKey }), "tunnel_key", "16777215 is out of range"},
		{"tunnel key too big", bridgePort(func(p *Port) { p.TunnelKey = 1 << 24 }), "tunnel_key", "16777216 is out of range"},
		{"bad in_filter", bridgePort(func(p *Port) { p.InFilter = "a/b" }), "in_filter", "not a valid id"},
	})
}

func testRoute(mod func(*Route)) *Route {
	r := &Route{
		Meta: Meta{ID: "rt1"}, RouterID: "r1", Type: RouteNormal,
		DstPrefix: pfx("0.0.0.0/0"), NextHopPort: "rp1", NextHopGateway: ip("10.0.0.254"), Weight: 10,
	}
	if mod != nil {
		mod(r)
	}
	return r
}

func TestValidateRoute(t *testing.T) {
	runValidate(t, []vcase{
		{"default route", testRoute(nil), "", ""},
		{"with src", testRoute(func(r *Route) { r.SrcPrefix = pfx("10.1.0.0/16") }), "", ""},
		{"blackhole", testRoute(func(r *Route) { r.Type, r.NextHopPort, r.NextHopGateway = RouteBlackhole, "", netip.Addr{} }), "", ""},
		{"reject", testRoute(func(r *Route) { r.Type, r.NextHopPort, r.NextHopGateway = RouteReject, "", netip.Addr{} }), "", ""},
		{"local", testRoute(func(r *Route) {
			r.Type, r.DstPrefix, r.NextHopGateway = RouteLocal, pfx("10.0.0.1/32"), netip.Addr{}
		}), "", ""},
		{"max weight", testRoute(func(r *Route) { r.Weight = 65535 }), "", ""},

		{"no router", testRoute(func(r *Route) { r.RouterID = "" }), "router_id", "is required"},
		{"no type", testRoute(func(r *Route) { r.Type = "" }), "type", "is required (normal, blackhole, reject or local)"},
		{"bad type", testRoute(func(r *Route) { r.Type = "drop" }), "type", `"drop" is not a route type`},
		{"no dst", testRoute(func(r *Route) { r.DstPrefix = netip.Prefix{} }), "dst_prefix", "is required"},
		{"dst host bits", testRoute(func(r *Route) { r.DstPrefix = pfx("10.1.2.3/16") }), "dst_prefix", `"10.1.2.3/16" has host bits set (the network is 10.1.0.0/16)`},
		{"dst v6", testRoute(func(r *Route) { r.DstPrefix = pfx("::/0") }), "dst_prefix", "not an IPv4 prefix"},
		{"dst invalid", testRoute(func(r *Route) { r.DstPrefix = netip.PrefixFrom(ip("10.0.0.0"), 40) }), "dst_prefix", `"10.0.0.0/?" is not a valid prefix`},
		{"src host bits", testRoute(func(r *Route) { r.SrcPrefix = pfx("10.1.0.1/16") }), "src_prefix", "has host bits set"},
		{"normal without port", testRoute(func(r *Route) { r.NextHopPort = "" }), "next_hop_port", "is required on a normal route"},
		{"blackhole with port", testRoute(func(r *Route) { r.Type, r.NextHopGateway = RouteBlackhole, netip.Addr{} }), "next_hop_port", "a blackhole route drops the packet"},
		{"reject with port", testRoute(func(r *Route) { r.Type, r.NextHopGateway = RouteReject, netip.Addr{} }), "next_hop_port", "a reject route"},
		{"blackhole with gateway", testRoute(func(r *Route) { r.Type, r.NextHopPort = RouteBlackhole, "" }), "next_hop_gateway", "only a normal route has a gateway"},
		{"gateway v6", testRoute(func(r *Route) { r.NextHopGateway = ip("fe80::1") }), "next_hop_gateway", "not an IPv4 address"},
		{"gateway multicast", testRoute(func(r *Route) { r.NextHopGateway = ip("239.1.1.1") }), "next_hop_gateway", "multicast"},
		{"negative weight", testRoute(func(r *Route) { r.Weight = -1 }), "weight", "-1 is out of range"},
		{"weight too big", testRoute(func(r *Route) { r.Weight = 65536 }), "weight", "65536 is out of range"},
		{"bad next hop id", testRoute(func(r *Route) { r.NextHopPort = "p 1" }), "next_hop_port", "not a valid id"},
	})
}

func TestValidateGroups(t *testing.T) {
	runValidate(t, []vcase{
		{"ip group", &IPAddrGroup{Addresses: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")}}, "", ""},
		{"ip group empty", &IPAddrGroup{}, "", ""},
		{"ip group zero addr", &IPAddrGroup{Addresses: []netip.Addr{{}}}, "addresses[0]", "is required"},
		{"ip group v6", &IPAddrGroup{Addresses: []netip.Addr{ip("10.0.0.1"), ip("::1")}}, "addresses[1]", "::1 is not an IPv4 address"},
		{"ip group dup", &IPAddrGroup{Addresses: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.1")}}, "addresses[2]", "10.0.0.1 is already addresses[0]"},
		{"port group", &PortGroup{Stateful: true, Ports: []string{"p1", "p2"}}, "", ""},
		{"port group empty id", &PortGroup{Ports: []string{"p1", ""}}, "ports[1]", "is required"},
		{"port group dup", &PortGroup{Ports: []string{"p1", "p2", "p1"}}, "ports[2]", "p1 is already ports[0]"},
		{"port group bad id", &PortGroup{Ports: []string{"p/1"}}, "ports[0]", "not a valid id"},
	})
}

func TestValidateHost(t *testing.T) {
	eth0 := HostInterface{Name: "eth0", MAC: mac("52:54:00:12:34:56"), MTU: 1500,
		Addresses: []netip.Prefix{pfx("192.168.1.10/24"), pfx("fe80::5054:ff:fe12:3456/64")}}
	lo := HostInterface{Name: "lo", MTU: 65536, Addresses: []netip.Prefix{pfx("127.0.0.1/8")}}
	host := func(ifs ...HostInterface) *Host { return &Host{Meta: Meta{ID: "h1", Name: "node-1"}, Interfaces: ifs} }
	with := func(f func(*HostInterface)) HostInterface { i := eth0; f(&i); return i }
	runValidate(t, []vcase{
		{"host", host(eth0, lo), "", ""},
		{"no interfaces", host(), "", ""},
		{"no name", host(lo, with(func(i *HostInterface) { i.Name = "" })), "interfaces[1].name", "is required"},
		{"long name", host(with(func(i *HostInterface) { i.Name = "abcdefghijklmnop" })), "interfaces[0].name", "at most 15"},
		{"dup name", host(eth0, lo, eth0), "interfaces[2].name", `"eth0" is already interfaces[0]`},
		{"multicast mac", host(with(func(i *HostInterface) { i.MAC = mac("01:80:c2:00:00:00") })), "interfaces[0].mac", "multicast MAC"},
		{"mtu negative", host(with(func(i *HostInterface) { i.MTU = -5 })), "interfaces[0].mtu", "-5 is out of range"},
		{"mtu tiny", host(with(func(i *HostInterface) { i.MTU = 10 })), "interfaces[0].mtu", "10 is out of range"},
		{"bad address", host(with(func(i *HostInterface) { i.Addresses = append(i.Addresses, netip.PrefixFrom(ip("10.0.0.1"), 99)) })), "interfaces[0].addresses[2]", "not a valid prefix"},
	})
}

func testZone(mod func(*TunnelZone)) *TunnelZone {
	z := &TunnelZone{Meta: Meta{ID: "tz1"}, Type: TunnelVXLAN, Members: []TunnelZoneMember{
		{HostID: "h1", Address: ip("192.168.1.10")}, {HostID: "h2", Address: ip("192.168.1.11")},
	}}
	if mod != nil {
		mod(z)
	}
	return z
}

func TestValidateTunnelZone(t *testing.T) {
	runValidate(t, []vcase{
		{"zone", testZone(nil), "", ""},
		{"empty zone", testZone(func(z *TunnelZone) { z.Members = nil }), "", ""},
		{"no type", testZone(func(z *TunnelZone) { z.Type = "" }), "type", "is required (vxlan)"},
		{"gre", testZone(func(z *TunnelZone) { z.Type = "gre" }), "type", `"gre" is not a tunnel type`},
		{"empty host", testZone(func(z *TunnelZone) { z.Members[1].HostID = "" }), "members[1].host_id", "is required"},
		{"dup host", testZone(func(z *TunnelZone) { z.Members[1].HostID = "h1" }), "members[1].host_id", "host h1 is already members[0]"},
		{"no address", testZone(func(z *TunnelZone) { z.Members[0].Address = netip.Addr{} }), "members[0].address", "is required"},
		{"v6 address", testZone(func(z *TunnelZone) { z.Members[0].Address = ip("2001:db8::1") }), "members[0].address", "not an IPv4 address"},
		{"multicast address", testZone(func(z *TunnelZone) { z.Members[1].Address = ip("239.0.0.1") }), "members[1].address", "multicast"},
		{"zero address", testZone(func(z *TunnelZone) { z.Members[1].Address = ip("0.0.0.0") }), "members[1].address", "not a unicast address"},
		{"dup address", testZone(func(z *TunnelZone) { z.Members[1].Address = ip("192.168.1.10") }), "members[1].address", "already the address of members[0]"},
	})
}

func testDHCP(mod func(*DHCPSubnet)) *DHCPSubnet {
	d := &DHCPSubnet{
		Meta: Meta{ID: "d1"}, BridgeID: "b1", Subnet: pfx("10.0.1.0/24"),
		Gateway: ip("10.0.1.1"), ServerAddr: ip("10.0.1.2"),
		DNSServers: []netip.Addr{ip("10.0.0.2")}, DomainName: "ec2.internal", NTPServers: []netip.Addr{ip("169.254.169.123")},
		MTU: 9000, LeaseTime: 3600,
		Routes: []DHCPRoute{{Dest: pfx("169.254.169.254/32"), Gateway: ip("10.0.1.1")}, {Dest: pfx("10.0.2.0/24"), Gateway: ip("0.0.0.0")}},
		Hosts: []DHCPHost{
			{MAC: mac("02:00:00:00:01:10"), IP: ip("10.0.1.10"), Name: "ip-10-0-1-10"},
			{MAC: mac("02:00:00:00:01:11"), IP: ip("10.0.1.11")},
		},
	}
	if mod != nil {
		mod(d)
	}
	return d
}

func TestValidateDHCPSubnet(t *testing.T) {
	runValidate(t, []vcase{
		{"subnet", testDHCP(nil), "", ""},
		{"minimal", &DHCPSubnet{BridgeID: "b1", Subnet: pfx("192.168.0.0/30")}, "", ""},
		{"slash 1", &DHCPSubnet{BridgeID: "b1", Subnet: pfx("0.0.0.0/1")}, "", ""},

		{"no bridge", testDHCP(func(d *DHCPSubnet) { d.BridgeID = "" }), "bridge_id", "is required"},
		{"no subnet", testDHCP(func(d *DHCPSubnet) { d.Subnet = netip.Prefix{} }), "subnet", "is required"},
		{"subnet host bits", testDHCP(func(d *DHCPSubnet) { d.Subnet = pfx("10.0.1.7/24") }), "subnet", `"10.0.1.7/24" has host bits set`},
		{"subnet /31", testDHCP(func(d *DHCPSubnet) { d.Subnet = pfx("10.0.1.0/31") }), "subnet", "/31 is out of range"},
		{"subnet /0", testDHCP(func(d *DHCPSubnet) { d.Subnet = pfx("0.0.0.0/0") }), "subnet", "/0 is out of range"},
		{"subnet v6", testDHCP(func(d *DHCPSubnet) { d.Subnet = pfx("fd00::/64") }), "subnet", "not an IPv4 prefix"},
		{"gateway outside", testDHCP(func(d *DHCPSubnet) { d.Gateway = ip("10.0.2.1") }), "gateway", "10.0.2.1 is not in the subnet 10.0.1.0/24"},
		{"gateway network", testDHCP(func(d *DHCPSubnet) { d.Gateway = ip("10.0.1.0") }), "gateway", "10.0.1.0 is the network address"},
		{"gateway broadcast", testDHCP(func(d *DHCPSubnet) { d.Gateway = ip("10.0.1.255") }), "gateway", "10.0.1.255 is the broadcast address of 10.0.1.0/24"},
		{"gateway v6", testDHCP(func(d *DHCPSubnet) { d.Gateway = ip("fe80::1") }), "gateway", "not an IPv4 address"},
		{"server outside", testDHCP(func(d *DHCPSubnet) { d.ServerAddr = ip("10.0.0.2") }), "server_address", "not in the subnet"},
		{"server broadcast", testDHCP(func(d *DHCPSubnet) { d.ServerAddr = ip("10.0.1.255") }), "server_address", "broadcast address"},
		{"dns v6", testDHCP(func(d *DHCPSubnet) { d.DNSServers = append(d.DNSServers, ip("2001:4860:4860::8888")) }), "dns_servers[1]", "not an IPv4 address"},
		{"dns zero", testDHCP(func(d *DHCPSubnet) { d.DNSServers[0] = ip("0.0.0.0") }), "dns_servers[0]", "not a unicast address"},
		{"ntp multicast", testDHCP(func(d *DHCPSubnet) { d.NTPServers[0] = ip("224.0.1.1") }), "ntp_servers[0]", "multicast"},
		{"domain bad char", testDHCP(func(d *DHCPSubnet) { d.DomainName = "ec2_internal" }), "domain_name", "'_' is not a letter"},
		{"domain empty label", testDHCP(func(d *DHCPSubnet) { d.DomainName = "ec2..internal" }), "domain_name", "each label is 1..63"},
		{"domain hyphen", testDHCP(func(d *DHCPSubnet) { d.DomainName = "-ec2.internal" }), "domain_name", "starts or ends with '-'"},
		{"mtu low", testDHCP(func(d *DHCPSubnet) { d.MTU = 100 }), "mtu", "100 is out of range"},
		{"mtu high", testDHCP(func(d *DHCPSubnet) { d.MTU = 9216 }), "mtu", "9216 is out of range"},
		{"lease short", testDHCP(func(d *DHCPSubnet) { d.LeaseTime = 10 }), "lease_time", "10 s is out of range"},
		{"lease infinite", testDHCP(func(d *DHCPSubnet) { d.LeaseTime = 0xffffffff }), "lease_time", "out of range"},
		{"route dest host bits", testDHCP(func(d *DHCPSubnet) { d.Routes[1].Dest = pfx("10.0.2.1/24") }), "routes[1].dest", "has host bits set"},
		{"route no dest", testDHCP(func(d *DHCPSubnet) { d.Routes[0].Dest = netip.Prefix{} }), "routes[0].dest", "is required"},
		{"route no gateway", testDHCP(func(d *DHCPSubnet) { d.Routes[0].Gateway = netip.Addr{} }), "routes[0].gateway", "is required"},
		{"route gateway v6", testDHCP(func(d *DHCPSubnet) { d.Routes[0].Gateway = ip("::1") }), "routes[0].gateway", "not an IPv4 address"},
		{"host no mac", testDHCP(func(d *DHCPSubnet) { d.Hosts[1].MAC = MAC{} }), "hosts[1].mac", "is required"},
		{"host multicast mac", testDHCP(func(d *DHCPSubnet) { d.Hosts[1].MAC = mac("03:00:00:00:00:01") }), "hosts[1].mac", "multicast MAC"},
		{"host dup mac", testDHCP(func(d *DHCPSubnet) { d.Hosts[1].MAC = d.Hosts[0].MAC }), "hosts[1].mac", "02:00:00:00:01:10 is already hosts[0]"},
		{"host ip outside", testDHCP(func(d *DHCPSubnet) { d.Hosts[1].IP = ip("10.0.2.11") }), "hosts[1].ip", "10.0.2.11 is not in the subnet 10.0.1.0/24"},
		{"host ip missing", testDHCP(func(d *DHCPSubnet) { d.Hosts[0].IP = netip.Addr{} }), "hosts[0].ip", "is required"},
		{"host ip broadcast", testDHCP(func(d *DHCPSubnet) { d.Hosts[0].IP = ip("10.0.1.255") }), "hosts[0].ip", "broadcast address"},
		{"host ip gateway", testDHCP(func(d *DHCPSubnet) { d.Hosts[0].IP = ip("10.0.1.1") }), "hosts[0].ip", "10.0.1.1 is the subnet's gateway"},
		{"host ip server", testDHCP(func(d *DHCPSubnet) { d.Hosts[0].IP = ip("10.0.1.2") }), "hosts[0].ip", "DHCP server's address"},
		{"host dup ip", testDHCP(func(d *DHCPSubnet) { d.Hosts[1].IP = ip("10.0.1.10") }), "hosts[1].ip", "10.0.1.10 is already assigned to hosts[0]"},
		{"host bad name", testDHCP(func(d *DHCPSubnet) { d.Hosts[0].Name = "web server" }), "hosts[0].name", "not a valid DNS name"},
	})
}

// TestValidateZeroValues: a zero object of every kind either validates or
// names a field; none panics.
func TestValidateZeroValues(t *testing.T) {
	for _, k := range Kinds {
		o := New(k)
		if err := o.Validate(); err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Errorf("%s: Validate() = %v, want nil or a *FieldError naming a field", k, err)
			}
		}
	}
}

// FuzzValidate decodes arbitrary JSON into every kind: Validate must never
// panic, must fail only with a *FieldError naming a field, and must accept
// the JSON round trip of anything it accepted.
func FuzzValidate(f *testing.F) {
	for _, o := range []Object{testRouter(nil), routerPort(nil), bridgePort(nil), testRoute(nil), chainWith(0, nil), testZone(nil), testDHCP(nil)} {
		b, err := json.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"rules":[{"id":"a","action":"accept","tp_dst":{"start":80,"end":20},"nw_proto":6}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range Kinds {
			o := New(k)
			if json.Unmarshal(data, o) != nil {
				continue
			}
			err := o.Validate()
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field == "" || fe.Reason == "" {
					t.Fatalf("%s: Validate() = %#v, want a *FieldError with a field and a reason", k, err)
				}
				continue
			}
			if err := Clone(o).Validate(); err != nil {
				t.Fatalf("%s: valid object fails after a JSON round trip: %v", k, err)
			}
		}
	})
}
