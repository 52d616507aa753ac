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

// simNet is a translated state loaded into the simulator.
type simNet struct {
	t    *testing.T
	d    *Desired
	snap *sim.Snapshot
	st   *flow.State
	tabs *sim.Tables
	now  int64
}

func simulated(t *testing.T, st *vpc.State) *simNet {
	t.Helper()
	d := Translate(st, cloud())
	x := topology.NewIndex()
	for _, o := range d.Objects {
		x.Put(o)
	}
	return &simNet{t: t, d: d, snap: sim.NewSnapshot(x), st: flow.NewState(), tabs: sim.NewTables()}
}

func (n *simNet) port(vpcObject, role string) *topology.Port {
	return get[*topology.Port](n.t, n.d, vpcObject, role)
}

// send simulates a UDP datagram entering at port in (from MAC src to MAC
// dst) and returns the ports it leaves through, frames generated on the
// way (ARP requests for an unresolved next hop) included, and the result.
func (n *simNet) send(in string, src, dst [6]byte, from, to string) ([]string, *sim.Result) {
	n.t.Helper()
	frame := (&packet.Spec{EthSrc: src, EthDst: dst, Src: packet.U32(ip(from)), Dst: packet.U32(ip(to)),
		Proto: packet.ProtoUDP, SrcPort: 40000, DstPort: 7}).Build()
	var p packet.Packet
	p.Decode(frame)
	n.now++
	var res sim.Result
	sim.Simulate(n.snap, n.st, in, frame, &p, &sim.Options{Now: n.now, Tables: n.tabs, Trace: true}, &res)
	n.tabs.Learn(res.Learned, n.now)
	var out []string
	if res.Verdict == sim.VerdictForward {
		for _, o := range res.Outputs {
			out = append(out, o.PortID)
		}
	}
	for _, g := range res.Generated {
		out = append(out, g.PortID)
	}
	return out, &res
}

func (n *simNet) edgeUplink() *topology.Port {
	for _, o := range n.d.Objects {
		if p, ok := o.(*topology.Port); ok && p.Interface == "eth1" {
			return p
		}
	}
	n.t.Fatal("no edge uplink")
	return nil
}

// TestRouterDown: a Neutron router set down (InternetGateway.Down) stays
// attached, but its network loses the outside both ways: a datagram to the
// floating IP no longer reaches the instance, one from the instance no
// longer leaves through the edge, and SNAT stops; up again, both pass.
func TestRouterDown(t *testing.T) {
	outside := [6]byte{2, 0xee, 0, 0, 0, 1}
	vmMAC := [6]byte{2, 0, 0, 0, 4, 1}
	for _, down := range []bool{false, true, false} {
		st := cases["eip"]()
		st.InternetGateways["igw-0000000000000igw0"].Down = down
		// The default group lets UDP in from anywhere; a second instance
		// has no floating IP (SNAT).
		g := st.SecurityGroups[defGroup]
		g.Ingress = append(g.Ingress, vpc.SecurityGroupRule{ID: "sgr-000000000000def03", IPProtocol: "udp", FromPort: 0, ToPort: 65535, CidrIPv4: pfx("0.0.0.0/0")})
		place(st, eni(st, "eni-0000000000000snat", subA, "02:00:00:00:04:02", true, []string{defGroup}, "10.0.1.60"), "i-0000000000000snat")
		v := *st.Vpcs[vpcID]
		v.SNATAddress = ip("203.0.113.12")
		st.Vpcs[vpcID] = &v
		n := simulated(t, st)
		up := n.edgeUplink()
		vm := n.port("eni-0000000000000eip1", "port")
		gw := n.port(subA, "gateway/router-port")

		in, res := n.send(up.ID, outside, up.MAC, "198.51.100.7", "203.0.113.5")
		if slices.Contains(in, vm.ID) == down {
			t.Errorf("down=%v: to the floating IP: leaves through %v (%s: %s)\n%s", down, in, res.Verdict, res.Reason, sim.FormatTrace(res.Trace))
		}
		for _, from := range []struct {
			eni string
			mac [6]byte
			ip  string
		}{{"eni-0000000000000eip1", vmMAC, "10.0.1.50"}, {"eni-0000000000000snat", [6]byte{2, 0, 0, 0, 4, 2}, "10.0.1.60"}} {
			out, res := n.send(n.port(from.eni, "port").ID, from.mac, gw.MAC, from.ip, "198.51.100.7")
			if slices.Contains(out, up.ID) == down {
				t.Errorf("down=%v: from %s out: leaves through %v (%s: %s)\n%s", down, from.ip, out, res.Verdict, res.Reason, sim.FormatTrace(res.Trace))
			}
		}
		if routes := 0; true {
			for _, o := range n.d.Objects {
				if r, ok := o.(*topology.Route); ok && r.DstPrefix == netip.MustParsePrefix("203.0.113.5/32") {
					routes++
				}
			}
			if (routes == 0) != down {
				t.Errorf("down=%v: %d edge routes to the floating IP", down, routes)
			}
		}
	}
}

