// Package upstream makes the machine `canopy up` runs on the upstream
// router of its cloud (DESIGN.md §8, issue 11): it makes the link between
// the host and the edge, a veth pair in this network namespace whose edge
// end the edge router's uplink is bound to (the agent plugs it like any
// port's device), addresses the host's end, routes the public pools to the
// edge through it, turns IPv4 forwarding on and masquerades the pools'
// traffic that leaves through any other interface behind the host's own
// address. So the host reaches every elastic IP, and an instance with a
// public address reaches whatever the host reaches.
//
// Everything it sets up it removes in Close: the nftables table it owns
// ("canopy-up"), the veth pair (and with it the routes and the address);
// forwarding is put back as it was.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
)

// TableName is the nftables table canopy up owns.
const TableName = "canopy-up"

const forwardingKnob = "/proc/sys/net/ipv4/ip_forward"

// Config describes the link between this host and the edge.
type Config struct {
	Iface     string         // the host's end of the link
	EdgeIface string         // the edge's end, which the edge's uplink is bound to
	Host      netip.Prefix   // this host's address on the link, e.g. 169.254.251.1/30
	Edge      netip.Addr     // the edge's address on the link (the pools' next hop)
	Pools     []netip.Prefix // the public pools
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case !deviceName(c.Iface):
		return fmt.Errorf("the host's link interface %q: not a device name", c.Iface)
	case !deviceName(c.EdgeIface) || c.EdgeIface == c.Iface:
		return fmt.Errorf("the edge's link interface %q: not a device name apart from %q", c.EdgeIface, c.Iface)
	case !c.Host.IsValid() || !c.Host.Addr().Is4():
		return errors.New("the host's link address must be an IPv4 prefix")
	case !c.Edge.Is4() || !c.Host.Contains(c.Edge) || c.Edge == c.Host.Addr():
		return fmt.Errorf("the edge's link address %s must be another address of %s", c.Edge, c.Host.Masked())
	case len(c.Pools) == 0:
		return errors.New("no public pool to route")
	}
	for _, p := range c.Pools {
		if !p.Addr().Is4() || p.Overlaps(c.Host) {
			return fmt.Errorf("public pool %s: must be IPv4 and apart from the link %s", p, c.Host.Masked())
		}
	}
	return nil
}

func deviceName(s string) bool {
	return s != "" && len(s) <= 15 && !strings.ContainsAny(s, "/ ")
}

// Upstream is the set-up host side; Close removes it.
type Upstream struct {
	cfg        Config
	log        *slog.Logger
	forwarding []byte // the knob's value before, to put back
}

// Up makes the link (or takes the one a killed canopy up left) and sets
// the host side up.
func Up(ctx context.Context, cfg Config, log *slog.Logger) (*Upstream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u := &Upstream{cfg: cfg, log: log}
	link, err := u.makeLink()
	if err != nil {
		return nil, err
	}
	if err := u.address(link); err != nil {
		u.deleteLink()
		return nil, err
	}
	if err := u.forward(); err != nil {
		u.deleteLink()
		return nil, err
	}
	if err := u.masquerade(); err != nil {
		u.restoreForwarding()
		u.deleteLink()
		return nil, err
	}
	log.Info("upstream: this host routes the public pools to the edge and masquerades them out",
		"interface", cfg.Iface, "edge_interface", cfg.EdgeIface, "host", cfg.Host, "edge", cfg.Edge, "pools", cfg.Pools)
	return u, nil
}

// makeLink creates the veth pair unless it exists and brings the host's end
// up; the agent brings the edge's end up when it plugs it. The edge's end
// takes no part in the host's own networking (no IPv6, no ARP answers).
func (u *Upstream) makeLink() (netlink.Link, error) {
	if _, err := netlink.LinkByName(u.cfg.Iface); err != nil {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: u.cfg.Iface}, PeerName: u.cfg.EdgeIface}
		if err := netlink.LinkAdd(v); err != nil {
			return nil, fmt.Errorf("the link to the edge (%s/%s): %w", u.cfg.Iface, u.cfg.EdgeIface, err)
		}
	}
	l, err := netlink.LinkByName(u.cfg.Iface)
	if err != nil {
		return nil, err
	}
	if l.Type() != "veth" {
		return nil, fmt.Errorf("%s exists and is a %s, not the host's end of the link to the edge", u.cfg.Iface, l.Type())
	}
	for knob, val := range map[string]string{"ipv6/conf/" + u.cfg.EdgeIface + "/disable_ipv6": "1", "ipv4/conf/" + u.cfg.EdgeIface + "/arp_ignore": "8"} {
		_ = os.WriteFile("/proc/sys/net/"+knob, []byte(val), 0o644) // best effort
	}
	if err := netlink.LinkSetUp(l); err != nil {
		u.deleteLink()
		return nil, fmt.Errorf("%s up: %w", u.cfg.Iface, err)
	}
	return l, nil
}

// deleteLink deletes the veth pair (both ends, their addresses and
// routes).
func (u *Upstream) deleteLink() {
	if l, err := netlink.LinkByName(u.cfg.Iface); err == nil && l.Type() == "veth" {
		_ = netlink.LinkDel(l)
	}
}

func (u *Upstream) address(l netlink.Link) error {
	a := &netlink.Addr{IPNet: prefixNet(u.cfg.Host)}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fmt.Errorf("address %s on %s: %w", u.cfg.Host, u.cfg.Iface, err)
	}
	for _, p := range u.cfg.Pools {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(p), Gw: u.cfg.Edge.AsSlice()}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s: %w", p, u.cfg.Edge, err)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (u *Upstream) forward() error {
	old, err := os.ReadFile(forwardingKnob)
	if err != nil {
		return fmt.Errorf("IPv4 forwarding: %w", err)
	}
	u.forwarding = bytes.TrimSpace(old)
	if string(u.forwarding) == "1" {
		return nil
	}
	if err := os.WriteFile(forwardingKnob, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("turning IPv4 forwarding on: %w", err)
	}
	return nil
}

func (u *Upstream) restoreForwarding() {
	if len(u.forwarding) > 0 && string(u.forwarding) != "1" {
		if err := os.WriteFile(forwardingKnob, append(u.forwarding, '\n'), 0o644); err != nil {
			u.log.Warn("upstream: putting IPv4 forwarding back", "err", err)
		}
	}
}

// masquerade installs table canopy-up: traffic from a public pool leaving
// by any interface but the uplink takes the host's address.
func (u *Upstream) masquerade() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName}
	c.DelTable(t) // a table left by a killed canopy up (ignored when absent)
	_ = c.Flush()
	t = c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	ifname := make([]byte, 16)
	copy(ifname, u.cfg.Iface)
	for _, p := range u.cfg.Pools {
		mask := net.CIDRMask(p.Bits(), 32)
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
			&expr.Masq{},
		}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", TableName, err)
	}
	return nil
}

// Close removes the masquerade and the link to the edge (with its address
// and routes) and puts forwarding back.
func (u *Upstream) Close() error {
	var errs []error
	if c, err := nftables.New(); err != nil {
		errs = append(errs, err)
	} else {
		c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableName})
		if err := c.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("removing nftables table %s: %w", TableName, err))
		}
	}
	u.deleteLink()
	u.restoreForwarding()
	return errors.Join(errs...)
}
