package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// echoConn is one long-lived TCP connection that sends a numbered line
// every tick and checks each echo.
type echoConn struct {
	c          net.Conn
	sent, echo int64
	err        error
}

// TestGatewayFailover is issue 11's failover on two gateway hosts (the part
// that does not need BGP): the edge has an uplink on gw1 and one on gw2,
// equal default routes (ECMP), the upstream router reaches the pool through
// both. An instance on a compute host holds 40 TCP connections to a server
// behind the upstream router, each echoing a line every 50 ms. gw1's agent
// is killed with SIGKILL: its uplink vanishes upstream (the TAP went with
// the agent), the compute host stops routing through it when its
// heartbeats stop (300 ms, not its lease's 5 s), and the gateways share
// connection state (a stateful port group),
// so every connection survives — no reset, every byte echoed — however its
// flows were spread before.
func TestGatewayFailover(t *testing.T) {
	l := cloudLab(t, `{"gateways": [
		{"host": "gw1", "interface": "edge0", "address": "192.0.2.2/24", "next_hop": "192.0.2.1"},
		{"host": "gw2", "interface": "edge1", "address": "198.51.100.2/24", "next_hop": "198.51.100.1"}]}`, "203.0.113.0/28")
	gw1 := l.AddHostIn("gw1", "us-east-1z", false)
	gw2 := l.AddHostIn("gw2", "us-east-1z", false)
	l.AddHostIn("c1", "us-east-1a", true)
	up := l.AddOutside("up", gw1, "edge0", "192.0.2.1/24")
	l.AttachUplink(up, gw2, "edge1", "198.51.100.1/24")
	// The pool through both gateways, as a nexthop group: when a gateway's
	// link goes, only its nexthop leaves the group (a plain multipath route
	// would go whole), as a BGP router drops only the dead peer's path.
	for _, cmd := range [][]string{
		{"ip", "nexthop", "add", "id", "1", "via", "192.0.2.2", "dev", "edge0"},
		{"ip", "nexthop", "add", "id", "2", "via", "198.51.100.2", "dev", "edge1"},
		{"ip", "nexthop", "add", "id", "10", "group", "1/2"},
		{"ip", "route", "add", "203.0.113.0/28", "nhid", "10"},
		{"ip", "addr", "add", "10.250.0.1/32", "dev", "lo"},
	} {
		if o, err := up.Exec(cmd...); err != nil {
			t.Fatalf("%v: %v %s", cmd, err, o)
		}
	}

	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.34.0.0/16", "10.34.1.0/24", "us-east-1a")
	sg := tn.icmpGroup(vpcID)
	allocID, eip := tn.allocate()
	in := tn.run(sub, sg, "")
	tn.ec2("associate-address", "--allocation-id", allocID, "--instance-id", in.id)
	if !within(15*time.Second, func() bool { return nsPing(in.ns, "10.250.0.1") }) {
		t.Fatalf("%s (elastic IP %s) cannot reach the server behind the upstream router", in.id, eip)
	}

	// The echo server, in the upstream namespace.
	var ln net.Listener
	if err := netns.InNamespace(up.NS, func() (err error) { ln, err = net.Listen("tcp4", "10.250.0.1:7007"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()

	const n = 40
	conns := make([]*echoConn, n)
	for i := range conns {
		var c net.Conn
		if err := netns.InNamespace(in.ns, func() (err error) { c, err = net.DialTimeout("tcp4", "10.250.0.1:7007", 10*time.Second); return }); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
		conns[i] = &echoConn{c: c}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, ec := range conns {
		wg.Go(func() {
			buf := make([]byte, 64)
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				line := []byte(fmt.Sprintf("conn %02d line %06d\n", i, seq))
				_ = ec.c.SetDeadline(time.Now().Add(60 * time.Second))
				if _, err := ec.c.Write(line); err != nil {
					ec.err = fmt.Errorf("write: %w", err)
					return
				}
				ec.sent += int64(len(line))
				if _, err := io.ReadFull(ec.c, buf[:len(line)]); err != nil {
					ec.err = fmt.Errorf("read: %w", err)
					return
				}
				if !bytes.Equal(buf[:len(line)], line) {
					ec.err = fmt.Errorf("echo %q, sent %q", buf[:len(line)], line)
					return
				}
				ec.echo += int64(len(line))
			}
		})
	}
	time.Sleep(2 * time.Second) // traffic flowing through both gateways
	before := make([]int64, n)
	for i, ec := range conns {
		before[i] = ec.echo
	}
	start := time.Now()
	gw1.Kill()
	// Every connection must move on: wait until each has echoed more than
	// before the kill (or failed).
	if !within(30*time.Second, func() bool {
		for i, ec := range conns {
			if ec.err == nil && ec.echo <= before[i]+64 {
				return false
			}
		}
		return true
	}) {
		o, _ := up.Exec("ip", "route")
		stuck := 0
		for i, ec := range conns {
			if ec.err == nil && ec.echo <= before[i]+64 {
				stuck++
			}
		}
		t.Fatalf("%d of %d connections still stuck 30 s after the kill; upstream routes:\n%s", stuck, n, o)
	}
	t.Logf("all %d connections echoing again %v after gw1's agent was killed", n, time.Since(start).Round(10*time.Millisecond))
	close(stop)
	wg.Wait()
	for i, ec := range conns {
		if ec.err != nil {
			t.Errorf("connection %d broke: %v (sent %d, echoed %d)", i, ec.err, ec.sent, ec.echo)
		} else if ec.sent != ec.echo {
			t.Errorf("connection %d: sent %d bytes, %d echoed", i, ec.sent, ec.echo)
		}
	}
	_ = gw2
}
