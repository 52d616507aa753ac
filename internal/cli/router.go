package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/spf13/cobra"
)

// deviceFlags are the settings shared by routers and bridges.
type deviceFlags struct {
	name, inFilter, outFilter string
	adminDown                 bool
	labels                    map[string]string
}

func (f *deviceFlags) bind(c *cobra.Command, withName bool) {
	if withName {
		c.Flags().StringVar(&f.name, "name", "", "new name")
	}
	c.Flags().StringVar(&f.inFilter, "in-filter", "", "chain (name or id) applied on ingress; \"none\" clears it")
	c.Flags().StringVar(&f.outFilter, "out-filter", "", "chain (name or id) applied on egress; \"none\" clears it")
	c.Flags().BoolVar(&f.adminDown, "admin-down", false, "administratively down")
	c.Flags().StringToStringVar(&f.labels, "label", nil, "labels key=value (repeatable)")
}

// apply sets the flags the user gave onto the device fields.
func (f *deviceFlags) apply(ctx context.Context, cmd *cobra.Command, c *Client, m *topology.Meta, adminDown *bool, in, out *string) error {
	fl := cmd.Flags()
	if fl.Changed("name") {
		m.Name = f.name
	}
	if fl.Changed("label") {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		for k, v := range f.labels {
			m.Labels[k] = v
		}
	}
	if fl.Changed("admin-down") {
		*adminDown = f.adminDown
	}
	for _, x := range []struct {
		flag, val string
		dst       *string
	}{{"in-filter", f.inFilter, in}, {"out-filter", f.outFilter, out}} {
		if !fl.Changed(x.flag) {
			continue
		}
		if x.val == "none" || x.val == "" {
			*x.dst = ""
			continue
		}
		id, err := c.resolve(ctx, "chains", x.val)
		if err != nil {
			return fmt.Errorf("--%s: %w", x.flag, err)
		}
		*x.dst = id
	}
	return nil
}

func routerCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "router", Short: "Virtual routers, their ports, routes and BGP"}
	deviceVerbs(a, noun, "routers", func(r *topology.Router) (*topology.Meta, *bool, *string, *string) {
		return &r.Meta, &r.AdminDown, &r.InFilter, &r.OutFilter
	})
	a.crud(noun, "routers", []string{"ID", "NAME", "STATE", "IN-FILTER", "OUT-FILTER", "ASN"}, rowOf(func(r *topology.Router) []string {
		asn := ""
		if r.BGP != nil {
			asn = strconv.FormatUint(uint64(r.BGP.ASN), 10)
		}
		return []string{r.ID, r.Name, upDown(r.AdminDown), r.InFilter, r.OutFilter, asn}
	}))
	noun.AddCommand(devicePortCmd(a, "routers"), routeCmd(a, "route"), bgpCmd(a))
	return noun
}

// portFlags are the settings of a port on create and on `port set`.
type portFlags struct {
	name, mac, address, inFilter, outFilter string
	ips                                     []string
	mtu                                     int
	adminDown                               bool
	labels                                  map[string]string
}

func (f *portFlags) bind(c *cobra.Command) {
	fs := c.Flags()
	fs.StringVar(&f.name, "name", "", "port name")
	fs.StringVar(&f.mac, "mac", "", "MAC address (router ports: generated when not given)")
	fs.StringVar(&f.address, "address", "", "router port address and prefix, e.g. 198.51.100.1/24")
	fs.StringSliceVar(&f.ips, "ip", nil, "bridge port: address(es) of the host behind it (repeatable)")
	fs.IntVar(&f.mtu, "mtu", 0, "MTU (default 1500)")
	fs.StringVar(&f.inFilter, "in-filter", "", "chain (name or id) applied on ingress; \"none\" clears it")
	fs.StringVar(&f.outFilter, "out-filter", "", "chain (name or id) applied on egress; \"none\" clears it")
	fs.BoolVar(&f.adminDown, "admin-down", false, "administratively down")
	fs.StringToStringVar(&f.labels, "label", nil, "labels key=value (repeatable; canopy.vpc=<vpc id> puts the port in that VPC's partition)")
}

