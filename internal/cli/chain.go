package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

func chainCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "chain", Short: "Rule chains (filters and NAT)"}
	var labels map[string]string
	a.create(noun, "chains", "Create an empty chain", func(name string) (any, error) {
		return &topology.Chain{Meta: topology.Meta{Name: name, Labels: labels}}, nil
	}).Flags().StringToStringVar(&labels, "label", nil, "labels key=value")
	a.crud(noun, "chains", []string{"ID", "NAME", "RULES"}, rowOf(func(ch *topology.Chain) []string {
		return []string{ch.ID, ch.Name, strconv.Itoa(len(ch.Rules))}
	}))
	noun.AddCommand(ruleCmd(a))
	return noun
}

// ruleFlags holds every condition and action flag of `chain rule add`.
type ruleFlags struct {
	action, jump                                       string
	position                                           int
	inPorts, outPorts                                  []string
	inPG, outPG, ipgSrc, ipgDst                        string
	etherType, srcMAC, dstMAC, nwSrc, nwDst            string
	arpSenderMAC                                       string
	vlanTagged                                         bool
	proto, tos, frag, tpSrc, tpDst, icmpType, icmpCode string
	forward, ret                                       bool
	nat                                                []string
	inv                                                map[string]*bool
}

// invertible lists the conditions with an --inv-X twin; X is also the JSON
// name of the condition (without the inv_ prefix).
var invertible = []string{"in-ports", "out-ports", "in-port-group", "out-port-group", "ether-type", "src-mac", "dst-mac",
	"arp-sender-mac", "nw-src", "nw-dst", "ip-group-src", "ip-group-dst", "nw-proto", "nw-tos", "tp-src", "tp-dst", "icmp-type", "icmp-code"}

func (f *ruleFlags) bind(c *cobra.Command) {
	fs := c.Flags()
	fs.StringVar(&f.action, "action", "", "accept, drop, reject, continue, jump, return, dnat, snat, rev_dnat or rev_snat (required)")
	fs.StringVar(&f.jump, "jump-chain", "", "chain to jump to (with --action jump)")
	fs.StringArrayVar(&f.nat, "nat-target", nil, "NAT target ADDR[-ADDR][:PORT[-PORT]], e.g. 10.0.0.1-10.0.0.9:1000-2000; no ports = stateless 1:1 (repeatable)")
	fs.IntVar(&f.position, "position", -1, "0-based position in the chain (default: append)")
	fs.StringArrayVar(&f.inPorts, "in-ports", nil, "match ingress port (id, name or DEVICE:NAME; repeatable)")
	fs.StringArrayVar(&f.outPorts, "out-ports", nil, "match egress port (repeatable)")
	fs.StringVar(&f.inPG, "in-port-group", "", "match ingress port group")
	fs.StringVar(&f.outPG, "out-port-group", "", "match egress port group")
	fs.StringVar(&f.etherType, "ether-type", "", "match ethertype: ipv4, arp, ipv6 or a number (0x0800)")
	fs.StringVar(&f.srcMAC, "src-mac", "", "match source MAC[/MASK]")
	fs.StringVar(&f.dstMAC, "dst-mac", "", "match destination MAC[/MASK]")
	fs.StringVar(&f.arpSenderMAC, "arp-sender-mac", "", "match an ARP packet's sender MAC (never matches anything else)")
	fs.BoolVar(&f.vlanTagged, "vlan-tagged", false, "match frames with an 802.1Q tag")
	fs.StringVar(&f.nwSrc, "nw-src", "", "match source prefix")
	fs.StringVar(&f.nwDst, "nw-dst", "", "match destination prefix")
	fs.StringVar(&f.ipgSrc, "ip-group-src", "", "match source in IP address group")
	fs.StringVar(&f.ipgDst, "ip-group-dst", "", "match destination in IP address group")
	fs.StringVar(&f.proto, "nw-proto", "", "match IP protocol: tcp, udp, icmp or a number")
	fs.StringVar(&f.tos, "nw-tos", "", "match IP TOS byte")
	fs.StringVar(&f.frag, "fragment-policy", "", "header, nonheader or unfragmented (default: any)")
	fs.StringVar(&f.tpSrc, "tp-src", "", "match L4 source port or range (80, 1000-2000)")
	fs.StringVar(&f.tpDst, "tp-dst", "", "match L4 destination port or range")
	fs.StringVar(&f.icmpType, "icmp-type", "", "match ICMP type")
	fs.StringVar(&f.icmpCode, "icmp-code", "", "match ICMP code")
	fs.BoolVar(&f.forward, "forward-flow", false, "match packets of the direction that opened the connection")
	fs.BoolVar(&f.ret, "return-flow", false, "match packets of the return direction")
	f.inv = map[string]*bool{}
	for _, n := range invertible {
		b := new(bool)
		f.inv[n] = b
		fs.BoolVar(b, "inv-"+n, false, "invert the --"+n+" condition")
	}
}

