package agent

import (
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// carrier follows whether this namespace's interfaces have carrier (their
// operational state), from the kernel's link notifications (runPlug): an
// uplink is up when its interface is plugged and has carrier — a cable
// pulled, or the far end of a veth set down, is an uplink down although
// the agent still holds the device.
type carrier struct {
	mu sync.Mutex
	up map[string]bool // by interface name
}

// hasCarrier reads a link's carrier from its attributes: operationally
// up, or (a device whose driver does not report an operational state)
// with the lower layer up.
func hasCarrier(at *netlink.LinkAttrs) bool {
	switch at.OperState {
	case netlink.OperUp:
		return true
	case netlink.OperUnknown:
		return at.RawFlags&unix.IFF_LOWER_UP != 0
	}
	return false
}

// set records a link's state; it reports whether it changed.
func (c *carrier) set(at *netlink.LinkAttrs) bool {
	up := hasCarrier(at)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up == nil {
		c.up = map[string]bool{}
	}
	old, seen := c.up[at.Name]
	c.up[at.Name] = up
	return !seen || old != up
}

func (c *carrier) forget(name string) {
	c.mu.Lock()
	delete(c.up, name)
	c.mu.Unlock()
}

// has reports whether iface has carrier; an interface not seen yet is
// read from the kernel.
func (c *carrier) has(iface string) bool {
	c.mu.Lock()
	up, ok := c.up[iface]
	c.mu.Unlock()
	if ok {
		return up
	}
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return false
	}
	c.set(l.Attrs())
	return hasCarrier(l.Attrs())
}
