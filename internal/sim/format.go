package sim

import (
	"fmt"
	"strings"

	"github.com/canopy-sdn/canopy/internal/packet"
)

// FormatResult renders a result for people: verdict, outputs, flow actions,
// generated packets, state created and the trace. `canopy trace` and the
// scenario tests print it. It allocates; it is not for the hot path.
func FormatResult(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "verdict: %s", r.Verdict)
	if r.Reason != "" {
		fmt.Fprintf(&b, " (%s)", r.Reason)
	}
	if r.Uncacheable {
		b.WriteString(" [uncacheable]")
	}
	b.WriteByte('\n')
	for _, o := range r.Outputs {
		fmt.Fprintf(&b, "output: %s on %s key %d\n", o.PortID, o.Host, o.TunnelKey)
	}
	if len(r.Actions) > 0 {
		acts := make([]string, len(r.Actions))
		for i, a := range r.Actions {
			acts[i] = a.String()
		}
		fmt.Fprintf(&b, "actions: %s\n", strings.Join(acts, ", "))
	}
	if r.Verdict == VerdictForward {
		fmt.Fprintf(&b, "match: %s\n", strings.Join(r.Fields.Names(), " "))
	}
	for _, g := range r.Generated {
		var p packet.Packet
		p.Decode(g.Frame)
		fmt.Fprintf(&b, "generated (%s): %s on %s: %s\n", g.Reason, g.PortID, g.Host, p.String())
	}
	for _, k := range r.Conns {
		fmt.Fprintf(&b, "conntrack: %s\n", keyString(k))
	}
	for _, n := range r.NATs {
		kind := "snat"
		if n.Kind == 2 {
			kind = "dnat"
		}
		fmt.Fprintf(&b, "nat: %s %s → %s:%d\n", kind, keyString(n.Key), ip(n.Binding.IP), n.Binding.Port)
	}
	for _, l := range r.Learned {
		if l.ARP {
			fmt.Fprintf(&b, "learned: arp %s %s is %s\n", l.DeviceID, ip(l.IP), mac(l.MAC))
		} else {
			fmt.Fprintf(&b, "learned: mac %s %s on %s\n", l.DeviceID, mac(l.MAC), l.PortID)
		}
	}
	if len(r.Trace) > 0 {
		b.WriteString("trace:\n")
		for _, s := range r.Trace {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	return b.String()
}

func keyString(k packet.Key) string {
	return fmt.Sprintf("proto %d %s:%d > %s:%d", k.Proto, ip(k.Src), k.SrcPort, ip(k.Dst), k.DstPort)
}
