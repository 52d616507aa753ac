package dns

import (
	"net/netip"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
	mdns "github.com/miekg/dns"
)

var zone = &topology.ProvidedDNS{Address: netip.MustParseAddr("10.0.0.2"), VPC: netip.MustParsePrefix("10.0.0.0/16"),
	PrivateDomain: "ec2.internal", PublicDomain: "compute-1.amazonaws.com",
	PublicToPrivate: map[netip.Addr]netip.Addr{netip.MustParseAddr("203.0.113.9"): netip.MustParseAddr("10.0.1.9")}}

func query(t *testing.T, name string, qtype uint16) []byte {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4242
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAnswer(t *testing.T) {
	noPublic := *zone
	noPublic.PublicDomain = ""
	for _, tc := range []struct {
		name    string
		z       *topology.ProvidedDNS
		q       string
		qtype   uint16
		forward bool
		rcode   int
		answer  string // the first answer's data
	}{
		{"private name", zone, "ip-10-0-1-5.ec2.internal.", mdns.TypeA, false, mdns.RcodeSuccess, "10.0.1.5"},
		{"private name, any case", zone, "IP-10-0-1-5.EC2.Internal.", mdns.TypeA, false, mdns.RcodeSuccess, "10.0.1.5"},
		{"private name, AAAA: no data", zone, "ip-10-0-1-5.ec2.internal.", mdns.TypeAAAA, false, mdns.RcodeSuccess, ""},
		{"private name outside the VPC", zone, "ip-10-9-1-5.ec2.internal.", mdns.TypeA, false, mdns.RcodeNameError, ""},
		{"not a host name", zone, "www.ec2.internal.", mdns.TypeA, false, mdns.RcodeNameError, ""},
		{"leading zero", zone, "ip-10-0-1-05.ec2.internal.", mdns.TypeA, false, mdns.RcodeNameError, ""},
		{"the domain itself", zone, "ec2.internal.", mdns.TypeA, false, mdns.RcodeSuccess, ""},
		{"public name", zone, "ec2-203-0-113-5.compute-1.amazonaws.com.", mdns.TypeA, false, mdns.RcodeSuccess, "203.0.113.5"},
		{"public name of the VPC's own address: the private one", zone, "ec2-203-0-113-9.compute-1.amazonaws.com.", mdns.TypeA, false, mdns.RcodeSuccess, "10.0.1.9"},
		{"public name of a private address", zone, "ec2-10-0-1-9.compute-1.amazonaws.com.", mdns.TypeA, false, mdns.RcodeNameError, ""},
		{"public name with hostnames off", &noPublic, "ec2-203-0-113-5.compute-1.amazonaws.com.", mdns.TypeA, true, 0, ""},
		{"reverse of a VPC address", zone, "5.1.0.10.in-addr.arpa.", mdns.TypePTR, false, mdns.RcodeSuccess, "ip-10-0-1-5.ec2.internal."},
		{"reverse outside the VPC", zone, "8.8.8.8.in-addr.arpa.", mdns.TypePTR, true, 0, ""},
		{"another name", zone, "example.org.", mdns.TypeA, true, 0, ""},
	} {
		reply, fwd := Answer(tc.z, query(t, tc.q, tc.qtype))
		if fwd != tc.forward {
			t.Errorf("%s: forward %v, want %v", tc.name, fwd, tc.forward)
			continue
		}
		if fwd {
			if reply != nil {
				t.Errorf("%s: forwarded and answered", tc.name)
			}
			continue
		}
		var r mdns.Msg
		if err := r.Unpack(reply); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.Id != 4242 || !r.Response || r.Rcode != tc.rcode || !r.RecursionAvailable {
			t.Errorf("%s: id %d response %v rcode %s", tc.name, r.Id, r.Response, mdns.RcodeToString[r.Rcode])
		}
		got := ""
		if len(r.Answer) > 0 {
			switch rr := r.Answer[0].(type) {
			case *mdns.A:
				got = rr.A.String()
			case *mdns.PTR:
				got = rr.Ptr
			}
			if r.Answer[0].Header().Ttl != TTL {
				t.Errorf("%s: TTL %d", tc.name, r.Answer[0].Header().Ttl)
			}
		}
		if got != tc.answer {
			t.Errorf("%s: answer %q, want %q", tc.name, got, tc.answer)
		}
	}
	// Garbage and replies are dropped; a query with two questions is a
	// format error.
	if r, fwd := Answer(zone, []byte{1, 2, 3}); r != nil || fwd {
		t.Errorf("garbage: %v %v", r, fwd)
	}
	m := new(mdns.Msg)
	m.SetQuestion("ip-10-0-1-5.ec2.internal.", mdns.TypeA)
	m.Question = append(m.Question, m.Question[0])
	b, _ := m.Pack()
	reply, _ := Answer(zone, b)
	var r mdns.Msg
	if err := r.Unpack(reply); err != nil || r.Rcode != mdns.RcodeFormatError {
		t.Errorf("two questions: %v %s", err, mdns.RcodeToString[r.Rcode])
	}
	if sf := ServFail(query(t, "example.org.", mdns.TypeA)); sf == nil {
		t.Error("no SERVFAIL")
	} else if err := r.Unpack(sf); err != nil || r.Rcode != mdns.RcodeServerFailure || r.Id != 4242 {
		t.Errorf("SERVFAIL %v %s", err, mdns.RcodeToString[r.Rcode])
	}
}

func FuzzAnswer(f *testing.F) {
	m := new(mdns.Msg)
	m.SetQuestion("ip-10-0-1-5.ec2.internal.", mdns.TypeA)
	b, _ := m.Pack()
	f.Add(b)
	f.Fuzz(func(t *testing.T, q []byte) {
		reply, fwd := Answer(zone, q)
		if reply != nil && fwd {
			t.Fatal("answered and forwarded")
		}
		if reply != nil {
			var r mdns.Msg
			if err := r.Unpack(reply); err != nil {
				t.Fatalf("unparsable reply: %v", err)
			}
		}
	})
}
