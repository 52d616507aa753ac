package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	acct     = "111122223333"
	vpcID    = "vpc-0a1b2c3d4e5f60718"
	subA     = "subnet-0aaaaaaaaaaaaaaaa"
	subB     = "subnet-0bbbbbbbbbbbbbbbb"
	gwHost   = "6b1f2c4e-0000-4000-8000-000000000001"
	vmHost   = "6b1f2c4e-0000-4000-8000-000000000002"
	mainRTB  = "rtb-0000000000000main0"
	defACL   = "acl-0000000000000def0"
	defGroup = "sg-0000000000000def0"
)

var (
	pfx = netip.MustParsePrefix
	ip  = netip.MustParseAddr
)

func cloud() CloudConfig {
	return CloudConfig{
		Gateways: []Gateway{{
			HostID: gwHost, Interface: "eth1", Address: pfx("192.0.2.2/24"), NextHop: ip("192.0.2.1"),
			BGPPeer: &BGPPeer{Address: ip("192.0.2.1"), ASN: 65000},
		}},
		PublicPools: []netip.Prefix{pfx("203.0.113.0/24")},
		DNSServers:  []netip.Addr{ip("192.0.2.53")},
		DomainName:  "eu-west-1.compute.internal",
		BGP:         &BGPConfig{ASN: 64512},
	}
}

// base is one VPC with default DHCP options and nothing in it.
func base() *vpc.State {
	s := vpc.NewState()
	s.Accounts[acct] = &vpc.Account{ID: acct, Name: "tenant"}
	s.Vpcs[vpcID] = &vpc.Vpc{ID: vpcID, OwnerID: acct, CidrBlock: pfx("10.0.0.0/16"), DhcpOptionsID: vpc.DefaultDhcpOptions,
		State: vpc.StateAvailable, EnableDNSSupport: true, TransitIndex: 2}
	return s
}

// withSubnets adds two subnets, the main route table (local only), the
// default ACL (allow all, both ways) and the default group.
func withSubnets(s *vpc.State) *vpc.State {
	s.Subnets[subA] = &vpc.Subnet{ID: subA, OwnerID: acct, VpcID: vpcID, CidrBlock: pfx("10.0.1.0/24"), AvailabilityZone: "az1", State: vpc.StateAvailable}
	s.Subnets[subB] = &vpc.Subnet{ID: subB, OwnerID: acct, VpcID: vpcID, CidrBlock: pfx("10.0.2.0/24"), AvailabilityZone: "az1", State: vpc.StateAvailable}
	s.RouteTables[mainRTB] = &vpc.RouteTable{ID: mainRTB, OwnerID: acct, VpcID: vpcID,
		Routes:       []vpc.Route{{DestinationCidrBlock: pfx("10.0.0.0/16"), GatewayID: vpc.LocalGateway, State: vpc.RouteActive}},
		Associations: []vpc.RouteTableAssociation{{ID: "rtbassoc-0000000000000main0", Main: true}}}
	s.NetworkACLs[defACL] = &vpc.NetworkACL{ID: defACL, OwnerID: acct, VpcID: vpcID, IsDefault: true, Entries: []vpc.NetworkACLEntry{
		{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: pfx("0.0.0.0/0")},
		{RuleNumber: 32767, Protocol: "-1", RuleAction: vpc.ACLDeny, CidrBlock: pfx("0.0.0.0/0")},
		{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: pfx("0.0.0.0/0")},
		{RuleNumber: 32767, Egress: true, Protocol: "-1", RuleAction: vpc.ACLDeny, CidrBlock: pfx("0.0.0.0/0")},
	}}
	s.SecurityGroups[defGroup] = &vpc.SecurityGroup{ID: defGroup, OwnerID: acct, VpcID: vpcID, GroupName: vpc.DefaultGroupName,
		Ingress: []vpc.SecurityGroupRule{{ID: "sgr-000000000000def01", IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: defGroup}},
		Egress:  []vpc.SecurityGroupRule{{ID: "sgr-000000000000def02", IsEgress: true, IPProtocol: "-1", FromPort: -1, ToPort: -1, CidrIPv4: pfx("0.0.0.0/0")}}}
	return s
}

func eni(s *vpc.State, id, subnet, mac string, srcDst bool, groups []string, ips ...string) *vpc.NetworkInterface {
	e := &vpc.NetworkInterface{ID: id, OwnerID: acct, VpcID: vpcID, SubnetID: subnet, MacAddress: mac, Groups: groups,
		SourceDestCheck: srcDst, Status: vpc.StateAvailable, InterfaceType: vpc.InterfaceTypeInterface}
	for i, a := range ips {
		e.PrivateIPs = append(e.PrivateIPs, vpc.PrivateIP{Address: ip(a), Primary: i == 0})
	}
	s.NetworkInterfaces[id] = e
	return e
}