// rule builds the rule from the flags, resolving names to ids.
func (f *ruleFlags) rule(ctx context.Context, c *Client) (*topology.Rule, error) {
	r := &topology.Rule{Action: topology.Action(f.action)}
	var err error
	cd := &r.Condition
	if f.jump != "" {
		if r.JumpChain, err = c.resolve(ctx, "chains", f.jump); err != nil {
			return nil, fmt.Errorf("--jump-chain: %w", err)
		}
	}
	for _, s := range f.nat {
		t, err := parseNATTarget(s)
		if err != nil {
			return nil, fmt.Errorf("--nat-target %q: %w", s, err)
		}
		r.NATTargets = append(r.NATTargets, t)
	}
	for _, s := range f.inPorts {
		id, err := c.resolvePort(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("--in-ports: %w", err)
		}
		cd.InPorts = append(cd.InPorts, id)
	}
	for _, s := range f.outPorts {
		id, err := c.resolvePort(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("--out-ports: %w", err)
		}
		cd.OutPorts = append(cd.OutPorts, id)
	}
	for _, x := range []struct {
		flag, coll, val string
		dst             *string
	}{
		{"in-port-group", "port-groups", f.inPG, &cd.InPortGroup},
		{"out-port-group", "port-groups", f.outPG, &cd.OutPortGroup},
		{"ip-group-src", "ip-address-groups", f.ipgSrc, &cd.IPGroupSrc},
		{"ip-group-dst", "ip-address-groups", f.ipgDst, &cd.IPGroupDst},
	} {
		if x.val == "" {
			continue
		}
		if *x.dst, err = c.resolve(ctx, x.coll, x.val); err != nil {
			return nil, fmt.Errorf("--%s: %w", x.flag, err)
		}
	}
	if f.etherType != "" {
		if cd.EtherType, err = parseEtherType(f.etherType); err != nil {
			return nil, fmt.Errorf("--ether-type: %w", err)
		}
	}
	if f.srcMAC != "" {
		if cd.SrcMAC, cd.SrcMACMask, err = parseMACMask(f.srcMAC); err != nil {
			return nil, fmt.Errorf("--src-mac: %w", err)
		}
	}
	if f.dstMAC != "" {
		if cd.DstMAC, cd.DstMACMask, err = parseMACMask(f.dstMAC); err != nil {
			return nil, fmt.Errorf("--dst-mac: %w", err)
		}
	}
	if f.arpSenderMAC != "" {
		var mask topology.MAC
		if cd.ARPSenderMAC, mask, err = parseMACMask(f.arpSenderMAC); err != nil || !mask.IsZero() {
			return nil, fmt.Errorf("--arp-sender-mac: %q is not a MAC (no mask here)", f.arpSenderMAC)
		}
	}
	cd.VLANTagged = f.vlanTagged
	if f.nwSrc != "" {
		if cd.NwSrc, err = parsePrefixOrAddr(f.nwSrc); err != nil {
			return nil, fmt.Errorf("--nw-src: %w", err)
		}
	}
	if f.nwDst != "" {
		if cd.NwDst, err = parsePrefixOrAddr(f.nwDst); err != nil {
			return nil, fmt.Errorf("--nw-dst: %w", err)
		}
	}
	if f.proto != "" {
		p, err := parseProto(f.proto)
		if err != nil {
			return nil, fmt.Errorf("--nw-proto: %w", err)
		}
		cd.NwProto = &p
	}
	for _, x := range []struct {
		flag, val string
		dst       **uint8
	}{{"nw-tos", f.tos, &cd.NwTOS}, {"icmp-type", f.icmpType, &cd.ICMPType}, {"icmp-code", f.icmpCode, &cd.ICMPCode}} {
		if x.val == "" {
			continue
		}
		n, err := strconv.ParseUint(x.val, 0, 8)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a number 0-255", x.flag, x.val)
		}
		v := uint8(n)
		*x.dst = &v
	}
	cd.FragPolicy = topology.FragmentPolicy(f.frag)
	if f.tpSrc != "" {
		if cd.TpSrc, err = parsePortRange(f.tpSrc); err != nil {
			return nil, fmt.Errorf("--tp-src: %w", err)
		}
	}
	if f.tpDst != "" {
		if cd.TpDst, err = parsePortRange(f.tpDst); err != nil {
			return nil, fmt.Errorf("--tp-dst: %w", err)
		}
	}
	cd.MatchForwardFlow, cd.MatchReturnFlow = f.forward, f.ret
	inv := func(n string) bool { return *f.inv[n] }
	cd.InvInPorts, cd.InvOutPorts = inv("in-ports"), inv("out-ports")
	cd.InvInPortGroup, cd.InvOutPortGroup = inv("in-port-group"), inv("out-port-group")
	cd.InvEtherType, cd.InvSrcMAC, cd.InvDstMAC = inv("ether-type"), inv("src-mac"), inv("dst-mac")
	cd.InvARPSenderMAC = inv("arp-sender-mac")
	cd.InvNwSrc, cd.InvNwDst = inv("nw-src"), inv("nw-dst")
	cd.InvIPGroupSrc, cd.InvIPGroupDst = inv("ip-group-src"), inv("ip-group-dst")
	cd.InvNwProto, cd.InvNwTOS = inv("nw-proto"), inv("nw-tos")
	cd.InvTpSrc, cd.InvTpDst = inv("tp-src"), inv("tp-dst")
	cd.InvICMPType, cd.InvICMPCode = inv("icmp-type"), inv("icmp-code")
	return r, nil
}

func ruleCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "rule", Short: "Rules of a chain"}
	var rf ruleFlags
	add := &cobra.Command{
		Use: "add CHAIN", Short: "Add a rule to a chain", Args: cobra.ExactArgs(1),
		Example: `  canopy chain rule add in --action accept --nw-proto tcp --tp-dst 22 --nw-src 192.0.2.0/24
  canopy chain rule add nat --action dnat --nw-dst 198.51.100.10 --nat-target 10.0.0.5
  canopy chain rule add nat --action snat --nw-src 10.0.0.0/24 --nat-target 198.51.100.2:1024-65535`,
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			cid, err := c.resolve(ctx, "chains", args[0])
			if err != nil {
				return err
			}
			r, err := rf.rule(ctx, c)
			if err != nil {
				return err
			}
			body := struct {
				*topology.Rule
				Position *int `json:"position,omitempty"`
			}{Rule: r}
			if rf.position >= 0 {
				body.Position = &rf.position
			}
			raw, err := c.Send(ctx, http.MethodPost, "/chains/"+cid+"/rules", body, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	rf.bind(add)
	_ = add.MarkFlagRequired("action")
	list := &cobra.Command{
		Use: "list CHAIN", Short: "List a chain's rules in order", Args: cobra.ExactArgs(1), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			cid, err := c.resolve(ctx, "chains", args[0])
			if err != nil {
				return err
			}
			var rules []topology.Rule
			raw, err := c.Get(ctx, "/chains/"+cid+"/rules", &rules)
			if err != nil {
				return err
			}
			rows := make([][]string, len(rules))
			for i := range rules {
				r := &rules[i]
				rows[i] = []string{strconv.Itoa(i), r.ID, string(r.Action), conditionSummary(r.Condition), ruleTarget(r)}
			}
			return a.table(raw, []string{"POS", "ID", "ACTION", "CONDITION", "TARGET"}, rows)
		}),
	}
	del := &cobra.Command{
		Use: "delete CHAIN RULE", Short: "Delete a rule (RULE: its id, or its position in `rule list`)", Args: cobra.ExactArgs(2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			cid, err := c.resolve(ctx, "chains", args[0])
			if err != nil {
				return err
			}
			rid := args[1]
			if pos, perr := strconv.Atoi(rid); perr == nil {
				var rules []topology.Rule
				if _, err := c.Get(ctx, "/chains/"+cid+"/rules", &rules); err != nil {
					return err
				}
				if pos < 0 || pos >= len(rules) {
					return fmt.Errorf("chain %s has no rule at position %d (it has %d rules)", cid, pos, len(rules))
				}
				rid = rules[pos].ID
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/chains/"+cid+"/rules/"+rid, nil); err != nil {
				return err
			}
			return a.done("Deleted rule %s from chain %s", rid, cid)
		}),
	}
	noun.AddCommand(add, list, del)
	return noun
}

