package agent

import (
	"context"
	"errors"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
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

// linkUpWait bounds waitLinkUp: far more than the kernel takes to bring a
// veth's peer up (milliseconds, even on a busy host), far less than the
// guest's ARP retransmission (a second) that it saves.
const linkUpWait = 500 * time.Millisecond

// waitLinkUp waits, up to linkUpWait, until a just plugged veth is
// operationally up, before the port is given any frame. Setting the host
// end up gives its peer, the guest's end, carrier, but the guest's kernel
// activates its transmit queue only when its link watch has run: a frame
// delivered before that (an echo request) is answered by an ARP request
// that the guest's link drops, and the guest retries it only after its
// ARP retransmission time (1 s on Linux), holding every reply until
// then. The host end is up a moment before the guest's (the kernel
// handles both in one pass, the host end first), so the guest's end is
// read too, in its namespace. That was bench/neutron's bind → first packet of 1.02 s. A TAP
// (a hypervisor's) is not waited for: its carrier is the hypervisor's
// reader, and the guest's own link does not depend on it.
func (a *Agent) waitLinkUp(iface string) {
	deadline := time.Now().Add(linkUpWait)
	for {
		l, err := netlink.LinkByName(iface)
		if err != nil || l.Type() != "veth" {
			return
		}
		if l.Attrs().OperState == netlink.OperUp && vethPeerUp(l) {
			return
		}
		if time.Now().After(deadline) {
			a.log.Info("agent: port's link not up yet; frames are sent to it anyway", "interface", iface,
				"operstate", l.Attrs().OperState.String(), "waited", linkUpWait)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// vethPeerUp reports whether a veth's peer in another namespace is
// operationally up (true when it cannot be read: the wait is a courtesy,
// never a condition of the plug).
func vethPeerUp(l netlink.Link) bool {
	at := l.Attrs()
	if at.NetNsID < 0 || at.ParentIndex <= 0 {
		return true
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(at.ParentIndex)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(at.NetNsID))))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil || len(msgs) != 1 {
		return true
	}
	peer, err := netlink.LinkDeserialize(nil, msgs[0])
	if err != nil {
		return true
	}
	return peer.Attrs().OperState == netlink.OperUp
}

// errNoDevice: a bound port's device does not exist (yet) in the agent's
// namespace.
var errNoDevice = errors.New("no such device")

// devicesPresent returns what tells whether a device of that name exists,
// from one listing of the namespace's links: a host with hundreds of
// ports bound before their VMs start (their devices absent) asked the
// kernel for each of them at every reconcile, one netlink socket each,
// while the port whose device just appeared waited (bench/neutron with
// 500 such ports a host). Every name counts as present when the ports are
// not devices (a test's OpenPort) or the listing fails: opening says.
func (a *Agent) devicesPresent() func(string) bool {
	if !a.linkDevices && a.kernel == nil {
		return func(string) bool { return true }
	}
	links, err := netlink.LinkList()
	if err != nil {
		return func(string) bool { return true }
	}
	names := make(map[string]bool, len(links))
	for _, l := range links {
		names[l.Attrs().Name] = true
	}
	return func(name string) bool { return names[name] }
}
