// Command controller measures the VPC → topology controller on the embedded
// store, at two sizes side by side (issue 5's targets): a small cloud and a
// large one of N VPCs, each with 4 subnets, an internet gateway, a main
// route table, a default network ACL and 10 security groups of 20 rules.
//
// For each size it stores the VPC objects (as the EC2 server stores them),
// starts a controller and reports the full resync time and the heap in use
// after GC; then it makes single changes one at a time — authorizing one
// rule by writing its security group's key — and reports the time from the
// write's commit to the controller's applied watermark reaching it
// (p50/p99/max), and how many partitions each change translated. A bare
// etcd put timed alongside is the floor: each round commits once.
//
//	go run ./bench/controller [-vpcs 1000] [-small 10] [-changes 200]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/canopy-sdn/canopy/bench/tempstore"
	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

func main() {
	vpcs := flag.Int("vpcs", 1000, "VPCs in the large cloud")
	small := flag.Int("small", 10, "VPCs in the small cloud")
	changes := flag.Int("changes", 200, "single changes to time at each size")
	cpuprofile := flag.String("cpuprofile", "", "write CPU profiles of the large size's first translation to this file, and of its restart to this file + \".restart\"")
	flag.Parse()
	profile = *cpuprofile
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var rs []result
	for _, n := range []int{*small, *vpcs} {
		r, err := run(n, *changes)
		if err != nil {
			// Not log.Fatalf: slog.SetDefault sent the log package to io.Discard.
			fmt.Fprintf(os.Stderr, "%d VPCs: %v\n", n, err)
			os.Exit(1)
		}
		rs = append(rs, r)
	}
	fmt.Printf("controller bench: embedded etcd, GOMAXPROCS %d; per VPC 4 subnets, 10 security groups × 20 rules, IGW, main route table, default ACL\n", runtime.GOMAXPROCS(0))
	row := func(name string, f func(r result) string) {
		fmt.Printf("  %-44s", name)
		for _, r := range rs {
			fmt.Printf("%18s", f(r))
		}
		fmt.Println()
	}
	row("VPCs", func(r result) string { return strconv.Itoa(r.vpcs) })
	row("VPC objects stored (keys)", func(r result) string { return strconv.Itoa(r.keys) })
	row("topology objects realized", func(r result) string { return strconv.Itoa(r.objects) })
	row("full resync (start → applied)", func(r result) string { return r.resync.Round(time.Millisecond).String() })
	row("store transactions in the resync", func(r result) string { return strconv.FormatInt(r.resyncTxns, 10) })
	row("heap in use before the controller (MiB)", func(r result) string { return mib(r.heapBefore) })
	row("heap in use after the resync (MiB)", func(r result) string { return mib(r.heapAfter) })
	row("heap in use, controller stopped (MiB)", func(r result) string { return mib(r.heapStopped) })
	row("restart: resync with nothing to do", func(r result) string { return r.restart.Round(time.Millisecond).String() })
	row("restart: objects written", func(r result) string { return strconv.FormatInt(r.restartWrites, 10) })
	row(fmt.Sprintf("change: commit → applied p50 (%d)", len(rs[0].lat)), func(r result) string { return pct(r.lat, 50) })
	row("change: commit → applied p99", func(r result) string { return pct(r.lat, 99) })
	row("change: commit → applied max", func(r result) string { return pct(r.lat, 100) })
	row("reference: one bare etcd put p50", func(r result) string { return pct(r.putLat, 50) })
	row("reference: one bare etcd put p99", func(r result) string { return pct(r.putLat, 99) })
	row("change: partitions translated per change", func(r result) string { return fmt.Sprintf("%.2f", r.translatedPer) })
	row("change: objects written per change", func(r result) string { return fmt.Sprintf("%.2f", r.writesPer) })
	if len(rs) == 2 {
		fmt.Printf("  ratio large/small: resync %.1fx, change p50 %.2fx, p99 %.2fx\n",
			float64(rs[1].resync)/float64(rs[0].resync),
			float64(at(rs[1].lat, 50))/float64(at(rs[0].lat, 50)),
			float64(at(rs[1].lat, 99))/float64(at(rs[0].lat, 99)))
	}
}

var profile string

