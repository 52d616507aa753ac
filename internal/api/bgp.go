package api

import (
	"fmt"

	"github.com/canopy-sdn/canopy/internal/topology"
)

// BGP peer passwords are write-only: the API stores what a client sends but
// never answers it back (not in a router, not in its BGP settings), so that
// read access to the API — a dashboard, a log of answers, `canopy router
// show` on a shared screen — does not hand out the TCP MD5 keys of the
// physical network's routers. An answer says password_set instead, and a
// write that sends password_set without a password keeps the stored one, so
// that GET, modify, PUT does not erase it.

// redactBGP returns a copy of b with each peer's password replaced by
// password_set (nil for nil).
func redactBGP(b *topology.BGP) *topology.BGP {
	if b == nil {
		return nil
	}
	out := *b
	out.Peers = make([]topology.BGPPeer, len(b.Peers))
	for i, p := range b.Peers {
		p.PasswordSet = p.Password != ""
		p.Password = ""
		out.Peers[i] = p
	}
	return &out
}

// redactRouter returns r with its BGP passwords redacted (a copy when there
// is anything to redact; r itself is never changed).
func redactRouter(r *topology.Router) *topology.Router {
	if r.BGP == nil {
		return r
	}
	out := *r
	out.BGP = redactBGP(r.BGP)
	return &out
}

// keepBGPPasswords completes the BGP settings a client wrote: a peer sent
// with password_set and no password gets the password stored for the same
// peer address (stored may be nil). field is where in the body b sits, for
// the error. password_set itself is cleared: it is never stored.
func keepBGPPasswords(field string, b, stored *topology.BGP) error {
	if b == nil {
		return nil
	}
	for i := range b.Peers {
		p := &b.Peers[i]
		keep := p.PasswordSet && p.Password == ""
		p.PasswordSet = false
		if !keep {
			continue
		}
		var old string
		if stored != nil {
			for _, sp := range stored.Peers {
				if sp.Address == p.Address {
					old = sp.Password
				}
			}
		}
		if old == "" {
			return &topology.FieldError{Field: fmt.Sprintf("%speers[%d].password_set", field, i),
				Reason: fmt.Sprintf("says to keep the stored password, but peer %s has none: send the password", p.Address)}
		}
		p.Password = old
	}
	return nil
}
