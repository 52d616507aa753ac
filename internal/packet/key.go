package packet

// Key identifies a flow: a packed, pointer-free, comparable value, cheap to
// hash as a map key (no strings, interfaces or netip values). Zone separates
// the tables of different devices (or a stateful port group). For ICMP echo
// both ports hold the echo id, so request and reply share a connection.
type Key struct {
	Zone             uint64
	Src, Dst         uint32
	SrcPort, DstPort uint16
	Proto            uint8
}

// KeyOf returns p's key in zone.
func KeyOf(p *Packet, zone uint64) Key {
	k := Key{Zone: zone, Src: p.Src, Dst: p.Dst, Proto: p.Proto}
	if p.Flags&FlagL4 != 0 && (p.Proto == ProtoTCP || p.Proto == ProtoUDP || p.IsEcho()) {
		k.SrcPort, k.DstPort = p.SrcPort, p.DstPort
	}
	return k
}

// QuotedKey returns the key of the packet an ICMP error quotes, as that
// packet travelled (the error itself goes the other way).
func QuotedKey(p *Packet, zone uint64) Key {
	in := &p.Inner
	k := Key{Zone: zone, Src: in.Src, Dst: in.Dst, Proto: in.Proto}
	if p.Flags&FlagInnerPorts != 0 {
		k.SrcPort, k.DstPort = in.SrcPort, in.DstPort
	}
	return k
}

// Reverse returns the key of the other direction.
func (k Key) Reverse() Key {
	return Key{Zone: k.Zone, Src: k.Dst, Dst: k.Src, SrcPort: k.DstPort, DstPort: k.SrcPort, Proto: k.Proto}
}

// Hash returns a symmetric-insensitive 64-bit hash of the 5-tuple (zone
// excluded), used to spread flows over equal-cost routes.
func (k Key) Hash() uint64 {
	h := uint64(k.Src)<<32 | uint64(k.Dst)
	h ^= (uint64(k.SrcPort)<<16 | uint64(k.DstPort)) << 8
	h ^= uint64(k.Proto)
	// splitmix64 finaliser: every input bit affects every output bit.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