func (f *portFlags) apply(ctx context.Context, cmd *cobra.Command, c *Client, p *topology.Port) error {
	fl := cmd.Flags()
	if fl.Changed("name") {
		p.Name = f.name
	}
	if fl.Changed("mac") {
		m, err := hostMAC(f.mac)
		if err != nil {
			return fmt.Errorf("--mac: %w", err)
		}
		p.MAC = m
	}
	if fl.Changed("address") {
		if f.address == "" || f.address == "none" {
			p.Address = netip.Prefix{}
		} else {
			pf, err := netip.ParsePrefix(f.address)
			if err != nil {
				return fmt.Errorf("--address: %q is not an address/prefix such as 198.51.100.1/24", f.address)
			}
			p.Address = pf
		}
	}
	if fl.Changed("ip") {
		p.IPs = nil
		for _, s := range f.ips {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("--ip: %q is not an IP address", s)
			}
			p.IPs = append(p.IPs, ip)
		}
	}
	if fl.Changed("mtu") {
		p.MTU = f.mtu
	}
	if fl.Changed("admin-down") {
		p.AdminDown = f.adminDown
	}
	var dummy bool
	df := deviceFlags{name: f.name, inFilter: f.inFilter, outFilter: f.outFilter, adminDown: f.adminDown, labels: f.labels}
	return df.apply(ctx, cmd, c, &p.Meta, &dummy, &p.InFilter, &p.OutFilter)
}

// randomMAC returns a locally administered unicast MAC, which cannot clash
// with a vendor's address.
func randomMAC() topology.MAC {
	var m topology.MAC
	_, _ = rand.Read(m[:])
	m[0] = m[0]&0xfc | 0x02
	return m
}

// devicePortCmd is `router port ...` or `bridge port ...`.
func devicePortCmd(a *app, coll string) *cobra.Command {
	dev := singular(coll)
	DEV := strings.ToUpper(dev)
	noun := &cobra.Command{Use: "port", Short: "Ports of a " + dev}
	var pf portFlags
	add := &cobra.Command{
		Use: "add " + DEV, Short: "Add a port to a " + dev, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.c()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id, err := c.resolve(ctx, coll, args[0])
			if err != nil {
				return err
			}
			p := &topology.Port{}
			if err := pf.apply(ctx, cmd, c, p); err != nil {
				return err
			}
			if coll == "routers" && p.MAC.IsZero() {
				p.MAC = randomMAC()
			}
			raw, err := c.Send(ctx, http.MethodPost, "/"+coll+"/"+id+"/ports", p, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		},
	}
	pf.bind(add)
	list := &cobra.Command{
		Use: "list " + DEV, Short: "List a " + dev + "'s ports with their peer links", Args: cobra.ExactArgs(1), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			id, err := c.resolve(ctx, coll, args[0])
			if err != nil {
				return err
			}
			return a.portList(ctx, c, "/"+coll+"/"+id+"/ports", false)
		}),
	}
	del := &cobra.Command{
		Use: "delete [" + DEV + "] PORT", Short: "Delete a port (PORT: id, name, or " + DEV + ":NAME)", Args: cobra.RangeArgs(1, 2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			var pid string
			var err error
			if len(args) == 2 {
				var did string
				if did, err = c.resolve(ctx, coll, args[0]); err != nil {
					return err
				}
				pid, err = c.resolvePortOn(ctx, coll, did, args[1])
			} else {
				pid, err = c.resolvePort(ctx, args[0])
			}
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/ports/"+pid, nil); err != nil {
				return err
			}
			return a.done("Deleted port %s", pid)
		}),
	}
	noun.AddCommand(add, list, del)
	return noun
}