func place(s *vpc.State, e *vpc.NetworkInterface, inst string) {
	s.Instances[inst] = &vpc.Instance{ID: inst, OwnerID: acct, VpcID: vpcID, SubnetID: e.SubnetID, State: "running", HostID: vmHost}
	e.Attachment = &vpc.ENIAttachment{ID: "eni-attach-" + inst[2:], InstanceID: inst, Status: vpc.StateAttached}
	e.Status = vpc.StateInUse
}

func attachIGW(s *vpc.State) {
	s.InternetGateways["igw-0000000000000igw0"] = &vpc.InternetGateway{ID: "igw-0000000000000igw0", OwnerID: acct,
		Attachments: []vpc.IGWAttachment{{VpcID: vpcID, State: vpc.StateAvailable}}}
	t := s.RouteTables[mainRTB]
	t.Routes = append(t.Routes, vpc.Route{DestinationCidrBlock: pfx("0.0.0.0/0"), GatewayID: "igw-0000000000000igw0", State: vpc.RouteActive, Origin: vpc.OriginCreateRoute})
}

// cases are the golden scenarios, one per VPC object kind.
var cases = map[string]func() *vpc.State{
	"vpc":    base,
	"subnet": func() *vpc.State { return withSubnets(base()) },
	"igw": func() *vpc.State {
		s := withSubnets(base())
		attachIGW(s)
		return s
	},
	"route-table": func() *vpc.State {
		s := withSubnets(base())
		attachIGW(s)
		e := eni(s, "eni-0000000000000rtr0", subA, "02:00:00:00:01:01", false, []string{defGroup}, "10.0.1.10")
		place(s, e, "i-0000000000000rtr0")
		s.NatGateways["nat-0000000000000nat0"] = &vpc.NatGateway{ID: "nat-0000000000000nat0", OwnerID: acct, VpcID: vpcID, SubnetID: subA,
			State: vpc.StateAvailable, PublicIP: ip("203.0.113.20"), PrivateIP: ip("10.0.1.20"), TransitIndex: 3}
		s.RouteTables["rtb-0000000000000priv0"] = &vpc.RouteTable{ID: "rtb-0000000000000priv0", OwnerID: acct, VpcID: vpcID,
			Routes: []vpc.Route{
				{DestinationCidrBlock: pfx("10.0.0.0/16"), GatewayID: vpc.LocalGateway, State: vpc.RouteActive},
				{DestinationCidrBlock: pfx("0.0.0.0/0"), NatGatewayID: "nat-0000000000000nat0", State: vpc.RouteActive},
				{DestinationCidrBlock: pfx("192.168.0.0/16"), NetworkInterfaceID: "eni-0000000000000rtr0", State: vpc.RouteActive},
				{DestinationCidrBlock: pfx("172.16.0.0/12"), InstanceID: "i-0000000000000rtr0", State: vpc.RouteActive},
				{DestinationCidrBlock: pfx("198.51.100.0/24"), GatewayID: "igw-00000000000gone0", State: vpc.RouteBlackhole},
			},
			Associations: []vpc.RouteTableAssociation{{ID: "rtbassoc-000000000000priv0", SubnetID: subB}}}
		return s
	},
	"sg": func() *vpc.State {
		s := withSubnets(base())
		s.SecurityGroups["sg-00000000000000web"] = &vpc.SecurityGroup{ID: "sg-00000000000000web", OwnerID: acct, VpcID: vpcID, GroupName: "web",
			Ingress: []vpc.SecurityGroupRule{
				{ID: "sgr-00000000000web01", IPProtocol: "tcp", FromPort: 443, ToPort: 443, CidrIPv4: pfx("0.0.0.0/0"), Description: "https"},
				{ID: "sgr-00000000000web02", IPProtocol: "tcp", FromPort: 8000, ToPort: 8999, CidrIPv4: pfx("10.0.0.0/8")},
				{ID: "sgr-00000000000web03", IPProtocol: "icmp", FromPort: 8, ToPort: -1, CidrIPv4: pfx("0.0.0.0/0")},
				{ID: "sgr-00000000000web04", IPProtocol: "-1", FromPort: -1, ToPort: -1, ReferencedGroupID: "sg-0000000000000app0"},
			},
			Egress: []vpc.SecurityGroupRule{
				{ID: "sgr-00000000000web05", IsEgress: true, IPProtocol: "udp", FromPort: 53, ToPort: 53, CidrIPv4: pfx("10.0.0.2/32")},
				{ID: "sgr-00000000000web06", IsEgress: true, IPProtocol: "tcp", FromPort: 5432, ToPort: 5432, ReferencedGroupID: "sg-0000000000000app0"},
			}}
		s.SecurityGroups["sg-0000000000000app0"] = &vpc.SecurityGroup{ID: "sg-0000000000000app0", OwnerID: acct, VpcID: vpcID, GroupName: "app"}
		eni(s, "eni-00000000000000w1", subA, "02:00:00:00:02:01", true, []string{"sg-00000000000000web"}, "10.0.1.11")
		eni(s, "eni-00000000000000a1", subB, "02:00:00:00:02:02", true, []string{"sg-0000000000000app0", defGroup}, "10.0.2.11", "10.0.2.12")
		return s
	},
	"nacl": func() *vpc.State {
		s := withSubnets(base())
		s.NetworkACLs["acl-0000000000000priv0"] = &vpc.NetworkACL{ID: "acl-0000000000000priv0", OwnerID: acct, VpcID: vpcID,
			Associations: []vpc.NetworkACLAssociation{{ID: "aclassoc-00000000000priv0", SubnetID: subB}},
			Entries: []vpc.NetworkACLEntry{
				{RuleNumber: 200, Protocol: "6", RuleAction: vpc.ACLAllow, CidrBlock: pfx("10.0.0.0/16"), PortFrom: 22, PortTo: 22},
				{RuleNumber: 100, Protocol: "6", RuleAction: vpc.ACLDeny, CidrBlock: pfx("10.0.1.66/32"), PortFrom: 0, PortTo: 65535},
				{RuleNumber: 300, Protocol: "1", RuleAction: vpc.ACLAllow, CidrBlock: pfx("0.0.0.0/0"), ICMPType: -1, ICMPCode: -1},
				{RuleNumber: 310, Protocol: "17", RuleAction: vpc.ACLAllow, CidrBlock: pfx("0.0.0.0/0"), PortFrom: 1024, PortTo: 65535},
				{RuleNumber: 32767, Protocol: "-1", RuleAction: vpc.ACLDeny, CidrBlock: pfx("0.0.0.0/0")},
				{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: pfx("10.0.0.0/16")},
				{RuleNumber: 32767, Egress: true, Protocol: "-1", RuleAction: vpc.ACLDeny, CidrBlock: pfx("0.0.0.0/0")},
			}}
		return s
	},
	"eni": func() *vpc.State {
		s := withSubnets(base())
		on := eni(s, "eni-0000000000000chk1", subA, "02:00:00:00:03:01", true, []string{defGroup}, "10.0.1.30")
		place(s, on, "i-0000000000000chk1")
		off := eni(s, "eni-0000000000000rtr1", subA, "02:00:00:00:03:02", false, []string{defGroup}, "10.0.1.31", "10.0.1.40", "10.0.1.41")
		place(s, off, "i-0000000000000rtr1")
		eni(s, "eni-0000000000000unb1", subB, "02:00:00:00:03:03", true, nil, "10.0.2.30") // not attached: unbound port
		return s
	},
	"eip": func() *vpc.State {
		s := withSubnets(base())
		attachIGW(s)
		e := eni(s, "eni-0000000000000eip1", subA, "02:00:00:00:04:01", true, []string{defGroup}, "10.0.1.50", "10.0.1.51")
		place(s, e, "i-0000000000000eip1")
		s.Addresses["eipalloc-000000000000001"] = &vpc.Address{AllocationID: "eipalloc-000000000000001", OwnerID: acct, PublicIP: ip("203.0.113.5"), Domain: "vpc",
			AssociationID: "eipassoc-000000000000001", NetworkInterfaceID: e.ID, PrivateIPAddress: ip("10.0.1.50")}
		s.Addresses["eipalloc-000000000000002"] = &vpc.Address{AllocationID: "eipalloc-000000000000002", OwnerID: acct, PublicIP: ip("203.0.113.6"), Domain: "vpc",
			AssociationID: "eipassoc-000000000000002", NetworkInterfaceID: e.ID, PrivateIPAddress: ip("10.0.1.51")}
		s.Addresses["eipalloc-000000000000003"] = &vpc.Address{AllocationID: "eipalloc-000000000000003", OwnerID: acct, PublicIP: ip("203.0.113.7"), Domain: "vpc"}
		return s
	},
	"nat-gateway": func() *vpc.State {
		s := withSubnets(base())
		attachIGW(s)
		ne := eni(s, "eni-0000000000000nat1", subA, "02:00:00:00:05:01", false, nil, "10.0.1.100")
		ne.InterfaceType, ne.RequesterManaged = vpc.InterfaceTypeNatGateway, true
		s.Addresses["eipalloc-00000000000000n"] = &vpc.Address{AllocationID: "eipalloc-00000000000000n", OwnerID: acct, PublicIP: ip("203.0.113.9"), Domain: "vpc",
			AssociationID: "eipassoc-00000000000000n", NetworkInterfaceID: ne.ID, PrivateIPAddress: ip("10.0.1.100")}
		s.NatGateways["nat-0000000000000nat1"] = &vpc.NatGateway{ID: "nat-0000000000000nat1", OwnerID: acct, VpcID: vpcID, SubnetID: subA,
			State: vpc.StateAvailable, AllocationID: "eipalloc-00000000000000n", PublicIP: ip("203.0.113.9"), PrivateIP: ip("10.0.1.100"),
			NetworkInterfaceID: ne.ID, TransitIndex: 3}
		s.NatGateways["nat-0000000000000dead"] = &vpc.NatGateway{ID: "nat-0000000000000dead", OwnerID: acct, VpcID: vpcID, SubnetID: subA,
			State: vpc.StateDeleted, PublicIP: ip("203.0.113.10"), PrivateIP: ip("10.0.1.101"), TransitIndex: 4}
		s.RouteTables["rtb-0000000000000priv0"] = &vpc.RouteTable{ID: "rtb-0000000000000priv0", OwnerID: acct, VpcID: vpcID,
			Routes: []vpc.Route{
				{DestinationCidrBlock: pfx("10.0.0.0/16"), GatewayID: vpc.LocalGateway, State: vpc.RouteActive},
				{DestinationCidrBlock: pfx("0.0.0.0/0"), NatGatewayID: "nat-0000000000000nat1", State: vpc.RouteActive},
			},
			Associations: []vpc.RouteTableAssociation{{ID: "rtbassoc-000000000000priv0", SubnetID: subB}}}
		return s
	},
	// Two accounts with the same CIDRs and addresses: each VPC has its own
	// router, so nothing collides.
	"overlap": func() *vpc.State {
		s := withSubnets(base())
		eni(s, "eni-0000000000000ova1", subA, "02:00:00:00:07:01", true, []string{defGroup}, "10.0.1.70")
		const other, v2, sub2 = "444455556666", "vpc-0000000000000ovb0", "subnet-0000000000000ovb0"
		s.Accounts[other] = &vpc.Account{ID: other, Name: "other"}
		s.Vpcs[v2] = &vpc.Vpc{ID: v2, OwnerID: other, CidrBlock: pfx("10.0.0.0/16"), DhcpOptionsID: vpc.DefaultDhcpOptions, State: vpc.StateAvailable, EnableDNSSupport: true, TransitIndex: 3}
		s.Subnets[sub2] = &vpc.Subnet{ID: sub2, OwnerID: other, VpcID: v2, CidrBlock: pfx("10.0.1.0/24"), State: vpc.StateAvailable}
		s.NetworkInterfaces["eni-0000000000000ovb1"] = &vpc.NetworkInterface{ID: "eni-0000000000000ovb1", OwnerID: other, VpcID: v2, SubnetID: sub2,
			MacAddress: "02:00:00:00:07:02", PrivateIPs: []vpc.PrivateIP{{Address: ip("10.0.1.70"), Primary: true}}, SourceDestCheck: true}
		return s
	},
	"join": joinCase,
	"dhcp-options": func() *vpc.State {
		s := withSubnets(base())
		s.DhcpOptions["dopt-00000000000000001"] = &vpc.DhcpOptions{ID: "dopt-00000000000000001", OwnerID: acct, Config: map[string][]string{
			vpc.DhcpDomainName:        {"corp.example.com"},
			vpc.DhcpDomainNameServers: {"10.0.0.53", vpc.AmazonProvidedDNS},
			vpc.DhcpNTPServers:        {"10.0.0.123"},
		}}
		s.Vpcs[vpcID].DhcpOptionsID = "dopt-00000000000000001"
		eni(s, "eni-0000000000000dhc1", subA, "02:00:00:00:06:01", true, nil, "10.0.1.60")
		return s
	},
}

