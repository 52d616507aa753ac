// Package dns answers a VPC's resolver (EC2's AmazonProvidedDNS) the way
// AWS does: instances' private host names (ip-10-0-1-5.ec2.internal) for
// the VPC's addresses, public host names (ec2-203-0-113-5.compute-1.
// amazonaws.com) when the VPC has DNS hostnames on, reverse lookups of the
// VPC's addresses; every other name is for the cloud's resolvers, which the
// caller (the agent) asks. It is pure: a query in, an answer or "forward"
// out; it does no I/O and starts no goroutines.
package dns

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	mdns "github.com/miekg/dns"
)

// TTL of the answers about the VPC's own names (AWS answers 60 s).
const TTL = 60

// LinkLocal is the resolver's other address, reachable from every VPC.
var LinkLocal = netip.AddrFrom4([4]byte{169, 254, 169, 253})

// Answer answers query (a DNS message) for the VPC resolver z. It returns
// the reply to send, or forward=true when the name is none of the VPC's
// and the query should go to z's upstreams as it is. A message that does
// not parse gets neither (it is dropped, as resolvers do).
func Answer(z *topology.ProvidedDNS, query []byte) (reply []byte, forward bool) {
	var q mdns.Msg
	if err := q.Unpack(query); err != nil || q.Response {
		return nil, false
	}
	r := new(mdns.Msg)
	r.SetReply(&q)
	r.RecursionAvailable = true
	if q.Opcode != mdns.OpcodeQuery || len(q.Question) != 1 {
		r.Rcode = mdns.RcodeNotImplemented
		if q.Opcode == mdns.OpcodeQuery {
			r.Rcode = mdns.RcodeFormatError
		}
		return pack(r)
	}
	qs := q.Question[0]
	name := strings.ToLower(qs.Name)
	switch {
	case under(name, z.PrivateDomain):
		answerHost(r, qs, name, z.PrivateDomain, "ip-", func(a netip.Addr) (netip.Addr, bool) { return a, z.VPC.Contains(a) })
	case z.PublicDomain != "" && under(name, z.PublicDomain):
		// Inside the VPC the public name of one of its own addresses is
		// the private address behind it (AWS's split horizon); any other
		// public name is its public address.
		answerHost(r, qs, name, z.PublicDomain, "ec2-", func(a netip.Addr) (netip.Addr, bool) {
			if priv, ok := z.PublicToPrivate[a]; ok {
				return priv, true
			}
			return a, !z.VPC.Contains(a)
		})
	case strings.HasSuffix(name, ".in-addr.arpa."):
		a, ok := reverseAddr(name)
		if !ok || !z.VPC.Contains(a) {
			return nil, true // not the VPC's: the cloud's resolvers know
		}
		if qs.Qtype == mdns.TypePTR || qs.Qtype == mdns.TypeANY {
			r.Answer = append(r.Answer, &mdns.PTR{Hdr: hdr(qs.Name, mdns.TypePTR), Ptr: hostName("ip-", a, z.PrivateDomain)})
		}
	default:
		return nil, true
	}
	return pack(r)
}

// ServFail is the answer to query when no upstream answered.
func ServFail(query []byte) []byte {
	var q mdns.Msg
	if err := q.Unpack(query); err != nil {
		return nil
	}
	r := new(mdns.Msg)
	r.SetRcode(&q, mdns.RcodeServerFailure)
	r.RecursionAvailable = true
	b, _ := pack(r)
	return b
}

// under reports whether name (lowercase, fully qualified) is domain or a
// name in it.
func under(name, domain string) bool {
	d := strings.ToLower(strings.TrimSuffix(domain, ".")) + "."
	return domain != "" && (name == d || strings.HasSuffix(name, "."+d))
}

// answerHost answers a name of domain: <prefix>a-b-c-d.<domain> names
// a.b.c.d, and resolve says which address answers it, or that the name
// does not exist; anything else in the domain does not exist.
func answerHost(r *mdns.Msg, qs mdns.Question, name, domain, prefix string, resolve func(netip.Addr) (netip.Addr, bool)) {
	label, rest, _ := strings.Cut(name, ".")
	a, parsed := dashed(strings.TrimPrefix(label, prefix))
	ok := false
	if parsed {
		a, ok = resolve(a)
	}
	if rest+"" != strings.ToLower(strings.TrimSuffix(domain, "."))+"." || !strings.HasPrefix(label, prefix) || !ok {
		if name != strings.ToLower(strings.TrimSuffix(domain, "."))+"." {
			r.Rcode = mdns.RcodeNameError
		}
		r.Ns = append(r.Ns, soa(domain))
		return
	}
	if qs.Qtype == mdns.TypeA || qs.Qtype == mdns.TypeANY {
		r.Answer = append(r.Answer, &mdns.A{Hdr: hdr(qs.Name, mdns.TypeA), A: a.AsSlice()})
	}
}

func hdr(name string, t uint16) mdns.RR_Header {
	return mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET, Ttl: TTL}
}

func soa(domain string) mdns.RR {
	d := mdns.Fqdn(strings.ToLower(domain))
	return &mdns.SOA{Hdr: hdr(d, mdns.TypeSOA), Ns: "ns." + d, Mbox: "hostmaster." + d, Serial: 1, Refresh: 7200, Retry: 900, Expire: 1209600, Minttl: TTL}
}

// dashed parses "10-0-1-5" as 10.0.1.5.
func dashed(s string) (netip.Addr, bool) {
	parts := strings.Split(s, "-")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 || (len(p) > 1 && p[0] == '0') {
			return netip.Addr{}, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// reverseAddr parses d.c.b.a.in-addr.arpa.
func reverseAddr(name string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(name, ".in-addr.arpa."), ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	return a, err == nil && a.Is4()
}

func hostName(prefix string, a netip.Addr, domain string) string {
	return prefix + strings.ReplaceAll(a.String(), ".", "-") + "." + mdns.Fqdn(strings.ToLower(domain))
}

func pack(r *mdns.Msg) ([]byte, bool) {
	b, err := r.Pack()
	if err != nil {
		return nil, false
	}
	return b, false
}
