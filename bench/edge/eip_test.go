package edge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
	"github.com/vishvananda/netlink"
	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

var (
	nAssoc    = flag.Int("associations", 50, "associate/disassociate rounds of an elastic IP")
	iperfSecs = flag.Int("iperf", 5, "seconds of each iperf3 run")
)

// ec2Pool is where the EC2 endpoint's elastic IPs come from: inside the
// cloud's pool, above the addresses the advertise figure creates.
const ec2Pool = "198.18.100.0/24"

// eipFigures are the tenant's side of the edge, measured on runEdge's lab.
type eipFigures struct {
	associate, associateAPI, withdraw []time.Duration
	// routed: from AssociateAddress to FRR's /32 in the upstream's kernel
	// (the BGP part of associate → reply).
	routed           []time.Duration
	viaGateway, veth float64 // Gbit/s
	// dropped is how many rounds met a reset of FRR's session with the
	// gateway (BFD at 100 ms × 3 on a loaded machine): such a round waited
	// for the session to come back. The steady figures leave them out.
	dropped                         int
	associateSteady, withdrawSteady []time.Duration
	// renewed is how often the netlink route watch was overrun.
	renewed int
}

// measureEIP measures, from an outside client namespace behind FRR:
//   - associate → first reply: an echo stream every 2 ms to an elastic
//     IP runs while AssociateAddress is called (SDK, from this process);
//     from the call to the first reply (the edge's NAT in place on every
//     host, the /32 advertised, FRR's route in its kernel);
//   - disassociate → withdrawn: from DisassociateAddress to the deletion
//     of the /32 from the upstream namespace's kernel routing table (FRR's
//     zebra removes it when bgpd has the withdrawal), seen on netlink;
//   - iperf3 from the client to the instance's elastic IP (upstream's
//     kernel, the gateway's agent, the VXLAN tunnel, the compute host's
//     agent) against iperf3 over a direct veth pair, one after the other.
func measureEIP(b *testing.B, l *netns.Lab, up *netns.VM, frr *netns.FRR) eipFigures {
	ctx := context.Background()
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	var na struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	if err := json.Unmarshal([]byte(l.CLI("account", "create", "bench")), &na); err != nil {
		b.Fatal(err)
	}
	ec2 := awsec2.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(na.AccessKeyID, na.SecretAccessKey, ""),
		HTTPClient:  l.EC2HTTPClient(),
		// A connection of the pool closed under it (seen once on a loaded
		// machine) is retried; the timed calls rarely need it.
		RetryMaxAttempts: 3,
	}, func(o *awsec2.Options) { o.BaseEndpoint = aws.String(netns.EC2Endpoint) })

	vpc, err := ec2.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String("10.60.0.0/16")})
	must(err)
	sub, err := ec2.CreateSubnet(ctx, &awsec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.60.1.0/24"), AvailabilityZone: aws.String("us-east-1a")})
	must(err)
	igw, err := ec2.CreateInternetGateway(ctx, &awsec2.CreateInternetGatewayInput{})
	must(err)
	_, err = ec2.AttachInternetGateway(ctx, &awsec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: vpc.Vpc.VpcId})
	must(err)
	rtbs, err := ec2.DescribeRouteTables(ctx, &awsec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{*vpc.Vpc.VpcId}}}})
	must(err)
	_, err = ec2.CreateRoute(ctx, &awsec2.CreateRouteInput{RouteTableId: rtbs.RouteTables[0].RouteTableId,
		DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: igw.InternetGateway.InternetGatewayId})
	must(err)
	sg, err := ec2.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{GroupName: aws.String("edge"), Description: aws.String("icmp and iperf3"), VpcId: vpc.Vpc.VpcId})
	must(err)
	_, err = ec2.AuthorizeSecurityGroupIngress(ctx, &awsec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{
		{IpProtocol: aws.String("icmp"), FromPort: aws.Int32(-1), ToPort: aws.Int32(-1), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5201), ToPort: aws.Int32(5201), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	must(err)
	run, err := ec2.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-0deb1a12c0ffee001"), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: sub.Subnet.SubnetId, SecurityGroupIds: []string{*sg.GroupId}})
	must(err)
	inst := *run.Instances[0].InstanceId
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := ec2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{inst}})
		must(err)
		if out.Reservations[0].Instances[0].State.Name == types.InstanceStateNameRunning {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not running within 60 s", inst)
		}
	}
	instNS := "ci-" + inst[len(inst)-13:]
	alloc, err := ec2.AllocateAddress(ctx, &awsec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	must(err)
	eip := *alloc.PublicIp

	client := l.AddClient("c", up, "198.51.100.1/24", "198.51.100.2/24")
	routes := watchRoutes(b, up.NS, netip.MustParsePrefix(eip+"/32"))
	p, err := netns.NewPinger(client.NS, eip)
	must(err)
	defer p.Close()

	// One round: associate while the stream runs, then disassociate
	// until FRR's route is gone from the kernel.
	round := func() (assoc, api, routed, withdraw time.Duration) {
		routes.drain()
		p.NewStream()
		type reply struct {
			at time.Time
			ok bool
		}
		ch := make(chan reply, 1)
		go func() {
			at, ok := p.FirstReply(20 * time.Second)
			ch <- reply{at, ok}
		}()
		t0 := time.Now()
		as, err := ec2.AssociateAddress(ctx, &awsec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(inst)})
		must(err)
		api = time.Since(t0)
		r := <-ch
		if !r.ok {
			b.Fatalf("no reply from the elastic IP %s 20 s after associating it", eip)
		}
		assoc = r.at.Sub(t0)
		if at, ok := routes.next(true, 10*time.Second); ok {
			routed = at.Sub(t0)
		} else {
			b.Fatalf("a reply from %s but no route to it in the upstream's kernel", eip)
		}
		routes.drain()
		t1 := time.Now()
		_, err = ec2.DisassociateAddress(ctx, &awsec2.DisassociateAddressInput{AssociationId: as.AssociationId})
		must(err)
		at, ok := routes.next(false, 20*time.Second)
		if !ok {
			b.Fatalf("FRR's route to %s/32 still in the upstream's kernel 20 s after disassociating", eip)
		}
		return assoc, api, routed, at.Sub(t1)
	}
	_, _, _, _ = round() // warm-up: the first flows, FRR's first route to it

	var f eipFigures
	netns.PerfLocked(b, func() {
		for range *nAssoc {
			before := frr.Neighbor("192.0.2.2").Dropped
			a, api, routed, w := round()
			f.associate = append(f.associate, a)
			f.associateAPI = append(f.associateAPI, api)
			f.routed = append(f.routed, routed)
			f.withdraw = append(f.withdraw, w)
			if frr.Neighbor("192.0.2.2").Dropped != before {
				f.dropped++
			} else {
				f.associateSteady = append(f.associateSteady, a)
				f.withdrawSteady = append(f.withdrawSteady, w)
			}
		}
	})
	f.renewed = int(routes.renewed.Load())

	// Throughput: associated again for good.
	_, err = ec2.AssociateAddress(ctx, &awsec2.AssociateAddressInput{AllocationId: alloc.AllocationId, InstanceId: aws.String(inst)})
	must(err)
	p.NewStream()
	if _, ok := p.FirstReply(20 * time.Second); !ok {
		b.Fatalf("the elastic IP %s does not answer", eip)
	}
	a, z := vethPair(b)
	netns.PerfLocked(b, func() {
		f.viaGateway = iperf(b, client.NS, instNS, eip)
		f.veth = iperf(b, a, z, "10.61.0.2")
	})
	return f
}

