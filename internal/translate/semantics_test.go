package translate

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// These tests state the properties the golden files must have, so a
// golden file rewritten with -update cannot silently lose them.

func get[T topology.Object](t *testing.T, d *Desired, vpcObject, role string) T {
	t.Helper()
	id := ObjectID(vpcObject, role)
	for _, o := range d.Objects {
		if o.GetMeta().ID == id {
			if v, ok := o.(T); ok {
				return v
			}
		}
	}
	var zero T
	t.Fatalf("no %T for %s/%s", zero, vpcObject, role)
	return zero
}

func ruleIDs(c *topology.Chain) []string {
	var ids []string
	for _, r := range c.Rules {
		ids = append(ids, r.ID)
	}
	return ids
}

func rule(t *testing.T, c *topology.Chain, id string) topology.Rule {
	t.Helper()
	i := c.RuleIndex(id)
	if i < 0 {
		t.Fatalf("chain %s has no rule %s (has %v)", c.Name, id, ruleIDs(c))
	}
	return c.Rules[i]
}

func TestSourceDestCheck(t *testing.T) {
	d := Translate(cases["eni"](), cloud())
	on := get[*topology.Chain](t, d, "eni-0000000000000chk1", "from-vm")
	off := get[*topology.Chain](t, d, "eni-0000000000000rtr1", "from-vm")
	if on.RuleIndex("spoofed-ip") < 0 || off.RuleIndex("spoofed-ip") >= 0 {
		t.Fatalf("spoofed-ip: check on %v, off %v", ruleIDs(on), ruleIDs(off))
	}
	// Both keep the MAC and ARP checks, and the MAC is the ENI's.
	for _, c := range []*topology.Chain{on, off} {
		if r := rule(t, c, "spoofed-mac"); !r.InvSrcMAC || r.Action != topology.ActionDrop {
			t.Errorf("%s: spoofed-mac rule %+v", c.Name, r)
		}
		rule(t, c, "spoofed-arp")
	}
	g := get[*topology.IPAddrGroup](t, d, "eni-0000000000000rtr1", "addresses")
	if len(g.Addresses) != 3 {
		t.Errorf("secondary addresses missing from %v", g.Addresses)
	}
	p := get[*topology.Port](t, d, "eni-0000000000000rtr1", "port")
	if p.HostID != vmHost || p.Interface == "" || p.MAC.String() != "02:00:00:00:03:02" {
		t.Errorf("port %+v: want bound to the instance's host with the ENI's MAC", p)
	}
	if u := get[*topology.Port](t, d, "eni-0000000000000unb1", "port"); u.HostID != "" {
		t.Errorf("unattached ENI is bound to %s", u.HostID)
	}
}

func TestElasticIPNAT(t *testing.T) {
	d := Translate(cases["eip"](), cloud())
	in := get[*topology.Chain](t, d, vpcID, "uplink-in")
	r := rule(t, in, "eipalloc-000000000000001")
	if r.Action != topology.ActionDNAT || r.NwDst != pfx("203.0.113.5/32") || !r.NATTargets[0].Stateless() || r.NATTargets[0].AddrFrom != ip("10.0.1.50") {
		t.Errorf("DNAT rule %+v", r)
	}
	out := get[*topology.Chain](t, d, vpcID, "uplink-out")
	r = rule(t, out, "eipalloc-000000000000002")
	if r.Action != topology.ActionSNAT || r.NwSrc != pfx("10.0.1.51/32") || !r.NATTargets[0].Stateless() || r.NATTargets[0].AddrFrom != ip("203.0.113.6") {
		t.Errorf("SNAT rule %+v", r)
	}
	if out.RuleIndex("eipalloc-000000000000003") >= 0 {
		t.Error("an unassociated address is translated")
	}
	rt := get[*topology.Route](t, d, "eipalloc-000000000000001", "route/edge")
	if rt.RouterID != ObjectID(CloudObject, "edge-router") || rt.DstPrefix != pfx("203.0.113.5/32") || rt.NextHopGateway != ip("169.254.0.2") {
		t.Errorf("edge route %+v", rt)
	}
}

