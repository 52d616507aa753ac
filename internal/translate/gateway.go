package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// A gateway of the cloud config names its host by name or id, and the host
// may register after the server starts. The Host objects are therefore an
// input of the cloud partition like the config itself: each gateway's
// uplink port always exists (its id, MAC, address and routes do not depend
// on the host), and it is bound to (host, interface) only while exactly one
// host answers to the name. Until then it is an unbound port (the
// simulation drops what is routed to it, "port not bound or linked") and
// the gateway is reported pending; when the host registers, is renamed or
// goes, the next translation binds, moves or unbinds the port.

// GatewayState says whether a gateway's uplink is bound to a host.
type GatewayState string

const (
	// GatewayBound: the uplink is bound to the host HostID.
	GatewayBound GatewayState = "bound"
	// GatewayPending: no host has that id or name yet (its agent has not
	// registered).
	GatewayPending GatewayState = "pending"
	// GatewayAmbiguous: several hosts have that name; the config must name
	// the host by id.
	GatewayAmbiguous GatewayState = "ambiguous"
	// GatewayConflict: an earlier gateway of the config already binds the
	// same host's interface (named once by name, once by id).
	GatewayConflict GatewayState = "conflict"
)

// GatewayStatus is how one gateway of the cloud config resolved.
type GatewayStatus struct {
	Host      string       `json:"host"` // as the config names it
	Interface string       `json:"interface"`
	State     GatewayState `json:"state"`
	HostID    string       `json:"host_id,omitempty"` // bound: the host the uplink is bound to
	Reason    string       `json:"reason,omitempty"`  // not bound: why, for the operator
}

// ref is what the operator wrote to name the gateway's host.
func (g Gateway) ref() string { return cmp.Or(g.Host, g.HostID) }

// ResolveGateway finds the host a gateway names among hosts: the host with
// that id if there is one, else (for Host, not HostID) the one host with
// that name. Two hosts of one name resolve to neither: the gateway is
// GatewayAmbiguous until one is renamed or the config names an id.
func ResolveGateway(g Gateway, hosts []*topology.Host) GatewayStatus {
	ref := g.ref()
	st := GatewayStatus{Host: ref, Interface: g.Interface}
	var named []string
	for _, h := range hosts {
		if h.ID == ref {
			st.State, st.HostID = GatewayBound, h.ID
			return st
		}
		if g.Host != "" && h.Name == ref {
			named = append(named, h.ID)
		}
	}
	switch len(named) {
	case 0:
		st.State = GatewayPending
		if g.HostID != "" {
			st.Reason = fmt.Sprintf("no host has id %s yet", ref)
		} else {
			st.Reason = fmt.Sprintf("no host is named %s (or has that id) yet", ref)
		}
	case 1:
		st.State, st.HostID = GatewayBound, named[0]
	default:
		slices.Sort(named)
		st.State = GatewayAmbiguous
		st.Reason = fmt.Sprintf("%d hosts are named %s (%s): name the gateway's host by id", len(named), ref, strings.Join(named, ", "))
	}
	return st
}

// gateways resolves every gateway of the config, in order: against hosts
// when resolve is set, else taking each name as the id of an existing host
// (Translate, for callers without Host objects). A gateway that would bind
// the interface an earlier one binds is a conflict.
func (b *builder) gateways() []GatewayStatus {
	out := make([]GatewayStatus, len(b.cfg.Gateways))
	first := map[string]int{}
	for i, g := range b.cfg.Gateways {
		st := GatewayStatus{Host: g.ref(), Interface: g.Interface, State: GatewayBound, HostID: g.ref()}
		if b.resolve {
			st = ResolveGateway(g, b.hosts)
		}
		if st.State == GatewayBound {
			k := st.HostID + "/" + g.Interface
			if j, dup := first[k]; dup {
				st = GatewayStatus{Host: st.Host, Interface: g.Interface, State: GatewayConflict,
					Reason: fmt.Sprintf("host %s interface %s is already gateways[%d]", st.HostID, g.Interface, j)}
			} else {
				first[k] = i
			}
		}
		out[i] = st
	}
	return out
}
