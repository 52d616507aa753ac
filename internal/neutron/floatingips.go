package neutron

import (
	"net/http"
	"net/netip"
	"slices"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Floating IPs are elastic IPs: addresses of the public pool (the external
// network) held by a project, each mapped 1:1 (stateless NAT at the
// network's uplink) to a port's fixed IP while associated. Associating
// needs a router with the external gateway and an interface on the port's
// network (the internet gateway attached there), as Neutron needs one.
// Instances' auto-assigned public IPs (EC2) are not shown.

func fipNotFound(id string) *Error { return notFound("FloatingIPNotFound", "Floating IP", id) }

func (s *Server) floatingIPs() *resource {
	return &resource{
		collection: "floatingips", member: "floatingip", notFound: fipNotFound,
		list: func(c *call) ([]obj, error) {
			var out []obj
			err := c.read(func(st *vpc.State) error {
				for _, a := range st.Addresses {
					if !a.AutoAssigned && a.Tags[tagGatewayOf] == "" && c.sees(a.OwnerID) {
						out = append(out, renderFIP(st, a))
					}
				}
				return nil
			})
			return out, err
		},
		create: s.createFIP,
		update: s.updateFIP,
		del:    s.deleteFIP,
	}
}

func renderFIP(st *vpc.State, a *vpc.Address) obj {
	o := obj{"id": a.AllocationID, "floating_ip_address": a.PublicIP.String(), "floating_network_id": externalNetworkID,
		"tenant_id": a.OwnerID, "project_id": a.OwnerID, "status": "DOWN", "port_id": nil, "fixed_ip_address": nil,
		"router_id": nil, "description": a.Tags[tagDescription], "tags": neutronTags(a.Tags), "port_details": nil,
		"dns_domain": "", "dns_name": "", "qos_policy_id": nil}
	if e := st.NetworkInterfaces[a.NetworkInterfaceID]; e != nil {
		o["status"], o["port_id"], o["fixed_ip_address"] = "ACTIVE", e.ID, a.PrivateIPAddress.String()
		if g := st.InternetGatewayOf(e.VpcID); g != nil {
			o["router_id"] = g.ID
		}
	}
	return o
}

// fipTarget reads port_id and fixed_ip_address: the port (nil for none)
// and the address to map to.
func fipTarget(c *call, st *vpc.State, a attrs) (*vpc.NetworkInterface, netip.Addr, error) {
	portID, err := a.str("port_id", "", 255)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	fixed, err := a.str("fixed_ip_address", "", 64)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	if portID == "" {
		if fixed != "" {
			return nil, netip.Addr{}, badRequest("Bad floatingip request: fixed_ip_address needs a port_id.")
		}
		return nil, netip.Addr{}, nil
	}
	e := st.NetworkInterfaces[portID]
	if e == nil || !c.sees(e.OwnerID) {
		return nil, netip.Addr{}, portNotFound(portID)
	}
	ip := e.PrimaryIP()
	if fixed != "" {
		if ip, err = netip.ParseAddr(fixed); err != nil || !ip.Is4() {
			return nil, netip.Addr{}, badRequest("Invalid input for fixed_ip_address. Reason: '%s' is not a valid IP address.", fixed)
		}
		if !slices.ContainsFunc(e.PrivateIPs, func(p vpc.PrivateIP) bool { return p.Address == ip }) {
			return nil, netip.Addr{}, badRequest("Bad floatingip request: Port %s does not have fixed ip %s.", portID, ip)
		}
	}
	if g := st.InternetGatewayOf(e.VpcID); g == nil {
		return nil, netip.Addr{}, &Error{http.StatusNotFound, "ExternalGatewayForFloatingIPNotFound", "External network " + externalNetworkID + " is not reachable from subnet " + e.SubnetID + ".  Therefore, cannot associate Port " + portID + " with a Floating IP (no router with an external gateway has an interface on its network)."}
	}
	return e, ip, nil
}

// associate maps a to e's address ip (nil e: unmaps it), in tx.
func associate(st *vpc.State, tx *nsdb.VPCTx, a *vpc.Address, e *vpc.NetworkInterface, ip netip.Addr) error {
	a = clone(a)
	a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress, a.InstanceID = "", "", netip.Addr{}, ""
	if e != nil {
		for _, o := range st.AddressesOfInterface(e.ID) {
			if o.AllocationID == a.AllocationID || o.PrivateIPAddress != ip {
				continue
			}
			if !o.AutoAssigned {
				return conflict("FloatingIPPortAlreadyAssociated", "Cannot associate floating IP %s with port %s using fixed IP %s, as that fixed IP already has a floating IP %s.", a.PublicIP, e.ID, ip, o.PublicIP)
			}
			// An instance's auto-assigned public IP makes way, as for
			// AssociateAddress.
			if err := tx.Delete("addresses", o.AllocationID); err != nil {
				return err
			}
		}
		a.AssociationID, a.NetworkInterfaceID, a.PrivateIPAddress = ec2.NewID(vpc.KindEIPAssociation), e.ID, ip
		if e.Attachment != nil {
			a.InstanceID = e.Attachment.InstanceID
		}
	}
	return tx.Put(a.AllocationID, a)
}

func (s *Server) createFIP(c *call, a attrs) (string, error) {
	if err := a.only("floating_network_id", "port_id", "fixed_ip_address", "floating_ip_address", "description",
		"subnet_id", "tenant_id", "project_id", "dns_domain", "dns_name", "qos_policy_id"); err != nil {
		return "", err
	}
	netID, err := a.str("floating_network_id", "", 255)
	if err != nil {
		return "", err
	}
	if netID == "" {
		return "", badRequest("Failed to parse request. Required attribute 'floating_network_id' not specified")
	}
	desc, err := a.str("description", "", 255)
	if err != nil {
		return "", err
	}
	for _, f := range []struct{ k, why string }{
		{"floating_ip_address", "choosing the address is not supported (the lowest free one of the pool is given)"},
		{"subnet_id", "the external network has one subnet"},
		{"dns_domain", "DNS integration is not supported"}, {"dns_name", "DNS integration is not supported"},
		{"qos_policy_id", "QoS is not supported"},
	} {
		if raw, ok := a[f.k]; ok && string(raw) != "null" && string(raw) != `""` && !(f.k == "subnet_id" && string(raw) == `"`+externalSubnetID+`"`) {
			return "", badRequest("Invalid input for %s. Reason: %s.", f.k, f.why)
		}
	}
	var id string
	err = c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if err := s.checkExternal(st, c, netID); err != nil {
			return err
		}
		owner, err := c.owner(a, func(p string) bool { return st.Accounts[p] != nil })
		if err != nil {
			return err
		}
		e, ip, err := fipTarget(c, st, a)
		if err != nil {
			return err
		}
		if e != nil && e.OwnerID != owner {
			return portNotFound(e.ID)
		}
		if err := checkQuota(st, owner, "floatingip"); err != nil {
			return err
		}
		if usage(st, owner)["floatingip"] >= s.cfg.EC2.Limits().AddressesPerAccount {
			return conflict("OverQuota", "Quota exceeded for resources: ['floatingip'] (the cloud's elastic IP limit, %d).", s.cfg.EC2.Limits().AddressesPerAccount)
		}
		pub, err := s.cfg.EC2.AllocPublicIP(st)
		if err != nil {
			return conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", netID)
		}
		addr := &vpc.Address{AllocationID: ec2.NewID(vpc.KindAllocation), OwnerID: owner, PublicIP: pub, Domain: "vpc", Tags: withText(nil, "", desc)}
		id = addr.AllocationID
		if err := tx.Put(addr.AllocationID, addr); err != nil {
			return err
		}
		if e == nil {
			return nil
		}
		return associate(tx.State(), tx, addr, e, ip)
	})
	return id, err
}