// startProfile starts a CPU profile into profile+suffix at the large size
// (-cpuprofile); the func it returns stops it.
func startProfile(n int, suffix string) (stop func(), err error) {
	if profile == "" || n <= 100 {
		return func() {}, nil
	}
	f, err := os.Create(profile + suffix)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

type result struct {
	vpcs, keys, objects   int
	resync, restart       time.Duration
	resyncTxns            int64
	restartWrites         int64
	heapBefore, heapAfter uint64
	heapStopped           uint64
	lat                   []time.Duration
	putLat                []time.Duration // a bare etcd put, for reference
	translatedPer         float64
	writesPer             float64
}

func mib(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func at(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i]
}

func pct(d []time.Duration, p int) string {
	return at(d, p).Round(10 * time.Microsecond).String()
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

const (
	acct    = "111122223333"
	gwHost  = "9a7e0f00-0000-4000-8000-000000000001"
	sgs     = 10
	rules   = 20
	subnets = 4
)

func cloud() translate.CloudConfig {
	return translate.CloudConfig{
		Gateways:    []translate.Gateway{{HostID: gwHost, Interface: "eth1", Address: netip.MustParsePrefix("192.0.2.2/24"), NextHop: netip.MustParseAddr("192.0.2.1")}},
		PublicPools: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	}
}

// kv is one VPC object to store.
type kv = nsdb.VPCObject

func sgID(v, g int) string { return fmt.Sprintf("sg-%08x%09x", v, g) }

// cloudObjects builds n VPCs' objects.
func cloudObjects(n int) []kv {
	var out []kv
	add := func(coll, id string, obj any) { out = append(out, kv{Collection: coll, ID: id, Object: obj}) }
	add("accounts", acct, &vpc.Account{ID: acct, Name: "bench"})
	for v := range n {
		vid := fmt.Sprintf("vpc-%017x", v)
		add("vpcs", vid, &vpc.Vpc{ID: vid, OwnerID: acct, CidrBlock: netip.MustParsePrefix("10.0.0.0/16"), DhcpOptionsID: vpc.DefaultDhcpOptions,
			State: vpc.StateAvailable, EnableDNSSupport: true, TransitIndex: 2 + v})
		igw := fmt.Sprintf("igw-%017x", v)
		add("internet_gateways", igw, &vpc.InternetGateway{ID: igw, OwnerID: acct, Attachments: []vpc.IGWAttachment{{VpcID: vid, State: vpc.StateAvailable}}})
		acl := &vpc.NetworkACL{ID: fmt.Sprintf("acl-%017x", v), OwnerID: acct, VpcID: vid, IsDefault: true, Entries: []vpc.NetworkACLEntry{
			{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: netip.MustParsePrefix("0.0.0.0/0")},
			{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: netip.MustParsePrefix("0.0.0.0/0")}}}
		for s := range subnets {
			sid := fmt.Sprintf("subnet-%08x%09x", v, s)
			add("subnets", sid, &vpc.Subnet{ID: sid, OwnerID: acct, VpcID: vid, CidrBlock: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(s), 0}), 24), State: vpc.StateAvailable})
			acl.Associations = append(acl.Associations, vpc.NetworkACLAssociation{ID: fmt.Sprintf("aclassoc-%08x%09x", v, s), SubnetID: sid})
		}
		add("network_acls", acl.ID, acl)
		rtb := fmt.Sprintf("rtb-%017x", v)
		add("route_tables", rtb, &vpc.RouteTable{ID: rtb, OwnerID: acct, VpcID: vid, Routes: []vpc.Route{
			{DestinationCidrBlock: netip.MustParsePrefix("10.0.0.0/16"), GatewayID: vpc.LocalGateway, Origin: vpc.OriginCreateRouteTable, State: vpc.RouteActive},
			{DestinationCidrBlock: netip.MustParsePrefix("0.0.0.0/0"), GatewayID: igw, Origin: vpc.OriginCreateRoute, State: vpc.RouteActive}},
			Associations: []vpc.RouteTableAssociation{{ID: fmt.Sprintf("rtbassoc-%017x", v), Main: true, State: "associated"}}})
		for g := range sgs {
			sg := &vpc.SecurityGroup{ID: sgID(v, g), OwnerID: acct, VpcID: vid, GroupName: fmt.Sprintf("g%d", g), Description: "bench"}
			for r := range rules {
				rule := vpc.SecurityGroupRule{ID: fmt.Sprintf("sgr-%08x%04x%05x", v, g, r), IPProtocol: "tcp", FromPort: 1000 + r, ToPort: 1000 + r,
					CidrIPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(g), byte(r)}), 32)}
				if r%5 == 4 {
					rule.IsEgress = true
					sg.Egress = append(sg.Egress, rule)
				} else {
					sg.Ingress = append(sg.Ingress, rule)
				}
			}
			add("security_groups", sg.ID, sg)
		}
	}
	return out
}

