package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// peerLog is a TCP server in a namespace that records the source address
// of every connection it accepts (what the outside sees of a VPC's egress).
type peerLog struct {
	mu    sync.Mutex
	peers []netip.Addr
}

func listenPeers(t *testing.T, ns, addr string) *peerLog {
	t.Helper()
	var ln net.Listener
	if err := netns.InNamespace(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pl := &peerLog{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pl.mu.Lock()
			pl.peers = append(pl.peers, c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
			pl.mu.Unlock()
			c.Close()
		}
	}()
	return pl
}

// count is how many connections were accepted so far.
func (pl *peerLog) count() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.peers)
}

// after waits (5 s at most) for the connection after the first n and
// returns its source (zero if none came).
func (pl *peerLog) after(n int) netip.Addr {
	var a netip.Addr
	within(5*time.Second, func() bool {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		if len(pl.peers) > n {
			a = pl.peers[n]
			return true
		}
		return false
	})
	return a
}

// TestEdgeEC2Objects is issue 11's "what it must show" 1, 2, 3 and 7 on
// its harness: two gateway hosts speaking BGP ("advertise": "addresses")
// to FRR in an upstream namespace, two compute hosts, and an outside
// client behind FRR. One lab for the whole group:
//
//   - an elastic IP associated to an instance answers ping and TCP from
//     the client on the ports its security group allows, not on others;
//     the instance's egress leaves with it as source; FRR holds its /32
//     via both gateways (show ip bgp); a network ACL deny entry stops ping
//     to it and only ping; disassociating makes it unreachable and FRR
//     loses the /32, re-associating brings both back;
//   - an elastic IP associated to a network interface, and an
//     auto-assigned public IP (MapPublicIpOnLaunch), are reachable too;
//   - a private subnet reaches the client through a NAT gateway, which
//     the client sees as the source; the client cannot open a connection
//     in through the NAT gateway's address;
//   - bad configuration disturbs nothing: a gateway on a host that never
//     registers, an uplink whose peer never answers (its session's state
//     is visible in `canopy gateway show`), and a malformed BGP setting
//     through the REST API (refused with the field) — the sessions with
//     FRR never drop and the elastic IP keeps answering;
//   - the gateways' /metrics show sessions, advertised prefixes and
//     uplinks.
func TestEdgeEC2Objects(t *testing.T) {
	l := cloudLab(t, `{
		"bgp": {"asn": 65001, "advertise": "addresses"},
		"public_pools": ["203.0.113.0/27"],
		"gateways": [
			{"host": "gw1", "interface": "edge0", "address": "192.0.2.2/25",
				"bgp_peer": {"address": "192.0.2.1", "asn": 65000}},
			{"host": "gw2", "interface": "edge1", "address": "192.0.2.130/25",
				"bgp_peer": {"address": "192.0.2.129", "asn": 65000}},
			{"host": "gw1", "interface": "edge2", "address": "198.18.20.2/24",
				"bgp_peer": {"address": "198.18.20.1", "asn": 65020}},
			{"host": "gw-never", "interface": "edge9", "address": "198.18.9.2/24",
				"bgp_peer": {"address": "198.18.9.1", "asn": 65000}}]}`, "203.0.113.0/27")
	gw1 := l.AddHostIn("gw1", "us-east-1z", false)
	gw2 := l.AddHostIn("gw2", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	l.AddHostIn("c2", "us-east-1b", true)
	up := l.AddOutside("upstream", gw1, "edge0", "192.0.2.1/25")
	l.AttachUplink(up, gw2, "edge1", "192.0.2.129/25")
	// gw1's second uplink is plugged, but nobody on its link holds the
	// peer's address 198.18.20.1.
	l.AddOutside("dead", gw1, "edge2", "198.18.20.3/24")
	client := addClient(t, up.NS, "198.51.100.1/24", "198.51.100.2/24")
	f := netns.StartFRR(t, up.NS, `frr defaults datacenter
hostname upstream
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 neighbor 192.0.2.2 remote-as 65001
 neighbor 192.0.2.2 timers connect 2
 neighbor 192.0.2.130 remote-as 65001
 neighbor 192.0.2.130 timers connect 2
 !
 address-family ipv4 unicast
  neighbor 192.0.2.2 default-originate
  neighbor 192.0.2.130 default-originate
  maximum-paths 8
 exit-address-family
!
`)
	gateways := []string{"192.0.2.130", "192.0.2.2"}
	viaBoth := func(prefix string) func() bool {
		return func() bool {
			nh := f.NextHops(prefix)
			slices.Sort(nh)
			return slices.Equal(nh, gateways)
		}
	}
	waitUntil(t, "both sessions established", func() bool {
		return f.Neighbor("192.0.2.2").State == "Established" && f.Neighbor("192.0.2.130").State == "Established"
	})
	waitUntil(t, "the edge's default route via both uplinks", func() bool { return len(learnedRoutes(t, l)) == 2 })
	settled := map[string]netns.BGPNeighbor{}
	for _, n := range gateways {
		settled[n] = f.Neighbor(n)
	}

	tn := newTenant(t, l)
	vpcID, pub, _ := tn.internetVPC("10.40.0.0/16", "10.40.1.0/24", "us-east-1a")
	priv := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.40.2.0/24", "--availability-zone", "us-east-1b", "--query", "Subnet.SubnetId")
	auto := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.40.3.0/24", "--availability-zone", "us-east-1b", "--query", "Subnet.SubnetId")
	tn.ec2("modify-subnet-attribute", "--subnet-id", auto, "--map-public-ip-on-launch")
	// The main route table (internet gateway) serves the auto subnet too.
	sg := tn.ec2("create-security-group", "--group-name", "web", "--description", "icmp and 8080", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "0.0.0.0/0")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "tcp", "--port", "8080", "--cidr", "0.0.0.0/0")

	// --- must-show 1: an elastic IP on an instance.
	allocID, eip := tn.allocate()
	a := tn.run(pub, sg, "")
	nsBackground(t, a.ns, "iperf3", "-s", "-p", "8080")
	nsBackground(t, a.ns, "iperf3", "-s", "-p", "8081")
	assoc := tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", a.id, "--query", "AssociationId")
	if !within(15*time.Second, func() bool { return nsPing(client, eip) }) {
		t.Fatalf("the client cannot ping the elastic IP %s of %s", eip, a.id)
	}
	waitUntil(t, "FRR's route to the elastic IP via both gateways", viaBoth(eip+"/32"))
	if out := f.Vtysh("show ip bgp"); !strings.Contains(out, eip+"/32") || !strings.Contains(out, "192.0.2.2") || !strings.Contains(out, "192.0.2.130") {
		t.Errorf("show ip bgp does not show %s/32 via both gateways:\n%s", eip, out)
	}
	if !within(5*time.Second, func() bool { return tcpConnects(client, eip, 8080) }) {
		t.Errorf("the client cannot open TCP 8080 (allowed by the group) to %s", eip)
	}
	if tcpConnects(client, eip, 8081) {
		t.Errorf("the client opens TCP 8081 (not in the group) to %s", eip)
	}
	peers := listenPeers(t, client, "198.51.100.2:9000")
	n := peers.count()
	if !within(10*time.Second, func() bool { return tcpConnects(a.ns, "198.51.100.2", 9000) }) {
		t.Errorf("%s cannot open TCP to the client", a.id)
	} else if got := peers.after(n).String(); got != eip {
		t.Errorf("the client sees %s's connection from %s, want its elastic IP %s", a.id, got, eip)
	}

	// A network ACL applies to it: deny ICMP from the client's network
	// into the public subnet; TCP 8080 still connects.
	acl := tn.ec2("describe-network-acls", "--filters", "Name=vpc-id,Values="+vpcID, "Name=default,Values=true", "--query", "NetworkAcls[0].NetworkAclId")
	tn.ec2("create-network-acl-entry", "--network-acl-id", acl, "--ingress", "--rule-number", "50", "--protocol", "icmp",
		"--icmp-type-code", "Type=-1,Code=-1", "--cidr-block", "198.51.100.0/24", "--rule-action", "deny")
	if !within(5*time.Second, func() bool { return !nsPingFast(client, eip) }) || nsPing(client, eip) {
		t.Errorf("the client pings %s through a network ACL deny entry", eip)
	}
	if !tcpConnects(client, eip, 8080) {
		t.Errorf("TCP 8080 to %s blocked by an ACL entry that denies ICMP only", eip)
	}
	tn.ec2("delete-network-acl-entry", "--network-acl-id", acl, "--ingress", "--rule-number", "50")
	if !within(5*time.Second, func() bool { return nsPing(client, eip) }) {
		t.Errorf("the client cannot ping %s after the ACL entry went", eip)
	}

	// Disassociate: unreachable, and FRR loses the /32. Re-associate:
	// both back.
	start := time.Now()
	tn.ec2("disassociate-address", "--association-id", assoc)
	waitUntil(t, "FRR to lose the disassociated elastic IP", func() bool { return len(f.NextHops(eip+"/32")) == 0 })
	t.Logf("disassociate → FRR withdrew %s/32 after %v", eip, time.Since(start).Round(time.Millisecond))
	if nsPing(client, eip) || tcpConnects(client, eip, 8080) {
		t.Errorf("the disassociated elastic IP %s still answers", eip)
	}
	start = time.Now()
	tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", a.id)
	if !within(15*time.Second, func() bool { return nsPingFast(client, eip) }) {
		t.Errorf("the re-associated elastic IP %s does not answer", eip)
	}
	t.Logf("associate → first ping reply from the client after %v", time.Since(start).Round(time.Millisecond))
	waitUntil(t, "FRR's route to the re-associated elastic IP via both gateways", viaBoth(eip+"/32"))
	if !tcpConnects(client, eip, 8080) {
		t.Errorf("the client cannot open TCP 8080 to the re-associated %s", eip)
	}

	// An elastic IP associated to a network interface (b's primary ENI),
	// and an auto-assigned public IP.
	b := tn.run(pub, sg, "")
	eni := tn.ec2("describe-instances", "--instance-ids", b.id, "--query", "Reservations[0].Instances[0].NetworkInterfaces[0].NetworkInterfaceId")
	eniAlloc, eniIP := tn.allocate()
	tn.ec2("associate-address", "--allocation-id", eniAlloc, "--network-interface-id", eni)
	if !within(15*time.Second, func() bool { return nsPing(client, eniIP) }) {
		t.Errorf("the client cannot ping %s, the elastic IP of network interface %s", eniIP, eni)
	}
	waitUntil(t, "FRR's route to the interface's elastic IP via both gateways", viaBoth(eniIP+"/32"))
	c := tn.run(auto, sg, "")
	autoIP := tn.ec2("describe-instances", "--instance-ids", c.id, "--query", "Reservations[0].Instances[0].PublicIpAddress")
	if _, err := netip.ParseAddr(autoIP); err != nil {
		t.Fatalf("%s launched in a MapPublicIpOnLaunch subnet has no public IP: %q", c.id, autoIP)
	}
	if !within(15*time.Second, func() bool { return nsPing(client, autoIP) }) {
		t.Errorf("the client cannot ping %s, the auto-assigned public IP of %s", autoIP, c.id)
	}
	waitUntil(t, "FRR's route to the auto-assigned public IP via both gateways", viaBoth(autoIP+"/32"))

	// --- must-show 2: a NAT gateway for the private subnet.
	natAlloc, natIP := tn.allocate()
	nat := tn.ec2("create-nat-gateway", "--subnet-id", pub, "--allocation-id", natAlloc, "--query", "NatGateway.NatGatewayId")
	tn.ec2("wait", "nat-gateway-available", "--nat-gateway-ids", nat)
	rtb := tn.ec2("create-route-table", "--vpc-id", vpcID, "--query", "RouteTable.RouteTableId")
	tn.ec2("create-route", "--route-table-id", rtb, "--destination-cidr-block", "0.0.0.0/0", "--nat-gateway-id", nat)
	tn.ec2("associate-route-table", "--route-table-id", rtb, "--subnet-id", priv)
	d := tn.run(priv, sg, "")
	nsBackground(t, d.ns, "iperf3", "-s", "-p", "8080")
	n = peers.count()
	if !within(15*time.Second, func() bool { return tcpConnects(d.ns, "198.51.100.2", 9000) }) {
		t.Errorf("%s in the private subnet cannot reach the client through %s", d.id, nat)
	} else if got := peers.after(n).String(); got != natIP {
		t.Errorf("the client sees the private instance's connection from %s, want the NAT gateway's %s", got, natIP)
	}
	if !within(10*time.Second, func() bool { return nsPing(d.ns, "198.51.100.2") }) {
		t.Errorf("%s cannot ping the client through %s", d.id, nat)
	}
	waitUntil(t, "FRR's route to the NAT gateway's address via both gateways", viaBoth(natIP+"/32"))
	if tcpConnects(client, natIP, 8080) {
		t.Errorf("the client opened a connection in through the NAT gateway's %s", natIP)
	}

	// --- must-show 7: bad configuration, nothing else disturbed. gw1's
	// second uplink peers with an address nobody holds: the session is
	// visible, never established.
	var g struct {
		BGP *struct {
			Sessions []struct {
				Peer  string `json:"peer"`
				State string `json:"state"`
			} `json:"sessions"`
			AdvertisedCount int `json:"advertised_count"`
		} `json:"bgp"`
		Uplinks []struct {
			Interface string `json:"interface"`
			Up        bool   `json:"up"`
		} `json:"uplinks"`
	}
	waitUntil(t, "gw1's sessions in canopy gateway show", func() bool {
		if err := json.Unmarshal([]byte(l.CLI("gateway", "show", "gw1")), &g); err != nil {
			t.Fatal(err)
		}
		return g.BGP != nil && len(g.BGP.Sessions) == 2
	})
	for _, s := range g.BGP.Sessions {
		want := s.Peer == "192.0.2.1"
		if got := s.State == "established"; got != want || s.State == "" {
			t.Errorf("gw1's session with %s: state %q", s.Peer, s.State)
		}
	}
	// The gateway on a host that never registered is listed, pending.
	var never struct {
		HostID string `json:"host_id"`
		State  string `json:"state"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(l.CLI("gateway", "show", "gw-never")), &never); err != nil ||
		never.HostID != "" || never.State != "pending" || !strings.Contains(never.Reason, "no host is named gw-never") {
		t.Errorf("canopy gateway show gw-never: %+v %v", never, err)
	}
	if out, err := l.RunCLI("gateway", "list"); err != nil || !strings.Contains(out, "pending") {
		t.Errorf("canopy gateway list does not show the pending gateway: %v\n%s", err, out)
	}
	if out, err := l.RunCLI("gateway", "drain", "gw-never"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("canopy gateway drain of a pending gateway: want a 409, got %v\n%s", err, out)
	}
	// A malformed BGP setting through the REST API: refused with the
	// field, nothing applied.
	for _, bad := range []struct{ peer, field string }{
		{"address=192.0.2.1,asn=65000,hold=2", "hold_time"},
		{"address=192.0.2.1,asn=0", "asn"},
		{"address=192.0.2.1,asn=65000,hold=9,keepalive=9", "keepalive"},
	} {
		out, err := l.RunCLI("router", "bgp", "set", "canopy-edge", "--asn", "65001", "--peer", bad.peer)
		if err == nil || !strings.Contains(err.Error(), bad.field) || !strings.Contains(err.Error(), "400") {
			t.Errorf("canopy router bgp set --peer %s: want a 400 naming %s, got %v\n%s", bad.peer, bad.field, err, out)
		}
	}
	if out := l.CLI("router", "bgp", "show", "canopy-edge"); !strings.Contains(out, `"host_routes": true`) || !strings.Contains(out, "192.0.2.129") {
		t.Errorf("the edge's BGP settings changed after refused writes:\n%s", out)
	}

	// The gateways' /metrics.
	for _, h := range []*netns.Host{gw1, gw2} {
		if n := h.Metric("canopy_agent_bgp_session_established{"); n != 1 {
			t.Errorf("%s /metrics: %v established sessions, want 1", h.Name, n)
		}
		if n := h.Metric("canopy_agent_bgp_advertised_prefixes"); n != 4 {
			t.Errorf("%s /metrics: %v advertised prefixes, want 4 (three elastic IPs and the NAT gateway's)\n%s", h.Name, n, metricLines(h, "canopy_agent_bgp"))
		}
	}
	if n := gw1.Metric("canopy_agent_gateway_uplink_up{"); n != 2 {
		t.Errorf("gw1 /metrics: %v uplinks up, want 2\n%s", n, metricLines(gw1, "canopy_agent_gateway"))
	}

	// Nothing of it disturbed the sessions with FRR or the elastic IP.
	if !nsPing(client, eip) || !tcpConnects(client, eip, 8080) {
		t.Errorf("the elastic IP %s stopped answering", eip)
	}
	for _, n := range gateways {
		if s := f.Neighbor(n); s.State != "Established" || s.Dropped != settled[n].Dropped {
			t.Errorf("the session with %s dropped: %+v, settled %+v", n, s, settled[n])
		}
	}
}

// TestServerRefusesBadEdgeConfig: `canopy server` with overlapping public
// pools, an EC2 pool outside the cloud config's pools, or a malformed BGP
// setting does not start; it says which field is wrong.
func TestServerRefusesBadEdgeConfig(t *testing.T) {
	for _, c := range []struct {
		name, cloud, ec2Pool, want string
	}{
		{"overlapping pools", `{"public_pools": ["203.0.113.0/24", "203.0.113.64/26"]}`, "203.0.113.0/28",
			"public_pools[1] 203.0.113.64/26 overlaps public_pools[0] 203.0.113.0/24"},
		{"EC2 pool outside", `{"public_pools": ["203.0.113.0/24"]}`, "198.51.100.0/28",
			"--ec2-public-pool 198.51.100.1-198.51.100.14: 198.51.100.1 is in none of the cloud config's public_pools"},
		{"overlapping EC2 pool", `{}`, "203.0.113.0/28,203.0.113.5-203.0.113.9",
			"--ec2-public-pool: public pool: 203.0.113.5-203.0.113.9 overlaps 203.0.113.1-203.0.113.14"},
		{"malformed BGP peer", `{"bgp": {"asn": 65001}, "gateways": [{"host": "gw", "interface": "edge0", "address": "192.0.2.2/24",
			"bgp_peer": {"address": "192.0.2.1", "asn": 65000, "hold_time": 2}}]}`, "203.0.113.0/28",
			"hold_time: 2 s is too short"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "cloud.json")
			if err := os.WriteFile(cfg, []byte(c.cloud), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, canopyBin, "server", "--data-dir", filepath.Join(dir, "data"),
				"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--ec2-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--etcd-client-url", fmt.Sprintf("https://127.0.0.1:%d", freePort(t)), "--etcd-peer-url", fmt.Sprintf("https://127.0.0.1:%d", freePort(t)),
				"--cloud-config", cfg, "--ec2-public-pool", c.ec2Pool)
			out, err := cmd.CombinedOutput()
			if err == nil || ctx.Err() != nil || !strings.Contains(string(out), c.want) {
				t.Errorf("canopy server: %v (want a refusal naming %q)\n%s", err, c.want, out)
			}
			if n := strings.Count(string(out), c.want); n > 1 {
				t.Errorf("the refusal says it %d times:\n%s", n, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Errorf("the refused server made its data dir")
			}
		})
	}
}
