package neutron

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func portNotFound(id string) *Error { return notFound("PortNotFound", "Port", id) }

// TapName is the device Nova's libvirt driver makes for a port: "tap" and
// the first 11 characters of the port id.
func TapName(portID string) string {
	if len(portID) > 11 {
		portID = portID[:11]
	}
	return "tap" + portID
}

// vifType is binding:vif_type of a bound port: the VM's NIC is a plain
// TAP device the agent attaches to (Nova's VIF_TYPE_TAP).
const vifType = "tap"

func (s *Server) ports() *resource {
	return &resource{
		collection: "ports", member: "port", bulk: true, notFound: portNotFound,
		list: func(c *call) ([]obj, error) {
			hosts, err := s.hostNames(c)
			if err != nil {
				return nil, err
			}
			active, err := s.store.Store().ActivePorts(c.ctx)
			if err != nil {
				return nil, err
			}
			var out []obj
			err = c.read(func(st *vpc.State) error {
				for _, v := range st.SortedVpcs() {
					for _, e := range st.InterfacesOf(v.ID) {
						if c.sees(e.OwnerID) && e.InterfaceType == vpc.InterfaceTypeInterface {
							out = append(out, renderPort(st, e, hosts, active))
						}
					}
				}
				out = append(out, routerPorts(c, st)...)
				return nil
			})
			return out, err
		},
		get:    s.getPort,
		create: s.createPort,
		update: s.updatePort,
		del:    s.deletePort,
	}
}

// getPort renders one port: a status poll (GET /v2.0/ports/ID, as Nova
// and bench/neutron poll for ACTIVE) read every port of the cloud and
// every port's status before.
func (s *Server) getPort(c *call, id string) (obj, error) {
	hosts, err := s.hostNames(c)
	if err != nil {
		return nil, err
	}
	var out obj
	var hostID, portID string
	err = c.read(func(st *vpc.State) error {
		if p := routerPortOf(c, st, id); p != nil {
			out = p
			return nil
		}
		e := st.NetworkInterfaces[id]
		if e == nil || st.Vpcs[e.VpcID] == nil || !c.sees(e.OwnerID) || e.InterfaceType != vpc.InterfaceTypeInterface {
			return nil
		}
		hostID, portID = portHost(st, e), translate.ObjectID(e.ID, "port")
		out = renderPort(st, e, hosts, nil)
		return nil
	})
	if err != nil || out == nil || hostID == "" {
		return out, err
	}
	active, err := s.store.Store().PortActive(c.ctx, hostID, portID)
	if err != nil {
		return nil, err
	}
	if active {
		out["status"] = "ACTIVE"
	}
	return out, nil
}

// portHost is the topology host a port is bound on ("" for none): its
// instance's, else its binding's.
func portHost(st *vpc.State, e *vpc.NetworkInterface) string {
	if a := e.Attachment; a != nil {
		if inst := st.Instances[a.InstanceID]; inst != nil && inst.Placed() {
			return inst.HostID
		}
		return ""
	}
	if b := e.Binding; b != nil {
		return b.HostID
	}
	return ""
}

// hostNames maps topology host ids to names.
func (s *Server) hostNames(c *call) (map[string]string, error) {
	objs, err := s.store.Store().List(c.ctx, topology.KindHost)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, o := range objs {
		out[o.GetMeta().ID] = o.GetMeta().Name
	}
	return out, nil
}

// hostID resolves a compute host's name (binding:host_id) to the id of
// the topology host its agent registered.
func (s *Server) hostID(c *call, name string) (string, error) {
	hosts, err := s.hostNames(c)
	if err != nil {
		return "", err
	}
	for id, n := range hosts {
		if n == name {
			return id, nil
		}
	}
	return "", invalidInput("binding:host_id %q is not a host running a Canopy agent", name)
}

