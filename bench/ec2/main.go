// Command ec2 measures what one EC2 API change costs as the cloud grows
// (issue 5: "a single change costs work in proportion to the change, not to
// the size of the cloud"). For each size, side by side, it stores N VPCs —
// each with 4 subnets, an internet gateway, a main route table, a default
// network ACL and 10 security groups of 20 rules — through nsdb.VPCStore in
// transactions of 600 objects (under the client's 2 MiB message limit), then times single AuthorizeSecurityGroupIngress calls
// made with the AWS SDK for Go v2 against the real EC2 handler on loopback
// (SigV4 verification, validation, the etcd commit and the wait for the
// VPC mirror to show it). It reports p50/p99/max and the heap in use.
//
//	go run ./bench/ec2 [-vpcs 1000] [-small 10] [-calls 200]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/canopy-sdn/canopy/bench/tempstore"
	"github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

const (
	sgs     = 10
	rules   = 20
	subnets = 4
	// batch is the number of objects per VPCStore transaction while loading.
	batch = 600
)

func main() {
	vpcs := flag.Int("vpcs", 1000, "VPCs in the large cloud")
	small := flag.Int("small", 10, "VPCs in the small cloud")
	calls := flag.Int("calls", 200, "AuthorizeSecurityGroupIngress calls to time at each size")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var rs []result
	for _, n := range []int{*small, *vpcs} {
		r, err := run(n, *calls)
		if err != nil {
			// Not log.Fatalf: slog.SetDefault sent the log package to io.Discard.
			fmt.Fprintf(os.Stderr, "%d VPCs: %v\n", n, err)
			os.Exit(1)
		}
		rs = append(rs, r)
	}
	fmt.Printf("ec2 bench: embedded etcd, GOMAXPROCS %d; per VPC 4 subnets, 10 security groups × 20 rules, IGW, main route table, default ACL\n", runtime.GOMAXPROCS(0))
	row := func(name string, f func(r result) string) {
		fmt.Printf("  %-46s", name)
		for _, r := range rs {
			fmt.Printf("%14s", f(r))
		}
		fmt.Println()
	}
	row("VPCs", func(r result) string { return strconv.Itoa(r.vpcs) })
	row("VPC objects stored (keys)", func(r result) string { return strconv.Itoa(r.keys) })
	row("load through VPCStore", func(r result) string { return r.load.Round(time.Millisecond).String() })
	row("heap in use after load (MiB)", func(r result) string { return fmt.Sprintf("%.1f", float64(r.heap)/(1<<20)) })
	row(fmt.Sprintf("AuthorizeSGIngress p50 (%d calls)", len(rs[0].lat)), func(r result) string { return pct(r.lat, 50) })
	row("AuthorizeSGIngress p99", func(r result) string { return pct(r.lat, 99) })
	row("AuthorizeSGIngress max", func(r result) string { return pct(r.lat, 100) })
	row("DescribeSecurityGroups(GroupId) p50", func(r result) string { return pct(r.readLat, 50) })
	row("DescribeSecurityGroups(GroupId) p99", func(r result) string { return pct(r.readLat, 99) })
	if len(rs) == 2 {
		fmt.Printf("  ratio large/small: keys %.0fx, authorize p50 %.2fx, p99 %.2fx; describe p50 %.2fx\n",
			float64(rs[1].keys)/float64(rs[0].keys),
			float64(at(rs[1].lat, 50))/float64(at(rs[0].lat, 50)),
			float64(at(rs[1].lat, 99))/float64(at(rs[0].lat, 99)),
			float64(at(rs[1].readLat, 50))/float64(at(rs[0].readLat, 50)))
	}
}

type result struct {
	vpcs, keys   int
	load         time.Duration
	heap         uint64
	lat, readLat []time.Duration
}