// routeWatch follows one prefix in a namespace's kernel routing table: a
// goroutine timestamps each change of it as it arrives. FRR replacing
// 10,000 routes at once (a session reset) can overrun the netlink socket,
// which ends the subscription: it is renewed, and a deletion it may have
// missed is read from the table (renewed counts it).
type routeWatch struct {
	b       *testing.B
	ns      vns.NsHandle
	dst     netip.Prefix
	ev      chan routeEvent
	done    chan struct{}
	renewed atomic.Int32
}

// routeEvent is a change of the watched prefix; lost: the subscription
// was overrun and renewed (what happened meanwhile is unknown).
type routeEvent struct {
	added, lost bool
	at          time.Time
}

func watchRoutes(b *testing.B, ns string, dst netip.Prefix) *routeWatch {
	h, err := vns.GetFromName(ns)
	if err != nil {
		b.Fatal(err)
	}
	w := &routeWatch{b: b, ns: h, dst: dst, ev: make(chan routeEvent, 1024), done: make(chan struct{})}
	ch, err := w.subscribe()
	if err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	b.Cleanup(func() { close(w.done); <-exited; h.Close() })
	go func() {
		defer close(exited)
		for {
			u, ok := <-ch
			if !ok {
				select {
				case <-w.done:
					return
				default:
				}
				w.renewed.Add(1)
				if ch, err = w.subscribe(); err != nil {
					return
				}
				w.ev <- routeEvent{lost: true, at: time.Now()}
				continue
			}
			if u.Dst == nil || (u.Type != unix.RTM_NEWROUTE && u.Type != unix.RTM_DELROUTE) {
				continue
			}
			ones, _ := u.Dst.Mask.Size()
			if a, ok := netip.AddrFromSlice(u.Dst.IP.To4()); ok && netip.PrefixFrom(a, ones) == w.dst {
				w.ev <- routeEvent{added: u.Type == unix.RTM_NEWROUTE, at: time.Now()}
			}
		}
	}()
	return w
}

func (w *routeWatch) subscribe() (chan netlink.RouteUpdate, error) {
	ch := make(chan netlink.RouteUpdate, 1<<16)
	err := netlink.RouteSubscribeWithOptions(ch, w.done, netlink.RouteSubscribeOptions{
		Namespace: &w.ns, ReceiveBufferSize: 32 << 20, ReceiveBufferForceSize: true})
	return ch, err
}

