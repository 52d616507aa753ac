package translate

import (
	"slices"
	"testing"

	"github.com/canopy-sdn/canopy/internal/flow"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/sim"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestAllowedAddressPairs: a port with allowed address pairs sends from
// them (with the pair's MAC) and nothing else; ARP for a pair's address is
// flooded by the bridge (not answered for the port reserving the address)
// and reaches the port holding it, as does IPv4 to it; a pair wider than
// a /24 is realized too.
func TestAllowedAddressPairs(t *testing.T) {
	s := withSubnets(base())
	const open = "sg-00000000000000open"
	s.SecurityGroups[open] = &vpc.SecurityGroup{ID: open, OwnerID: acct, VpcID: vpcID, GroupName: "open",
		Ingress: []vpc.SecurityGroupRule{{ID: "sgr-00000000000open01", IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: pfx("0.0.0.0/0")}},
		Egress:  []vpc.SecurityGroupRule{{ID: "sgr-00000000000open02", IsEgress: true, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: pfx("0.0.0.0/0")}}}
	holder := eni(s, "eni-00000000000000ap1", subA, "02:00:00:00:08:01", true, []string{open}, "10.0.1.81")
	holder.AddressPairs = []vpc.AddressPair{{IPAddress: "10.0.1.100", MAC: "02:00:00:00:08:01"},
		{IPAddress: "10.0.1.128/25", MAC: "02:00:00:00:08:99"}, {IPAddress: "10.0.0.0/16", MAC: "02:00:00:00:08:98"}}
	place(s, holder, "i-00000000000000ap1")
	client := eni(s, "eni-00000000000000ap2", subA, "02:00:00:00:08:02", true, []string{open}, "10.0.1.82")
	place(s, client, "i-00000000000000ap2")
	// The VRRP address reserved with a port of its own, not bound (with
	// port security off, the bridge does not answer for it either).
	eni(s, "eni-00000000000000ap3", subA, "02:00:00:00:08:03", true, []string{open}, "10.0.1.100")
	reserved := eni(s, "eni-00000000000000ap4", subA, "02:00:00:00:08:04", false, nil, "10.0.1.101")
	reserved.PortSecurityOff = true
	holder.AddressPairs = append(holder.AddressPairs, vpc.AddressPair{IPAddress: "10.0.1.101", MAC: "02:00:00:00:08:01"})

	d := Translate(s, cloud())
	if len(d.Skipped) > 0 {
		t.Fatalf("skipped: %v", d.Skipped)
	}
	x := topology.NewIndex()
	for _, o := range d.Objects {
		x.Put(o)
	}
	for _, id := range []string{"eni-00000000000000ap3", "eni-00000000000000ap4"} {
		if p := get[*topology.Port](t, d, id, "port"); len(p.IPs) != 0 {
			t.Errorf("the bridge answers ARP for the pair's address for the port reserving it (%s): %v", id, p.IPs)
		}
	}
	snap := sim.NewSnapshot(x)
	portOf := func(e *vpc.NetworkInterface) *topology.Port { return get[*topology.Port](t, d, e.ID, "port") }
	run := func(from *vpc.NetworkInterface, frame []byte) sim.Result {
		var p packet.Packet
		p.Decode(frame)
		var res sim.Result
		sim.Simulate(snap, flow.NewState(), portOf(from).ID, frame, &p, &sim.Options{Now: 1, Tables: sim.NewTables()}, &res)
		return res
	}
	udp := func(from, to *vpc.NetworkInterface, srcMAC, src string) sim.Result {
		return run(from, (&packet.Spec{EthSrc: portMAC(t, srcMAC), EthDst: portOf(to).MAC, Src: packet.U32(ip(src)),
			Dst: packet.U32(to.PrivateIPs[0].Address), Proto: packet.ProtoUDP, SrcPort: 4000, DstPort: 5000}).Build())
	}
	reaches := func(res sim.Result, to *vpc.NetworkInterface) bool {
		return res.Verdict == sim.VerdictForward && slices.ContainsFunc(res.Outputs, func(o sim.Output) bool { return o.PortID == portOf(to).ID })
	}
	for _, c := range []struct {
		mac, src string
		ok       bool
	}{
		{"02:00:00:00:08:01", "10.0.1.81", true},  // its own
		{"02:00:00:00:08:01", "10.0.1.100", true}, // the VRRP address, its MAC
		{"02:00:00:00:08:99", "10.0.1.150", true}, // a /25 pair with its MAC
		{"02:00:00:00:08:98", "10.0.7.7", true},   // a /16 pair
		{"02:00:00:00:08:01", "10.0.1.150", false},
		{"02:00:00:00:08:99", "10.0.1.100", false},
		{"02:00:00:00:08:01", "10.0.1.99", false},
		{"02:00:00:00:08:77", "10.0.1.81", false},
	} {
		if res := udp(holder, client, c.mac, c.src); reaches(res, client) != c.ok {
			t.Errorf("from %s %s: %v %s %+v, want delivered %v", c.mac, c.src, res.Verdict, res.Reason, res.Outputs, c.ok)
		}
	}
	// ARP for the VRRP address: flooded, reaches the holder only.
	res := run(client, packet.BuildARP(packet.ARPRequest, portMAC(t, "02:00:00:00:08:02"), packet.U32(ip("10.0.1.82")), [6]byte{}, packet.U32(ip("10.0.1.100"))))
	if !reaches(res, holder) || len(res.Outputs) != 1 {
		t.Errorf("ARP for the pair's address: %v %s %+v, want it at the holder only", res.Verdict, res.Reason, res.Outputs)
	}
	// The holder answers, and what is sent to the address reaches it.
	res = run(holder, packet.BuildARP(packet.ARPReply, portMAC(t, "02:00:00:00:08:01"), packet.U32(ip("10.0.1.100")), portMAC(t, "02:00:00:00:08:02"), packet.U32(ip("10.0.1.82"))))
	if !reaches(res, client) {
		t.Errorf("the holder's ARP reply for the pair's address: %v %s %+v", res.Verdict, res.Reason, res.Outputs)
	}
	res = run(client, (&packet.Spec{EthSrc: portMAC(t, "02:00:00:00:08:02"), EthDst: portOf(holder).MAC, Src: packet.U32(ip("10.0.1.82")),
		Dst: packet.U32(ip("10.0.1.100")), Proto: packet.ProtoUDP, SrcPort: 4000, DstPort: 5000}).Build())
	if !reaches(res, holder) {
		t.Errorf("a datagram to the pair's address: %v %s %+v", res.Verdict, res.Reason, res.Outputs)
	}
	// A remote-group rule admits the members' pairs too (Neutron's).
	const peers = "sg-0000000000000peers"
	s.SecurityGroups[peers] = &vpc.SecurityGroup{ID: peers, OwnerID: acct, VpcID: vpcID, GroupName: "peers",
		Ingress: []vpc.SecurityGroupRule{{ID: "sgr-0000000000peers01", IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: peers}}}
	holder.Groups = append(holder.Groups, peers)
	member := eni(s, "eni-00000000000000ap5", subA, "02:00:00:00:08:05", true, []string{peers}, "10.0.1.85")
	place(s, member, "i-00000000000000ap5")
	d = Translate(s, cloud())
	x = topology.NewIndex()
	for _, o := range d.Objects {
		x.Put(o)
	}
	snap = sim.NewSnapshot(x)
	if res := udp(holder, member, "02:00:00:00:08:01", "10.0.1.100"); !reaches(res, member) {
		t.Errorf("from the pair's address to a port admitting its group: %v %s", res.Verdict, res.Reason)
	}
	if res := udp(holder, member, "02:00:00:00:08:99", "10.0.1.150"); !reaches(res, member) {
		t.Errorf("from the /25 pair to a port admitting its group: %v %s", res.Verdict, res.Reason)
	}
	if res := udp(client, member, "02:00:00:00:08:02", "10.0.1.82"); reaches(res, member) {
		t.Errorf("from outside the group: delivered")
	}
	// A port without the pair does not take it.
	res = run(holder, (&packet.Spec{EthSrc: portMAC(t, "02:00:00:00:08:01"), EthDst: portOf(client).MAC, Src: packet.U32(ip("10.0.1.81")),
		Dst: packet.U32(ip("10.0.1.100")), Proto: packet.ProtoUDP, SrcPort: 4000, DstPort: 5000}).Build())
	if reaches(res, client) {
		t.Errorf("a port without the pair received for its address")
	}
}

func portMAC(t *testing.T, s string) [6]byte {
	t.Helper()
	m, err := topology.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
