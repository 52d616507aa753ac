// Command scale simulates a cloud's control plane at MidoNet's large
// reference size on this machine (issue 13, must-show 3): one embedded etcd,
// the server's store and controller, and hundreds of agent replicas (the
// agent's real replica code, without a datapath) in this process, over
// loopback. The cloud has -vpcs VPCs and -ports ENIs spread over them, each
// VPC's ports on three of the -agents hosts.
//
// It prints: the controller's first translation of the cloud (every object
// written), its resync of the unchanged store when the server restarts
// (store open and controller) and when the controller alone does, and the
// server heap; memory
// per agent replica, full (all of the topology) and partial (the cloud and
// the VPCs of the host's ports); the time from a change's commit to every
// interested replica having applied it, for an EC2 change (a security group
// rule, through the controller) and a topology change (a chain written as
// the REST API writes it), p50/p99; etcd requests and watch events per
// second while those changes ran; and topology creates per second from 1,
// 2, 4 and 8 parallel writers (-creates 0 skips them).
//
// -eips N associates N elastic IPs with the first ENI(s) of every VPC (in
// turn): each is a /32 route on the edge that is also copied into its
// VPC's partition and held by every partial replica (they follow the
// edge), so this shows what they cost a replica.
//
//	go run ./bench/scale [-vpcs 1000] [-ports 20000] [-eips 0] [-agents 600] [-full 2] [-changes 100] [-cpuprofile f] [-memprofile f]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/canopy-sdn/canopy/bench/tempstore"
	"github.com/canopy-sdn/canopy/internal/agent"
	"github.com/canopy-sdn/canopy/internal/controller"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	nVPCs    = flag.Int("vpcs", 1000, "VPCs")
	nPorts   = flag.Int("ports", 20000, "ENIs (bridge ports), spread evenly over the VPCs")
	nAgents  = flag.Int("agents", 600, "agent replicas (partial)")
	nFull    = flag.Int("full", 2, "full replicas measured for comparison")
	nEIPs    = flag.Int("eips", 0, "elastic IPs, associated with ENIs (at most -ports)")
	nChanges = flag.Int("changes", 100, "changes of each kind timed")
	nCreates = flag.Int("creates", 1000, "topology creates per writer level")
	clients  = flag.Int("clients", 4, "etcd clients the replicas share (agents each have one; a few keep this process light)")
	cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the timed changes to this file, and of the server's and the controller's restart to this file + \".server-restart\" and \".controller-restart\"")
	memprof  = flag.String("memprofile", "", "write a heap profile of the server (store, controller, embedded etcd) after the first translation to this file")
)

const (
	acct   = "111122223333"
	gwHost = "9a7e0f00-0000-4000-8000-000000000001"
)

