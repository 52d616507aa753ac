package neutron

import (
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/vpc"
)

// The external network is the cloud's public pool (--ec2-public-pool, the
// addresses the gateways announce): one network with router:external that
// every project sees and none owns, with one subnet covering the pool. It
// is not a VPC and has no ports: routers take it as their gateway and
// floating IPs come from it (as elastic IPs). It exists only while the
// server has a public pool.
const (
	externalNetworkID   = "public"
	externalNetworkName = "public"
	externalSubnetID    = "public-subnet"
)

// externalPrefix is the smallest prefix covering the public pool (false
// when there is no pool).
func (s *Server) externalPrefix() (netip.Prefix, bool) {
	var ps []netip.Prefix
	for _, r := range s.cfg.EC2.PublicPool() {
		ps = append(ps, netip.PrefixFrom(r.First, 32), netip.PrefixFrom(r.Last, 32))
	}
	if len(ps) == 0 {
		return netip.Prefix{}, false
	}
	return cover(ps), true
}

func (s *Server) renderExternalNetwork() obj {
	return obj{
		"id": externalNetworkID, "name": externalNetworkName, "description": "The cloud's public addresses",
		"tenant_id": "", "project_id": "",
		"admin_state_up": true, "status": "ACTIVE", "subnets": []string{externalSubnetID},
		"shared": false, "router:external": true, "mtu": s.cfg.MTU, "port_security_enabled": true,
		"availability_zone_hints": []string{}, "availability_zones": []string{},
		"ipv4_address_scope": nil, "ipv6_address_scope": nil, "l2_adjacency": false,
		"tags": []string{},
	}
}

func (s *Server) renderExternalSubnet(p netip.Prefix) obj {
	var pools []obj
	for _, r := range s.cfg.EC2.PublicPool() {
		pools = append(pools, obj{"start": r.First.String(), "end": r.Last.String()})
	}
	return obj{
		"id": externalSubnetID, "name": externalNetworkName, "description": "",
		"network_id": externalNetworkID, "tenant_id": "", "project_id": "",
		"ip_version": 4, "cidr": p.String(), "gateway_ip": nil,
		"allocation_pools": pools, "dns_nameservers": []string{}, "host_routes": []obj{}, "enable_dhcp": false,
		"ipv6_ra_mode": nil, "ipv6_address_mode": nil, "subnetpool_id": nil,
		"service_types": []string{}, "tags": []string{}, "segment_id": nil,
	}
}

// externalRefused answers a change to the external network or its subnet.
func externalRefused(what string) error {
	return forbidden("The external network and its subnet are the cloud's public pool: they cannot be %s.", what)
}

// isExternal reports whether id names the external network.
func (s *Server) isExternal(id string) bool {
	_, ok := s.externalPrefix()
	return ok && id == externalNetworkID
}

// externalIDs are the network ids a floating IP or a gateway may name: the
// external network's; a VPC network answers "not external".
func (s *Server) checkExternal(st *vpc.State, c *call, id string) error {
	if s.isExternal(id) {
		return nil
	}
	if v := st.Vpcs[id]; v != nil && c.sees(v.OwnerID) {
		return badRequest("Bad floatingip request: Network %s is not a valid external network.", id)
	}
	return networkNotFound(id)
}
