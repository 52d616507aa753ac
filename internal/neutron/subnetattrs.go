package neutron

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Neutron's limits on a subnet's lists (max_dns_nameservers,
// max_subnet_host_routes).
const (
	maxDNSServers = 5
	maxHostRoutes = 20
)

// subnetChoices applies the attributes a subnet's owner chooses
// (gateway_ip, allocation_pools, dns_nameservers, host_routes,
// enable_dhcp) to sub, checking them as Neutron does. used are the
// addresses ports hold in the subnet (a gateway cannot move onto one);
// create: a new subnet (whose default pool leaves out its gateway, where
// an update's gateway must be outside the pools).
func subnetChoices(a attrs, sub *vpc.Subnet, used map[netip.Addr]bool, create bool) error {
	p := sub.CidrBlock
	first, last := vpc.Nth(p, 0), vpc.Nth(p, 1<<(32-p.Bits())-1)
	if raw, ok := a["gateway_ip"]; ok {
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			return badRequest("Invalid input for gateway_ip. Reason: '%s' is not a valid IP address.", raw)
		}
		switch {
		case s == nil:
			sub.NoGateway, sub.GatewayIP = true, netip.Addr{}
		default:
			gw, err := netip.ParseAddr(*s)
			if err != nil || !gw.Is4() {
				return badRequest("Invalid input for gateway_ip. Reason: '%s' is not a valid IP address.", *s)
			}
			if !p.Contains(gw) || gw == first || gw == last {
				return &Error{http.StatusBadRequest, "InvalidInput", "Invalid input for operation: Gateway is not valid on subnet (" + gw.String() + " in " + p.String() + ")."}
			}
			if used[gw] {
				return conflict("GatewayIpInUse", "Gateway ip %s is in use by a port of subnet %s.", gw, sub.ID)
			}
			sub.NoGateway, sub.GatewayIP = false, gw
			if gw == vpc.Nth(p, 1) && len(sub.Pools) == 0 && !a.has("allocation_pools") {
				sub.GatewayIP = netip.Addr{} // the VPC default
			}
		}
	}
	if raw, ok := a["allocation_pools"]; ok {
		var in []struct {
			Start string `json:"start"`
			End   string `json:"end"`
		}
		if err := json.Unmarshal(raw, &in); err != nil || in == nil {
			return badRequest("Invalid input for allocation_pools. Reason: '%s' is not a list of {start, end}.", raw)
		}
		var pools []vpc.AddrRange
		for _, r := range in {
			s, err1 := netip.ParseAddr(r.Start)
			e, err2 := netip.ParseAddr(r.End)
			if err1 != nil || err2 != nil || !s.Is4() || !e.Is4() || e.Less(s) {
				return &Error{http.StatusBadRequest, "InvalidAllocationPool", "The allocation pool " + r.Start + "-" + r.End + " is not valid."}
			}
			if !p.Contains(s) || !p.Contains(e) || s == first || e == last {
				return &Error{http.StatusBadRequest, "OutOfBoundsAllocationPool", "The allocation pool " + r.Start + "-" + r.End + " spans beyond the subnet cidr " + p.String() + "."}
			}
			for _, o := range pools {
				if !(e.Less(o.Start) || o.End.Less(s)) {
					return conflict("OverlappingAllocationPools", "Found overlapping allocation pools: %s-%s %s-%s for subnet %s.", o.Start, o.End, s, e, p)
				}
			}
			pools = append(pools, vpc.AddrRange{Start: s, End: e})
		}
		if len(pools) == 0 {
			return badRequest("Invalid input for allocation_pools. Reason: an empty list leaves no address to allocate.")
		}
		slices.SortFunc(pools, func(x, y vpc.AddrRange) int { return x.Start.Compare(y.Start) })
		sub.Pools = pools
	} else if create && sub.GatewayIP.IsValid() {
		// A gateway of one's own and no pools: the default pool without it.
		for _, r := range (&vpc.Subnet{CidrBlock: p}).AllocationPools() {
			sub.Pools = append(sub.Pools, split(r, sub.GatewayIP)...)
		}
	}
	if gw, ok := sub.Gateway(); ok {
		for _, r := range sub.AllocationPools() {
			if r.Contains(gw) {
				return conflict("GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s-%s.", gw, r.Start, r.End)
			}
		}
	}
	if raw, ok := a["dns_nameservers"]; ok {
		var in []string
		if err := json.Unmarshal(raw, &in); err != nil || in == nil {
			return badRequest("Invalid input for dns_nameservers. Reason: '%s' is not a list of addresses.", raw)
		}
		if len(in) > maxDNSServers {
			return &Error{http.StatusBadRequest, "DNSNameServersExhausted", "Unable to complete operation for " + p.String() + ". The number of DNS nameservers exceeds the limit 5."}
		}
		var dns []netip.Addr
		for _, s := range in {
			ip, err := netip.ParseAddr(s)
			if err != nil || !ip.Is4() || !ip.IsGlobalUnicast() {
				return badRequest("Invalid input for dns_nameservers. Reason: '%s' is not a valid nameserver.", s)
			}
			if slices.Contains(dns, ip) {
				return badRequest("Invalid input for dns_nameservers. Reason: Duplicate nameserver '%s'.", s)
			}
			dns = append(dns, ip)
		}
		sub.DNSServers = dns
	}
	if raw, ok := a["host_routes"]; ok {
		var in []struct {
			Destination string `json:"destination"`
			NextHop     string `json:"nexthop"`
		}
		if err := json.Unmarshal(raw, &in); err != nil || in == nil {
			return badRequest("Invalid input for host_routes. Reason: '%s' is not a list of {destination, nexthop}.", raw)
		}
		if len(in) > maxHostRoutes {
			return &Error{http.StatusBadRequest, "HostRoutesExhausted", "Unable to complete operation for " + p.String() + ". The number of host routes exceeds the limit 20."}
		}
		var routes []vpc.HostRoute
		for _, r := range in {
			d, err1 := netip.ParsePrefix(r.Destination)
			n, err2 := netip.ParseAddr(r.NextHop)
			if err1 != nil || err2 != nil || !d.Addr().Is4() || !n.Is4() {
				return badRequest("Invalid input for host_routes. Reason: '%s' via '%s' is not a valid host route.", r.Destination, r.NextHop)
			}
			hr := vpc.HostRoute{Destination: d.Masked(), NextHop: n}
			if slices.Contains(routes, hr) {
				return badRequest("Invalid input for host_routes. Reason: Duplicate hostroute '%s'.", r.Destination)
			}
			routes = append(routes, hr)
		}
		sub.HostRoutes = routes
	}
	if a.has("enable_dhcp") {
		on, err := a.boolean("enable_dhcp", true)
		if err != nil {
			return err
		}
		sub.DHCPDisabled = !on
	}
	return nil
}

