package translate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
)

func host(id, name string) *topology.Host {
	return &topology.Host{Meta: topology.Meta{ID: id, Name: name}}
}

const (
	hostA = "7d3c0c1e-0000-4000-8000-0000000000b1"
	hostB = "7d3c0c1e-0000-4000-8000-0000000000b2"
)

func TestResolveGateway(t *testing.T) {
	for _, c := range []struct {
		name   string
		g      Gateway
		hosts  []*topology.Host
		state  GatewayState
		hostID string
		reason string // a substring
	}{
		{"by name", Gateway{Host: "gw1"}, []*topology.Host{host(hostB, "other"), host(hostA, "gw1")}, GatewayBound, hostA, ""},
		{"by id in host", Gateway{Host: hostA}, []*topology.Host{host(hostA, "gw1")}, GatewayBound, hostA, ""},
		{"by host_id", Gateway{HostID: hostA}, []*topology.Host{host(hostA, "gw1")}, GatewayBound, hostA, ""},
		{"not yet", Gateway{Host: "gw1"}, []*topology.Host{host(hostB, "gw2")}, GatewayPending, "", "no host is named gw1"},
		{"no hosts", Gateway{Host: "gw1"}, nil, GatewayPending, "", "no host is named gw1"},
		{"host_id is never a name", Gateway{HostID: "gw1"}, []*topology.Host{host(hostA, "gw1")}, GatewayPending, "", "no host has id gw1"},
		{"two of one name", Gateway{Host: "gw1"}, []*topology.Host{host(hostB, "gw1"), host(hostA, "gw1")}, GatewayAmbiguous, "",
			"2 hosts are named gw1 (" + hostA + ", " + hostB + "): name the gateway's host by id"},
		// An id wins over a name: naming a host by id always works, even
		// if another host took that string as its name.
		{"id before name", Gateway{Host: hostA}, []*topology.Host{host(hostB, hostA), host(hostA, "gw1")}, GatewayBound, hostA, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.g.Interface = "eth1"
			got := ResolveGateway(c.g, c.hosts)
			if got.State != c.state || got.HostID != c.hostID || !strings.Contains(got.Reason, c.reason) || got.Interface != "eth1" || got.Host != c.g.ref() {
				t.Errorf("ResolveGateway = %+v, want state %s host_id %q reason ~%q", got, c.state, c.hostID, c.reason)
			}
			if (got.Reason == "") != (got.State == GatewayBound) {
				t.Errorf("a reason is given exactly when the gateway is not bound: %+v", got)
			}
		})
	}
}

func uplinkPorts(d *Desired) []*topology.Port {
	var out []*topology.Port
	for _, o := range d.Objects {
		if p, ok := o.(*topology.Port); ok && strings.HasPrefix(p.Name, "edge/uplink") {
			out = append(out, p)
		}
	}
	return out
}

// TestTranslateCloudHosts: the cloud partition with and without the
// gateway's host differs only in the uplink port's binding, so a host that
// registers later costs one port update; a duplicate binding is reported.
func TestTranslateCloudHosts(t *testing.T) {
	cc := cloud()
	cc.Gateways[0].HostID, cc.Gateways[0].Host = "", "gw1"
	pending := TranslateCloud(cc, []*topology.Host{host(hostB, "compute")})
	bound := TranslateCloud(cc, []*topology.Host{host(hostB, "compute"), host(hostA, "gw1")})
	if len(pending.Objects) != len(bound.Objects) {
		t.Fatalf("%d objects pending, %d bound", len(pending.Objects), len(bound.Objects))
	}
	diffs := 0
	for i := range bound.Objects {
		a, _ := json.Marshal(pending.Objects[i])
		b, _ := json.Marshal(bound.Objects[i])
		if topology.Key(pending.Objects[i]) != topology.Key(bound.Objects[i]) {
			t.Fatalf("object %d: %s pending, %s bound", i, topology.Key(pending.Objects[i]), topology.Key(bound.Objects[i]))
		}
		if !bytes.Equal(a, b) {
			diffs++
		}
	}
	pu, bu := uplinkPorts(pending), uplinkPorts(bound)
	if diffs != 1 || len(pu) != 1 || len(bu) != 1 {
		t.Fatalf("%d objects differ, uplinks %d/%d; want only the uplink port", diffs, len(pu), len(bu))
	}
	if pu[0].HostID != "" || pu[0].Interface != "" || pu[0].Exterior() {
		t.Errorf("pending uplink is bound: %+v", pu[0])
	}
	if bu[0].HostID != hostA || bu[0].Interface != "eth1" {
		t.Errorf("bound uplink: host %q interface %q, want %s eth1", bu[0].HostID, bu[0].Interface, hostA)
	}
	if err := pu[0].Validate(); err != nil {
		t.Errorf("pending uplink: %v", err)
	}
	if s := pending.Gateways; len(s) != 1 || s[0].State != GatewayPending {
		t.Errorf("pending status %+v", s)
	}
	if s := bound.Gateways; len(s) != 1 || s[0].State != GatewayBound || s[0].HostID != hostA {
		t.Errorf("bound status %+v", s)
	}

	// The same interface named by name and by id: the second is a
	// conflict, not a second binding the store would refuse.
	cc.Gateways = append(cc.Gateways, cc.Gateways[0])
	cc.Gateways[1].Host, cc.Gateways[1].Address = hostA, pfx("192.0.2.3/24")
	d := TranslateCloud(cc, []*topology.Host{host(hostA, "gw1")})
	if s := d.Gateways; len(s) != 2 || s[0].State != GatewayBound || s[1].State != GatewayConflict || !strings.Contains(s[1].Reason, "already gateways[0]") {
		t.Errorf("statuses %+v, want bound then conflict", s)
	}
	if u := uplinkPorts(d); len(u) != 2 || u[0].Exterior() == u[1].Exterior() {
		t.Errorf("want exactly one bound uplink: %+v", u)
	}
}