// Ids of the join case's second network.
const (
	joinVPC, joinSub, joinENI = "vpc-0000000000000jnb0", "subnet-0000000000000jnb0", "eni-0000000000000jnb1"
	joinGW                    = "igw-0000000000000join"
)

// joinCase: the VPC (10.0.0.0/16, an instance at 10.0.1.50) and a second
// network (10.9.0.0/24, an instance at 10.9.0.10) joined by one router (a
// Neutron router with an interface on each), every group letting UDP in.
func joinCase() *vpc.State {
	s := withSubnets(base())
	attachIGW(s)
	place(s, eni(s, "eni-0000000000000jna1", subA, "02:00:00:00:08:01", true, []string{defGroup}, "10.0.1.50"), "i-0000000000000jna1")
	s.Vpcs[joinVPC] = &vpc.Vpc{ID: joinVPC, OwnerID: acct, CidrBlock: pfx("10.9.0.0/24"), DhcpOptionsID: vpc.DefaultDhcpOptions,
		State: vpc.StateAvailable, Network: true, TransitIndex: 3}
	s.Subnets[joinSub] = &vpc.Subnet{ID: joinSub, OwnerID: acct, VpcID: joinVPC, CidrBlock: pfx("10.9.0.0/24"), AvailabilityZone: "az1", State: vpc.StateAvailable}
	s.RouteTables["rtb-0000000000000jnb0"] = &vpc.RouteTable{ID: "rtb-0000000000000jnb0", OwnerID: acct, VpcID: joinVPC,
		Routes:       []vpc.Route{{DestinationCidrBlock: pfx("10.9.0.0/24"), GatewayID: vpc.LocalGateway, State: vpc.RouteActive}},
		Associations: []vpc.RouteTableAssociation{{ID: "rtbassoc-0000000000000jnb0", Main: true}}}
	const g2 = "sg-0000000000000jnb0"
	s.SecurityGroups[g2] = &vpc.SecurityGroup{ID: g2, OwnerID: acct, VpcID: joinVPC, GroupName: vpc.DefaultGroupName}
	for _, g := range []*vpc.SecurityGroup{s.SecurityGroups[defGroup], s.SecurityGroups[g2]} {
		g.Ingress = append(g.Ingress, vpc.SecurityGroupRule{ID: "sgr-" + g.ID[3:] + "u", IPProtocol: "udp", FromPort: 0, ToPort: 65535, CidrIPv4: pfx("0.0.0.0/0")})
		g.Egress = append(g.Egress, vpc.SecurityGroupRule{ID: "sgr-" + g.ID[3:] + "e", IsEgress: true, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: pfx("0.0.0.0/0")})
	}
	e := eni(s, joinENI, joinSub, "02:00:00:00:08:02", true, []string{g2}, "10.9.0.10")
	e.VpcID = joinVPC
	place(s, e, "i-0000000000000jnb1")
	s.Instances["i-0000000000000jnb1"].VpcID = joinVPC
	s.InternetGateways[joinGW] = &vpc.InternetGateway{ID: joinGW, OwnerID: acct, Joins: []string{vpcID, joinVPC}}
	s.Vpcs[vpcID].SNATAddress = ip("203.0.113.12")
	return s
}