func main() {
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := run(); err != nil {
		// Not log.Fatal: slog.SetDefault sent the log package to io.Discard.
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

func hostID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", i+1) }

// hostsOf are the three hosts VPC v's ports run on.
func hostsOf(v int) []int {
	return []int{(3 * v) % *nAgents, (3*v + 1) % *nAgents, (3*v + 2) % *nAgents}
}

func sgID(v int) string { return fmt.Sprintf("sg-%017x", v) }

func cloudObjects() []nsdb.VPCObject {
	var out []nsdb.VPCObject
	add := func(coll, id string, obj any) {
		out = append(out, nsdb.VPCObject{Collection: coll, ID: id, Object: obj})
	}
	add("accounts", acct, &vpc.Account{ID: acct, Name: "bench"})
	per := *nPorts / *nVPCs
	eipsOf := func(v int) int { // elastic IPs on VPC v's first ENIs
		n := *nEIPs / *nVPCs
		if v < *nEIPs%*nVPCs {
			n++
		}
		return min(n, per)
	}
	k := 0 // elastic IPs so far
	for v := range *nVPCs {
		vid := fmt.Sprintf("vpc-%017x", v)
		add("vpcs", vid, &vpc.Vpc{ID: vid, OwnerID: acct, CidrBlock: netip.MustParsePrefix("10.0.0.0/16"), DhcpOptionsID: vpc.DefaultDhcpOptions,
			State: vpc.StateAvailable, EnableDNSSupport: true, TransitIndex: 2 + v})
		igw := fmt.Sprintf("igw-%017x", v)
		add("internet_gateways", igw, &vpc.InternetGateway{ID: igw, OwnerID: acct, Attachments: []vpc.IGWAttachment{{VpcID: vid, State: vpc.StateAvailable}}})
		sid := fmt.Sprintf("subnet-%017x", v)
		add("subnets", sid, &vpc.Subnet{ID: sid, OwnerID: acct, VpcID: vid, CidrBlock: netip.MustParsePrefix("10.0.0.0/24"), State: vpc.StateAvailable})
		add("network_acls", fmt.Sprintf("acl-%017x", v), &vpc.NetworkACL{ID: fmt.Sprintf("acl-%017x", v), OwnerID: acct, VpcID: vid, IsDefault: true,
			Entries: []vpc.NetworkACLEntry{
				{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: netip.MustParsePrefix("0.0.0.0/0")},
				{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: netip.MustParsePrefix("0.0.0.0/0")}},
			Associations: []vpc.NetworkACLAssociation{{ID: fmt.Sprintf("aclassoc-%017x", v), SubnetID: sid}}})
		rtb := fmt.Sprintf("rtb-%017x", v)
		add("route_tables", rtb, &vpc.RouteTable{ID: rtb, OwnerID: acct, VpcID: vid, Routes: []vpc.Route{
			{DestinationCidrBlock: netip.MustParsePrefix("10.0.0.0/16"), GatewayID: vpc.LocalGateway, Origin: vpc.OriginCreateRouteTable, State: vpc.RouteActive},
			{DestinationCidrBlock: netip.MustParsePrefix("0.0.0.0/0"), GatewayID: igw, Origin: vpc.OriginCreateRoute, State: vpc.RouteActive}},
			Associations: []vpc.RouteTableAssociation{{ID: fmt.Sprintf("rtbassoc-%017x", v), Main: true, State: "associated"}}})
		add("security_groups", sgID(v), sg(v, 0))
		for j := range per {
			eni := fmt.Sprintf("eni-%08x%09x", v, j)
			inst := fmt.Sprintf("i-%08x%09x", v, j)
			add("instances", inst, &vpc.Instance{ID: inst, OwnerID: acct, VpcID: vid, SubnetID: sid, State: vpc.InstanceRunning,
				HostID: hostID(hostsOf(v)[j%3])})
			add("network_interfaces", eni, &vpc.NetworkInterface{ID: eni, OwnerID: acct, VpcID: vid, SubnetID: sid,
				Attachment: &vpc.ENIAttachment{ID: "eni-attach-" + eni[4:], InstanceID: inst, Status: vpc.StateAttached},
				MacAddress: fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(v>>8), byte(v), byte(j>>8), byte(j)),
				PrivateIPs: []vpc.PrivateIP{{Address: netip.AddrFrom4([4]byte{10, 0, 0, byte(4 + j)}), Primary: true}},
				Groups:     []string{sgID(v)}, SourceDestCheck: true, Status: "in-use", InterfaceType: vpc.InterfaceTypeInterface})
			if j < eipsOf(v) {
				alloc := fmt.Sprintf("eipalloc-%017x", k)
				add("addresses", alloc, &vpc.Address{AllocationID: alloc, OwnerID: acct, Domain: "vpc",
					PublicIP: eipAddr(k), AssociationID: fmt.Sprintf("eipassoc-%017x", k),
					NetworkInterfaceID: eni, PrivateIPAddress: netip.AddrFrom4([4]byte{10, 0, 0, byte(4 + j)}), InstanceID: inst})
				k++
			}
		}
	}
	return out
}

// eipPool holds the elastic IPs (-eips): 198.18.0.0/15, a benchmarking
// range, 131,072 addresses.
var eipPool = netip.MustParsePrefix("198.18.0.0/15")

// eipAddr is the pool's k-th address.
func eipAddr(k int) netip.Addr {
	b := eipPool.Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(k)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// sg is VPC v's security group with 4 rules and n extra ones (the changes).
func sg(v, n int) *vpc.SecurityGroup {
	g := &vpc.SecurityGroup{ID: sgID(v), OwnerID: acct, VpcID: fmt.Sprintf("vpc-%017x", v), GroupName: "web", Description: "bench"}
	for r := range 4 + n {
		g.Ingress = append(g.Ingress, vpc.SecurityGroupRule{ID: fmt.Sprintf("sgr-%08x%09x", v, r), IPProtocol: "tcp", FromPort: 1000 + r, ToPort: 1000 + r,
			CidrIPv4: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(r >> 8), byte(r)}), 32)})
	}
	return g
}