func run(n, changes int) (result, error) {
	r := result{vpcs: n}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s, closeStore, err := tempstore.Open(ctx, "canopy-bench-controller-")
	if err != nil {
		return r, err
	}
	defer closeStore()
	if _, err := s.Create(ctx, &topology.Host{Meta: topology.Meta{ID: gwHost, Name: "gateway"}}); err != nil {
		return r, err
	}
	objs := cloudObjects(n)
	r.keys = len(objs)
	rev, err := s.LoadVPCObjects(ctx, objs)
	if err != nil {
		return r, err
	}
	sgObjs := map[string]*vpc.SecurityGroup{}
	for _, o := range objs {
		if g, ok := o.Object.(*vpc.SecurityGroup); ok {
			sgObjs[g.ID] = g
		}
	}
	objs = nil

	r.heapBefore = heapInUse()
	c := controller.New(s, cloud(), nil)
	stopProfile, err := startProfile(n, "")
	if err != nil {
		return r, err
	}
	start := time.Now()
	if err := c.Start(ctx); err != nil {
		return r, err
	}
	if _, err := c.WaitApplied(ctx, rev); err != nil {
		c.Stop()
		return r, err
	}
	r.resync = time.Since(start)
	stopProfile()
	r.resyncTxns = c.Stats().Txns
	r.heapAfter = heapInUse()
	for _, k := range topology.Kinds {
		s.Read(func(rd topology.Reader) {
			for _, o := range rd.List(k) {
				if translate.Owned(o) {
					r.objects++
				}
			}
		})
	}
	// Restart on an up-to-date topology.
	c.Stop()
	r.heapStopped = heapInUse()
	c = controller.New(s, cloud(), nil)
	if stopProfile, err = startProfile(n, ".restart"); err != nil {
		return r, err
	}
	start = time.Now()
	if err := c.Start(ctx); err != nil {
		return r, err
	}
	defer c.Stop()
	if _, err := c.WaitApplied(ctx, rev); err != nil {
		return r, err
	}
	r.restart = time.Since(start)
	stopProfile()
	st := c.Stats()
	r.restartWrites = st.Creates + st.Updates + st.Deletes

	// Single changes: authorize one more ingress rule in a random group.
	rnd := rand.New(rand.NewPCG(uint64(n), 7))
	before := c.Stats()
	for i := range changes {
		g := sgObjs[sgID(rnd.IntN(n), rnd.IntN(sgs))]
		g.Ingress = append(g.Ingress, vpc.SecurityGroupRule{ID: fmt.Sprintf("sgr-b%016x", i), IPProtocol: "udp", FromPort: 2000 + i%1000, ToPort: 2000 + i%1000,
			CidrIPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)}), 32)})
		rev, err := s.LoadVPCObjects(ctx, []kv{{Collection: "security_groups", ID: g.ID, Object: g}})
		if err != nil {
			return r, err
		}
		committed := time.Now()
		if _, err := c.WaitApplied(ctx, rev); err != nil {
			return r, err
		}
		r.lat = append(r.lat, time.Since(committed))
		// The controller's round includes one store commit (an fsync on
		// the embedded etcd): a bare put, timed alongside, is the floor.
		t0 := time.Now()
		if err := s.PutScratch(ctx, strconv.Itoa(i)); err != nil {
			return r, err
		}
		r.putLat = append(r.putLat, time.Since(t0))
	}
	after := c.Stats()
	r.translatedPer = float64(after.Translated-before.Translated) / float64(changes)
	r.writesPer = float64(after.Creates+after.Updates+after.Deletes-before.Creates-before.Updates-before.Deletes) / float64(changes)
	return r, nil
}
