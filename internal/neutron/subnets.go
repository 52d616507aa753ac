package neutron

import (
	"encoding/json"
	"errors"
	"net/netip"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func subnetNotFound(id string) *Error { return notFound("SubnetNotFound", "Subnet", id) }

// Prefix lengths a subnet may have: a /28 leaves 11 addresses after the
// five every subnet reserves (as in a VPC); longer ones leave too few.
const (
	minSubnetBits = 8
	maxSubnetBits = 28
)

func (s *Server) subnets() *resource {
	return &resource{
		collection: "subnets", member: "subnet", bulk: true, notFound: subnetNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			// The public subnet is the admin's to see, as Neutron hides a
			// non-shared external network's subnets from members.
			if p, ok := s.externalPrefix(); ok && c.admin {
				out = append(out, s.renderExternalSubnet(p))
			}
			err := c.read(func(st *vpc.State) error {
				for _, v := range st.SortedVpcs() {
					for _, sub := range st.SubnetsOf(v.ID) {
						if c.sees(sub.OwnerID) {
							out = append(out, renderSubnet(sub))
						}
					}
				}
				return nil
			})
			return out, err
		},
		create: s.createSubnet,
		update: s.updateSubnet,
		del:    s.deleteSubnet,
	}
}

func renderSubnet(sub *vpc.Subnet) obj {
	o := obj{
		"id": sub.ID, "name": nameOf(sub.Tags), "description": sub.Tags[tagDescription],
		"network_id": sub.VpcID, "tenant_id": sub.OwnerID, "project_id": sub.OwnerID,
		"ip_version": 4, "cidr": sub.CidrBlock.String(),
		"ipv6_ra_mode": nil, "ipv6_address_mode": nil,
		"service_types": []string{}, "tags": neutronTags(sub.Tags), "segment_id": nil,
	}
	subnetView(sub, o)
	return o
}

func (s *Server) createSubnet(c *call, a attrs) (string, error) {
	if err := a.only("name", "description", "network_id", "cidr", "ip_version", "gateway_ip", "enable_dhcp",
		"allocation_pools", "dns_nameservers", "host_routes", "tenant_id", "project_id", "subnetpool_id",
		"ipv6_ra_mode", "ipv6_address_mode", "service_types", "use_default_subnetpool", "prefixlen"); err != nil {
		return "", err
	}
	name, desc, err := a.nameDesc()
	if err != nil {
		return "", err
	}
	netID, err := a.str("network_id", "", 255)
	if err != nil {
		return "", err
	}
	if netID == "" {
		return "", badRequest("Failed to parse request. Required attribute 'network_id' not specified")
	}
	if !a.has("ip_version") {
		return "", badRequest("Failed to parse request. Required attribute 'ip_version' not specified")
	}
	var ipv int
	if err := json.Unmarshal(a["ip_version"], &ipv); err != nil || (ipv != 4 && ipv != 6) {
		return "", badRequest("Invalid input for ip_version. Reason: '%s' is not in [4, 6].", a["ip_version"])
	}
	if ipv == 6 {
		return "", badRequest("Invalid input for ip_version. Reason: IPv6 subnets are not supported.")
	}
	cidrStr, err := a.str("cidr", "", 64)
	if err != nil {
		return "", err
	}
	poolID, err := a.nullableStr("subnetpool_id")
	if err != nil {
		return "", err
	}
	prefixlen := 0
	if raw, ok := a["prefixlen"]; ok {
		if err := json.Unmarshal(raw, &prefixlen); err != nil || prefixlen < minSubnetBits || prefixlen > maxSubnetBits {
			return "", badRequest("Invalid input for prefixlen. Reason: '%s' is not a prefix length from %d to %d.", raw, minSubnetBits, maxSubnetBits)
		}
		if poolID == "" {
			return "", badRequest("Bad subnets request: prefixlen is for a subnet from a subnet pool.")
		}
	}
	if cidrStr == "" && poolID == "" {
		return "", badRequest("Bad subnets request: a cidr must be specified in the absence of a subnet pool")
	}
	var cidr netip.Prefix
	if cidrStr != "" {
		if cidr, err = netip.ParsePrefix(cidrStr); err != nil || !cidr.Addr().Is4() {
			return "", badRequest("Invalid input for cidr. Reason: '%s' is not a valid IPv4 subnet.", cidrStr)
		}
		if cidr != cidr.Masked() {
			return "", badRequest("Invalid input for cidr. Reason: '%s' isn't a recommended CIDR, '%s' is recommended.", cidrStr, cidr.Masked())
		}
		if cidr.Bits() < minSubnetBits || cidr.Bits() > maxSubnetBits {
			return "", invalidInput("a subnet is a /%d to a /%d, not /%d", minSubnetBits, maxSubnetBits, cidr.Bits())
		}
	}
	for _, f := range []struct {
		k    string
		want any
		why  string
	}{
		{"ipv6_ra_mode", nil, "IPv6 is not supported"},
		{"ipv6_address_mode", nil, "IPv6 is not supported"},
		{"service_types", []any{}, "service types are not supported"},
		{"use_default_subnetpool", false, "default subnet pools are not supported"},
	} {
		if err := a.fixed(f.k, f.want, f.why); err != nil {
			return "", err
		}
	}
	var id string
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		v, err := c.network(st, netID)
		if err != nil {
			return err
		}
		owner, err := c.owner(a, func(p string) bool { return st.Accounts[p] != nil })
		if err != nil {
			return err
		}
		if c.admin && !a.has("project_id") && !a.has("tenant_id") {
			// The operator's subnet on a project's network is that project's (a
			// VPC's objects belong to its account).
			owner = v.OwnerID
		}
		if owner != v.OwnerID {
			return forbidden("A subnet belongs to its network's project (%s).", v.OwnerID)
		}
		cidr := cidr
		if poolID != "" {
			p, err := c.subnetPool(st, poolID)
			if err != nil {
				return err
			}
			if p.OwnerID != owner {
				return forbidden("Subnet pool %s is not of the subnet's project (%s).", poolID, owner)
			}
			if cidr, err = fromPool(st, p, v.ID, cidr, prefixlen); err != nil {
				return err
			}
		}
		sub := &vpc.Subnet{CidrBlock: cidr, SubnetPoolID: poolID}
		if err := subnetChoices(a, sub, nil, true); err != nil {
			return err
		}
		chosen := sub.GatewayIP.IsValid() || sub.NoGateway || len(sub.Pools) > 0
		if !v.Network && !v.CidrBlock.Contains(cidr.Addr()) || !v.Network && cidr.Bits() < v.CidrBlock.Bits() {
			return invalidInput("the subnet %s is outside the block %s of VPC %s", cidr, v.CidrBlock, v.ID)
		}
		if !v.Network && chosen {
			return invalidInput("a subnet of EC2 VPC %s keeps a VPC's gateway and reserved addresses", v.ID)
		}
		if err := checkQuota(st, owner, "subnet"); err != nil {
			return err
		}
		for _, o := range st.SubnetsOf(v.ID) {
			if o.CidrBlock.Overlaps(cidr) {
				return invalidInput("Requested subnet with cidr: %s for network: %s overlaps with another subnet", cidr, v.ID)
			}
		}
		zone := ""
		if zs := s.cfg.EC2.Zones(); len(zs) > 0 {
			zone = zs[0]
		}
		sub = clone(sub)
		sub.ID, sub.OwnerID, sub.VpcID, sub.AvailabilityZone = ec2.NewID(vpc.KindSubnet), owner, v.ID, zone
		sub.State, sub.Tags = vpc.StateAvailable, withText(nil, name, desc)
		if err := tx.Put(sub.ID, sub); err != nil {
			return err
		}
		id = sub.ID
		return setBlock(tx.State(), tx, v)
	})
	return id, err
}

