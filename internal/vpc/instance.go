package vpc

import "strings"

// InstanceStateCode is the numeric code AWS pairs with an instance state
// (instanceState.code): the low byte of its 16-bit state.
func InstanceStateCode(state string) int {
	switch state {
	case InstancePending:
		return 0
	case InstanceRunning:
		return 16
	case InstanceShuttingDown:
		return 32
	case InstanceTerminated:
		return 48
	case InstanceStopping:
		return 64
	case InstanceStopped:
		return 80
	}
	return -1
}

// Active reports whether the instance still counts: not terminated and not
// on its way there. Such instances count against the instance limit.
func (i *Instance) Active() bool {
	return i.State != InstanceTerminated && i.State != InstanceShuttingDown
}

// InstanceReport is what the agent of an instance's host reports about it
// (the value of its instance state key, under the host's own state keys). The agent writes it once the
// instance's namespace exists with its interfaces and got its address, and
// deletes it after tearing the instance down.
type InstanceReport struct {
	HostID     string                     `json:"host_id"`
	State      string                     `json:"state"` // running
	Interfaces map[string]InterfaceReport `json:"interfaces,omitempty"`
	Netns      string                     `json:"netns,omitempty"`
}

// InterfaceReport is one ENI of an InstanceReport, by ENI id.
type InterfaceReport struct {
	Ifname string `json:"ifname"`
	IP     string `json:"ip,omitempty"`
}

// InstanceNetns is the name of the network namespace the netns instance
// driver makes for an instance: "ci-" and the last 13 hex digits of its id.
func InstanceNetns(instanceID string) string {
	h := strings.TrimPrefix(instanceID, KindInstance.Prefix+"-")
	if len(h) > 13 {
		h = h[len(h)-13:]
	}
	return "ci-" + h
}