func renderPort(st *vpc.State, e *vpc.NetworkInterface, hosts, active map[string]string) obj {
	ips := []obj{}
	for _, p := range e.PrivateIPs {
		ips = append(ips, obj{"subnet_id": e.SubnetID, "ip_address": p.Address.String()})
	}
	groups := shownPortGroups(st, e.Groups)
	deviceID, deviceOwner, host, vif := e.DeviceID, e.DeviceOwner, "", "unbound"
	hostID := portHost(st, e)
	if a := e.Attachment; a != nil {
		// An EC2 instance's interface: Nova's way of saying so.
		deviceID, deviceOwner = a.InstanceID, "compute:"+e.AvailabilityZone
	}
	if hostID != "" {
		host, vif = hosts[hostID], vifType
		if host == "" && e.Binding != nil {
			host = e.Binding.HostName
		}
	}
	status := "DOWN"
	if hostID != "" && active[translate.ObjectID(e.ID, "port")] == hostID {
		status = "ACTIVE"
	}
	return obj{
		"id": e.ID, "name": nameOf(e.Tags), "description": e.Description,
		"network_id": e.VpcID, "tenant_id": e.OwnerID, "project_id": e.OwnerID,
		"mac_address": e.MacAddress, "admin_state_up": !e.AdminDown, "status": status,
		"device_id": deviceID, "device_owner": deviceOwner, "fixed_ips": ips,
		"security_groups": groups, "allowed_address_pairs": renderPairs(e.AddressPairs), "port_security_enabled": !e.PortSecurityOff,
		"binding:host_id": host, "binding:vif_type": vif, "binding:vif_details": obj{},
		"binding:vnic_type": "normal", "binding:profile": obj{}, "extra_dhcp_opts": []obj{},
		"tags": neutronTags(e.Tags),
	}
}

// portText reads what POST and PUT take alike.
type portText struct {
	name, desc, deviceID, deviceOwner, host string
}

func readPortText(a attrs) (portText, error) {
	var p portText
	var err error
	for _, f := range []struct {
		k   string
		dst *string
	}{{"name", &p.name}, {"description", &p.desc}, {"device_id", &p.deviceID}, {"device_owner", &p.deviceOwner}, {"binding:host_id", &p.host}} {
		if *f.dst, err = a.str(f.k, "", 255); err != nil {
			return p, err
		}
	}
	for _, f := range []struct {
		k    string
		want any
		why  string
	}{
		{"binding:vnic_type", "normal", "only normal vNICs (a TAP device) are supported"},
		{"binding:profile", map[string]any{}, "binding profiles are not supported"},
		{"extra_dhcp_opts", []any{}, "extra DHCP options are not supported"},
	} {
		if err := a.fixed(f.k, f.want, f.why); err != nil {
			return p, err
		}
	}
	return p, nil
}

// groupsAttr reads security_groups (nil when absent).
func groupsAttr(a attrs) ([]string, error) {
	raw, ok := a["security_groups"]
	if !ok {
		return nil, nil
	}
	var gs []string
	if err := json.Unmarshal(raw, &gs); err != nil || gs == nil {
		return nil, badRequest("Invalid input for security_groups. Reason: '%s' is not a list of ids.", raw)
	}
	return gs, nil
}

// portSecurity checks port_security_enabled psec against the groups asked
// (nil: none asked), as Neutron's ML2: a port without port security takes
// no group (400 PortSecurityAndIPRequiredForSecurityGroups; an empty list
// is fine).
func portSecurity(psec bool, groups []string) error {
	if !psec && len(groups) > 0 {
		return &Error{400, "PortSecurityAndIPRequiredForSecurityGroups", "Port security must be enabled and port must have an IP address in order to use security groups."}
	}
	return nil
}

// setPortSecurity turns e's port security on or off: off, it has no group
// and no source/destination check (the translator gives its bridge port no
// chain); on, the check is back (its groups are what the caller gives).
func setPortSecurity(e *vpc.NetworkInterface, psec bool) {
	e.PortSecurityOff, e.SourceDestCheck = !psec, psec
	if !psec {
		e.Groups = nil
	}
}

func renderPairs(ps []vpc.AddressPair) []obj {
	out := []obj{}
	for _, p := range ps {
		out = append(out, obj{"ip_address": p.IPAddress, "mac_address": p.MAC})
	}
	return out
}

// maxAddressPairs is Neutron's default max_allowed_address_pair.
const maxAddressPairs = 10