func TestNatGateway(t *testing.T) {
	d := Translate(cases["nat-gateway"](), cloud())
	out := get[*topology.Chain](t, d, "nat-0000000000000nat1", "uplink-out")
	r := rule(t, out, "nat-tcp")
	if tg := r.NATTargets[0]; r.Action != topology.ActionSNAT || tg.Stateless() || tg.AddrFrom != ip("203.0.113.9") || r.NwSrc != pfx("10.0.0.0/16") {
		t.Errorf("PAT rule %+v", r)
	}
	rt := get[*topology.Route](t, d, "rtb-0000000000000priv0", "route/"+subB+"/0.0.0.0/0")
	if rt.InPort != ObjectID(subB, "gateway/router-port") || rt.SrcPrefix.IsValid() || rt.NextHopGateway != ip("10.0.1.100") || rt.Weight != weightNAT {
		t.Errorf("private subnet's default route %+v", rt)
	}
	// The NAT's interface is the NAT router's port, not a VM port, and its
	// address is not 1:1 NATed on the VPC uplink.
	for _, o := range d.Objects {
		if o.GetMeta().ID == ObjectID("eni-0000000000000nat1", "port") {
			t.Error("the NAT gateway's ENI became a VM port")
		}
	}
	if in := get[*topology.Chain](t, d, vpcID, "uplink-in"); len(in.Rules) != 1 {
		t.Errorf("VPC uplink-in has %v, want only the final drop", ruleIDs(in))
	}
	if p := get[*topology.Port](t, d, "nat-0000000000000nat1", "subnet/router-port"); p.MAC.String() != "02:00:00:00:05:01" {
		t.Errorf("NAT port MAC %s, want its ENI's", p.MAC)
	}
	for _, o := range d.Objects {
		if o.GetMeta().Labels[LabelObject] == "nat-0000000000000dead" {
			t.Errorf("a deleted NAT gateway is translated: %s", o.GetMeta().Name)
		}
	}
}

func TestRouteTables(t *testing.T) {
	d := Translate(cases["route-table"](), cloud())
	// Subnet A has the main table (0/0 → igw), subnet B its own.
	igw := get[*topology.Route](t, d, mainRTB, "route/"+subA+"/0.0.0.0/0")
	if igw.InPort != ObjectID(subA, "gateway/router-port") || igw.NextHopGateway != ip("169.254.0.1") || igw.NextHopPort != ObjectID(vpcID, "uplink/router-port") {
		t.Errorf("igw route %+v", igw)
	}
	eni := get[*topology.Route](t, d, "rtb-0000000000000priv0", "route/"+subB+"/192.168.0.0/16")
	inst := get[*topology.Route](t, d, "rtb-0000000000000priv0", "route/"+subB+"/172.16.0.0/12")
	for _, r := range []*topology.Route{eni, inst} {
		if r.NextHopGateway != ip("10.0.1.10") || r.InPort != ObjectID(subB, "gateway/router-port") || r.Weight != weightENI {
			t.Errorf("route to the ENI/instance %+v", r)
		}
	}
	if bh := get[*topology.Route](t, d, "rtb-0000000000000priv0", "route/"+subB+"/198.51.100.0/24"); bh.Type != topology.RouteBlackhole {
		t.Errorf("blackhole route %+v", bh)
	}
	for _, o := range d.Objects {
		if r, ok := o.(*topology.Route); ok && r.InPort == ObjectID(subB, "gateway/router-port") && r.DstPrefix.Bits() == 0 && r.NextHopGateway == ip("169.254.0.1") {
			t.Error("subnet B got the main table's igw route")
		}
	}
}

func TestSecurityGroupReference(t *testing.T) {
	d := Translate(cases["sg"](), cloud())
	in := get[*topology.Chain](t, d, "sg-00000000000000web", "ingress")
	ref := rule(t, in, "sgr-00000000000web04")
	app := get[*topology.IPAddrGroup](t, d, "sg-0000000000000app0", "members")
	if ref.IPGroupSrc != app.ID || ref.NwProto != nil {
		t.Errorf("group reference rule %+v", ref)
	}
	if !slices.Equal(app.Addresses, []netip.Addr{ip("10.0.2.11"), ip("10.0.2.12")}) {
		t.Errorf("app members %v", app.Addresses)
	}
	https := rule(t, in, "sgr-00000000000web01")
	if *https.NwProto != 6 || *https.TpDst != (topology.PortRange{Start: 443, End: 443}) || https.NwSrc.IsValid() {
		t.Errorf("https rule %+v", https)
	}
	icmp := rule(t, in, "sgr-00000000000web03")
	if *icmp.NwProto != 1 || *icmp.ICMPType != 8 || icmp.ICMPCode != nil {
		t.Errorf("icmp rule %+v", icmp)
	}
	eg := get[*topology.Chain](t, d, "sg-00000000000000web", "egress")
	if r := rule(t, eg, "sgr-00000000000web06"); r.IPGroupDst != app.ID {
		t.Errorf("egress group reference %+v", r)
	}
	// The ENI jumps to its groups' chains from both sides.
	to := get[*topology.Chain](t, d, "eni-00000000000000a1", "to-vm")
	if j := rule(t, to, "sg-0000000000000app0"); j.Action != topology.ActionJump || j.JumpChain != ObjectID("sg-0000000000000app0", "ingress") {
		t.Errorf("jump %+v", j)
	}
	if rule(t, to, "return-flow").MatchReturnFlow != true {
		t.Error("return flows are not accepted: the group is not stateful")
	}
}

