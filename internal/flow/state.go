package flow

import "github.com/canopy-sdn/canopy/internal/packet"

// Direction classifies a packet against the connection-tracking table.
type Direction uint8

const (
	Forward Direction = iota // the direction that opened the connection, or a new one
	Return                   // the reply direction of a known connection
)

// NATKind says which translation a NAT entry records.
type NATKind uint8

const (
	SNAT NATKind = iota + 1
	DNAT
)

// Binding is an address and port a NAT translates to or from.
type Binding struct {
	IP   uint32
	Port uint16
}

type natKey struct {
	kind NATKind
	key  packet.Key
}

type natEntry struct {
	b       Binding
	expires int64
	// The reply-direction key registered for this entry, so expiry removes
	// the reverse mapping and frees the allocation together.
	rev   packet.Key
	alloc allocKey
}

type allocKey struct {
	zone  uint64
	ip    uint32
	port  uint16
	proto uint8
}

// State holds the connection-tracking and NAT tables of one agent. Keys
// carry a zone (the tag of the device, port or stateful port group whose
// chains consulted them), so devices never see each other's connections.
// The zero value is not ready: use NewState. Not safe for concurrent use.
type State struct {
	conns map[packet.Key]int64 // forward key → expiry
	fwd   map[natKey]natEntry  // original forward key → translation
	rev   map[natKey]Binding   // reply key (as it arrives) → what to restore
	used  map[allocKey]struct{}
}

// NewState returns empty tables.
func NewState() *State {
	return &State{
		conns: map[packet.Key]int64{},
		fwd:   map[natKey]natEntry{},
		rev:   map[natKey]Binding{},
		used:  map[allocKey]struct{}{},
	}
}

// Classify reports whether k (a packet's key in some zone) belongs to the
// return direction of a live connection.
func (s *State) Classify(k packet.Key, now int64) Direction {
	if exp, ok := s.conns[k.Reverse()]; ok && exp > now {
		return Return
	}
	return Forward
}

// Tracked reports whether k is the forward key of a live connection.
func (s *State) Tracked(k packet.Key, now int64) bool {
	exp, ok := s.conns[k]
	return ok && exp > now
}

// Track records (or refreshes) a connection opened by a packet with key k.
func (s *State) Track(k packet.Key, expires int64) { s.conns[k] = expires }

// Conns returns the number of tracked connections (live or not yet swept).
func (s *State) Conns() int { return len(s.conns) }

// NATs returns the number of NAT entries.
func (s *State) NATs() int { return len(s.fwd) }

// LookupNAT returns the translation of an existing connection whose forward
// packets have key k.
func (s *State) LookupNAT(kind NATKind, k packet.Key, now int64) (Binding, bool) {
	e, ok := s.fwd[natKey{kind, k}]
	if !ok || e.expires <= now {
		return Binding{}, false
	}
	return e.b, true
}

// ReverseNAT returns what a reply packet with key k must be rewritten back
// to: for SNAT its destination, for DNAT its source.
func (s *State) ReverseNAT(kind NATKind, k packet.Key, now int64) (Binding, bool) {
	b, ok := s.rev[natKey{kind, k}]
	if !ok {
		return Binding{}, false
	}
	// The forward entry owns the expiry.
	if e, ok := s.fwd[natKey{kind, s.fwdKeyOf(kind, k, b)}]; !ok || e.expires <= now {
		return Binding{}, false
	}
	return b, true
}

// fwdKeyOf rebuilds the forward key from a reply key and its binding.
func (s *State) fwdKeyOf(kind NATKind, reply packet.Key, b Binding) packet.Key {
	var k packet.Key
	k.Zone, k.Proto = reply.Zone, reply.Proto
	switch kind {
	case SNAT: // reply: remote → translated; forward: original → remote
		k.Src, k.SrcPort = b.IP, b.Port
		k.Dst, k.DstPort = reply.Src, reply.SrcPort
	case DNAT: // reply: backend → client; forward: client → original dst
		k.Src, k.SrcPort = reply.Dst, reply.DstPort
		k.Dst, k.DstPort = b.IP, b.Port
	}
	if k.Proto == packet.ProtoICMP { // the echo id is both ports
		if kind == SNAT {
			k.DstPort = k.SrcPort
		} else {
			k.SrcPort = k.DstPort
		}
	}
	return k
}

// Target is one range a NAT rule translates into (inclusive bounds).
type Target struct {
	IPFrom, IPTo     uint32
	PortFrom, PortTo uint16
}