// split is r without a.
func split(r vpc.AddrRange, a netip.Addr) []vpc.AddrRange {
	if !r.Contains(a) {
		return []vpc.AddrRange{r}
	}
	var out []vpc.AddrRange
	if r.Start != a {
		out = append(out, vpc.AddrRange{Start: r.Start, End: a.Prev()})
	}
	if r.End != a {
		out = append(out, vpc.AddrRange{Start: a.Next(), End: r.End})
	}
	return out
}

// subnetView renders a subnet's chosen attributes.
func subnetView(sub *vpc.Subnet, o obj) {
	o["gateway_ip"] = nil
	if gw, ok := sub.Gateway(); ok {
		o["gateway_ip"] = gw.String()
	}
	pools := []obj{}
	for _, r := range sub.AllocationPools() {
		pools = append(pools, obj{"start": r.Start.String(), "end": r.End.String()})
	}
	o["allocation_pools"] = pools
	dns := []string{}
	for _, a := range sub.DNSServers {
		dns = append(dns, a.String())
	}
	o["dns_nameservers"] = dns
	routes := []obj{}
	for _, r := range sub.HostRoutes {
		routes = append(routes, obj{"destination": r.Destination.String(), "nexthop": r.NextHop.String()})
	}
	o["host_routes"] = routes
	o["enable_dhcp"] = !sub.DHCPDisabled
	o["subnetpool_id"] = nil
	if sub.SubnetPoolID != "" {
		o["subnetpool_id"] = sub.SubnetPoolID
	}
}