// peerInfo describes the far side of a link.
type peerInfo struct {
	DeviceKind string `json:"peer_device_kind"`
	DeviceID   string `json:"peer_device_id"`
	DeviceName string `json:"peer_device_name"`
}

// portList prints ports with, for each linked one, the peer port and the
// device it is on; in JSON each port gains peer_device_kind/_id/_name.
func (a *app) portList(ctx context.Context, c *Client, path string, withDevice bool) error {
	var raws []json.RawMessage
	if _, err := c.Get(ctx, path, &raws); err != nil {
		return err
	}
	devNames := map[string]string{} // device and host names by id
	deviceName := func(kind topology.Kind, id string) (string, error) {
		if n, ok := devNames[id]; ok {
			return n, nil
		}
		var d named
		if _, err := c.Get(ctx, "/"+string(kind)+"s/"+id, &d); err != nil {
			return "", err
		}
		devNames[id] = d.Name
		return d.Name, nil
	}
	var rows [][]string
	out := make([]json.RawMessage, 0, len(raws))
	for _, raw := range raws {
		var p topology.Port
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("decoding port: %w", err)
		}
		var peer peerInfo
		if p.PeerID != "" {
			var pp topology.Port
			if _, err := c.Get(ctx, "/ports/"+p.PeerID, &pp); err != nil {
				return fmt.Errorf("peer of port %s: %w", p.ID, err)
			}
			n, err := deviceName(pp.DeviceKind, pp.DeviceID)
			if err != nil {
				return fmt.Errorf("device of peer port %s: %w", pp.ID, err)
			}
			peer = peerInfo{string(pp.DeviceKind), pp.DeviceID, n}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				return err
			}
			for k, v := range map[string]string{"peer_device_kind": peer.DeviceKind, "peer_device_id": peer.DeviceID, "peer_device_name": peer.DeviceName} {
				m[k], _ = json.Marshal(v)
			}
			raw, _ = json.Marshal(m)
		}
		out = append(out, raw)
		peerDev := ""
		if peer.DeviceID != "" {
			peerDev = peer.DeviceKind + " " + first(peer.DeviceName, peer.DeviceID)
		}
		binding := ""
		if p.HostID != "" {
			n, err := deviceName(topology.KindHost, p.HostID)
			if err != nil {
				return fmt.Errorf("host of port %s: %w", p.ID, err)
			}
			binding = first(n, p.HostID) + "/" + p.Interface
		}
		mac := ""
		if !p.MAC.IsZero() {
			mac = p.MAC.String()
		}
		addr := prefixStr(p.Address)
		if addr == "" {
			addr = joinAddrs(p.IPs)
		}
		row := []string{p.ID, p.Name, mac, addr, p.PeerID, peerDev, binding, strconv.FormatUint(uint64(p.TunnelKey), 10), upDown(p.AdminDown)}
		if withDevice {
			row = append([]string{string(p.DeviceKind) + " " + p.DeviceID}, row...)
		}
		rows = append(rows, row)
	}
	all, err := json.Marshal(out)
	if err != nil {
		return err
	}
	header := []string{"ID", "NAME", "MAC", "ADDRESS", "PEER", "PEER-DEVICE", "BINDING", "TUNNEL-KEY", "STATE"}
	if withDevice {
		header = append([]string{"DEVICE"}, header...)
	}
	return a.table(all, header, rows)
}