// conditionSummary shows every set condition as name=value, inverted ones
// prefixed with "!", in a stable order.
func conditionSummary(cd topology.Condition) string {
	b, _ := json.Marshal(cd)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	var keys []string
	for k := range m {
		if !strings.HasPrefix(k, "inv_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		p := k + "=" + scalar(m[k])
		if _, ok := m["inv_"+k]; ok {
			p = "!" + p
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

func ruleTarget(r *topology.Rule) string {
	if r.JumpChain != "" {
		return "chain " + r.JumpChain
	}
	var ts []string
	for _, t := range r.NATTargets {
		ts = append(ts, formatNATTarget(t))
	}
	return strings.Join(ts, ",")
}

// parseNATTarget parses ADDR[-ADDR][:PORT[-PORT]].
func parseNATTarget(s string) (topology.NATTarget, error) {
	var t topology.NATTarget
	addrs, ports, hasPorts := strings.Cut(s, ":")
	from, to, isRange := strings.Cut(addrs, "-")
	var err error
	if t.AddrFrom, err = netip.ParseAddr(from); err != nil {
		return t, fmt.Errorf("%q is not an IPv4 address", from)
	}
	t.AddrTo = t.AddrFrom
	if isRange {
		if t.AddrTo, err = netip.ParseAddr(to); err != nil {
			return t, fmt.Errorf("%q is not an IPv4 address", to)
		}
	}
	if hasPorts {
		pr, err := parsePortRange(ports)
		if err != nil {
			return t, err
		}
		t.PortFrom, t.PortTo = pr.Start, pr.End
	}
	return t, nil
}

func formatNATTarget(t topology.NATTarget) string {
	s := addrStr(t.AddrFrom)
	if t.AddrTo != t.AddrFrom {
		s += "-" + addrStr(t.AddrTo)
	}
	if !t.Stateless() {
		s += fmt.Sprintf(":%d-%d", t.PortFrom, t.PortTo)
	}
	return s
}

// parsePortRange parses "80" or "1000-2000". Order is checked by the API.
func parsePortRange(s string) (*topology.PortRange, error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%q is not a port 0-65535", a)
	}
	hi := lo
	if isRange {
		if hi, err = strconv.ParseUint(b, 10, 16); err != nil {
			return nil, fmt.Errorf("%q is not a port 0-65535", b)
		}
	}
	return &topology.PortRange{Start: uint16(lo), End: uint16(hi)}, nil
}

func parseEtherType(s string) (uint16, error) {
	switch strings.ToLower(s) {
	case "ipv4", "ip":
		return 0x0800, nil
	case "arp":
		return 0x0806, nil
	case "ipv6":
		return 0x86dd, nil
	}
	n, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not ipv4, arp, ipv6 or a 16-bit number", s)
	}
	return uint16(n), nil
}

func parseProto(s string) (uint8, error) {
	switch strings.ToLower(s) {
	case "icmp":
		return 1, nil
	case "tcp":
		return 6, nil
	case "udp":
		return 17, nil
	}
	n, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("%q is not tcp, udp, icmp or a protocol number 0-255", s)
	}
	return uint8(n), nil
}

func parseMACMask(s string) (mac, mask topology.MAC, err error) {
	m, k, hasMask := strings.Cut(s, "/")
	if mac, err = topology.ParseMAC(m); err != nil {
		return
	}
	if hasMask {
		mask, err = topology.ParseMAC(k)
	}
	return
}

// parsePrefixOrAddr accepts a prefix, or a bare address as its /32 (/128).
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a prefix or an address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