func at(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func pct(d []time.Duration, p int) string { return at(d, p).Round(10 * time.Microsecond).String() }

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// obj is one VPC object to store.
type obj struct {
	id string
	v  any
}

func sgID(v, g int) string { return fmt.Sprintf("sg-%08x%09x", v, g) }

// cloudObjects builds n VPCs owned by acct, shaped as the EC2 server makes
// them. Transit index 2 is the account's default VPC's.
func cloudObjects(n int, acct string) []obj {
	var out []obj
	add := func(id string, v any) { out = append(out, obj{id, v}) }
	all := netip.MustParsePrefix("0.0.0.0/0")
	for v := range n {
		vid := fmt.Sprintf("vpc-%017x", v)
		cidr := netip.MustParsePrefix("10.0.0.0/16")
		add(vid, &vpc.Vpc{ID: vid, OwnerID: acct, CidrBlock: cidr, DhcpOptionsID: vpc.DefaultDhcpOptions,
			State: vpc.StateAvailable, EnableDNSSupport: true, InstanceTenancy: "default", TransitIndex: 3 + v})
		igw := fmt.Sprintf("igw-%017x", v)
		add(igw, &vpc.InternetGateway{ID: igw, OwnerID: acct, Attachments: []vpc.IGWAttachment{{VpcID: vid, State: vpc.StateAvailable}}})
		acl := &vpc.NetworkACL{ID: fmt.Sprintf("acl-%017x", v), OwnerID: acct, VpcID: vid, IsDefault: true, Entries: []vpc.NetworkACLEntry{
			{RuleNumber: 100, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: all},
			{RuleNumber: 100, Egress: true, Protocol: "-1", RuleAction: vpc.ACLAllow, CidrBlock: all}}}
		for s := range subnets {
			sid := fmt.Sprintf("subnet-%08x%09x", v, s)
			add(sid, &vpc.Subnet{ID: sid, OwnerID: acct, VpcID: vid, CidrBlock: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(s), 0}), 24), State: vpc.StateAvailable})
			acl.Associations = append(acl.Associations, vpc.NetworkACLAssociation{ID: fmt.Sprintf("aclassoc-%08x%09x", v, s), SubnetID: sid})
		}
		add(acl.ID, acl)
		rtb := fmt.Sprintf("rtb-%017x", v)
		add(rtb, &vpc.RouteTable{ID: rtb, OwnerID: acct, VpcID: vid, Routes: []vpc.Route{
			{DestinationCidrBlock: cidr, GatewayID: vpc.LocalGateway, Origin: vpc.OriginCreateRouteTable, State: vpc.RouteActive},
			{DestinationCidrBlock: all, GatewayID: igw, Origin: vpc.OriginCreateRoute, State: vpc.RouteActive}},
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
			add(sg.ID, sg)
		}
	}
	return out
}

func run(n, calls int) (result, error) {
	r := result{vpcs: n}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	s, closeStore, err := tempstore.Open(ctx, "canopy-bench-ec2-")
	if err != nil {
		return r, err
	}
	defer closeStore()
	vs, err := nsdb.OpenVPCStore(ctx, s)
	if err != nil {
		return r, err
	}
	defer vs.Close()
	srv, err := ec2.New(vs, ec2.Config{Key: make([]byte, 32)})
	if err != nil {
		return r, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute}
	go func() { _ = hs.Serve(l) }()
	defer hs.Close()
	nc, err := srv.CreateAccount(ctx, "bench")
	if err != nil {
		return r, err
	}

	objs := cloudObjects(n, nc.AccountID)
	r.keys = len(objs)
	start := time.Now()
	for len(objs) > 0 {
		chunk := objs[:min(batch, len(objs))]
		objs = objs[len(chunk):]
		if _, err := vs.Update(ctx, func(_ *vpc.State, tx *nsdb.VPCTx) error {
			for _, o := range chunk {
				if err := tx.Put(o.id, o.v); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return r, fmt.Errorf("load: %w", err)
		}
	}
	r.load = time.Since(start)
	r.heap = heapInUse()

	cli := awsec2.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider(nc.AccessKeyID, nc.SecretAccessKey, ""),
		RetryMaxAttempts: 1,
	}, func(o *awsec2.Options) { o.BaseEndpoint = aws.String("http://" + l.Addr().String()) })
	rnd := rand.New(rand.NewPCG(uint64(n), 7))
	// A few untimed calls warm up the connection and the code paths.
	for i := range calls + 10 {
		g := sgID(rnd.IntN(n), rnd.IntN(sgs))
		t0 := time.Now()
		_, err := cli.AuthorizeSecurityGroupIngress(ctx, &awsec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(g),
			IpPermissions: []types.IpPermission{{IpProtocol: aws.String("udp"), FromPort: aws.Int32(int32(2000 + i)), ToPort: aws.Int32(int32(2000 + i)),
				IpRanges: []types.IpRange{{CidrIp: aws.String(fmt.Sprintf("192.168.%d.%d/32", i>>8&255, i&255))}}}},
		})
		if err != nil {
			return r, fmt.Errorf("authorize %s: %w", g, err)
		}
		d := time.Since(t0)
		t0 = time.Now()
		out, err := cli.DescribeSecurityGroups(ctx, &awsec2.DescribeSecurityGroupsInput{GroupIds: []string{g}})
		if err != nil {
			return r, fmt.Errorf("describe %s: %w", g, err)
		}
		if len(out.SecurityGroups) != 1 || len(out.SecurityGroups[0].IpPermissions) < rules*4/5+1 {
			return r, fmt.Errorf("describe %s: the authorized rule is not there", g)
		}
		if i >= 10 {
			r.lat = append(r.lat, d)
			r.readLat = append(r.readLat, time.Since(t0))
		}
	}
	return r, nil
}
