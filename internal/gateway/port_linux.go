package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/canopy-sdn/canopy/internal/datapath"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Port is the speaker's end of one uplink: a TAP in the gateway host's
// namespace that carries the uplink's address and MAC, so that GoBGP's
// sockets (BGP, BFD) have an address on the physical network. It is not
// bridged to anything: the agent relays between it and the uplink only the
// frames Claim gives the speaker, and the uplink sends what the speaker's
// stack emits (Relayed). Peers are reached by /32 routes on it, so the
// host's own routing is not otherwise touched.
type Port struct {
	*datapath.Tap
	addr  netip.Prefix
	peers []netip.Addr
}

// PortName is the device name of the speaker port of uplink port portID.
func PortName(portID string) string {
	n := "cbgp" + portID
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// OpenPort creates (or attaches to) the speaker TAP name with mac and the
// uplink address addr (as a /32), up, with a route to each peer.
func OpenPort(name string, mac net.HardwareAddr, addr netip.Prefix, peers []netip.Addr) (*Port, error) {
	t, err := datapath.OpenTap(datapath.TapConfig{Name: name})
	if err != nil {
		return nil, err
	}
	p := &Port{Tap: t, addr: addr}
	fail := func(err error) (*Port, error) {
		t.Close()
		return nil, fmt.Errorf("speaker port %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fail(err)
	}
	// No IPv6 on it: its router solicitations and neighbour discovery have
	// nothing to do on the uplink. Best effort (IPv6 may be off already).
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0o644)
	if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
		return fail(fmt.Errorf("set MAC %s: %w", mac, err))
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fail(fmt.Errorf("address %s: %w", addr.Addr(), err))
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fail(fmt.Errorf("up: %w", err))
	}
	if err := p.SetPeers(peers); err != nil {
		return fail(err)
	}
	return p, nil
}

// Addr is the uplink address the port carries.
func (p *Port) Addr() netip.Prefix { return p.addr }

// SetPeers makes the port's routes the /32s of peers.
func (p *Port) SetPeers(peers []netip.Addr) error {
	l, err := netlink.LinkByName(p.Name())
	if err != nil {
		return err
	}
	var errs []error
	for _, old := range p.peers {
		if !slices.Contains(peers, old) {
			if err := netlink.RouteDel(p.route(l, old)); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("route to %s: %w", old, err))
			}
		}
	}
	for _, pe := range peers {
		if err := netlink.RouteReplace(p.route(l, pe)); err != nil {
			errs = append(errs, fmt.Errorf("route to %s: %w", pe, err))
		}
	}
	p.peers = slices.Clone(peers)
	return errors.Join(errs...)
}

func (p *Port) route(l netlink.Link, peer netip.Addr) *netlink.Route {
	return &netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
		Dst: &net.IPNet{IP: peer.AsSlice(), Mask: net.CIDRMask(32, 32)}, Src: p.addr.Addr().AsSlice()}
}
