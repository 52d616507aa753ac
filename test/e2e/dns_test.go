package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
	mdns "github.com/miekg/dns"
)

// cloudResolver is "the cloud's resolver" of a lab: a tiny DNS server in
// the infra namespace that knows one outside name.
const (
	cloudResolver = "10.99.0.1"
	outsideName   = "www.outside.example."
	outsideAddr   = "198.51.100.77"
)

func startCloudResolver(t *testing.T, l *netns.Lab) {
	t.Helper()
	var pc net.PacketConn
	if err := netns.InNamespace(l.InfraNS(), func() (err error) {
		pc, err = net.ListenPacket("udp", cloudResolver+":53")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		r := new(mdns.Msg)
		r.SetReply(q)
		switch {
		case len(q.Question) != 1 || !strings.EqualFold(q.Question[0].Name, outsideName):
			r.Rcode = mdns.RcodeNameError
		case q.Question[0].Qtype == mdns.TypeA:
			r.Answer = append(r.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: outsideName, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 30},
				A: net.ParseIP(outsideAddr)})
		}
		_ = w.WriteMsg(r)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
}

// nslookup runs busybox nslookup in an instance's namespace (its
// resolv.conf is what DHCP handed out) and returns its output.
func nslookup(ns, name string) (string, error) {
	return nsRun(ns, "busybox", "nslookup", name)
}

// TestAmazonProvidedDNS: from inside an instance, nslookup of another
// instance's private name, of its own public name (DNS hostnames on), of a
// name outside answered through the cloud's resolver, and a reverse lookup;
// with enableDnsSupport off the VPC's resolver answers nothing. The
// instance launched with a key pair reads its public key from the metadata
// service.
func TestAmazonProvidedDNS(t *testing.T) {
	l := cloudLab(t, `{"public_pools": ["203.0.113.0/28"], "dns_servers": ["`+cloudResolver+`"]}`, "203.0.113.0/28")
	startCloudResolver(t, l)
	l.AddInstanceHost("hv1")
	tn := newTenant(t, l)
	vpcID, sub, _ := tn.internetVPC("10.30.0.0/16", "10.30.1.0/24", "us-east-1a")
	tn.ec2("modify-vpc-attribute", "--vpc-id", vpcID, "--enable-dns-hostnames", `{"Value":true}`)
	tn.ec2("modify-subnet-attribute", "--subnet-id", sub, "--map-public-ip-on-launch")
	// The CLI takes a blob argument as base64: the key goes as a file.
	keyFile := filepath.Join(t.TempDir(), "ops.pub")
	if err := os.WriteFile(keyFile, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tn.ec2("import-key-pair", "--key-name", "ops", "--public-key-material", "fileb://"+keyFile)

	a := tn.launch(sub, nil, "10.30.1.10")
	b := tn.launch(sub, nil, "10.30.1.11")
	pub := tn.ec2("describe-instances", "--instance-ids", a.id, "--query", "Reservations[0].Instances[0].[PublicDnsName,PublicIpAddress]")
	f := strings.Fields(pub)
	if len(f) != 2 || !strings.HasSuffix(f[0], ".compute-1.amazonaws.com") {
		t.Fatalf("public name and address of %s: %q", a.id, pub)
	}
	pubName := f[0]

	if rc, _ := nsRun(a.ns, "cat", "/etc/resolv.conf"); !strings.Contains(rc, "nameserver 10.30.0.2") {
		t.Fatalf("resolv.conf of %s does not name the VPC's resolver: %q", a.id, rc)
	}
	for _, c := range []struct{ what, name, want string }{
		{"another instance's private name", "ip-10-30-1-11.ec2.internal", b.ip},
		// Inside the VPC a public name is the private address behind it,
		// as on AWS.
		{"its own public name", pubName, a.ip},
		{"a name outside, through the cloud's resolver", strings.TrimSuffix(outsideName, "."), outsideAddr},
		{"a reverse lookup", b.ip, "ip-10-30-1-11.ec2.internal"},
	} {
		var out string
		ok := within(10*time.Second, func() bool {
			var err error
			out, err = nslookup(a.ns, c.name)
			return err == nil && strings.Contains(out, c.want)
		})
		if !ok {
			t.Errorf("nslookup of %s (%s) in %s: want %s\n%s", c.what, c.name, a.id, c.want, out)
		}
	}
	// 169.254.169.253 answers too.
	if out, err := nsRun(a.ns, "busybox", "nslookup", "ip-10-30-1-11.ec2.internal", "169.254.169.253"); err != nil || !strings.Contains(out, b.ip) {
		t.Errorf("nslookup at 169.254.169.253: %v\n%s", err, out)
	}
	// A name nobody knows: NXDOMAIN, not a hang.
	if out, err := nslookup(a.ns, "nothing.outside.example"); err == nil || !strings.Contains(strings.ToLower(out), "can't resolve") && !strings.Contains(strings.ToUpper(out), "NXDOMAIN") {
		t.Errorf("nslookup of an unknown name: %v\n%s", err, out)
	}

	// An instance launched with a key pair reads its public key from the
	// metadata service.
	c := tn.launchWithKey(sub, "ops")
	if out, err := nsRun(c.ns, "busybox", "wget", "-q", "-O", "-", "http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key"); err != nil ||
		!strings.HasPrefix(out, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl") {
		t.Errorf("public-keys/0/openssh-key: %v %q", err, out)
	}

	// enableDnsSupport off: the VPC's resolver answers nothing.
	tn.ec2("modify-vpc-attribute", "--vpc-id", vpcID, "--no-enable-dns-support")
	if !within(15*time.Second, func() bool {
		out, err := nsRun(a.ns, "busybox", "nslookup", "ip-10-30-1-11.ec2.internal", "10.30.0.2")
		return err != nil && !strings.Contains(out, "Address: "+b.ip)
	}) {
		t.Error("the VPC's resolver still answers with enableDnsSupport off")
	}
}

// launchWithKey launches one instance into subnet with a key pair and
// waits until it is running.
func (tn *tenant) launchWithKey(subnet, key string) inst {
	tn.t.Helper()
	f := strings.Fields(tn.ec2("run-instances", "--image-id", "ami-0deb1a12c0ffee001", "--instance-type", "t3.micro",
		"--subnet-id", subnet, "--key-name", key, "--query", "Instances[0].[InstanceId,PrivateIpAddress]"))
	if len(f) != 2 {
		tn.t.Fatalf("run-instances: %v", f)
	}
	in := inst{id: f[0], ip: f[1], ns: "ci-" + f[0][len(f[0])-13:]}
	waitUntil(tn.t, in.id+" running", func() bool {
		out, _ := tn.l.AWS(tn.key, tn.secret, "ec2", "describe-instances", "--instance-ids", in.id, "--query", "Reservations[0].Instances[0].State.Name")
		return out == "running"
	})
	return in
}
