package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/internal/netnstest"
	"github.com/canopy-sdn/canopy/internal/vpc"
	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// TestQEMUGuest: the hypervisor hook of the README, with a real hypervisor.
// An instance is launched with the AWS CLI into a subnet whose zone only a
// host without an instance driver serves; the controller binds its ENI's
// port to (that host, vn<ENI>). QEMU, started there as a hypervisor's hook
// would, creates and holds the TAP of that name for the guest's virtio-net
// NIC with the ENI's MAC; the agent plugs the TAP's host side (it never
// opens the TAP's descriptor, which QEMU holds). Through the guest's serial
// console: the guest gets its address by DHCP from the agent, reads its
// instance id from the metadata service, pings a netns instance on another
// host, and its security group is enforced: HTTP to port 80 (allowed) gets
// through, to port 8080 (not allowed) does not, while the guest itself
// serves both.
func TestQEMUGuest(t *testing.T) {
	ver, err := netns.GuestKernel()
	if err != nil {
		netnstest.Missing(t, err.Error())
	}
	initrd, err := netns.BuildInitramfs(t.TempDir(), ver)
	if err != nil {
		t.Fatal(err)
	}
	l := netns.New(t, canopyBin, netns.Options{})
	hv := l.AddHostIn("hv", "us-east-1a", false) // the hypervisor: --instance-driver none
	l.AddHostIn("c1", "us-east-1b", true)        // netns instances
	tn := newTenant(t, l)
	vpcID := tn.ec2("create-vpc", "--cidr-block", "10.41.0.0/16", "--query", "Vpc.VpcId")
	subVM := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.41.1.0/24", "--availability-zone", "us-east-1a", "--query", "Subnet.SubnetId")
	subNS := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.41.2.0/24", "--availability-zone", "us-east-1b", "--query", "Subnet.SubnetId")
	sgPeer := tn.ec2("create-security-group", "--group-name", "peer", "--description", "icmp from the VPC", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sgPeer, "--protocol", "icmp", "--port", "-1", "--cidr", "10.41.0.0/16")
	sgVM := tn.ec2("create-security-group", "--group-name", "vm", "--description", "http from the peers' subnet", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sgVM, "--protocol", "tcp", "--port", "80", "--cidr", "10.41.2.0/24")
	peer := tn.run(subNS, sgPeer, "")

	f := strings.Fields(tn.ec2("run-instances", "--image-id", "ami-0deb1a12c0ffee001", "--instance-type", "t3.micro",
		"--subnet-id", subVM, "--security-group-ids", sgVM, "--query",
		"Instances[0].[InstanceId,PrivateIpAddress,NetworkInterfaces[0].NetworkInterfaceId,NetworkInterfaces[0].MacAddress]"))
	if len(f) != 4 {
		t.Fatalf("run-instances: %v", f)
	}
	id, ip, eni, mac := f[0], f[1], f[2], f[3]
	tap := vpc.HostInterfaceName(eni)
	g := netns.StartGuest(t, netns.GuestConfig{Kernel: ver, Initramfs: initrd, NS: hv.NS, Tap: tap, MAC: mac})

	console := func(cmdline string, d time.Duration) string {
		t.Helper()
		out, rc := g.Run(cmdline, d)
		if rc != 0 {
			t.Fatalf("guest: %s: exit %d\n%s\nagent on hv:\n%s", cmdline, rc, out, hv.Log())
		}
		return out
	}
	// The agent plugs the TAP once the binding and the device are both
	// there; udhcpc's retries cover the moment in between.
	console("ip link set eth0 up && udhcpc -i eth0 -s /udhcpc.sh -n -q -t 30 -T 1", 120*time.Second)
	if out := console("ip -4 addr show eth0", 30*time.Second); !strings.Contains(out, "inet "+ip+"/24") {
		t.Fatalf("eth0 after DHCP: want %s/24:\n%s", ip, out)
	}
	if out := console("ip link show eth0", 30*time.Second); !strings.Contains(out, "mtu 1450") {
		t.Errorf("eth0's MTU is not the VPC's (1450) from DHCP:\n%s", out)
	}
	console("ping -c 3 -W 5 "+peer.ip, 60*time.Second)
	if out := console("wget -q -O - http://169.254.169.254/latest/meta-data/instance-id", 60*time.Second); strings.TrimSpace(out) != id {
		t.Errorf("metadata instance-id = %q, want %s", strings.TrimSpace(out), id)
	}

	// Security group: the guest serves HTTP on 80 and 8080 (checked from
	// inside), its group admits only 80 from the peer's subnet. (busybox
	// wget's -T crashes in Debian's static build: the console's deadline
	// bounds it instead.)
	console("httpd -p 80 -h /www && httpd -p 8080 -h /www && wget -q -O - http://127.0.0.1:8080/", 30*time.Second)
	if out, err := l.Exec(peer.ns, "curl", "-sS", "--max-time", "20", "http://"+ip+"/"); err != nil || strings.TrimSpace(out) != "canopy-guest" {
		t.Errorf("the allowed probe (TCP 80 from %s): %v %q", peer.ip, err, out)
	}
	if out, err := l.Exec(peer.ns, "curl", "-sS", "--max-time", "3", "http://"+ip+":8080/"); err == nil {
		t.Errorf("the denied probe (TCP 8080 from %s) got through: %q", peer.ip, out)
	}
	// On the kernel path the program took the TAP (bpf_redirect hands the
	// guest's frames to QEMU's descriptor): the ping and HTTP went through
	// the kernel's flows, not the agent.
	path := "userspace"
	if m, err := hv.Get("/metrics"); err == nil && strings.Contains(m, "\ncanopy_datapath_kernel 1\n") {
		path = "kernel"
		if strings.Contains(hv.Log(), "port served in userspace") {
			t.Errorf("the agent on hv did not attach the kernel path to the TAP:\n%s", hv.Log())
		}
		if hits := hv.Metric(`canopy_agent_kernel_packets{event="hit"}`); hits <= 0 {
			t.Errorf("no kernel flow hits on hv (%v): the guest's traffic did not take the kernel path", hits)
		}
	}
	t.Logf("guest %s (%s, %s on TAP %s held by QEMU, %s datapath): DHCP, metadata, ping to %s, SG allow and deny all as expected",
		id, ip, mac, tap, path, peer.ip)
}