// golden is what a golden file holds: the state in and the topology out.
type golden struct {
	State    *vpc.State   `json:"state"`
	Skipped  []Skip       `json:"skipped,omitempty"`
	Topology []goldenItem `json:"topology"`
}

type goldenItem struct {
	Kind   topology.Kind   `json:"kind"`
	Object topology.Object `json:"object"`
}

func render(t *testing.T, s *vpc.State, d *Desired) []byte {
	t.Helper()
	g := golden{State: s, Skipped: d.Skipped}
	for _, o := range d.Objects {
		g.Topology = append(g.Topology, goldenItem{o.Kind(), o})
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			s := mk()
			got := render(t, s, Translate(s, cloud()))
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("translation differs from %s (go test -update rewrites it; review the diff):\n%s", path, firstDiff(got, want))
			}
		})
	}
}

func firstDiff(got, want []byte) string {
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			return "line " + itoa(i+1) + ":\n got: " + string(g) + "\nwant: " + string(w)
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestStoreAccepts checks that every object of every scenario passes the
// topology's own validation and that the whole output, with the hosts the
// agents would have registered, passes the store's integrity checks.
func TestStoreAccepts(t *testing.T) {
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			d := Translate(mk(), cloud())
			if len(d.Skipped) > 0 {
				t.Errorf("skipped: %+v", d.Skipped)
			}
			x := topology.NewIndex()
			for _, h := range []string{gwHost, vmHost} {
				x.Put(&topology.Host{Meta: topology.Meta{ID: h}})
			}
			for _, o := range d.Objects {
				if err := o.Validate(); err != nil {
					t.Errorf("%s %s (%s): Validate: %v", o.Kind(), o.GetMeta().ID, o.GetMeta().Name, err)
				}
				if !Owned(o) || o.GetMeta().Labels[LabelObject] == "" {
					t.Errorf("%s %s: missing labels %v", o.Kind(), o.GetMeta().ID, o.GetMeta().Labels)
				}
				if p, ok := o.(*topology.Port); ok && p.TunnelKey != 0 {
					t.Errorf("port %s: tunnel key set", p.ID)
				}
				x.Put(o)
			}
			for _, o := range d.Objects {
				if err := topology.Check(x, nil, o); err != nil {
					t.Errorf("%s %s (%s): Check: %v", o.Kind(), o.GetMeta().ID, o.GetMeta().Name, err)
				}
			}
		})
	}
}