// routeCmd is `canopy route ...` and `canopy router route ...`.
func routeCmd(a *app, use string) *cobra.Command {
	noun := &cobra.Command{Use: use, Short: "Routes of a router"}
	var (
		src, dst, port, gw, typ, name string
		weight                        int
	)
	add := &cobra.Command{
		Use: "add ROUTER", Short: "Add a route to a router", Args: cobra.ExactArgs(1),
		Example: "  canopy route add edge --dst 0.0.0.0/0 --port uplink --gateway 198.51.100.254",
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			rid, err := c.resolve(ctx, "routers", args[0])
			if err != nil {
				return err
			}
			rt := &topology.Route{Meta: topology.Meta{Name: name}, Type: topology.RouteType(typ), Weight: weight}
			if rt.DstPrefix, err = netip.ParsePrefix(dst); err != nil {
				return fmt.Errorf("--dst: %q is not a prefix such as 10.0.0.0/8", dst)
			}
			if src != "" {
				if rt.SrcPrefix, err = netip.ParsePrefix(src); err != nil {
					return fmt.Errorf("--src: %q is not a prefix such as 10.0.0.0/8", src)
				}
			}
			if gw != "" {
				if rt.NextHopGateway, err = netip.ParseAddr(gw); err != nil {
					return fmt.Errorf("--gateway: %q is not an IP address", gw)
				}
			}
			if port != "" {
				if rt.NextHopPort, err = c.resolvePortOn(ctx, "routers", rid, port); err != nil {
					return fmt.Errorf("--port: %w", err)
				}
			}
			raw, err := c.Send(ctx, http.MethodPost, "/routers/"+rid+"/routes", rt, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	f := add.Flags()
	f.StringVar(&dst, "dst", "", "destination prefix (required)")
	f.StringVar(&src, "src", "", "source prefix (default 0.0.0.0/0)")
	f.StringVar(&port, "port", "", "next-hop port of this router (name, id or ROUTER:NAME)")
	f.StringVar(&gw, "gateway", "", "next-hop gateway address")
	f.IntVar(&weight, "weight", 0, "weight: lowest wins among equal prefixes, equal weights share load (default 100)")
	f.StringVar(&typ, "type", string(topology.RouteNormal), "normal, blackhole, reject or local")
	f.StringVar(&name, "name", "", "route name")
	_ = add.MarkFlagRequired("dst")
	list := &cobra.Command{
		Use: "list ROUTER", Short: "List a router's routes", Args: cobra.ExactArgs(1), Aliases: []string{"ls"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			rid, err := c.resolve(ctx, "routers", args[0])
			if err != nil {
				return err
			}
			return listAs(a, ctx, c, "/routers/"+rid+"/routes", []string{"ID", "NAME", "TYPE", "SRC", "DST", "NEXT-HOP-PORT", "GATEWAY", "WEIGHT", "LEARNED"},
				func(r *topology.Route) []string {
					return []string{r.ID, r.Name, string(r.Type), r.EffectiveSrc().String(), prefixStr(r.DstPrefix), r.NextHopPort,
						addrStr(r.NextHopGateway), strconv.Itoa(r.EffectiveWeight()), yesNo(r.Learned)}
				})
		}),
	}
	del := &cobra.Command{
		Use: "delete [ROUTER] ROUTE", Short: "Delete a route (by id, or by name on ROUTER)", Args: cobra.RangeArgs(1, 2), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			ref := args[len(args)-1]
			id := ref
			if !isID(ref) {
				if len(args) == 1 {
					var err error
					if id, err = c.resolve(ctx, "routes", ref); err != nil {
						return err
					}
				} else {
					rid, err := c.resolve(ctx, "routers", args[0])
					if err != nil {
						return err
					}
					var rs []named
					if _, err := c.Get(ctx, "/routers/"+rid+"/routes", &rs); err != nil {
						return err
					}
					if id, err = pick(rs, "route on router "+rid, ref); err != nil {
						return err
					}
				}
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/routes/"+id, nil); err != nil {
				return err
			}
			return a.done("Deleted route %s", id)
		}),
	}
	noun.AddCommand(add, list, del)
	return noun
}

