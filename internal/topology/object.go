package topology

import "fmt"

// Kind names an object type. It is also the key segment in the store and the
// REST collection name, so it never changes once released.
type Kind string

const (
	KindRouter     Kind = "router"
	KindBridge     Kind = "bridge"
	KindPort       Kind = "port"
	KindRoute      Kind = "route"
	KindChain      Kind = "chain"
	KindIPGroup    Kind = "ip-address-group"
	KindPortGroup  Kind = "port-group"
	KindHost       Kind = "host"
	KindTunnelZone Kind = "tunnel-zone"
	KindDHCP       Kind = "dhcp-subnet"
)

// Kinds lists every kind in dependency order: a kind only references kinds
// listed before it or itself (ports reference devices, routes reference ports),
// which is the order a full load or a restore applies them in.
var Kinds = []Kind{KindHost, KindTunnelZone, KindIPGroup, KindChain, KindRouter, KindBridge, KindPort, KindPortGroup, KindRoute, KindDHCP}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Meta is carried by every object.
type Meta struct {
	ID     string            `json:"id"`
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Revision is the store revision that last wrote the object (etcd's
	// ModRevision). An update or delete naming a revision succeeds only if the
	// object is still at that revision; 0 means "whatever is there".
	Revision int64 `json:"revision,omitempty"`
}

// GetMeta returns the object's metadata; it lets every object satisfy Object
// by embedding Meta.
func (m *Meta) GetMeta() *Meta { return m }

// Object is implemented by every topology object (as a pointer).
type Object interface {
	GetMeta() *Meta
	Kind() Kind
	// Validate checks the object on its own, without looking at any other
	// object. It returns a *FieldError naming the first bad field.
	Validate() error
	// Refs lists every reference this object holds to another object.
	Refs() []Ref
	// Unref removes a reference that has OnDelete == Clear, because its target
	// is being deleted. field and id are those of the Ref.
	Unref(field, id string)
}

// OnDelete says what deleting a referenced object does to the referrer.
type OnDelete int

const (
	// Restrict refuses the delete while the reference exists.
	Restrict OnDelete = iota
	// Cascade deletes the referrer too (a router's ports go with it).
	Cascade
	// Clear removes the reference from the referrer (a deleted bridge port
	// unlinks its router peer; a deleted port leaves its port groups).
	Clear
)

func (o OnDelete) String() string {
	switch o {
	case Cascade:
		return "cascade"
	case Clear:
		return "clear"
	default:
		return "restrict"
	}
}

// Ref is one reference from an object to another.
type Ref struct {
	Field    string // JSON path of the referencing field, e.g. "in_filter" or "rules[2].jump_chain"
	Kind     Kind   // kind of the target
	ID       string // id of the target
	OnDelete OnDelete
}

// ObjectKey identifies an object across kinds.
type ObjectKey struct {
	Kind Kind
	ID   string
}

func (k ObjectKey) String() string { return string(k.Kind) + "/" + k.ID }

// Key returns the ObjectKey of o.
func Key(o Object) ObjectKey { return ObjectKey{o.Kind(), o.GetMeta().ID} }

// New returns a new, empty object of kind k, or nil for an unknown kind.
func New(k Kind) Object {
	switch k {
	case KindRouter:
		return &Router{}
	case KindBridge:
		return &Bridge{}
	case KindPort:
		return &Port{}
	case KindRoute:
		return &Route{}
	case KindChain:
		return &Chain{}
	case KindIPGroup:
		return &IPAddrGroup{}
	case KindPortGroup:
		return &PortGroup{}
	case KindHost:
		return &Host{}
	case KindTunnelZone:
		return &TunnelZone{}
	case KindDHCP:
		return &DHCPSubnet{}
	}
	return nil
}

// FieldError is a validation or integrity failure about one field of one
// object. The REST API answers it with 400 and both parts in the body.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// LabelVPC names the VPC an object belongs to (the translator sets it; an
// object without it belongs to the cloud as a whole). The store keeps a copy
// of every object under its VPC's partition so an agent can follow only the
// VPCs its ports are in.
const LabelVPC = "canopy.vpc"