// pairsAttr reads allowed_address_pairs as Neutron's validator does (nil
// when absent); a pair without a MAC gets mac, the port's.
func pairsAttr(a attrs) ([]vpc.AddressPair, bool, error) {
	raw, ok := a["allowed_address_pairs"]
	if !ok {
		return nil, false, nil
	}
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, true, badRequest("Allowed address pairs must be a list.")
	}
	if len(list) > maxAddressPairs {
		return nil, true, &Error{400, "AllowedAddressPairExhausted", fmt.Sprintf("The number of allowed address pair exceeds the maximum %d.", maxAddressPairs)}
	}
	out := []vpc.AddressPair{}
	for _, m := range list {
		var p vpc.AddressPair
		for k, v := range m {
			s, isStr := v.(string)
			switch k {
			case "ip_address":
				p.IPAddress = s
				if !isStr {
					return nil, true, badRequest("'%v' is not a valid IP address or subnet", v)
				}
			case "mac_address":
				mac, err := topology.ParseMAC(s)
				if !isStr || err != nil || mac.IsMulticast() || mac.IsZero() {
					return nil, true, badRequest("'%v' is not a valid MAC address", v)
				}
				p.MAC = mac.String()
			default:
				return nil, true, badRequest("Unrecognized attribute(s) '%s'", k)
			}
		}
		if _, ok := m["ip_address"]; !ok {
			return nil, true, &Error{400, "AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address"}
		}
		pfx, err := p.Prefix()
		if err != nil || !pfx.Addr().Is4() {
			return nil, true, badRequest("'%s' is not a valid IPv4 address or subnet", p.IPAddress)
		}
		if strings.Contains(p.IPAddress, "/") && pfx.String() != p.IPAddress {
			return nil, true, badRequest("'%s' isn't a recognized IP subnet cidr, '%s' is recommended", p.IPAddress, pfx)
		}
		if slices.Contains(out, p) {
			return nil, true, &Error{400, "DuplicateAddressPairInRequest", fmt.Sprintf("Request contains duplicate address pair: mac_address %s ip_address %s.", p.MAC, p.IPAddress)}
		}
		out = append(out, p)
	}
	return out, true, nil
}