// subnet returns a subnet the caller sees.
func (c *call) subnet(st *vpc.State, id string) (*vpc.Subnet, error) {
	if id == externalSubnetID && c.s.isExternal(externalNetworkID) {
		return nil, externalRefused("changed, deleted or given router interfaces")
	}
	sub := st.Subnets[id]
	if sub == nil || !c.sees(sub.OwnerID) {
		return nil, subnetNotFound(id)
	}
	return sub, nil
}

func (s *Server) updateSubnet(c *call, id string, a attrs) error {
	if err := a.only("name", "description", "enable_dhcp", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes"); err != nil {
		return err
	}
	name, desc, err := a.nameDesc()
	if err != nil {
		return err
	}
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		sub, err := c.subnet(st, id)
		if err != nil {
			return err
		}
		chosen := a.has("gateway_ip") || a.has("allocation_pools")
		if v := st.Vpcs[sub.VpcID]; v != nil && !v.Network && chosen {
			return invalidInput("a subnet of EC2 VPC %s keeps a VPC's gateway and reserved addresses", v.ID)
		}
		used := map[netip.Addr]bool{}
		for _, e := range st.InterfacesInSubnet(sub.ID) {
			for _, p := range e.PrivateIPs {
				used[p.Address] = true
			}
		}
		sub = clone(sub)
		if err := subnetChoices(a, sub, used, false); err != nil {
			return err
		}
		if _, ok := sub.Gateway(); !ok && routerOn(st, id) != nil {
			return conflict("SubnetInUse", "Unable to complete operation on subnet %s: a router has an interface on it, which needs its gateway.", id)
		}
		if !a.has("name") {
			name = nameOf(sub.Tags)
		}
		if !a.has("description") {
			desc = sub.Tags[tagDescription]
		}
		sub.Tags = withText(sub.Tags, name, desc)
		return tx.Put(sub.ID, sub)
	})
}

func (s *Server) deleteSubnet(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		sub, err := c.subnet(st, id)
		if err != nil {
			return err
		}
		if g := routerOn(st, id); g != nil {
			return conflict("SubnetInUse", "Unable to complete operation on subnet %s: router %s has an interface on it.", id, g.ID)
		}
		if err := ec2.DeleteSubnet(st, tx, sub); err != nil {
			return inUse("SubnetInUse", "subnet", id, err)
		}
		return setBlock(tx.State(), tx, st.Vpcs[sub.VpcID])
	})
}

// inUse answers Neutron's <X>InUse for a DependencyViolation of the shared
// checks, and other errors as they are.
func inUse(typ, kind, id string, err error) error {
	var ve *vpc.Error
	if errors.As(err, &ve) && ve.Code == vpc.CodeDependencyViolation {
		return conflict(typ, "Unable to complete operation on %s %s: %s", kind, id, ve.Message)
	}
	return err
}
