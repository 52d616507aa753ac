package topology

import (
	"errors"
	"fmt"
)

// ErrConflict marks an integrity failure that depends on other objects'
// state (linking an already-linked port, deleting a chain still in use). The
// REST API answers it with 409.
var ErrConflict = errors.New("conflict")

// ConflictError is an ErrConflict with details.
type ConflictError struct {
	Field  string
	Reason string
}

func (e *ConflictError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Check verifies that o, about to be written (created when old is nil,
// updated otherwise), is consistent with the objects in r: every reference
// resolves to an object of the right kind and the cross-object rules hold.
// o must already have passed Validate. Unknown references are *FieldError
// (the caller sent a bad id); rules broken by other objects' state are
// *ConflictError.
func Check(r Reader, old, o Object) error {
	for _, ref := range o.Refs() {
		if ref.ID == "" {
			return fieldErr(ref.Field, "is required")
		}
		if r.Get(ref.Kind, ref.ID) == nil && !(ref.Kind == o.Kind() && ref.ID == o.GetMeta().ID) {
			return fieldErr(ref.Field, "%s %s does not exist", ref.Kind, ref.ID)
		}
	}
	switch v := o.(type) {
	case *Port:
		return checkPort(r, old, v)
	case *Route:
		return checkRoute(r, old, v)
	case *Chain:
		return checkChainCycle(r, v)
	case *DHCPSubnet:
		return checkDHCP(r, old, v)
	case *TunnelZone:
		return checkTunnelZone(r, v)
	}
	return nil
}

func checkPort(r Reader, old Object, p *Port) error {
	if o, ok := old.(*Port); ok {
		if o.DeviceID != p.DeviceID || o.DeviceKind != p.DeviceKind {
			return fieldErr("device_id", "cannot change: a port stays on the device it was created on")
		}
		if o.TunnelKey != p.TunnelKey {
			return fieldErr("tunnel_key", "cannot change: assigned by the store")
		}
	}
	if p.PeerID != "" {
		if p.PeerID == p.ID {
			return fieldErr("peer_id", "a port cannot be linked to itself")
		}
		peer := r.Get(KindPort, p.PeerID).(*Port)
		if peer.DeviceKind == KindBridge && p.DeviceKind == KindBridge {
			return fieldErr("peer_id", "bridge ports can only be linked to router ports")
		}
		if peer.DeviceID == p.DeviceID {
			return fieldErr("peer_id", "port %s is on the same device", p.PeerID)
		}
		if peer.PeerID != "" && peer.PeerID != p.ID {
			return &ConflictError{"peer_id", fmt.Sprintf("port %s is already linked to port %s", p.PeerID, peer.PeerID)}
		}
		if peer.HostID != "" {
			return &ConflictError{"peer_id", fmt.Sprintf("port %s is bound to a host interface; an exterior port cannot be linked", p.PeerID)}
		}
	}
	if p.HostID != "" {
		// A port another port is linked to is interior; it cannot be bound
		// too (Validate catches this on p itself, this catches the peer side).
		for _, k := range r.Referrers(KindPort, p.ID) {
			if q, ok := r.Get(k.Kind, k.ID).(*Port); ok && q.PeerID == p.ID && q.ID != p.ID {
				return &ConflictError{"host_id", fmt.Sprintf("port %s is linked to port %s; an interior port cannot be bound", p.ID, q.ID)}
			}
		}
		// (host, interface) is bound to one port at most.
		for _, k := range r.Referrers(KindHost, p.HostID) {
			q, ok := r.Get(k.Kind, k.ID).(*Port)
			if ok && q.ID != p.ID && q.Interface == p.Interface {
				return &ConflictError{"interface", fmt.Sprintf("interface %s of host %s is already bound to port %s", p.Interface, p.HostID, q.ID)}
			}
		}
	}
	if p.DeviceKind == KindRouter && p.Address.IsValid() {
		for _, k := range r.Referrers(KindRouter, p.DeviceID) {
			q, ok := r.Get(k.Kind, k.ID).(*Port)
			if !ok || q.ID == p.ID || !q.Address.IsValid() {
				continue
			}
			if q.Address.Addr() == p.Address.Addr() {
				return &ConflictError{"address", fmt.Sprintf("address %s is already on port %s of this router", p.Address.Addr(), q.ID)}
			}
			// Overlapping subnets would give the router two connected
			// routes for the same addresses, and ARP for them on both ports.
			if q.Address.Masked().Overlaps(p.Address.Masked()) {
				return &ConflictError{"address", fmt.Sprintf("subnet %s overlaps subnet %s of port %s of this router; a router's ports need disjoint subnets", p.Address.Masked(), q.Address.Masked(), q.ID)}
			}
		}
	}
	return nil
}

func checkRoute(r Reader, old Object, rt *Route) error {
	if o, ok := old.(*Route); ok && o.RouterID != rt.RouterID {
		return fieldErr("router_id", "cannot change: a route stays on the router it was created on")
	}
	if rt.InPort != "" {
		if p := r.Get(KindPort, rt.InPort).(*Port); p.DeviceKind != KindRouter || p.DeviceID != rt.RouterID {
			return fieldErr("in_port", "port %s is not a port of router %s", rt.InPort, rt.RouterID)
		}
	}
	if rt.NextHopPort != "" {
		p := r.Get(KindPort, rt.NextHopPort).(*Port)
		if p.DeviceKind != KindRouter || p.DeviceID != rt.RouterID {
			return fieldErr("next_hop_port", "port %s is not a port of router %s", rt.NextHopPort, rt.RouterID)
		}
		// A /32 port (an uplink) has no subnet: its gateway is reached on
		// the link, like Linux's "onlink".
		if rt.NextHopGateway.IsValid() && p.Address.IsValid() && p.Address.Bits() < 32 && !p.Address.Masked().Contains(rt.NextHopGateway) {
			return fieldErr("next_hop_gateway", "%s is not in the subnet %s of port %s", rt.NextHopGateway, p.Address.Masked(), p.ID)
		}
	}
	return nil
}

// checkChainCycle refuses a chain whose jumps (through other chains) lead
// back to itself.
func checkChainCycle(r Reader, c *Chain) error {
	jumps := func(id string) []string {
		var ch *Chain
		if id == c.ID {
			ch = c
		} else if o, ok := r.Get(KindChain, id).(*Chain); ok {
			ch = o
		}
		if ch == nil {
			return nil
		}
		var out []string
		for _, rule := range ch.Rules {
			if rule.Action == ActionJump {
				out = append(out, rule.JumpChain)
			}
		}
		return out
	}
	// Depth-first search from each of c's jump targets, looking for c.
	for i, rule := range c.Rules {
		if rule.Action != ActionJump {
			continue
		}
		seen := map[string]bool{}
		stack := []string{rule.JumpChain}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if id == c.ID {
				return fieldErr(fmt.Sprintf("rules[%d].jump_chain", i), "jumping to chain %s makes a cycle back to chain %s", rule.JumpChain, c.ID)
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			stack = append(stack, jumps(id)...)
		}
	}
	return nil
}

func checkDHCP(r Reader, old Object, d *DHCPSubnet) error {
	if o, ok := old.(*DHCPSubnet); ok && o.BridgeID != d.BridgeID {
		return fieldErr("bridge_id", "cannot change: a DHCP subnet stays on its bridge")
	}
	for _, k := range r.Referrers(KindBridge, d.BridgeID) {
		q, ok := r.Get(k.Kind, k.ID).(*DHCPSubnet)
		if ok && q.ID != d.ID && q.Subnet.Masked().Overlaps(d.Subnet.Masked()) {
			return &ConflictError{"subnet", fmt.Sprintf("%s overlaps DHCP subnet %s (%s) on the same bridge", d.Subnet, q.ID, q.Subnet)}
		}
	}
	return nil
}

func checkTunnelZone(r Reader, z *TunnelZone) error {
	// A host tunnels from one underlay address: it is a member of one zone.
	for i, m := range z.Members {
		for _, k := range r.Referrers(KindHost, m.HostID) {
			if k.Kind == KindTunnelZone && k.ID != z.ID {
				return &ConflictError{fmt.Sprintf("members[%d].host_id", i), fmt.Sprintf("host %s is already a member of tunnel zone %s", m.HostID, k.ID)}
			}
		}
	}
	return nil
}

// DeletePlan is what deleting an object takes: every object deleted with it
// (the object itself first) and every referrer updated to drop a reference.
type DeletePlan struct {
	Deletes []ObjectKey
	Updates []Object // clones with references cleared
}

// PlanDelete computes the effect of deleting (k, id): cascades are followed
// to a fixed point, Clear references are removed from the survivors, and a
// Restrict reference from a survivor refuses the whole delete with a
// *ConflictError naming it.
func PlanDelete(r Reader, k Kind, id string) (*DeletePlan, error) {
	root := ObjectKey{k, id}
	if r.Get(k, id) == nil {
		return nil, fmt.Errorf("%s %s: %w", k, id, ErrNotFound)
	}
	doomed := map[ObjectKey]bool{root: true}
	order := []ObjectKey{root}
	for i := 0; i < len(order); i++ {
		t := order[i]
		for _, rk := range r.Referrers(t.Kind, t.ID) {
			if doomed[rk] {
				continue
			}
			for _, ref := range r.Get(rk.Kind, rk.ID).Refs() {
				if ref.Kind == t.Kind && ref.ID == t.ID && ref.OnDelete == Cascade {
					doomed[rk] = true
					order = append(order, rk)
					break
				}
			}
		}
	}
	plan := &DeletePlan{Deletes: order}
	for _, t := range order {
		for _, rk := range r.Referrers(t.Kind, t.ID) {
			if doomed[rk] {
				continue
			}
			for _, ref := range r.Get(rk.Kind, rk.ID).Refs() {
				if ref.Kind == t.Kind && ref.ID == t.ID && ref.OnDelete == Restrict {
					what := "it"
					if t != root {
						what = fmt.Sprintf("%s %s (deleted with it)", t.Kind, t.ID)
					}
					return nil, &ConflictError{"", fmt.Sprintf("cannot delete %s %s: %s is used by %s %s (%s)", k, id, what, rk.Kind, rk.ID, ref.Field)}
				}
			}
		}
	}
	updated := map[ObjectKey]Object{}
	for _, t := range order {
		for _, rk := range r.Referrers(t.Kind, t.ID) {
			if doomed[rk] {
				continue
			}
			obj := updated[rk]
			if obj == nil {
				obj = Clone(r.Get(rk.Kind, rk.ID))
			}
			for _, ref := range obj.Refs() {
				if ref.Kind == t.Kind && ref.ID == t.ID && ref.OnDelete == Clear {
					obj.Unref(ref.Field, ref.ID)
				}
			}
			if updated[rk] == nil {
				updated[rk] = obj
				plan.Updates = append(plan.Updates, obj)
			}
		}
	}
	return plan, nil
}

// ErrNotFound marks a reference to an object that does not exist.
var ErrNotFound = errors.New("not found")