// setPairs gives e pairs, a pair without a MAC taking e's: 409
// AddressPairAndPortSecurityRequired on a port without port security.
func setPairs(e *vpc.NetworkInterface, pairs []vpc.AddressPair) error {
	if len(pairs) > 0 && e.PortSecurityOff {
		return conflict("AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
	}
	e.AddressPairs = nil
	for _, p := range pairs {
		if p.MAC == "" {
			p.MAC = e.MacAddress
		}
		if slices.Contains(e.AddressPairs, p) {
			return &Error{400, "DuplicateAddressPairInRequest", fmt.Sprintf("Request contains duplicate address pair: mac_address %s ip_address %s.", p.MAC, p.IPAddress)}
		}
		e.AddressPairs = append(e.AddressPairs, p)
	}
	return nil
}

// fixedIP is one entry of fixed_ips.
type fixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

func (s *Server) createPort(c *call, a attrs) (string, error) {
	if err := a.only("name", "description", "network_id", "admin_state_up", "mac_address", "fixed_ips", "security_groups",
		"device_id", "device_owner", "binding:host_id", "binding:vnic_type", "binding:profile", "port_security_enabled",
		"allowed_address_pairs", "extra_dhcp_opts", "tenant_id", "project_id"); err != nil {
		return "", err
	}
	txt, err := readPortText(a)
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
	mac, err := a.str("mac_address", "", 32)
	if err != nil {
		return "", err
	}
	if mac != "" {
		m, err := topology.ParseMAC(mac)
		if err != nil || m.IsMulticast() || m.IsZero() {
			return "", badRequest("Invalid input for mac_address. Reason: '%s' is not a valid unicast MAC address.", mac)
		}
		mac = m.String()
	}
	fixed, err := fixedIPsAttr(a)
	if err != nil {
		return "", err
	}
	up, err := a.boolean("admin_state_up", true)
	if err != nil {
		return "", err
	}
	groups, err := groupsAttr(a)
	if err != nil {
		return "", err
	}
	psecGiven := a.has("port_security_enabled")
	psec, err := a.boolean("port_security_enabled", true)
	if err != nil {
		return "", err
	}
	pairs, _, err := pairsAttr(a)
	if err != nil {
		return "", err
	}
	hostID := ""
	if txt.host != "" {
		if hostID, err = s.hostID(c, txt.host); err != nil {
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
			// The operator's port on a project's network is that project's (a
			// VPC's objects belong to its account).
			owner = v.OwnerID
		}
		if owner != v.OwnerID {
			return forbidden("A port belongs to its network's project (%s).", v.OwnerID)
		}
		if err := checkQuota(st, owner, "port"); err != nil {
			return err
		}
		if fixed == nil && len(st.SubnetsOf(v.ID)) > 0 {
			fixed = []fixedIP{{}} // one address of the first subnet
		}
		sub, ips, err := portAddresses(st, v, fixed, nil)
		if err != nil {
			return err
		}
		if mac == "" {
			mac = ec2.NewMAC()
		}
		for _, o := range st.InterfacesOf(v.ID) {
			if strings.EqualFold(o.MacAddress, mac) {
				return conflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use.", v.ID, mac)
			}
		}
		if !psecGiven {
			psec = !v.PortSecurityOff // the network's default
		}
		if err := portSecurity(psec, groups); err != nil {
			return err
		}
		if !psec {
			groups = nil
		} else if groups, err = s.portGroups(tx, owner, v, groups); err != nil {
			return err
		}
		e := &vpc.NetworkInterface{ID: ec2.NewID(vpc.KindInterface), OwnerID: owner, VpcID: v.ID,
			Description: txt.desc, MacAddress: mac, Groups: groups, AdminDown: !up,
			SourceDestCheck: true, Status: vpc.StateAvailable, InterfaceType: vpc.InterfaceTypeInterface,
			DeviceID: txt.deviceID, DeviceOwner: txt.deviceOwner, Tags: withText(nil, txt.name, "")}
		setAddresses(e, sub, ips)
		setPortSecurity(e, psec)
		if err := setPairs(e, pairs); err != nil {
			return err
		}
		if hostID != "" {
			e.Binding = &vpc.HostBinding{HostID: hostID, HostName: txt.host, Interface: TapName(e.ID)}
		}
		if len(e.PrivateIPs) > s.cfg.EC2.Limits().PrivateIPsPerInterface {
			return badRequest("A port has at most %d fixed IPs.", s.cfg.EC2.Limits().PrivateIPsPerInterface)
		}
		id = e.ID
		return tx.Put(e.ID, e)
	})
	return id, err
}

// fixedIPsAttr reads fixed_ips (nil when absent, empty for []).
func fixedIPsAttr(a attrs) ([]fixedIP, error) {
	raw, ok := a["fixed_ips"]
	if !ok {
		return nil, nil
	}
	fixed := []fixedIP{}
	if err := json.Unmarshal(raw, &fixed); err != nil || fixed == nil {
		return nil, badRequest("Invalid input for fixed_ips. Reason: '%s' is not a list of {subnet_id, ip_address}.", raw)
	}
	return fixed, nil
}

// setAddresses puts e in sub (none: no subnet, no address) with ips, the
// first primary.
func setAddresses(e *vpc.NetworkInterface, sub *vpc.Subnet, ips []netip.Addr) {
	e.SubnetID, e.AvailabilityZone, e.PrivateIPs = "", "", nil
	if sub == nil {
		return
	}
	e.SubnetID, e.AvailabilityZone = sub.ID, sub.AvailabilityZone
	for i, ip := range ips {
		e.PrivateIPs = append(e.PrivateIPs, vpc.PrivateIP{Address: ip, Primary: i == 0})
	}
}

