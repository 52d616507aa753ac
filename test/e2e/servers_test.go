package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/canopy-sdn/canopy/internal/cli"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/nsdb/nsdbtest"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestServerFailover is issue 13's must-show 1: three `canopy server`
// processes on a 3-member etcd cluster; four EC2 clients (aws-sdk-go-v2)
// launch and terminate instances and create and delete NAT gateways
// against any of them, while the server leading the controller is kill
// -9'd. A call whose server died is retried on another (with the same
// ClientToken where the action takes one). Then:
//   - the surviving servers answered calls while nobody led;
//   - another server leads within the lease TTL (the time is logged);
//   - every acknowledged call's effect is realized: launched instances
//     run (their ports bound to their hosts), terminated ones are
//     terminated, created NAT gateways are available, deleted ones deleted;
//   - the store's history of every instance and NAT gateway shows each
//     state once, in a legal order: no transition lost, duplicated or
//     reordered across the handover.
//
// Two hosts are played by the test as their agents would be: a liveness
// lease each, and an instance report written for every instance placed on
// them and deleted once it is no longer placed there.
func TestServerFailover(t *testing.T) {
	cluster := nsdbtest.StartCluster(t, 3)
	args := []string{"--ec2-public-pool", "198.51.100.0/24", "--ec2-limit-eips", "200", "--ec2-limit-instances", "100"}
	// Nothing is copied between the servers' data dirs: the first one
	// stores the admin token and the EC2 key (the key that seals the
	// tenants' secrets) in etcd, the others take them from there
	// (docs/operations.md).
	var servers []*server
	for range 3 {
		servers = append(servers, newServerWith(t, cluster.Endpoints, args, nil))
	}
	// One admin token, the first server's, against every server.
	tok0 := servers[0].client().Token
	for i, s := range servers {
		c := &cli.Client{URL: s.url(), Token: tok0, HTTP: &http.Client{Timeout: 30 * time.Second}}
		if _, err := c.Get(context.Background(), "/hosts", nil); err != nil {
			t.Fatalf("server %d refused the first server's admin token: %v", i, err)
		}
		if tok := s.client().Token; tok != tok0 {
			t.Errorf("server %d keeps admin token %.8s… in its data dir, not the cloud's %.8s…", i, tok, tok0)
		}
	}
	store := nsdbtest.Open(t, nsdb.Config{Endpoints: cluster.Endpoints})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startFakeAgents(t, ctx, store, "7d3c0c1e-0000-4000-8000-00000000f0a1", "7d3c0c1e-0000-4000-8000-00000000f0a2")

	leaderPid := func() int {
		t.Helper()
		v, found, err := store.ControllerLeader(ctx)
		if err != nil || !found {
			return 0
		}
		_, pid, _ := strings.Cut(v, "/")
		var n int
		fmt.Sscan(pid, &n)
		return n
	}
	waitUntil(t, "a controller leader", func() bool { return leaderPid() != 0 })

	// Four tenants, each its own account, VPC and subnet (made through
	// server 0; every server verifies their keys).
	// Five rounds keep each tenant within 5 NAT gateways not yet deleted
	// in its zone (AWS's limit) while nobody leads.
	const clients, rounds, killAfter = 4, 5, 2
	type tenantRun struct {
		c      *failoverClient
		subnet string
	}
	runs := make([]*tenantRun, clients)
	for i := range runs {
		var na struct {
			AccessKeyID     string `json:"access_key_id"`
			SecretAccessKey string `json:"secret_access_key"`
		}
		out := servers[0].cli("account", "create", fmt.Sprintf("tenant%d", i), "--output", "json")
		if err := json.Unmarshal([]byte(out), &na); err != nil {
			t.Fatalf("account create: %v\n%s", err, out)
		}
		fc := &failoverClient{t: t, next: i}
		for _, s := range servers {
			fc.clients = append(fc.clients, awsec2.NewFromConfig(aws.Config{
				Region:           "us-east-1",
				Credentials:      credentials.NewStaticCredentialsProvider(na.AccessKeyID, na.SecretAccessKey, ""),
				RetryMaxAttempts: 1, // the test retries, on another server
			}, func(o *awsec2.Options) { o.BaseEndpoint = aws.String(fmt.Sprintf("http://127.0.0.1:%d", s.ec2)) }))
		}
		var vpcID, sub string
		fc.call("CreateVpc", func(c *awsec2.Client) error {
			out, err := c.CreateVpc(ctx, &awsec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("10.%d.0.0/16", 60+i))})
			if err == nil {
				vpcID = aws.ToString(out.Vpc.VpcId)
			}
			return err
		})
		fc.call("CreateSubnet", func(c *awsec2.Client) error {
			out, err := c.CreateSubnet(ctx, &awsec2.CreateSubnetInput{VpcId: aws.String(vpcID), CidrBlock: aws.String(fmt.Sprintf("10.%d.1.0/24", 60+i)), AvailabilityZone: aws.String("us-east-1a")})
			if err == nil {
				sub = aws.ToString(out.Subnet.SubnetId)
			}
			return err
		})
		runs[i] = &tenantRun{c: fc, subnet: sub}
	}
	from, err := store.VPCSeqRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// What every acknowledged call asked for.
	type intent struct {
		mu                     sync.Mutex
		running, terminated    []string
		available, natsDeleted []string
	}
	var want intent
	var killedPid atomic.Int64
	var acksWhileLeaderless atomic.Int64
	var roundsDone sync.WaitGroup
	roundsDone.Add(clients)
	var wg sync.WaitGroup
	for i, r := range runs {
		wg.Go(func() {
			fc := r.c
			// A dead leader's key stays until its lease runs out: until
			// then nobody reconciles.
			fc.onAck = func() {
				if p := killedPid.Load(); p != 0 && int64(leaderPid()) == p {
					acksWhileLeaderless.Add(1)
				}
			}
			var lastInst, lastNat string
			for round := range rounds {
				if round == killAfter {
					roundsDone.Done()
				}
				var inst string
				fc.call("RunInstances", func(c *awsec2.Client) error {
					out, err := c.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-0deb1a12c0ffee001"), InstanceType: types.InstanceTypeT3Micro,
						MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(r.subnet), ClientToken: aws.String(fmt.Sprintf("run-%d-%d", i, round))})
					if err == nil {
						inst = aws.ToString(out.Instances[0].InstanceId)
					}
					return err
				})
				var alloc string
				fc.call("AllocateAddress", func(c *awsec2.Client) error {
					out, err := c.AllocateAddress(ctx, &awsec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
					if err == nil {
						alloc = aws.ToString(out.AllocationId)
					}
					return err
				})
				var nat string
				fc.call("CreateNatGateway", func(c *awsec2.Client) error {
					out, err := c.CreateNatGateway(ctx, &awsec2.CreateNatGatewayInput{SubnetId: aws.String(r.subnet), AllocationId: aws.String(alloc),
						ClientToken: aws.String(fmt.Sprintf("nat-%d-%d", i, round))})
					if err == nil {
						nat = aws.ToString(out.NatGateway.NatGatewayId)
					}
					return err
				})
				// Every other round, the previous round's instance and NAT
				// gateway go.
				if round%2 == 1 {
					fc.call("TerminateInstances", func(c *awsec2.Client) error {
						_, err := c.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{lastInst}})
						return err
					})
					fc.call("DeleteNatGateway", func(c *awsec2.Client) error {
						_, err := c.DeleteNatGateway(ctx, &awsec2.DeleteNatGatewayInput{NatGatewayId: aws.String(lastNat)})
						if apiCode(err) == "NatGatewayNotFound" {
							return nil // an earlier attempt got through before its server died: deleted already
						}
						return err
					})
					want.mu.Lock()
					want.terminated = append(want.terminated, lastInst)
					want.natsDeleted = append(want.natsDeleted, lastNat)
					want.running = slices.DeleteFunc(want.running, func(s string) bool { return s == lastInst })
					want.available = slices.DeleteFunc(want.available, func(s string) bool { return s == lastNat })
					want.mu.Unlock()
				}
				want.mu.Lock()
				want.running = append(want.running, inst)
				want.available = append(want.available, nat)
				want.mu.Unlock()
				lastInst, lastNat = inst, nat
				fc.mu.Lock()
				fc.made = append(fc.made, inst, nat)
				fc.mu.Unlock()
			}
		})
	}

	// Kill the leader once every client is two rounds in.
	roundsDone.Wait()
	pid := leaderPid()
	var victim *server
	for _, s := range servers {
		if s.cmd != nil && s.cmd.Process.Pid == pid {
			victim = s
		}
	}
	if victim == nil {
		t.Fatalf("the leader (pid %d) is none of the servers", pid)
	}
	killedAt := time.Now()
	killedPid.Store(int64(pid))
	victim.kill()
	waitUntil(t, "another server to lead", func() bool { p := leaderPid(); return p != 0 && p != pid })
	handover := time.Since(killedAt)
	wg.Wait()
	t.Logf("leader (pid %d) killed: another server led %v later (lease TTL 10 s); %d calls acknowledged meanwhile by the survivors",
		pid, handover.Round(time.Millisecond), acksWhileLeaderless.Load())
	if acksWhileLeaderless.Load() == 0 {
		t.Errorf("no call was answered while no server led")
	}

	// Every acknowledged call's effect, as a survivor describes it.
	state := func(c *failoverClient, inst string) string {
		var s string
		c.call("DescribeInstances", func(cl *awsec2.Client) error {
			out, err := cl.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{inst}})
			if err == nil {
				s = string(out.Reservations[0].Instances[0].State.Name)
			}
			return err
		})
		return s
	}
	natState := func(c *failoverClient, id string) string {
		var s string
		c.call("DescribeNatGateways", func(cl *awsec2.Client) error {
			out, err := cl.DescribeNatGateways(ctx, &awsec2.DescribeNatGatewaysInput{NatGatewayIds: []string{id}})
			if err == nil {
				s = string(out.NatGateways[0].State)
			}
			return err
		})
		return s
	}
	owner := map[string]*failoverClient{}
	for _, r := range runs {
		r.c.mu.Lock()
		for _, id := range r.c.made {
			owner[id] = r.c
		}
		r.c.mu.Unlock()
	}
	for _, c := range []struct {
		ids   []string
		state string
		get   func(*failoverClient, string) string
	}{{want.running, "running", state}, {want.terminated, "terminated", state}, {want.available, "available", natState}, {want.natsDeleted, "deleted", natState}} {
		for _, id := range c.ids {
			waitUntil(t, id+" "+c.state, func() bool { return c.get(owner[id], id) == c.state })
		}
	}
	// A running instance's port is bound to its host in the topology.
	vs, err := nsdb.OpenVPCStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	for _, id := range want.running {
		var eni, host string
		vs.Read(func(st *vpc.State) {
			host = st.Instances[id].HostID
			if es := st.InstanceInterfaces(id); len(es) > 0 {
				eni = es[0].ID
			}
		})
		waitUntil(t, id+"'s port bound on its host", func() bool {
			bound := false
			store.Read(func(r topology.Reader) {
				for _, o := range r.List(topology.KindPort) {
					if p := o.(*topology.Port); p.Interface == vpc.HostInterfaceName(eni) && p.HostID == host {
						bound = true
					}
				}
			})
			return bound
		})
	}

	// The audit: every state of every instance and NAT gateway, in the
	// order the store committed them.
	to, err := store.VPCSeqRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		coll  string
		paths [][]string
	}{
		{"instances", [][]string{{"pending", "running"}, {"pending", "running", "shutting-down", "terminated"}, {"pending", "shutting-down", "terminated"}}},
		{"nat_gateways", [][]string{{"pending", "available"}, {"pending", "available", "deleting", "deleted"}, {"pending", "deleting", "deleted"}}},
	} {
		hctx, done := context.WithTimeout(ctx, 30*time.Second)
		hist, err := store.VPCHistory(hctx, a.coll, from, to)
		done()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string][]string{}
		for _, h := range hist {
			if h.Value == nil {
				seen[h.ID] = append(seen[h.ID], "(removed)")
				continue
			}
			var o struct{ State string }
			if err := json.Unmarshal(h.Value, &o); err != nil {
				t.Fatal(err)
			}
			seen[h.ID] = append(seen[h.ID], o.State)
		}
		if len(seen) != clients*rounds {
			t.Errorf("%s: %d objects in the history, want %d", a.coll, len(seen), clients*rounds)
		}
		for id, states := range seen {
			if !slices.ContainsFunc(a.paths, func(p []string) bool { return slices.Equal(p, states) }) {
				t.Errorf("%s %s went through %v: not one legal path, each state once", a.coll, id, states)
			}
		}
		t.Logf("%s: %d objects, %d revisions audited", a.coll, len(seen), len(hist))
	}
}