// reshuffle rebuilds a state by inserting its objects into fresh maps in a
// random order, and shuffles the slices whose order carries no meaning.
func reshuffle(s *vpc.State, r *rand.Rand) *vpc.State {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var c vpc.State
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	for _, g := range c.SecurityGroups {
		r.Shuffle(len(g.Ingress), func(i, j int) { g.Ingress[i], g.Ingress[j] = g.Ingress[j], g.Ingress[i] })
		r.Shuffle(len(g.Egress), func(i, j int) { g.Egress[i], g.Egress[j] = g.Egress[j], g.Egress[i] })
	}
	for _, a := range c.NetworkACLs {
		r.Shuffle(len(a.Entries), func(i, j int) { a.Entries[i], a.Entries[j] = a.Entries[j], a.Entries[i] })
	}
	for _, t := range c.RouteTables {
		r.Shuffle(len(t.Routes), func(i, j int) { t.Routes[i], t.Routes[j] = t.Routes[j], t.Routes[i] })
	}
	for _, e := range c.NetworkInterfaces {
		r.Shuffle(len(e.Groups), func(i, j int) { e.Groups[i], e.Groups[j] = e.Groups[j], e.Groups[i] })
	}
	return &c
}

func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for name, mk := range cases {
		s := mk()
		want := render(t, nil, Translate(s, cloud()))
		for i := range 5 {
			got := render(t, nil, Translate(reshuffle(s, r), cloud()))
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: run %d differs after reshuffling the input:\n%s", name, i, firstDiff(got, want))
			}
		}
	}
}

func TestObjectID(t *testing.T) {
	a := ObjectID(vpcID, "router")
	if a != ObjectID(vpcID, "router") || a == ObjectID(vpcID, "uplink") || a == ObjectID("vpc-1", "router") {
		t.Fatal("ObjectID is not a function of its input")
	}
	if len(a) != 36 || a[14] != '5' || (a[19] != '8' && a[19] != '9' && a[19] != 'a' && a[19] != 'b') {
		t.Fatalf("%s is not a UUIDv5", a)
	}
}