func cloud() translate.CloudConfig {
	cc := translate.CloudConfig{
		Gateways:    []translate.Gateway{{HostID: gwHost, Interface: "eth1", Address: netip.MustParsePrefix("192.0.2.2/24"), NextHop: netip.MustParseAddr("192.0.2.1")}},
		PublicPools: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	}
	if *nEIPs > 0 {
		cc.PublicPools = append(cc.PublicPools, eipPool)
	}
	return cc
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// cpuTime is the CPU this process has used (user and system): beside a
// wall-clock figure on a shared machine, what the work itself cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the 1-minute load average (what else the machine was running).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100].Round(10 * time.Microsecond)
}

// etcdCounters sums the embedded etcd's request counters (range, put,
// delete, txn) and the watch events it sent.
func etcdCounters() (requests, events float64) {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		switch mf.GetName() {
		case "etcd_mvcc_range_total", "etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_txn_total":
			requests += sum
		case "etcd_debugging_mvcc_events_total":
			events += sum
		}
	}
	return requests, events
}

// startProfile starts a CPU profile into -cpuprofile + suffix (nothing
// without -cpuprofile) and returns what stops it.
func startProfile(suffix string) (func(), error) {
	if *cpuprof == "" {
		return func() {}, nil
	}
	f, err := os.Create(*cpuprof + suffix)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// tracked is one running replica and the last revision it built.
type tracked struct {
	r     *agent.Replica
	built atomic.Int64
	mu    sync.Mutex
	wait  int64         // a revision someone waits for
	at    chan struct{} // closed when built reaches wait
}

func (t *tracked) onBuilt(rev int64) {
	t.built.Store(rev)
	t.mu.Lock()
	if t.at != nil && rev >= t.wait {
		close(t.at)
		t.at = nil
	}
	t.mu.Unlock()
}

// until returns a channel closed once the replica has built rev.
func (t *tracked) until(rev int64) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{})
	if t.built.Load() >= rev {
		close(ch)
		return ch
	}
	t.wait, t.at = rev, ch
	return ch
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	t0 := time.Now()
	s, closeStore, err := tempstore.Open(ctx, "canopy-bench-scale-")
	if err != nil {
		return err
	}
	defer closeStore()
	fmt.Printf("scale bench: embedded etcd, GOMAXPROCS %d; %d VPCs, %d ENIs, %d agent replicas\n", runtime.GOMAXPROCS(0), *nVPCs, *nPorts, *nAgents)

	// Hosts, then the cloud as the EC2 server stores it.
	if _, err := s.Txn(ctx, func(tx *nsdb.Tx) error {
		if _, err := tx.Create(&topology.Host{Meta: topology.Meta{ID: gwHost, Name: "gateway"}}); err != nil {
			return err
		}
		for i := range *nAgents {
			if _, err := tx.Create(&topology.Host{Meta: topology.Meta{ID: hostID(i), Name: fmt.Sprintf("host%d", i)}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	vrev, err := s.LoadVPCObjects(ctx, cloudObjects())
	if err != nil {
		return err
	}
	heapBefore := heapInUse()
	c := controller.New(s, cloud(), nil)
	start, cpu0 := time.Now(), cpuTime()
	if err := c.Start(ctx); err != nil {
		return err
	}
	if _, err := c.WaitApplied(ctx, vrev); err != nil {
		c.Stop()
		return err
	}
	resync, resyncCPU := time.Since(start), cpuTime()-cpu0
	heapServer := heapInUse()
	if *memprof != "" {
		f, err := os.Create(*memprof)
		if err != nil {
			return err
		}
		err = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	objects := 0
	s.Read(func(r topology.Reader) {
		for _, k := range topology.Kinds {
			objects += len(r.List(k))
		}
	})
	fmt.Printf("  controller first translation (all written)   %v, CPU %v, load %s (%d topology objects, %d transactions)\n",
		resync.Round(time.Millisecond), resyncCPU.Round(time.Millisecond), loadAvg(), objects, c.Stats().Txns)
	fmt.Printf("  server heap: before the controller / after   %s / %s\n", mib(heapBefore), mib(heapServer))

	// Resync of an unchanged store: a server restarting (its store opened
	// on the same etcd, loading the topology, then its controller), and a
	// controller restarting on an open store. Neither may write.
	c.Stop()
	stopRestartProfile, err := startProfile(".server-restart")
	if err != nil {
		return err
	}
	start, cpu0 = time.Now(), cpuTime()
	s2, err := nsdb.Open(ctx, nsdb.Config{Endpoints: s.Client().Endpoints()})
	if err != nil {
		return err
	}
	opened := time.Since(start)
	c2 := controller.New(s2, cloud(), nil)
	if err := c2.Start(ctx); err != nil {
		return err
	}
	_, err = c2.WaitApplied(ctx, vrev)
	restartServer, restartCPU := time.Since(start), cpuTime()-cpu0
	stopRestartProfile()
	st := c2.Stats()
	c2.Stop()
	s2.Close()
	if err != nil {
		return err
	}
	fmt.Printf("  resync, server restart on an unchanged store %v, CPU %v, load %s (store open %v; %d objects written)\n",
		restartServer.Round(time.Millisecond), restartCPU.Round(time.Millisecond), loadAvg(), opened.Round(time.Millisecond), st.Creates+st.Updates+st.Deletes)
	c = controller.New(s, cloud(), nil)
	if stopRestartProfile, err = startProfile(".controller-restart"); err != nil {
		return err
	}
	start, cpu0 = time.Now(), cpuTime()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Stop()
	if _, err := c.WaitApplied(ctx, vrev); err != nil {
		return err
	}
	stopRestartProfile()
	st = c.Stats()
	fmt.Printf("  resync, controller restart on an open store  %v, CPU %v, load %s (%d objects written)\n",
		time.Since(start).Round(time.Millisecond), (cpuTime() - cpu0).Round(time.Millisecond), loadAvg(), st.Creates+st.Updates+st.Deletes)

	// The ENIs' ports, bound by the translator to their instances' hosts.
	bound := map[int][]string{} // host → ports
	nBound := 0
	s.Read(func(r topology.Reader) {
		for _, o := range r.List(topology.KindPort) {
			p := o.(*topology.Port)
			var h int
			if p.HostID != "" && p.HostID != gwHost {
				fmt.Sscanf(p.HostID[24:], "%x", &h)
				bound[h-1] = append(bound[h-1], p.ID)
				nBound++
			}
		}
	})
	fmt.Printf("  ENI ports bound                              %d on %d hosts (cloud ready after %v)\n", nBound, len(bound), time.Since(t0).Round(time.Second))

	var readers []*nsdb.Store
	for range *clients {
		r, err := nsdb.Open(ctx, nsdb.Config{Endpoints: s.Client().Endpoints(), NoTopology: true})
		if err != nil {
			return err
		}
		defer r.Close()
		readers = append(readers, r)
	}
	holdsBound := func(h int) func(topology.Reader) bool {
		return func(rd topology.Reader) bool {
			for _, id := range bound[h] {
				if rd.Get(topology.KindPort, id) == nil {
					return false
				}
			}
			return true
		}
	}
	startReplicas := func(rctx context.Context, wg *sync.WaitGroup, n int, partial bool) ([]*tracked, error) {
		out := make([]*tracked, n)
		for i := range n {
			t := &tracked{r: agent.NewReplica(readers[i%len(readers)], hostID(i), partial)}
			out[i] = t
			wg.Go(func() { t.r.Run(rctx, t.onBuilt) })
			// Started in waves, so the first lists do not all pile up.
			if i%50 == 49 || i == n-1 {
				for _, t := range out[i-i%50 : i+1] {
					if err := t.r.WaitUntil(ctx, holdsBound(slices.Index(out, t))); err != nil {
						return nil, err
					}
				}
			}
		}
		return out, nil
	}

	// Full replicas, for comparison, then stopped.
	h0 := heapInUse()
	fctx, fstop := context.WithCancel(ctx)
	defer fstop()
	var fwg sync.WaitGroup
	full, err := startReplicas(fctx, &fwg, *nFull, false)
	if err != nil {
		return err
	}
	fullPer := (heapInUse() - h0) / uint64(*nFull)
	fullObjs := full[0].r.Objects()
	fstop()
	fwg.Wait()
	full = nil

	h0 = heapInUse()
	pctx, pstop := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	defer func() { pstop(); pwg.Wait() }()
	start = time.Now()
	reps, err := startReplicas(pctx, &pwg, *nAgents, true)
	if err != nil {
		return err
	}
	startAll := time.Since(start)
	partialPer := (heapInUse() - h0) / uint64(*nAgents)
	var objs []int
	for _, t := range reps {
		objs = append(objs, t.r.Objects())
	}
	slices.Sort(objs)
	fmt.Printf("  replica memory, full (%d measured)            %s per replica (%d objects)\n", *nFull, mib(fullPer), fullObjs)
	fmt.Printf("  replica memory, partial (%d)                 %s per replica (objects: median %d, max %d)\n", *nAgents, mib(partialPer), objs[len(objs)/2], objs[len(objs)-1])
	fmt.Printf("  %d partial replicas started and loaded in    %v\n", *nAgents, startAll.Round(time.Millisecond))

	// Changes: each waits for every interested replica.
	waitAll := func(v int, rev int64, committed time.Time) (time.Duration, error) {
		var last time.Time
		for _, h := range hostsOf(v) {
			select {
			case <-reps[h].until(rev):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			last = time.Now()
		}
		return last.Sub(committed), nil
	}
	stopProfile := func() {}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		stopProfile = pprof.StopCPUProfile
		defer stopProfile()
	}
	req0, ev0 := etcdCounters()
	cstart := time.Now()
	var ec2Lat, ctlLat, topoLat []time.Duration
	for i := range *nChanges {
		v := (i * 7919) % *nVPCs
		// EC2: a security group gains a rule; the controller translates it.
		rev, err := s.LoadVPCObjects(ctx, []nsdb.VPCObject{{Collection: "security_groups", ID: sgID(v), Object: sg(v, 1+i)}})
		if err != nil {
			return err
		}
		committed := time.Now()
		trev, err := c.WaitApplied(ctx, rev)
		if err != nil {
			return err
		}
		ctlLat = append(ctlLat, time.Since(committed))
		d, err := waitAll(v, trev, committed)
		if err != nil {
			return err
		}
		ec2Lat = append(ec2Lat, d)
		// REST: a chain of the VPC is written as the API's PUT writes it.
		var chain topology.Object
		s.Read(func(r topology.Reader) {
			p := r.Get(topology.KindPort, bound[hostsOf(v)[0]][0]).(*topology.Port)
			if p.InFilter != "" {
				chain = topology.Clone(r.Get(topology.KindChain, p.InFilter))
			}
		})
		if chain == nil {
			return fmt.Errorf("port %s has no chain to change", bound[hostsOf(v)[0]][0])
		}
		chain.GetMeta().Labels["bench"] = fmt.Sprint(i)
		out, err := s.Update(ctx, chain)
		if err != nil {
			return err
		}
		committed = time.Now()
		if d, err = waitAll(v, out.GetMeta().Revision, committed); err != nil {
			return err
		}
		topoLat = append(topoLat, d)
	}
	secs := time.Since(cstart).Seconds()
	stopProfile()
	req1, ev1 := etcdCounters()
	fmt.Printf("  EC2 change → all 3 interested replicas       p50 %v  p99 %v  (%d changes, load %s)\n", pct(ec2Lat, 50), pct(ec2Lat, 99), len(ec2Lat), loadAvg())
	fmt.Printf("    of which commit → controller applied       p50 %v  p99 %v\n", pct(ctlLat, 50), pct(ctlLat, 99))
	fmt.Printf("  topology change → all 3 interested replicas  p50 %v  p99 %v\n", pct(topoLat, 50), pct(topoLat, 99))
	fmt.Printf("  etcd during the changes                      %.0f requests/s, %.0f watch events/s\n", (req1-req0)/secs, (ev1-ev0)/secs)
	pstop()
	pwg.Wait()

	// Parallel topology writers (the REST API's create path: Store.Create).
	if *nCreates <= 0 {
		fmt.Printf("  total run                                    %v\n", time.Since(t0).Round(time.Second))
		return nil
	}
	fmt.Printf("  topology creates, parallel writers:")
	var base float64
	for _, w := range []int{1, 2, 4, 8} {
		br, err := s.Create(ctx, &topology.Bridge{Meta: topology.Meta{Name: fmt.Sprintf("bench-%d", w)}})
		if err != nil {
			return err
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		var ferr atomic.Value
		start := time.Now()
		for range w {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(*nCreates) {
						return
					}
					p := &topology.Port{DeviceKind: topology.KindBridge, DeviceID: br.GetMeta().ID,
						MAC: topology.MAC{2, 0xbe, byte(w), byte(i >> 16), byte(i >> 8), byte(i)}}
					if _, err := s.Create(ctx, p); err != nil {
						ferr.Store(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if e, ok := ferr.Load().(error); ok {
			return e
		}
		rate := float64(*nCreates) / time.Since(start).Seconds()
		if w == 1 {
			base = rate
		}
		fmt.Printf("  %d: %.0f/s (%.1fx)", w, rate, rate/base)
	}
	fmt.Println()
	fmt.Printf("  total run                                    %v\n", time.Since(t0).Round(time.Second))
	return nil
}
