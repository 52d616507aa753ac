package netns

import (
	"fmt"
	"path/filepath"
)

// AddHostIn is AddHost (instances false) or AddInstanceHost (true) for a
// host serving availability zone zone only: the EC2 scheduler places a
// subnet's instances on the hosts of its zone, so a test decides which
// host runs them.
func (l *Lab) AddHostIn(name, zone string, instances bool) *Host {
	l.t.Helper()
	l.nHosts++
	h := &Host{l: l, Name: name, NS: l.id + "-" + name, IP: fmt.Sprintf("%s%d", underlayNet, 10+l.nHosts),
		stateDir: filepath.Join(l.dir, "agent-"+name), extra: []string{"--availability-zone", zone}}
	if instances {
		h.driver = "netns"
	}
	l.mustNS(h.NS)
	l.plugUnderlay(h.NS, h.IP)
	l.hosts = append(l.hosts, h)
	h.Start()
	return h
}
