package topology

import (
	"encoding/json"
	"net/netip"
	"testing"
)

// Clone copies every field (the JSON of the copy is the original's) and
// shares nothing: changing the copy's slices, maps and pointers leaves the
// original as it was.
func TestCloneIsDeep(t *testing.T) {
	u8 := func(v uint8) *uint8 { return &v }
	objs := []Object{
		&Router{Meta: Meta{ID: "r", Name: "r", Revision: 7, Labels: map[string]string{"a": "b"}},
			ARPEntries: []ARPEntry{{IP: netip.MustParseAddr("10.0.0.9"), MAC: MAC{2, 0, 0, 0, 0, 9}}},
			BGP:        &BGP{ASN: 65000, Peers: []BGPPeer{{Address: netip.MustParseAddr("192.0.2.1"), ASN: 65001, BFD: &BFD{MinTxMS: 100}}}, Networks: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}},
		&Port{Meta: Meta{ID: "p", Labels: map[string]string{"x": "y"}}, DeviceKind: KindBridge, DeviceID: "b", MAC: MAC{2, 0, 0, 0, 0, 1},
			IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, Address: netip.MustParsePrefix("10.0.0.1/24"), TunnelKey: 9},
		&Chain{Meta: Meta{ID: "c"}, Rules: []Rule{{ID: "r1", Action: ActionAccept, Condition: Condition{InPorts: []string{"p"},
			NwProto: u8(6), TpDst: &PortRange{Start: 80, End: 80}, ICMPType: u8(8), NwSrc: netip.MustParsePrefix("10.0.0.0/8")}}}},
		&PortGroup{Meta: Meta{ID: "g"}, Ports: []string{"p", "q"}, Stateful: true},
		&TunnelZone{Meta: Meta{ID: "z"}, Members: []TunnelZoneMember{{HostID: "h", Address: netip.MustParseAddr("10.99.0.1")}}},
	}
	for _, o := range objs {
		before, _ := json.Marshal(o)
		c := Clone(o)
		got, _ := json.Marshal(c)
		if string(got) != string(before) || c.GetMeta().Revision != o.GetMeta().Revision {
			t.Fatalf("clone of %s:\n got %s\nwant %s", o.Kind(), got, before)
		}
		// Change everything the copy holds by reference.
		if l := c.GetMeta().Labels; l != nil {
			l["changed"] = "yes"
		}
		switch v := c.(type) {
		case *Router:
			v.ARPEntries[0].MAC[5] = 0xff
			v.BGP.Peers[0].BFD.MinTxMS = 1
			v.BGP.Networks[0] = netip.MustParsePrefix("198.51.100.0/24")
		case *Port:
			v.IPs[0] = netip.MustParseAddr("10.9.9.9")
		case *Chain:
			v.Rules[0].Condition.InPorts[0] = "other"
			*v.Rules[0].Condition.NwProto = 17
			v.Rules[0].Condition.TpDst.Start = 1
		case *PortGroup:
			v.Ports[0] = "other"
		case *TunnelZone:
			v.Members[0].HostID = "other"
		}
		if after, _ := json.Marshal(o); string(after) != string(before) {
			t.Errorf("changing the clone of %s changed the original:\n%s\n%s", o.Kind(), before, after)
		}
	}
}
