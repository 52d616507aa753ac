package topology

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Checks shared by the Validate methods: ids, names, addresses, paths.

// --- metadata and ids ---

func validateMeta(m *Meta) error {
	if err := validateRefID("id", m.ID, false); err != nil {
		return err
	}
	if err := validateText("name", m.Name, maxNameLen); err != nil {
		return err
	}
	if m.Revision < 0 {
		return fieldErr("revision", "%d is negative", m.Revision)
	}
	if len(m.Labels) == 0 {
		return nil
	}
	// Sorted, so the same object always reports the same first error.
	keys := make([]string, 0, len(m.Labels))
	for k := range m.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f := fmt.Sprintf("labels[%q]", k)
		if k == "" {
			return fieldErr("labels", "a label key cannot be empty")
		}
		if n := utf8.RuneCountInString(k); n > maxLabelKeyLen {
			return fieldErr(f, "the key is %d characters long; at most %d", n, maxLabelKeyLen)
		}
		if err := validateText(f, k, maxLabelKeyLen); err != nil {
			return err
		}
		if err := validateText(f, m.Labels[k], maxLabelValLen); err != nil {
			return err
		}
	}
	return nil
}

// validateText checks free text: valid UTF-8, at most max characters, no
// control characters (they break logs, terminals and the CLI's tables).
func validateText(f, s string, max int) error {
	if !utf8.ValidString(s) {
		return fieldErr(f, "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > max {
		return fieldErr(f, "is %d characters long; at most %d", n, max)
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return fieldErr(f, "has a control character (%U) at byte %d", r, i)
		}
	}
	return nil
}

// validateRefID checks an object id or a reference to one. Ids are segments
// of etcd keys and REST paths, so they are short and have no '/' or spaces.
func validateRefID(f, id string, required bool) error {
	if id == "" {
		if required {
			return fieldErr(f, "is required")
		}
		return nil
	}
	if len(id) > maxIDLen {
		return fieldErr(f, "is %d bytes long; an id is at most %d", len(id), maxIDLen)
	}
	for i, r := range id {
		if r == '/' || r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fieldErr(f, "%q is not a valid id: %q at byte %d (no '/', spaces or control characters)", id, r, i)
		}
	}
	return nil
}

func validateIDList(f string, ids []string) error {
	seen := map[string]int{}
	for i, id := range ids {
		fi := index(f, i)
		if err := validateRefID(fi, id, true); err != nil {
			return err
		}
		if j, dup := seen[id]; dup {
			return fieldErr(fi, "%s is already %s", id, index(f, j))
		}
		seen[id] = i
	}
	return nil
}

func validateFilters(in, out string) error {
	if err := validateRefID("in_filter", in, false); err != nil {
		return err
	}
	return validateRefID("out_filter", out, false)
}

// validateIfName applies Linux's dev_valid_name: 1..15 bytes, not "." or
// "..", no '/', ':' or whitespace.
func validateIfName(f, name string) error {
	switch {
	case name == "":
		return fieldErr(f, "is required")
	case len(name) > maxIfNameLen:
		return fieldErr(f, "%q is %d bytes long; Linux interface names are at most %d", name, len(name), maxIfNameLen)
	case name == "." || name == "..":
		return fieldErr(f, "%q is not a valid interface name", name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return fieldErr(f, "%q is not a valid interface name: it contains %q", name, r)
		}
	}
	return nil
}

// validateDNSName checks a domain name or host name (RFC 1123 labels).
func validateDNSName(f, name string) error {
	n := strings.TrimSuffix(name, ".")
	if len(n) == 0 || len(n) > 253 {
		return fieldErr(f, "%q is not a valid DNS name (1..253 characters)", name)
	}
	for label := range strings.SplitSeq(n, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fieldErr(f, "%q is not a valid DNS name: each label is 1..63 characters", name)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fieldErr(f, "%q is not a valid DNS name: label %q starts or ends with '-'", name, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fieldErr(f, "%q is not a valid DNS name: %q is not a letter, digit or '-'", name, c)
			}
		}
	}
	return nil
}

