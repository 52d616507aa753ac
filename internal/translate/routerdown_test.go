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