// present reads whether the table holds the prefix now.
func (w *routeWatch) present() bool {
	h, err := netlink.NewHandleAt(w.ns)
	if err != nil {
		w.b.Fatal(err)
	}
	defer h.Delete()
	a := w.dst.Addr().As4()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: &net.IPNet{IP: a[:], Mask: net.CIDRMask(w.dst.Bits(), 32)}}, netlink.RT_FILTER_DST)
	if err != nil {
		w.b.Fatal(err)
	}
	return len(rs) > 0
}

// drain forgets the changes seen so far.
func (w *routeWatch) drain() {
	for {
		select {
		case <-w.ev:
		default:
			return
		}
	}
}

// next waits for the prefix to be added (or deleted) and returns when the
// change arrived; after an overrun it reads the table instead (then the
// time is when it looked).
func (w *routeWatch) next(added bool, timeout time.Duration) (time.Time, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case e := <-w.ev:
			if e.lost && w.present() == added || !e.lost && e.added == added {
				return e.at, true
			}
		case <-t.C:
			return time.Time{}, false
		}
	}
}

// vethPair makes two namespaces joined by a veth pair, 10.61.0.1/30 and
// 10.61.0.2/30: the reference for the throughput figure.
func vethPair(b *testing.B) (string, string) {
	r := make([]byte, 2)
	_, _ = rand.Read(r)
	a, z := "cbva-"+hex.EncodeToString(r), "cbvz-"+hex.EncodeToString(r)
	for _, args := range [][]string{
		{"netns", "add", a}, {"netns", "add", z},
		{"link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "eth0", "netns", z},
		{"-n", a, "addr", "add", "10.61.0.1/30", "dev", "eth0"}, {"-n", z, "addr", "add", "10.61.0.2/30", "dev", "eth0"},
		{"-n", a, "link", "set", "eth0", "up"}, {"-n", z, "link", "set", "eth0", "up"},
		{"-n", a, "link", "set", "lo", "up"}, {"-n", z, "link", "set", "lo", "up"},
	} {
		if args[0] == "netns" && args[1] == "add" {
			ns := args[2]
			b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			b.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return a, z
}

// iperf runs iperf3 from namespace from to a server in namespace to,
// reached at addr, for -iperf seconds; it returns Gbit/s received.
func iperf(b *testing.B, from, to, addr string) float64 {
	srv := exec.Command("ip", "netns", "exec", to, "iperf3", "-s", "-1")
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := exec.Command("ip", "netns", "exec", to, "ss", "-Hltn", "sport = :5201").CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) != "" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("iperf3 does not listen in %s", to)
		}
	}
	out, err := exec.Command("ip", "netns", "exec", from, "iperf3", "-c", addr, "-t", fmt.Sprint(*iperfSecs), "-J").CombinedOutput()
	if err != nil {
		b.Fatalf("iperf3 %s → %s: %v\n%s", from, addr, err, out)
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("iperf3 output: %v\n%s", err, out)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9
}

// pct is the nearest-rank percentile p of d.
func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := max(int(math.Ceil(p/100*float64(len(s))))-1, 0)
	return s[i].Round(time.Millisecond)
}

func (f eipFigures) print() {
	fmt.Printf("edge: elastic IP associate → first echo reply at the outside client, %d rounds: p50 %v, p90 %v, p99 %v, max %v (target p99 ≤ 1 s); the AssociateAddress call itself p50 %v; FRR's /32 in the upstream's kernel p50 %v, p99 %v\n",
		len(f.associate), pct(f.associate, 50), pct(f.associate, 90), pct(f.associate, 99), pct(f.associate, 100), pct(f.associateAPI, 50),
		pct(f.routed, 50), pct(f.routed, 99))
	fmt.Printf("edge: elastic IP disassociate → FRR's /32 gone from the upstream's kernel, %d rounds: p50 %v, p90 %v, p99 %v, max %v\n",
		len(f.withdraw), pct(f.withdraw, 50), pct(f.withdraw, 90), pct(f.withdraw, 99), pct(f.withdraw, 100))
	fmt.Printf("edge: %d rounds met a reset of FRR's session with the gateway; the route watch was overrun %d times\n", f.dropped, f.renewed)
	if f.dropped > 0 && len(f.associateSteady) > 0 {
		fmt.Printf("edge: the %d other rounds: associate → reply p50 %v, p99 %v; disassociate → withdrawn p50 %v, p99 %v\n", len(f.associateSteady),
			pct(f.associateSteady, 50), pct(f.associateSteady, 99), pct(f.withdrawSteady, 50), pct(f.withdrawSteady, 99))
	}
	fmt.Printf("edge: iperf3 outside → elastic IP through the gateway %.2f Gbit/s; direct veth pair %.2f Gbit/s; ratio %.2f× (target ≥ 0.5×)\n",
		f.viaGateway, f.veth, f.viaGateway/f.veth)
}
