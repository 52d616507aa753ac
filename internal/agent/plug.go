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
			if !a.linkUpdate(u) {
				continue
			}
			// Many updates come at once (a device created, renamed, set
			// up); take them all, reconcile once.
			for drained := false; !drained; {
				select {
				case u := <-updates:
					a.linkUpdate(u)
				default:
					drained = true
				}
			}
		case <-a.plug:
		}
		a.reconcile(ctx)
	}
}

// linkUpdate notes a link's carrier (an uplink's carrier change is
// published with the gateway's status at once); it reports whether the
// update is one a reconcile should follow (a link made, changed or gone).
func (a *Agent) linkUpdate(u netlink.LinkUpdate) bool {
	if u.Header.Type != unix.RTM_NEWLINK && u.Header.Type != unix.RTM_DELLINK {
		return false
	}
	at := u.Attrs()
	changed := false
	if u.Header.Type == unix.RTM_DELLINK {
		a.carrier.forget(at.Name)
		changed = true
	} else {
		changed = a.carrier.set(at)
	}
	if changed && a.isUplink(at.Name) {
		a.log.Info("agent: uplink carrier", "interface", at.Name, "up", a.carrier.has(at.Name))
		a.gatewayStatusChanged()
	}
	return true
}