// --- addresses ---

// validateAddr4 checks that a is an IPv4 address (0.0.0.0 included).
func validateAddr4(f string, a netip.Addr, required bool) error {
	switch {
	case !a.IsValid():
		if required {
			return fieldErr(f, "is required")
		}
		return nil
	case a.Is4In6():
		return fieldErr(f, "%s is an IPv4-mapped IPv6 address; write it as %s", a, a.Unmap())
	case !a.Is4():
		return fieldErr(f, "%s is not an IPv4 address", a)
	}
	return nil
}

// validateUnicast4 checks that a is an IPv4 address a host can have.
func validateUnicast4(f string, a netip.Addr, required bool) error {
	if err := validateAddr4(f, a, required); err != nil || !a.IsValid() {
		return err
	}
	switch {
	case a.IsUnspecified():
		return fieldErr(f, "0.0.0.0 is not a unicast address")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fieldErr(f, "255.255.255.255 is the broadcast address, not a unicast address")
	case a.IsMulticast():
		return fieldErr(f, "%s is a multicast address, not a unicast address", a)
	case a.IsLoopback():
		return fieldErr(f, "%s is a loopback address", a)
	}
	return nil
}

// validatePrefixShape checks that p is a well-formed IPv4 prefix (host bits
// may be set).
func validatePrefixShape(f string, p netip.Prefix) error {
	if !p.IsValid() {
		// Only a prefix built in code can get here (JSON decoding refuses
		// "10.0.0.0/33"), and netip keeps no trace of the bad length.
		return fieldErr(f, "\"%s/?\" is not a valid prefix (prefix length out of range)", p.Addr())
	}
	if p.Addr().Is4In6() {
		return fieldErr(f, "%q is an IPv4-mapped IPv6 prefix; write it as IPv4", p)
	}
	if !p.Addr().Is4() {
		return fieldErr(f, "%q is not an IPv4 prefix", p)
	}
	return nil
}

// validatePrefix4 checks a network prefix: IPv4, no host bits set.
func validatePrefix4(f string, p netip.Prefix, required bool) error {
	if p == (netip.Prefix{}) {
		if required {
			return fieldErr(f, "is required")
		}
		return nil
	}
	if err := validatePrefixShape(f, p); err != nil {
		return err
	}
	if m := p.Masked(); m != p {
		return fieldErr(f, "%q has host bits set (the network is %s)", p, m)
	}
	return nil
}

// validateNotNetOrBcast refuses the network and broadcast addresses of
// subnet, which no host can use (on a /31 or /32 every address is a host).
func validateNotNetOrBcast(f string, a netip.Addr, subnet netip.Prefix) error {
	if subnet.Bits() >= 31 {
		return nil
	}
	if a == subnet.Addr() {
		return fieldErr(f, "%s is the network address of %s", a, subnet)
	}
	if a == broadcast4(subnet) {
		return fieldErr(f, "%s is the broadcast address of %s", a, subnet)
	}
	return nil
}

// broadcast4 is the last address of a masked IPv4 prefix.
func broadcast4(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// validateHostMAC checks the MAC of a host or port: unicast and, when
// required, set.
func validateHostMAC(f string, m MAC, required bool) error {
	switch {
	case m.IsZero():
		if required {
			return fieldErr(f, "is required (a unicast MAC such as 02:00:00:00:00:01)")
		}
	case m == Broadcast:
		return fieldErr(f, "ff:ff:ff:ff:ff:ff is the broadcast MAC, not a unicast MAC")
	case m.IsMulticast():
		return fieldErr(f, "%s is a multicast MAC (the group bit is set), not a unicast MAC", m)
	}
	return nil
}

// --- paths ---

// at joins a JSON path and a field name.
func at(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// index is the path of element i of a list field.
func index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