// portAddresses resolves a port's fixed_ips to its subnet and addresses:
// every entry must be in one subnet of the network (a port is an
// interface, in one subnet); an entry with an ip_address takes it, one
// with only a subnet_id takes an address of e's own there (e: the port
// being updated, else nil) or the lowest free one. No entry: no subnet.
func portAddresses(st *vpc.State, v *vpc.Vpc, fixed []fixedIP, e *vpc.NetworkInterface) (*vpc.Subnet, []netip.Addr, error) {
	subs := st.SubnetsOf(v.ID)
	var sub *vpc.Subnet
	var ips []netip.Addr
	auto := 0
	for _, f := range fixed {
		var s *vpc.Subnet
		if f.SubnetID != "" {
			i := slices.IndexFunc(subs, func(x *vpc.Subnet) bool { return x.ID == f.SubnetID })
			if i < 0 {
				return nil, nil, invalidInput("subnet %s is not a subnet of network %s", f.SubnetID, v.ID)
			}
			s = subs[i]
		}
		if f.IPAddress != "" {
			ip, err := netip.ParseAddr(f.IPAddress)
			if err != nil || !ip.Is4() {
				return nil, nil, badRequest("Invalid input for fixed_ips. Reason: '%s' is not a valid IPv4 address.", f.IPAddress)
			}
			if s == nil {
				i := slices.IndexFunc(subs, func(x *vpc.Subnet) bool { return x.CidrBlock.Contains(ip) })
				if i < 0 {
					return nil, nil, &Error{400, "InvalidIpForNetwork", "IP address " + ip.String() + " is not a valid IP for any of the subnets on the specified network."}
				}
				s = subs[i]
			} else if !s.CidrBlock.Contains(ip) {
				return nil, nil, &Error{400, "InvalidIpForSubnet", "IP address " + ip.String() + " is not a valid IP for the specified subnet."}
			}
			if slices.Contains(ips, ip) {
				return nil, nil, invalidInput("address %s is given twice", ip)
			}
			ips = append(ips, ip)
		} else if s == nil {
			if len(subs) == 0 {
				return nil, nil, invalidInput("network %s has no subnet to take an address from", v.ID)
			}
			s = subs[0]
			auto++
		} else {
			auto++
		}
		if sub != nil && sub.ID != s.ID {
			return nil, nil, invalidInput("a port's fixed IPs must all be in one subnet on Canopy")
		}
		sub = s
	}
	if sub == nil {
		return nil, nil, nil
	}
	mine := func(ip netip.Addr) bool {
		return e != nil && e.SubnetID == sub.ID && slices.ContainsFunc(e.PrivateIPs, func(p vpc.PrivateIP) bool { return p.Address == ip })
	}
	for _, ip := range ips {
		if mine(ip) {
			continue
		}
		if err := vpc.CheckPrivateIP(st, sub, ip); err != nil {
			var ve *vpc.Error
			if errors.As(err, &ve) && ve.Code == vpc.CodeInvalidParameterValue {
				return nil, nil, &Error{400, "InvalidIpForSubnet", ve.Message}
			}
			return nil, nil, err
		}
	}
	if e != nil && e.SubnetID == sub.ID {
		for _, p := range e.PrivateIPs {
			if auto > 0 && !slices.Contains(ips, p.Address) {
				ips = append(ips, p.Address)
				auto--
			}
		}
	}
	if auto > 0 {
		more, err := st.AllocPrivateIPs(sub, auto, ips...)
		if err != nil {
			return nil, nil, err
		}
		ips = append(ips, more...)
	}
	return sub, ips, nil
}

// port returns a port the caller sees.
func (c *call) port(st *vpc.State, id string) (*vpc.NetworkInterface, error) {
	e := st.NetworkInterfaces[id]
	if p := routerPortOf(c, st, id); p != nil {
		return nil, conflict("L3PortInUse", "Port %s has owner %s and therefore cannot be changed or deleted directly via the port API.", id, p["device_owner"])
	}
	if e == nil || !c.sees(e.OwnerID) || e.InterfaceType != vpc.InterfaceTypeInterface {
		return nil, portNotFound(id)
	}
	return e, nil
}

