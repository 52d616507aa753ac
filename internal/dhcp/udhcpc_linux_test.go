package dhcp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/canopy-sdn/canopy/internal/netnstest"
	"github.com/canopy-sdn/canopy/internal/packet"
	"github.com/canopy-sdn/canopy/internal/topology"
)

// TestUdhcpc runs Debian's busybox udhcpc in a namespace the test creates,
// on one end of a veth pair; the other end, in a second namespace, is read
// and written through an AF_PACKET socket by a loop that answers with
// Respond. The client's view of the lease (what its script receives) must be
// what the subnet configures.
func TestUdhcpc(t *testing.T) {
	netnstest.RequireRoot(t)
	busybox := netnstest.RequireTool(t, "busybox", "busybox")
	id := netnstest.Suffix(t)
	vmNS, srvNS := "cdhcp-vm-"+id, "cdhcp-srv-"+id
	vm, srv := netnstest.New(t, vmNS), netnstest.New(t, srvNS)
	netnstest.Veth(t, "eth0", "tap0", vm, srv)
	netnstest.IP(t, "-n", vmNS, "link", "set", "eth0", "up")
	netnstest.IP(t, "-n", srvNS, "link", "set", "tap0", "up")
	vmMAC := linkMAC(t, vmNS, "eth0")

	sub := &topology.DHCPSubnet{
		Subnet:     netip.MustParsePrefix("10.99.7.0/24"),
		Gateway:    netip.MustParseAddr("10.99.7.1"),
		DNSServers: []netip.Addr{netip.MustParseAddr("10.99.7.2"), netip.MustParseAddr("10.99.0.53")},
		DomainName: "vpc.test",
		NTPServers: []netip.Addr{netip.MustParseAddr("10.99.7.3")},
		MTU:        9001,
		LeaseTime:  1200,
		Routes: []topology.DHCPRoute{
			{Dest: netip.MustParsePrefix("169.254.169.254/32"), Gateway: netip.MustParseAddr("10.99.7.1")},
			{Dest: netip.MustParsePrefix("172.16.0.0/12"), Gateway: netip.MustParseAddr("10.99.7.4")},
		},
	}
	port := &Port{
		MAC:        vmMAC,
		IPs:        []netip.Addr{netip.MustParseAddr("10.99.7.10")},
		Subnets:    []*topology.DHCPSubnet{sub},
		ServerMAC:  topology.MAC{0x02, 0, 0, 0, 0x99, 0x01},
		OverlayMTU: 1450,
	}

	fd := packetSocket(t, srv, "tap0")
	verdicts := serve(t, fd, port)

	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv > \""+dir+"/$1.env\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := netnstest.Command(ctx, vmNS, busybox, "udhcpc",
		"-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1", "-s", script).CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	env := readEnv(t, filepath.Join(dir, "bound.env"))
	t.Logf("udhcpc: %s", out)
	want := map[string]string{
		"interface":    "eth0",
		"ip":           "10.99.7.10",
		"subnet":       "255.255.255.0",
		"broadcast":    "10.99.7.255",
		"router":       "10.99.7.1",
		"dns":          "10.99.7.2 10.99.0.53",
		"domain":       "vpc.test",
		"ntpsrv":       "10.99.7.3",
		"mtu":          "1450",
		"lease":        "1200",
		"serverid":     "10.99.7.1",
		"staticroutes": "169.254.169.254/32 10.99.7.1 172.16.0.0/12 10.99.7.4 0.0.0.0/0 10.99.7.1",
	}
	for k, v := range want {
		if strings.TrimSpace(env[k]) != v {
			t.Errorf("udhcpc %s = %q, want %q", k, env[k], v)
		}
	}
	got := verdicts()
	if len(got) < 2 || got[0] != Offer || got[len(got)-1] != Ack {
		t.Errorf("server verdicts %v, want offer … ack", got)
	}
}

func linkMAC(t *testing.T, ns, link string) topology.MAC {
	t.Helper()
	out := netnstest.Run(t, ns, "cat", "/sys/class/net/"+link+"/address")
	m, err := topology.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// packetSocket opens an AF_PACKET socket on link inside ns. A socket keeps
// the namespace it was created in, so only its creation needs the switch.
func packetSocket(t *testing.T, ns netns.NsHandle, link string) int {
	t.Helper()
	var fd int
	netnstest.Do(t, ns, func() {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			t.Fatal(err)
		}
		proto := uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			t.Fatal(err)
		}
		// A receive timeout lets the loop notice the end of the test.
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
	})
	return fd
}

// serve answers DHCP on fd until the test ends, like the agent does at a VM
// port, and returns a function reporting the verdicts seen so far.
func serve(t *testing.T, fd int, port *Port) func() []Verdict {
	var (
		mu       sync.Mutex
		verdicts []Verdict
		done     = make(chan struct{})
		stopped  = make(chan struct{})
	)
	go func() {
		defer close(stopped)
		buf := make([]byte, 2048)
		var p packet.Packet
		for {
			select {
			case <-done:
				return
			default:
			}
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				t.Errorf("recv: %v", err)
				return
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			frame := buf[:n]
			p.Decode(frame)
			if !IsRequest(&p) {
				continue
			}
			out, v := Respond(frame, &p, port)
			mu.Lock()
			verdicts = append(verdicts, v)
			mu.Unlock()
			if out != nil {
				if err := unix.Send(fd, out, 0); err != nil {
					t.Errorf("send: %v", err)
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
		unix.Close(fd)
	})
	return func() []Verdict {
		mu.Lock()
		defer mu.Unlock()
		return append([]Verdict(nil), verdicts...)
	}
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the udhcpc script did not run for a bound lease: %v", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env
}
