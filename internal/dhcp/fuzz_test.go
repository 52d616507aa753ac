package dhcp

import (
	"net"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// FuzzRespond feeds arbitrary frames to the request path: it must never
// panic, and whatever it answers must be a well-formed reply to the client.
func FuzzRespond(f *testing.F) {
	for _, mt := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform, dhcpv4.MessageTypeRelease} {
		m, _ := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr(vmMAC[:])), dhcpv4.WithMessageType(mt),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(vmIP.AsSlice())))
		f.Add(requestFrame(m, zeroIP, bcastIP))
	}
	f.Add(buildUDP(vmMAC, topology.Broadcast, zeroIP, bcastIP, ClientPort, ServerPort, []byte{1, 1, 6, 0}))
	port := testPort()
	port.Subnets[0].Hosts = []topology.DHCPHost{{MAC: vmMAC, IP: hostIP, Name: "h"}}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p packet.Packet
		p.Decode(frame)
		out, v := Respond(frame, &p, port)
		if out == nil {
			return
		}
		if v != Offer && v != Ack && v != Nak {
			t.Fatalf("reply with verdict %v", v)
		}
		var r packet.Packet
		r.Decode(out)
		if !packet.VerifyIPv4(out, &r) || r.DstPort != ClientPort {
			t.Fatalf("bad reply %s", r.String())
		}
		m, err := dhcpv4.FromBytes(out[r.L4Off+8:])
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if y := ip4(m.YourIPAddr); v != Nak && !y.IsUnspecified() && y != hostIP {
			t.Fatalf("offered %v, the only address for this port is %v", y, hostIP)
		}
		if d := r.DstAddr(); d != bcastIP && d != hostIP && d != vmIP {
			t.Fatalf("reply to %v", d)
		}
	})
}
