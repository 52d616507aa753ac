package translate

import (
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestPortSecurityOff: a Neutron port with port security off has a bridge
// port without chains, and packets show it: a datagram with a foreign
// source address and MAC is dropped leaving a port with port security and
// delivered leaving one without; and one without groups receives what a
// port with port security drops (its default group admits only members).
func TestPortSecurityOff(t *testing.T) {
	s := withSubnets(base())
	on := eni(s, "eni-00000000000000ps1", subA, "02:00:00:00:07:01", true, []string{defGroup}, "10.0.1.71")
	place(s, on, "i-00000000000000ps1")
	off := eni(s, "eni-00000000000000ps2", subA, "02:00:00:00:07:02", false, nil, "10.0.1.72")
	off.PortSecurityOff = true
	place(s, off, "i-00000000000000ps2")
	open := eni(s, "eni-00000000000000ps3", subA, "02:00:00:00:07:03", false, nil, "10.0.1.73")
	open.PortSecurityOff = true
	place(s, open, "i-00000000000000ps3")
	guarded := eni(s, "eni-00000000000000ps4", subA, "02:00:00:00:07:04", true, []string{defGroup}, "10.0.1.74")
	place(s, guarded, "i-00000000000000ps4")

	d := Translate(s, cloud())
	if len(d.Skipped) > 0 {
		t.Fatalf("skipped: %v", d.Skipped)
	}
	ports := map[string]*topology.Port{}
	x := topology.NewIndex()
	for _, o := range d.Objects {
		x.Put(o)
		if p, ok := o.(*topology.Port); ok {
			ports[p.ID] = p
		}
		if c, ok := o.(*topology.Chain); ok && (c.ID == ObjectID(off.ID, "from-vm") || c.ID == ObjectID(off.ID, "to-vm")) {
			t.Errorf("a port without port security has chain %s", c.Name)
		}
	}
	port := func(e *vpc.NetworkInterface) *topology.Port {
		p := ports[ObjectID(e.ID, "port")]
		if p == nil {
			t.Fatalf("no port for %s", e.ID)
		}
		return p
	}
	if p := port(off); p.InFilter != "" || p.OutFilter != "" || len(p.IPs) != 1 || p.HostID != vmHost {
		t.Errorf("port without port security: %+v", p)
	}
	if p := port(on); p.InFilter == "" || p.OutFilter == "" {
		t.Errorf("port with port security: %+v", p)
	}
	snap := sim.NewSnapshot(x)
	send := func(from, to *vpc.NetworkInterface) sim.Result {
		dst := port(to)
		// A foreign source address and MAC: what a VM forwarding (or
		// spoofing) another's traffic sends.
		frame := (&packet.Spec{EthSrc: [6]byte{2, 0xee, 0, 0, 0, 9}, EthDst: dst.MAC, Src: packet.U32(ip("10.0.1.99")),
			Dst: packet.U32(to.PrivateIPs[0].Address), Proto: packet.ProtoUDP, SrcPort: 4000, DstPort: 5000}).Build()
		var p packet.Packet
		p.Decode(frame)
		var res sim.Result
		sim.Simulate(snap, flow.NewState(), port(from).ID, frame, &p, &sim.Options{Now: 1, Tables: sim.NewTables()}, &res)
		return res
	}
	delivered := func(res sim.Result, to *vpc.NetworkInterface) bool {
		if res.Verdict != sim.VerdictForward {
			return false
		}
		for _, o := range res.Outputs {
			if o.PortID == port(to).ID {
				return true
			}
		}
		return false
	}
	if res := send(on, open); delivered(res, open) || res.Verdict != sim.VerdictDrop {
		t.Errorf("spoofed datagram from a port with port security: %v %s %+v", res.Verdict, res.Reason, res.Outputs)
	}
	if res := send(off, open); !delivered(res, open) {
		t.Errorf("spoofed datagram from a port without port security to one without: %v %s %+v", res.Verdict, res.Reason, res.Outputs)
	}
	if res := send(off, guarded); delivered(res, guarded) || res.Verdict != sim.VerdictDrop {
		t.Errorf("datagram from outside its group to a port with port security: %v %s %+v", res.Verdict, res.Reason, res.Outputs)
	}
}