func (s *Server) updatePort(c *call, id string, a attrs) error {
	if strings.HasPrefix(id, "rif-") || strings.HasPrefix(id, "rgw-") || strings.HasPrefix(id, "eni-") {
		if done, err := updateRouterPort(c, id, a); done {
			return err
		}
	}
	if err := a.only("name", "description", "admin_state_up", "security_groups", "device_id", "device_owner", "fixed_ips",
		"binding:host_id", "binding:vnic_type", "binding:profile", "port_security_enabled", "allowed_address_pairs", "extra_dhcp_opts"); err != nil {
		return err
	}
	txt, err := readPortText(a)
	if err != nil {
		return err
	}
	groups, err := groupsAttr(a)
	if err != nil {
		return err
	}
	fixed, err := fixedIPsAttr(a)
	if err != nil {
		return err
	}
	up, err := a.boolean("admin_state_up", true)
	if err != nil {
		return err
	}
	psecArg, err := a.boolean("port_security_enabled", true)
	if err != nil {
		return err
	}
	pairs, pairsGiven, err := pairsAttr(a)
	if err != nil {
		return err
	}
	hostID := ""
	if txt.host != "" {
		if hostID, err = s.hostID(c, txt.host); err != nil {
			return err
		}
	}
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		e, err := c.port(st, id)
		if err != nil {
			return err
		}
		if e.Attachment != nil && (a.has("binding:host_id") || a.has("device_id") || a.has("device_owner")) {
			return conflict("PortInUse", "Unable to complete operation on port %s: it is attached to instance %s (EC2).", id, e.Attachment.InstanceID)
		}
		if e.Attachment != nil && (fixed != nil || a.has("admin_state_up")) {
			return conflict("PortInUse", "Unable to complete operation on port %s: it is attached to instance %s (EC2), whose addresses and state are EC2's.", id, e.Attachment.InstanceID)
		}
		var sub *vpc.Subnet
		var ips []netip.Addr
		if fixed != nil {
			if sub, ips, err = portAddresses(st, st.Vpcs[e.VpcID], fixed, e); err != nil {
				return err
			}
			if len(ips) > s.cfg.EC2.Limits().PrivateIPsPerInterface {
				return badRequest("A port has at most %d fixed IPs.", s.cfg.EC2.Limits().PrivateIPsPerInterface)
			}
			for _, eip := range st.Addresses {
				if eip.NetworkInterfaceID == e.ID && !slices.Contains(ips, eip.PrivateIPAddress) {
					return conflict("PortInUse", "Unable to complete operation on port %s: floating IP %s is associated with its address %s.", id, eip.AllocationID, eip.PrivateIPAddress)
				}
			}
		}
		psec := !e.PortSecurityOff
		if a.has("port_security_enabled") {
			psec = psecArg
		}
		if err := portSecurity(psec, groups); err != nil {
			return err
		}
		if !psec && groups == nil && len(e.Groups) > 0 {
			// Turning it off leaves the groups: Neutron refuses until they
			// go (security_groups: [] in the same request).
			return conflict("PortSecurityPortHasSecurityGroup", "Port has security group associated. Cannot disable port security or IP address until security group is removed.")
		}
		if e.PortSecurityOff && psec && groups == nil {
			// Back on without groups: none, as Neutron (the default group
			// is only a new port's): it drops all but return flows and ARP.
			groups = []string{}
		}
		if groups != nil && psec {
			if groups, err = s.portGroups(tx, e.OwnerID, st.Vpcs[e.VpcID], groups); err != nil {
				return err
			}
		}
		e = clone(e)
		if a.has("port_security_enabled") {
			setPortSecurity(e, psec)
		}
		if !pairsGiven {
			pairs = e.AddressPairs // kept: turning port security off with them is refused
		}
		if err := setPairs(e, pairs); err != nil {
			return err
		}
		if fixed != nil {
			setAddresses(e, sub, ips)
		}
		if a.has("admin_state_up") {
			e.AdminDown = !up
		}
		if a.has("name") {
			e.Tags = withText(e.Tags, txt.name, "")
		}
		if a.has("description") {
			e.Description = txt.desc
		}
		if a.has("device_id") {
			e.DeviceID = txt.deviceID
		}
		if a.has("device_owner") {
			e.DeviceOwner = txt.deviceOwner
		}
		if groups != nil {
			e.Groups = groups
		}
		if a.has("binding:host_id") {
			e.Binding = nil
			if hostID != "" {
				e.Binding = &vpc.HostBinding{HostID: hostID, HostName: txt.host, Interface: TapName(e.ID)}
			}
		}
		return tx.Put(e.ID, e)
	})
}

func (s *Server) deletePort(c *call, id string) error {
	return c.update(func(st *vpc.State, tx *nsdb.VPCTx) error {
		e, err := c.port(st, id)
		if err != nil {
			return err
		}
		if e.Attachment != nil {
			return conflict("PortInUse", "Unable to complete operation on port %s: it is attached to instance %s (EC2).", id, e.Attachment.InstanceID)
		}
		return ec2.DeleteInterface(st, tx, e)
	})
}
