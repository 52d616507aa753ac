package ec2

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// AddrRange is an inclusive range of public IPv4 addresses.
type AddrRange struct {
	First, Last netip.Addr
}

// ParsePool parses the operator's public pool: comma-separated CIDRs
// ("198.51.100.0/24", whose network and broadcast addresses are left out)
// and ranges ("203.0.113.10-203.0.113.20").
func ParsePool(s string) ([]AddrRange, error) {
	var out []AddrRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if a, b, ok := strings.Cut(part, "-"); ok {
			first, err1 := netip.ParseAddr(strings.TrimSpace(a))
			last, err2 := netip.ParseAddr(strings.TrimSpace(b))
			if err1 != nil || err2 != nil || !first.Is4() || !last.Is4() || last.Less(first) {
				return nil, fmt.Errorf("public pool %q: want first-last IPv4 addresses in order", part)
			}
			out = append(out, AddrRange{first, last})
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			return nil, fmt.Errorf("public pool %q: not an IPv4 CIDR block or range", part)
		}
		first, last := p.Addr(), vpc.Nth(p, 1<<(32-p.Bits())-1)
		if p.Bits() < 31 {
			first, last = first.Next(), last.Prev()
		}
		out = append(out, AddrRange{first, last})
	}
	// Two parts sharing an address would hand it out once per part.
	for i, r := range out {
		for _, q := range out[:i] {
			if !r.Last.Less(q.First) && !q.Last.Less(r.First) {
				return nil, fmt.Errorf("public pool: %s-%s overlaps %s-%s", r.First, r.Last, q.First, q.Last)
			}
		}
	}
	return out, nil
}

// allocPublicIP returns the lowest pool address no account holds.
func (s *Server) allocPublicIP(st *vpc.State) (netip.Addr, error) {
	for _, r := range s.cfg.PublicPool {
		for a := r.First; a.IsValid() && !r.Last.Less(a); a = a.Next() {
			if st.AddressWithIP(a) == nil {
				return a, nil
			}
		}
	}
	return netip.Addr{}, &vpc.Error{Code: vpc.CodeInsufficientAddressCapacity, Message: "There are no free addresses in the public pool."}
}