func TestValidateGateways(t *testing.T) {
	for _, c := range []struct {
		gws  []Gateway
		want string
	}{
		{[]Gateway{{Interface: "eth1", Address: pfx("192.0.2.2/24")}}, "host (a host's name or id) is required"},
		{[]Gateway{{Host: "gw1", HostID: hostA, Interface: "eth1", Address: pfx("192.0.2.2/24")}}, "give host or host_id, not both"},
		{[]Gateway{{Host: "gw1", Address: pfx("192.0.2.2/24")}}, "interface is required"},
		{[]Gateway{{Host: "gw1", Interface: "eth1", Address: pfx("192.0.2.2/24")}, {Host: "gw1", Interface: "eth1", Address: pfx("192.0.2.3/24")}},
			"gateways[1]: host gw1 interface eth1 is already gateways[0]"},
		{[]Gateway{{Host: "gw1", Interface: "eth1", Address: pfx("192.0.2.2/24")}, {HostID: hostA, Interface: "eth1", Address: pfx("198.51.100.3/24")}}, ""},
		{[]Gateway{{Host: "gw1", Interface: "eth1", Address: pfx("192.0.2.2/24")}, {Host: "gw2", Interface: "eth1", Address: pfx("192.0.2.3/25")}},
			"gateways[1].address 192.0.2.3/25 overlaps gateways[0].address 192.0.2.2/24"},
		{[]Gateway{{Host: "gw1", Interface: "eth1", Address: pfx("192.0.2.2/32")}, {Host: "gw2", Interface: "eth1", Address: pfx("192.0.2.3/32")}}, ""},
		{[]Gateway{{Host: "gw1", Interface: "eth1", Address: pfx("169.254.1.1/24")}}, "overlaps transit_cidr 169.254.0.0/17"},
	} {
		err := CloudConfig{Gateways: c.gws}.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", c.gws, err, c.want)
		}
	}
}

// TestValidatePools: public pools may not share an address with each
// other or the transit network, and no gateway's own address may be one a
// pool hands out; a flat segment's network around a pool is fine
// (proxy-ARP).
func TestValidatePools(t *testing.T) {
	flat := []Gateway{{Host: "gw1", Interface: "eth1", Address: pfx("203.0.113.254/24"), ProxyARP: true}}
	for _, c := range []struct {
		pools []string
		gws   []Gateway
		want  string
	}{
		{[]string{"203.0.113.0/28", "198.51.100.0/24"}, nil, ""},
		{[]string{"203.0.113.0/28"}, flat, ""},
		{[]string{"203.0.113.0/24", "203.0.113.128/25"}, nil, "public_pools[1] 203.0.113.128/25 overlaps public_pools[0] 203.0.113.0/24"},
		{[]string{"203.0.113.0/28", "203.0.113.0/28"}, nil, "public_pools[1] 203.0.113.0/28 overlaps public_pools[0] 203.0.113.0/28"},
		{[]string{"169.254.0.0/16"}, nil, "public_pools[0] 169.254.0.0/16 overlaps transit_cidr 169.254.0.0/17"},
		{[]string{"203.0.113.0/24"}, flat, "gateways[0].address 203.0.113.254 is inside public_pools[0] 203.0.113.0/24"},
	} {
		cc := CloudConfig{Gateways: c.gws}
		for _, p := range c.pools {
			cc.PublicPools = append(cc.PublicPools, pfx(p))
		}
		err := cc.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Validate(pools %v) = %v, want %q", c.pools, err, c.want)
		}
	}
}