// TestJoinedNetworks: a router joining two networks carries datagrams
// between their instances both ways, untranslated, over the routers'
// transit link; set down, or gone, it carries none, and the networks'
// other traffic is as before (the first network still reaches the
// outside through its own gateway).
func TestJoinedNetworks(t *testing.T) {
	a := [6]byte{2, 0, 0, 0, 8, 1}
	bm := [6]byte{2, 0, 0, 0, 8, 2}
	for _, c := range []struct {
		name   string
		change func(*vpc.State)
		joined bool
	}{
		{"joined", func(*vpc.State) {}, true},
		{"down", func(s *vpc.State) { s.InternetGateways[joinGW].Down = true }, false},
		{"gone", func(s *vpc.State) { delete(s.InternetGateways, joinGW) }, false},
		{"overlapping", func(s *vpc.State) {
			s.Vpcs[joinVPC].CidrBlock, s.Subnets[joinSub].CidrBlock = pfx("10.0.9.0/24"), pfx("10.0.9.0/24")
			s.NetworkInterfaces[joinENI].PrivateIPs[0].Address = ip("10.0.9.10")
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := joinCase()
			c.change(st)
			n := simulated(t, st)
			pa, pb := n.port("eni-0000000000000jna1", "port"), n.port(joinENI, "port")
			gwa, gwb := n.port(subA, "gateway/router-port"), n.port(joinSub, "gateway/router-port")
			dst := "10.9.0.10"
			if c.name == "overlapping" {
				dst = "10.0.9.10"
				if len(n.d.Skipped) == 0 {
					t.Error("overlapping blocks joined without a skip")
				}
			}
			// Twice: the first may leave as an ARP request for the other
			// router's transit address (learned from the answer the
			// simulation generates), the second is delivered.
			var out []string
			var res *sim.Result
			for range 3 {
				out, res = n.send(pa.ID, a, gwa.MAC, "10.0.1.50", dst)
			}
			if slices.Contains(out, pb.ID) != c.joined {
				t.Errorf("a → b: leaves through %v (%s: %s)\n%s", out, res.Verdict, res.Reason, sim.FormatTrace(res.Trace))
			}
			for range 3 {
				out, res = n.send(pb.ID, bm, gwb.MAC, dst, "10.0.1.50")
			}
			if slices.Contains(out, pa.ID) != c.joined {
				t.Errorf("b → a: leaves through %v (%s: %s)\n%s", out, res.Verdict, res.Reason, sim.FormatTrace(res.Trace))
			}
			if c.joined {
				// Untranslated: b sees a's own address.
				_, res = n.send(pa.ID, a, gwa.MAC, "10.0.1.50", dst)
				f := (&packet.Spec{EthSrc: a, EthDst: gwa.MAC, Src: packet.U32(ip("10.0.1.50")), Dst: packet.U32(ip(dst)), Proto: packet.ProtoUDP, SrcPort: 40000, DstPort: 7}).Build()
				var q packet.Packet
				q.Decode(f)
				i := 0
				flow.Apply(f, &q, res.Actions, func(_ flow.Action, o []byte) {
					var r packet.Packet
					r.Decode(o)
					if res.Outputs[i].PortID == pb.ID && r.SrcAddr() != ip("10.0.1.50") {
						t.Errorf("b sees the datagram from %s", r.SrcAddr())
					}
					i++
				})
			}
			// The first network's way out is its own gateway's (SNAT),
			// joined or not.
			up := n.edgeUplink()
			if out, res = n.send(pa.ID, a, gwa.MAC, "10.0.1.50", "198.51.100.7"); !slices.Contains(out, up.ID) {
				t.Errorf("a → outside: leaves through %v (%s: %s)", out, res.Verdict, res.Reason)
			}
		})
	}
}

// TestNextHopAddressRoute: a route to an address no route target names (a
// Neutron static route's next hop, Route.NextHop) sends to it on the
// subnet holding it; to an address no subnet holds, it blackholes.
func TestNextHopAddressRoute(t *testing.T) {
	for _, c := range []struct {
		hop       string
		delivered bool
	}{{"10.0.1.31", true}, {"10.7.0.1", false}} {
		st := cases["eni"]()
		rt := st.RouteTables[mainRTB]
		rt.Routes = append(rt.Routes, vpc.Route{DestinationCidrBlock: pfx("192.168.5.0/24"), NextHop: ip(c.hop), Origin: vpc.OriginCreateRoute, State: vpc.RouteActive})
		n := simulated(t, st)
		from, to := n.port("eni-0000000000000chk1", "port"), n.port("eni-0000000000000rtr1", "port")
		out, res := n.send(from.ID, [6]byte{2, 0, 0, 0, 3, 1}, n.port(subA, "gateway/router-port").MAC, "10.0.1.30", "192.168.5.7")
		if slices.Contains(out, to.ID) != c.delivered {
			t.Errorf("via %s: leaves through %v (%s: %s)\n%s", c.hop, out, res.Verdict, res.Reason, sim.FormatTrace(res.Trace))
		}
	}
}
