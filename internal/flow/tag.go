package flow

import "github.com/canopy-sdn/canopy/internal/packet"

// Tag names something a simulation consulted — a device, port, chain, rule,
// route, MAC or ARP entry — so that a change to it invalidates every cached
// flow carrying the tag. It is a 64-bit FNV-1a hash: compact, comparable,
// and the same on every host for the same object. A rare collision only
// invalidates a few flows too many.
type Tag uint64

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// TagOf returns the tag of an object of kind with id.
func TagOf(kind, id string) Tag {
	h := uint64(fnvOffset)
	for i := 0; i < len(kind); i++ {
		h = (h ^ uint64(kind[i])) * fnvPrime
	}
	h = (h ^ '/') * fnvPrime
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * fnvPrime
	}
	return Tag(h)
}

// Sub derives the tag of an entry inside an object (a MAC in a bridge's
// table, a destination address in a router's ARP table) without allocating.
func (t Tag) Sub(kind byte, v uint64) Tag {
	h := (uint64(t) ^ uint64(kind)) * fnvPrime
	for i := 0; i < 8; i++ {
		h = (h ^ (v & 0xff)) * fnvPrime
		v >>= 8
	}
	return Tag(h)
}

// KeyTag is the tag of a connection-tracking or NAT key. A simulation that
// looked a key up (found or not) carries it, so the agent invalidates the
// flows that decided on the key's absence when the entry appears (a reply
// flow cached as "not a return flow, drop" before the connection existed).
func KeyTag(k packet.Key) Tag {
	t := Tag(k.Zone).Sub('k', uint64(k.Src)<<32|uint64(k.Dst))
	return t.Sub('p', uint64(k.SrcPort)<<24|uint64(k.DstPort)<<8|uint64(k.Proto))
}
