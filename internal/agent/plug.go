package agent

import (
	"context"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// kickPlug asks runPlug for a reconcile of the plugged ports.
func (a *Agent) kickPlug() {
	select {
	case a.plug <- struct{}{}:
	default:
	}
}

// runPlug reconciles the plugged ports when a device appears or is
// deleted in the agent's namespace (a hypervisor created a VM's TAP after
// its port was bound, or the VM stopped) and when a port's reader found
// its device gone, so a port is plugged the moment its device exists
// rather than at the next once-a-second retry.
func (a *Agent) runPlug(ctx context.Context) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil { // closing the subscription fails its pending read
				a.log.Warn("agent: link watch", "err", err)
			}
		},
	})
	if err != nil {
		// The once-a-second retry still plugs ports, only later.
		a.log.Warn("agent: cannot watch links; ports are plugged by the periodic retry", "err", err)
		updates = nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			if u.Header.Type != unix.RTM_NEWLINK && u.Header.Type != unix.RTM_DELLINK {
				continue
			}
			// Many updates come at once (a device created, renamed, set
			// up); take them all, reconcile once.
			for drained := false; !drained; {
				select {
				case <-updates:
				default:
					drained = true
				}
			}
		case <-a.plug:
		}
		a.reconcile(ctx)
	}
}
