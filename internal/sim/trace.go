package sim

import (
	"fmt"
	"strings"

	"github.com/canopy-sdn/canopy/internal/packet"
)

// StepKind says what a trace step records.
type StepKind string

const (
	StepPortIn    StepKind = "port-in"
	StepPortOut   StepKind = "port-out"
	StepDevice    StepKind = "device"
	StepChain     StepKind = "chain"
	StepRule      StepKind = "rule"
	StepLookup    StepKind = "lookup" // MAC table, ARP table, route
	StepConntrack StepKind = "conntrack"
	StepNAT       StepKind = "nat"
	StepGenerated StepKind = "generated"
	StepOutput    StepKind = "output"
	StepDrop      StepKind = "drop"
	StepVerdict   StepKind = "verdict"
)

// Step is one line of a trace: what the packet met and what happened.
type Step struct {
	Kind   StepKind `json:"kind"`
	ID     string   `json:"id,omitempty"`
	Name   string   `json:"name,omitempty"`
	Index  int      `json:"index,omitempty"` // rule position in its chain (1-based; 0 = not a rule)
	Detail string   `json:"detail,omitempty"`
}

func (s Step) String() string {
	var b strings.Builder
	b.WriteString(string(s.Kind))
	if s.Name != "" {
		fmt.Fprintf(&b, " %s", s.Name)
	} else if s.ID != "" {
		fmt.Fprintf(&b, " %s", s.ID)
	}
	if s.Index > 0 {
		fmt.Fprintf(&b, " #%d", s.Index)
	}
	if s.Detail != "" {
		fmt.Fprintf(&b, ": %s", s.Detail)
	}
	return b.String()
}

// FormatTrace renders a trace one step per line.
func FormatTrace(steps []Step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// The helpers below are only called under `if c.tracing`, so building their
// strings costs nothing when no trace was asked for.

func (c *ctx) step(k StepKind, id, name, detail string) {
	c.res.Trace = append(c.res.Trace, Step{Kind: k, ID: id, Name: name, Detail: detail})
}

func (c *ctx) ruleStep(ch *chain, i int, r *rule, note string) {
	d := string(r.action)
	if note != "" {
		d += " (" + note + ")"
	}
	if r.action == "jump" && r.jump != none {
		d += " to " + c.snap.chains[r.jump].nameOrID()
	}
	c.res.Trace = append(c.res.Trace, Step{Kind: StepRule, ID: r.id, Name: ch.nameOrID(), Index: i + 1, Detail: d})
}

func (ch *chain) nameOrID() string {
	if ch.name != "" {
		return ch.name
	}
	return ch.id
}

func (c *ctx) traceConn(what string) {
	if c.tracing {
		c.step(StepConntrack, "", "", what)
	}
}

func (c *ctx) traceDevice(d *device) {
	if c.tracing {
		c.step(StepDevice, d.id, d.name, map[bool]string{true: "router", false: "bridge"}[d.router])
	}
}

func (c *ctx) traceLookup(format string, args ...any) {
	if c.tracing {
		c.step(StepLookup, "", "", fmt.Sprintf(format, args...))
	}
}

func ip(a uint32) string { return packet.AddrFrom(a).String() }

func mac(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}
