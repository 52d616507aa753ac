package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// tcpConnects reports whether a TCP connection from namespace ns to
// ip:port completes within 2 s (bash's /dev/tcp: a SYN, the SYN-ACK back,
// nothing else, so it tests exactly both directions of the handshake).
func tcpConnects(ns, ip string, port int) bool {
	_, err := nsRun(ns, "timeout", "2", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", ip, port))
	return err == nil
}

// TestInstancesSecurity is issue 6's default security group and network ACL
// proof, driven with the AWS CLI only, as a tenant would: the default group
// lets its members reach each other and nobody else; a network ACL deny
// entry wins over a group that allows; ACLs are stateless, so the return
// traffic of a TCP connection needs its own (ephemeral port) entry.
func TestInstancesSecurity(t *testing.T) {
	l := netns.New(t, canopyBin, netns.Options{})
	l.AddInstanceHost("hv1")
	l.AddInstanceHost("hv2")
	tn := newTenant(t, l)

	vpcID := tn.ec2("create-vpc", "--cidr-block", "10.30.0.0/16", "--query", "Vpc.VpcId")
	subA := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.30.1.0/24", "--availability-zone", "us-east-1a", "--query", "Subnet.SubnetId")
	subB := tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", "10.30.2.0/24", "--availability-zone", "us-east-1a", "--query", "Subnet.SubnetId")
	web := tn.ec2("create-security-group", "--group-name", "web", "--description", "icmp and 5201 from the VPC", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", web, "--protocol", "icmp", "--port", "-1", "--cidr", "10.30.0.0/16")
	tn.ec2("authorize-security-group-ingress", "--group-id", web, "--protocol", "tcp", "--port", "5201", "--cidr", "10.30.0.0/16")
	defSG := tn.ec2("describe-security-groups", "--filters", "Name=vpc-id,Values="+vpcID, "Name=group-name,Values=default", "--query", "SecurityGroups[0].GroupId")
	if !strings.HasPrefix(defSG, "sg-") {
		t.Fatalf("default security group of %s: %q", vpcID, defSG)
	}

	// Default group: two members (no --security-group-ids: the VPC's
	// default group, as in AWS) and one outsider in "web".
	d1 := tn.launch(subA, nil, "")
	d2 := tn.launch(subB, nil, "")
	w := tn.launch(subA, []string{web}, "")
	if got := tn.ec2("describe-instances", "--instance-ids", d1.id, "--query", "Reservations[0].Instances[0].SecurityGroups[].GroupId"); got != defSG {
		t.Errorf("%s launched without groups is in %q, want the default group %s", d1.id, got, defSG)
	}
	for _, p := range [][2]inst{{d1, d2}, {d2, d1}} {
		if !within(5*time.Second, func() bool { return nsPing(p[0].ns, p[1].ip) }) {
			t.Errorf("default group members: %s cannot ping %s", p[0].id, p[1].ip)
		}
	}
	// The outsider can reach out (its group allows ICMP in from the VPC,
	// the default group allows all egress) but not in.
	if !within(5*time.Second, func() bool { return nsPing(d1.ns, w.ip) }) {
		t.Errorf("default group member %s cannot ping %s in web (web allows ICMP from the VPC)", d1.id, w.ip)
	}
	for _, d := range []inst{d1, d2} {
		if nsPing(w.ns, d.ip) {
			t.Errorf("%s (group web) pings %s in the default group", w.id, d.ip)
		}
	}
	stopD := nsBackground(t, d2.ns, "iperf3", "-s", "-p", "5201")
	if !within(5*time.Second, func() bool { return tcpConnects(d1.ns, d2.ip, 5201) }) {
		t.Errorf("default group member %s cannot open TCP 5201 to %s", d1.id, d2.ip)
	}
	if tcpConnects(w.ns, d2.ip, 5201) {
		t.Errorf("%s (group web) opens TCP 5201 to %s in the default group", w.id, d2.ip)
	}
	stopD()

	// Network ACL: the VPC's default ACL allows everything (rule 100); a
	// deny entry numbered before it blocks ICMP from subnet A into subnet
	// B although group web allows ICMP from the whole VPC.
	a := tn.launch(subA, []string{web}, "")
	b := tn.launch(subB, []string{web}, "")
	if !within(5*time.Second, func() bool { return nsPing(a.ns, b.ip) }) {
		t.Fatalf("%s cannot ping %s before any ACL change", a.id, b.ip)
	}
	defACL := tn.ec2("describe-network-acls", "--filters", "Name=vpc-id,Values="+vpcID, "Name=default,Values=true", "--query", "NetworkAcls[0].NetworkAclId")
	tn.ec2("create-network-acl-entry", "--network-acl-id", defACL, "--ingress", "--rule-number", "50", "--protocol", "icmp",
		"--icmp-type-code", "Type=-1,Code=-1", "--cidr-block", "10.30.1.0/24", "--rule-action", "deny")
	if !within(time.Second, func() bool { return !nsPingFast(a.ns, b.ip) }) {
		t.Error("ping still answered 1 s after the ACL deny entry (the group allows ICMP: the ACL must win)")
	}
	if nsPing(a.ns, b.ip) {
		t.Error("ping answered through an ACL deny entry")
	}
	tn.ec2("delete-network-acl-entry", "--network-acl-id", defACL, "--ingress", "--rule-number", "50")
	if !within(time.Second, func() bool { return nsPingFast(a.ns, b.ip) }) {
		t.Error("ping not answered 1 s after the ACL deny entry was deleted")
	}

	// Stateless: subnet B gets its own ACL that lets TCP 5201 in from the
	// VPC but, at first, nothing out. The SYN reaches b, its SYN-ACK to
	// a's ephemeral port is dropped on the way out of subnet B (the group
	// would let it through as a reply: ACLs keep no connection state).
	stopB := nsBackground(t, b.ns, "iperf3", "-s", "-p", "5201")
	defer stopB()
	if !within(5*time.Second, func() bool { return tcpConnects(a.ns, b.ip, 5201) }) {
		t.Fatalf("%s cannot open TCP 5201 to %s before any ACL change", a.id, b.ip)
	}
	acl := tn.ec2("create-network-acl", "--vpc-id", vpcID, "--query", "NetworkAcl.NetworkAclId")
	tn.ec2("create-network-acl-entry", "--network-acl-id", acl, "--ingress", "--rule-number", "100", "--protocol", "tcp",
		"--port-range", "From=5201,To=5201", "--cidr-block", "10.30.0.0/16", "--rule-action", "allow")
	assoc := tn.ec2("describe-network-acls", "--filters", "Name=association.subnet-id,Values="+subB,
		"--query", fmt.Sprintf("NetworkAcls[0].Associations[?SubnetId=='%s'].NetworkAclAssociationId | [0]", subB))
	newAssoc := tn.ec2("replace-network-acl-association", "--association-id", assoc, "--network-acl-id", acl, "--query", "NewAssociationId")
	if within(2*time.Second, func() bool { return !tcpConnects(a.ns, b.ip, 5201) }) {
		// Blocked, and it stays blocked (not a transient).
		if tcpConnects(a.ns, b.ip, 5201) {
			t.Error("TCP 5201 connects although subnet B's ACL has no outbound entry for the return traffic")
		}
	} else {
		t.Error("TCP 5201 still connects 2 s after subnet B got an ACL with no outbound entry")
	}
	tn.ec2("create-network-acl-entry", "--network-acl-id", acl, "--egress", "--rule-number", "100", "--protocol", "tcp",
		"--port-range", "From=1024,To=65535", "--cidr-block", "10.30.0.0/16", "--rule-action", "allow")
	if !within(2*time.Second, func() bool { return tcpConnects(a.ns, b.ip, 5201) }) {
		t.Error("TCP 5201 does not connect 2 s after the outbound ephemeral-port entry 1024-65535")
	}
	// ICMP is not in the new ACL: denied both ways by its * rule.
	if nsPing(a.ns, b.ip) {
		t.Error("ping answered through subnet B's ACL, which allows only TCP")
	}
	// Back to the default ACL: everything flows again, and the custom ACL
	// can go.
	tn.ec2("replace-network-acl-association", "--association-id", newAssoc, "--network-acl-id", defACL)
	if !within(2*time.Second, func() bool { return nsPingFast(a.ns, b.ip) }) {
		t.Error("ping not answered 2 s after subnet B went back to the default ACL")
	}
	tn.ec2("delete-network-acl", "--network-acl-id", acl)
}

// nsBackground starts a command in namespace ns; the returned func kills it
// and waits (also called by Cleanup, so a failed test leaves nothing).
func nsBackground(t *testing.T, ns string, args ...string) func() {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var done bool
	stop := func() {
		if done {
			return
		}
		done = true
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Cleanup(stop)
	time.Sleep(200 * time.Millisecond) // let it listen
	return stop
}