// failoverClient is one tenant's EC2 clients, one per server; a call whose
// server does not answer (dead, or no quorum) moves on to the next server
// and retries until one answers.
type failoverClient struct {
	t       *testing.T
	clients []*awsec2.Client
	next    int
	onAck   func()

	mu   sync.Mutex
	made []string
}

func (f *failoverClient) call(what string, do func(*awsec2.Client) error) {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := do(f.clients[f.next%len(f.clients)])
		if err == nil {
			if f.onAck != nil {
				f.onAck()
			}
			return
		}
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() != "ServiceUnavailable" && ae.ErrorCode() != "InternalError" {
			f.t.Errorf("%s: %v", what, err) // a real refusal: the call was wrong
			return
		}
		if time.Now().After(deadline) {
			f.t.Errorf("%s: no server answered within 60 s: %v", what, err)
			return
		}
		f.next++ // the server is gone or without quorum: the next one
	}
}

// apiCode returns the EC2 error code of err ("" if none).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// fakeAgents plays the agents of some hosts against the store as the real
// ones do: a liveness lease per host, and an instance report (running) for
// every instance placed on one of them, deleted once it is placed there no
// more.
type fakeAgents struct {
	leases map[string]*nsdb.Lease
}

func startFakeAgents(t *testing.T, ctx context.Context, store *nsdb.Store, hosts ...string) {
	t.Helper()
	f := &fakeAgents{leases: map[string]*nsdb.Lease{}}
	for _, h := range hosts {
		if _, err := store.Create(ctx, &topology.Host{Meta: topology.Meta{ID: h, Name: "fake-" + h[len(h)-4:]}}); err != nil {
			t.Fatal(err)
		}
		l, err := store.KeepHostAlive(ctx, h, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		f.leases[h] = l
		t.Cleanup(func() { _ = l.Revoke(context.Background()) })
	}
	vs, err := nsdb.OpenVPCStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	wctx, stop := context.WithCancel(ctx)
	t.Cleanup(func() { stop(); wg.Wait(); vs.Close() })
	wg.Go(func() {
		_ = store.WatchVPCCollection(wctx, "instances", poke)
	})
	wg.Go(func() {
		reported := map[string]string{} // instance → host
		for {
			select {
			case <-wctx.Done():
				return
			case <-kick:
			}
			if err := vs.Sync(wctx); err != nil {
				time.AfterFunc(100*time.Millisecond, poke)
				continue
			}
			want := map[string]string{}
			vs.Read(func(st *vpc.State) {
				for _, i := range st.Instances {
					if i.Placed() && f.leases[i.HostID] != nil {
						want[i.ID] = i.HostID
					}
				}
			})
			for id, h := range reported {
				if want[id] == h {
					continue
				}
				if err := store.DeleteInstanceState(wctx, h, id); err != nil {
					time.AfterFunc(100*time.Millisecond, poke)
					continue
				}
				delete(reported, id)
			}
			for id, h := range want {
				if reported[id] == h {
					continue
				}
				b, _ := json.Marshal(vpc.InstanceReport{HostID: h, State: vpc.InstanceRunning})
				if err := store.PutInstanceState(wctx, h, id, b, f.leases[h]); err != nil {
					time.AfterFunc(100*time.Millisecond, poke)
					continue
				}
				reported[id] = h
			}
		}
	})
}