func (c *call) fip(st *vpc.State, id string) (*vpc.Address, error) {
	a := st.Addresses[id]
	if a == nil || a.AutoAssigned || a.Tags[tagGatewayOf] != "" || !c.sees(a.OwnerID) {
		return nil, fipNotFound(id)
	}
	return a, nil
}

func (s *Server) updateFIP(c *call, id string, a attrs) error {
	if err := a.only("port_id", "fixed_ip_address", "description"); err != nil {
		return err
	}
	desc, err := a.str("description", "", 255)
	if err != nil {
		return err
	}
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		addr, err := c.fip(st, id)
		if err != nil {
			return err
		}
		if a.has("description") {
			addr = clone(addr)
			addr.Tags = withText(addr.Tags, "", desc)
			if err := tx.Put(addr.AllocationID, addr); err != nil {
				return err
			}
		}
		if !a.has("port_id") {
			if a.has("fixed_ip_address") {
				return badRequest("Bad floatingip request: fixed_ip_address needs a port_id.")
			}
			return nil
		}
		// Associate, move (another port) or disassociate (null).
		e, ip, err := fipTarget(c, st, a)
		if err != nil {
			return err
		}
		if e != nil && e.OwnerID != addr.OwnerID {
			return portNotFound(e.ID)
		}
		return associate(st, tx, addr, e, ip)
	})
}

func (s *Server) deleteFIP(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		if _, err := c.fip(st, id); err != nil {
			return err
		}
		return tx.Delete("addresses", id)
	})
}