func TestNetworkACL(t *testing.T) {
	d := Translate(cases["nacl"](), cloud())
	in := get[*topology.Chain](t, d, "acl-0000000000000priv0", "ingress")
	if got := ruleIDs(in); !slices.Equal(got, []string{"rule-100", "rule-200", "rule-300", "rule-310", "rule-32767", "default-deny"}) {
		t.Fatalf("ingress order %v", got)
	}
	if r := in.Rules[0]; r.Action != topology.ActionDrop || r.NwSrc != pfx("10.0.1.66/32") || r.TpDst != nil {
		t.Errorf("rule 100 %+v (0-65535 matches any port)", r)
	}
	if r := in.Rules[1]; r.Action != topology.ActionAccept || *r.TpDst != (topology.PortRange{Start: 22, End: 22}) {
		t.Errorf("rule 200 %+v", r)
	}
	gw := get[*topology.Port](t, d, subB, "gateway/router-port")
	eg := get[*topology.Chain](t, d, "acl-0000000000000priv0", "egress")
	if gw.OutFilter != in.ID || gw.InFilter != eg.ID {
		t.Errorf("subnet B's border filters in=%s out=%s", gw.InFilter, gw.OutFilter)
	}
	if r := rule(t, eg, "rule-100"); r.NwDst != pfx("10.0.0.0/16") {
		t.Errorf("egress matches the destination: %+v", r)
	}
	a := get[*topology.Port](t, d, subA, "gateway/router-port")
	if a.OutFilter != ObjectID(defACL, "ingress") {
		t.Errorf("subnet A does not get the default ACL: %s", a.OutFilter)
	}
}

func TestDHCPOptions(t *testing.T) {
	d := Translate(cases["dhcp-options"](), cloud())
	dh := get[*topology.DHCPSubnet](t, d, subA, "dhcp")
	// AmazonProvidedDNS is the VPC's base + 2, answered by the agents,
	// which ask the cloud's resolvers for other names.
	if dh.DomainName != "corp.example.com" || !slices.Equal(dh.DNSServers, []netip.Addr{ip("10.0.0.53"), ip("10.0.0.2")}) ||
		!slices.Equal(dh.NTPServers, []netip.Addr{ip("10.0.0.123")}) || dh.MTU != 1450 || dh.Gateway != ip("10.0.1.1") {
		t.Errorf("DHCP %+v", dh)
	}
	if len(dh.Hosts) != 1 || dh.Hosts[0].IP != ip("10.0.1.60") {
		t.Errorf("hosts %+v", dh.Hosts)
	}
	if z := dh.DNS; z == nil || z.Address != ip("10.0.0.2") || z.VPC != pfx("10.0.0.0/16") || z.PrivateDomain != "az1.compute.internal" ||
		!slices.Equal(z.Upstreams, []netip.Addr{ip("192.0.2.53")}) {
		t.Errorf("the VPC's resolver %+v", z)
	}
	// enableDnsSupport off: AmazonProvidedDNS gives nothing.
	s := cases["dhcp-options"]()
	s.Vpcs[vpcID].EnableDNSSupport = false
	dh = get[*topology.DHCPSubnet](t, Translate(s, cloud()), subA, "dhcp")
	if !slices.Equal(dh.DNSServers, []netip.Addr{ip("10.0.0.53")}) || dh.DNS != nil {
		t.Errorf("DNS with enableDnsSupport off: %v %+v", dh.DNSServers, dh.DNS)
	}
}

func TestSkips(t *testing.T) {
	s := cases["eni"]()
	s.NetworkInterfaces["eni-0000000000000chk1"].MacAddress = "01:00:5e:00:00:01"
	s.Vpcs["vpc-0000000000000bad0"] = &vpc.Vpc{ID: "vpc-0000000000000bad0", OwnerID: acct, CidrBlock: pfx("10.9.0.0/16")}
	d := Translate(s, cloud())
	if len(d.Skipped) != 2 {
		t.Fatalf("skipped %+v, want the multicast-MAC ENI and the VPC without a transit index", d.Skipped)
	}
}

