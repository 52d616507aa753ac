package datapath

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// LinkConfig is what SetLink applies to a network device.
type LinkConfig struct {
	MTU int  // 0 leaves it
	Up  bool // bring it up (false leaves the state as it is)
	// Netns, when set (> 0), moves the device into that namespace first;
	// the zero value leaves it where it is. A TAP keeps working through the
	// descriptor its opener holds (pitfall 8).
	Netns netns.NsHandle
}

// SetLink configures the device named name in namespace at (0 or
// netns.None() means the current one): optionally moves it, then
// sets its MTU and brings it up, in the namespace it ends up in.
func SetLink(at netns.NsHandle, name string, cfg LinkConfig) error {
	h, err := netlinkHandle(at)
	if err != nil {
		return err
	}
	defer func() { h.Close() }()
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if cfg.Netns > 0 {
		if err := h.LinkSetNsFd(l, int(cfg.Netns)); err != nil {
			return fmt.Errorf("link %s: move to netns: %w", name, err)
		}
		h.Close()
		if h, err = netlinkHandle(cfg.Netns); err != nil {
			return err
		}
		if l, err = h.LinkByName(name); err != nil {
			return fmt.Errorf("link %s after move: %w", name, err)
		}
	}
	if cfg.MTU > 0 {
		if err := h.LinkSetMTU(l, cfg.MTU); err != nil {
			return fmt.Errorf("link %s: set MTU %d: %w", name, cfg.MTU, err)
		}
	}
	if cfg.Up {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("link %s: up: %w", name, err)
		}
	}
	return nil
}

func netlinkHandle(at netns.NsHandle) (*netlink.Handle, error) {
	if at > 0 {
		h, err := netlink.NewHandleAt(at)
		if err != nil {
			return nil, fmt.Errorf("netlink in netns: %w", err)
		}
		return h, nil
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return h, nil
}