// AllocateNAT creates the translation of a new connection with forward key k:
// SNAT picks a source, DNAT a destination, from targets. Ports are allocated
// per (zone, address, protocol) and never handed out twice while in use, so
// reply keys cannot collide. A port range 0..0 keeps the packet's own port.
// It reports false when every address and port in the targets is taken.
// An existing live translation for k is returned unchanged.
func (s *State) AllocateNAT(kind NATKind, k packet.Key, targets []Target, now, expires int64) (Binding, bool) {
	if b, ok := s.LookupNAT(kind, k, now); ok {
		return b, true
	}
	s.drop(natKey{kind, k})
	keep := k.SrcPort
	if kind == DNAT {
		keep = k.DstPort
	}
	h := k.Hash()
	for ti := range targets {
		t := targets[(int(h%uint64(len(targets)))+ti)%len(targets)]
		if t.IPTo < t.IPFrom {
			continue
		}
		nIP := uint64(t.IPTo-t.IPFrom) + 1
		pFrom, pTo := t.PortFrom, t.PortTo
		if pFrom == 0 && pTo == 0 {
			pFrom, pTo = keep, keep
		}
		if pTo < pFrom {
			continue
		}
		nPort := uint64(pTo-pFrom) + 1
		total := nIP * nPort
		start := (h >> 8) % total
		for i := uint64(0); i < total; i++ {
			idx := (start + i) % total
			b := Binding{IP: t.IPFrom + uint32(idx/nPort), Port: pFrom + uint16(idx%nPort)}
			a := allocKey{zone: k.Zone, ip: b.IP, port: b.Port, proto: k.Proto}
			if kind == DNAT {
				// Many clients share one backend address and port: what must
				// stay unique is the reply key, which includes the client.
				a = allocKey{}
			} else if _, taken := s.used[a]; taken {
				continue
			}
			s.install(kind, k, b, a, expires)
			return b, true
		}
	}
	return Binding{}, false
}

func (s *State) install(kind NATKind, k packet.Key, b Binding, a allocKey, expires int64) {
	restore := Binding{k.Src, k.SrcPort}
	if kind == DNAT {
		restore = Binding{k.Dst, k.DstPort}
	}
	rk := ReplyKey(kind, k, b)
	if a != (allocKey{}) {
		s.used[a] = struct{}{}
	}
	s.fwd[natKey{kind, k}] = natEntry{b: b, expires: expires, rev: rk, alloc: a}
	s.rev[natKey{kind, rk}] = restore
}

// ReplyKey is the key of the replies to a connection whose forward packets
// have key k and are translated to b: what ReverseNAT is asked with.
func ReplyKey(kind NATKind, k packet.Key, b Binding) packet.Key {
	rk := packet.Key{Zone: k.Zone, Proto: k.Proto}
	switch kind {
	case SNAT:
		rk.Src, rk.SrcPort, rk.Dst, rk.DstPort = k.Dst, k.DstPort, b.IP, b.Port
		if k.Proto == packet.ProtoICMP {
			rk.SrcPort = b.Port
		}
	case DNAT:
		rk.Src, rk.SrcPort, rk.Dst, rk.DstPort = b.IP, b.Port, k.Src, k.SrcPort
		if k.Proto == packet.ProtoICMP {
			rk.DstPort = b.Port
		}
	}
	return rk
}

// Ref names a connection-tracking or NAT entry a simulation relied on. A
// flow carries the refs of its simulation, so that the flow's traffic keeps
// them alive (Touch) even when no packet of it is simulated again: the
// kernel fast path forwards a busy flow without the agent.
type Ref struct {
	Key packet.Key
	// NAT is 0 for a connection (Key is its forward key), else the kind of
	// a translation: Key is its forward key, or its reply key when Reply.
	NAT   NATKind
	Reply bool
}

// Touch extends the entries refs name to at least expires: their
// connection was in use. It never creates an entry, nor shortens one.
func (s *State) Touch(refs []Ref, expires int64) {
	for _, r := range refs {
		if r.NAT == 0 {
			if exp, ok := s.conns[r.Key]; ok && exp < expires {
				s.conns[r.Key] = expires
			}
			continue
		}
		k := r.Key
		if r.Reply {
			b, ok := s.rev[natKey{r.NAT, k}]
			if !ok {
				continue
			}
			k = s.fwdKeyOf(r.NAT, k, b)
		}
		if e, ok := s.fwd[natKey{r.NAT, k}]; ok && e.expires < expires {
			e.expires = expires
			s.fwd[natKey{r.NAT, k}] = e
		}
	}
}

func (s *State) drop(nk natKey) {
	e, ok := s.fwd[nk]
	if !ok {
		return
	}
	delete(s.fwd, nk)
	delete(s.rev, natKey{nk.kind, e.rev})
	if e.alloc != (allocKey{}) {
		delete(s.used, e.alloc)
	}
}

// Expire removes every entry whose expiry is at or before now and frees its
// NAT allocation. It returns the number of entries removed.
func (s *State) Expire(now int64) int {
	n := 0
	for k, exp := range s.conns {
		if exp <= now {
			delete(s.conns, k)
			n++
		}
	}
	for k, e := range s.fwd {
		if e.expires <= now {
			s.drop(k)
			n++
		}
	}
	return n
}