func bgpCmd(a *app) *cobra.Command {
	noun := &cobra.Command{Use: "bgp", Short: "A router's BGP settings"}
	var (
		asn      uint32
		routerID string
		peers    []string
		networks []string
	)
	set := &cobra.Command{
		Use: "set ROUTER", Short: "Set (replace) a router's BGP settings", Args: cobra.ExactArgs(1),
		Example: "  canopy router bgp set edge --asn 64512 --peer address=198.51.100.254,asn=64496,hold=90,keepalive=30,password=s3cret --network 203.0.113.0/24",
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			rid, err := c.resolve(ctx, "routers", args[0])
			if err != nil {
				return err
			}
			b := &topology.BGP{ASN: asn}
			if routerID != "" {
				if b.RouterID, err = netip.ParseAddr(routerID); err != nil {
					return fmt.Errorf("--router-id: %q is not an IPv4 address", routerID)
				}
			}
			for _, s := range peers {
				p, err := parsePeer(s)
				if err != nil {
					return fmt.Errorf("--peer %q: %w", s, err)
				}
				b.Peers = append(b.Peers, p)
			}
			for _, s := range networks {
				n, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("--network: %q is not a prefix", s)
				}
				b.Networks = append(b.Networks, n)
			}
			raw, err := c.Send(ctx, http.MethodPut, "/routers/"+rid+"/bgp", b, nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	set.Flags().Uint32Var(&asn, "asn", 0, "the router's AS number (required)")
	set.Flags().StringVar(&routerID, "router-id", "", "BGP router id (default: chosen by the speaker)")
	set.Flags().StringArrayVar(&peers, "peer", nil, "a neighbour: address=IP,asn=N[,hold=S][,keepalive=S][,retry=S][,password=P] (repeatable)")
	set.Flags().StringArrayVar(&networks, "network", nil, "an advertised prefix (repeatable)")
	_ = set.MarkFlagRequired("asn")
	show := &cobra.Command{
		Use: "show ROUTER", Short: "Show a router's BGP settings", Args: cobra.ExactArgs(1),
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			rid, err := c.resolve(ctx, "routers", args[0])
			if err != nil {
				return err
			}
			raw, err := c.Get(ctx, "/routers/"+rid+"/bgp", nil)
			if err != nil {
				return err
			}
			return a.show(raw)
		}),
	}
	del := &cobra.Command{
		Use: "delete ROUTER", Short: "Remove a router's BGP settings", Args: cobra.ExactArgs(1), Aliases: []string{"rm"},
		RunE: a.run(func(ctx context.Context, c *Client, args []string) error {
			rid, err := c.resolve(ctx, "routers", args[0])
			if err != nil {
				return err
			}
			if _, err := c.Do(ctx, http.MethodDelete, "/routers/"+rid+"/bgp", nil); err != nil {
				return err
			}
			return a.done("Removed BGP from router %s", rid)
		}),
	}
	noun.AddCommand(set, show, del)
	return noun
}

// parsePeer parses address=IP,asn=N[,hold=S][,keepalive=S][,retry=S][,password=P].
func parsePeer(s string) (topology.BGPPeer, error) {
	var p topology.BGPPeer
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return p, fmt.Errorf("%q is not key=value", kv)
		}
		var err error
		u16 := func(dst *uint16) {
			var n uint64
			n, err = strconv.ParseUint(v, 10, 16)
			*dst = uint16(n)
		}
		switch k {
		case "address":
			p.Address, err = netip.ParseAddr(v)
		case "asn":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 32)
			p.ASN = uint32(n)
		case "hold":
			u16(&p.HoldTime)
		case "keepalive":
			u16(&p.KeepAlive)
		case "retry":
			u16(&p.ConnectRetry)
		case "password":
			p.Password = v
		default:
			return p, fmt.Errorf("unknown key %q (want address, asn, hold, keepalive, retry, password)", k)
		}
		if err != nil {
			return p, fmt.Errorf("%s: %q is not valid", k, v)
		}
	}
	if !p.Address.IsValid() {
		return p, fmt.Errorf("address= is required")
	}
	return p, nil
}