// A catch-all blackhole (a public pool at the edge, a VPC's CIDR at its
// router) never ties with a route of the same prefix: an elastic IP whose
// /32 is also one of the pool's prefixes (a pool given as a range), or a
// subnet as large as its VPC, must win for every flow, not for half of them
// by ECMP hash.
func TestFallbackBlackholesLoseTies(t *testing.T) {
	c := cloud()
	c.PublicPools = append(c.PublicPools, pfx("203.0.113.5/32"))
	d := Translate(cases["eip"](), c)
	byRouterPrefix := map[string][]*topology.Route{}
	for _, o := range d.Objects {
		if r, ok := o.(*topology.Route); ok {
			k := r.RouterID + " " + r.DstPrefix.String() + " " + r.SrcPrefix.String()
			byRouterPrefix[k] = append(byRouterPrefix[k], r)
		}
	}
	ties := 0
	for k, rs := range byRouterPrefix {
		for _, bh := range rs {
			if bh.Type != topology.RouteBlackhole {
				continue
			}
			for _, r := range rs {
				if r.Type == topology.RouteNormal {
					ties++
					if r.Weight >= bh.Weight {
						t.Errorf("%s: route %s (weight %d) does not beat the blackhole %s (weight %d)", k, r.ID, r.Weight, bh.ID, bh.Weight)
					}
				}
			}
		}
	}
	if ties == 0 {
		t.Fatal("no route shares its prefix with a blackhole: the case does not test anything")
	}
	// And the simulation follows: every flow to the elastic IP reaches the
	// instance's side, none is blackholed.
	x := topology.NewIndex()
	for _, o := range d.Objects {
		x.Put(o)
	}
	snap := sim.NewSnapshot(x)
	var uplink *topology.Port
	for _, o := range d.Objects {
		if p, ok := o.(*topology.Port); ok && p.Interface == "eth1" {
			uplink = p
		}
	}
	if uplink == nil {
		t.Fatal("no edge uplink")
	}
	var res sim.Result
	for sport := uint16(1000); sport < 1064; sport++ {
		frame := (&packet.Spec{EthSrc: [6]byte{2, 0xee, 0, 0, 0, 1}, EthDst: uplink.MAC, Src: packet.U32(ip("198.51.100.7")),
			Dst: packet.U32(ip("203.0.113.5")), Proto: packet.ProtoUDP, SrcPort: sport, DstPort: 53}).Build()
		var p packet.Packet
		p.Decode(frame)
		sim.Simulate(snap, flow.NewState(), uplink.ID, frame, &p, &sim.Options{Now: 1, Tables: sim.NewTables()}, &res)
		if res.Reason == "blackhole route" {
			t.Fatalf("a flow from port %d to the elastic IP was blackholed", sport)
		}
	}
}

// TestSNATAddress: a VPC with an SNAT address (a Neutron router's gateway
// with SNAT) translates what has no public address to it (stateful PAT)
// after the 1:1 rules, undoes it coming back, and the edge routes it to
// the VPC's router.
func TestSNATAddress(t *testing.T) {
	st := cases["eip"]()
	v := *st.Vpcs[vpcID]
	v.SNATAddress = ip("203.0.113.12")
	st.Vpcs[vpcID] = &v
	d := Translate(st, cloud())
	out := get[*topology.Chain](t, d, vpcID, "uplink-out")
	ids := ruleIDs(out)
	eip, snat := slices.Index(ids, "eipalloc-000000000000002"), slices.Index(ids, "snat-tcp")
	if eip < 0 || snat < eip {
		t.Fatalf("uplink-out %v: want the 1:1 rules before SNAT", ids)
	}
	for _, id := range []string{"snat-tcp", "snat-udp", "snat-icmp"} {
		r := rule(t, out, id)
		if tg := r.NATTargets[0]; r.Action != topology.ActionSNAT || tg.Stateless() || tg.AddrFrom != ip("203.0.113.12") || r.NwSrc != v.CidrBlock {
			t.Errorf("%s: %+v", id, r)
		}
	}
	if r := rule(t, get[*topology.Chain](t, d, vpcID, "uplink-in"), "unsnat"); r.Action != topology.ActionRevSNAT || r.NwDst != pfx("203.0.113.12/32") {
		t.Errorf("unsnat: %+v", r)
	}
	if rt := get[*topology.Route](t, d, vpcID, "route/edge-snat"); rt.DstPrefix != pfx("203.0.113.12/32") || rt.RouterID != ObjectID(CloudObject, "edge-router") {
		t.Errorf("edge route %+v", rt)
	}
	if len(d.Skipped) > 0 {
		t.Errorf("skipped: %v", d.Skipped)
	}
	// Without it, nothing of the kind.
	if out := get[*topology.Chain](t, Translate(cases["eip"](), cloud()), vpcID, "uplink-out"); out.RuleIndex("snat-tcp") >= 0 {
		t.Error("an EC2 VPC SNATs")
	}
}
