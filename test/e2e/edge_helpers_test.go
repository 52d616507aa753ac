package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/test/e2e/netns"
)

// cloudLab starts a lab whose server reads cloudJSON as its --cloud-config
// and hands out elastic IPs from pool.
func cloudLab(t *testing.T, cloudJSON, pool string) *netns.Lab {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(cfg, []byte(cloudJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	return netns.New(t, canopyBin, netns.Options{ServerArgs: []string{"--cloud-config", cfg, "--ec2-public-pool", pool}})
}

// internetVPC creates a VPC with one subnet in zone az whose main route
// table sends 0.0.0.0/0 to an attached internet gateway; it returns the
// VPC's, the subnet's and the main route table's ids.
func (tn *tenant) internetVPC(cidr, subnetCIDR, az string) (vpcID, subnet, rtb string) {
	tn.t.Helper()
	vpcID = tn.ec2("create-vpc", "--cidr-block", cidr, "--query", "Vpc.VpcId")
	subnet = tn.ec2("create-subnet", "--vpc-id", vpcID, "--cidr-block", subnetCIDR, "--availability-zone", az, "--query", "Subnet.SubnetId")
	igw := tn.ec2("create-internet-gateway", "--query", "InternetGateway.InternetGatewayId")
	tn.ec2("attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpcID)
	rtb = tn.ec2("describe-route-tables", "--filters", "Name=vpc-id,Values="+vpcID, "--query", "RouteTables[0].RouteTableId")
	tn.ec2("create-route", "--route-table-id", rtb, "--destination-cidr-block", "0.0.0.0/0", "--gateway-id", igw)
	return vpcID, subnet, rtb
}

// icmpGroup creates a security group of vpcID admitting ICMP from anywhere.
func (tn *tenant) icmpGroup(vpcID string) string {
	tn.t.Helper()
	sg := tn.ec2("create-security-group", "--group-name", "ping", "--description", "icmp from anywhere", "--vpc-id", vpcID, "--query", "GroupId")
	tn.ec2("authorize-security-group-ingress", "--group-id", sg, "--protocol", "icmp", "--port", "-1", "--cidr", "0.0.0.0/0")
	return sg
}

// allocate allocates an elastic IP; it returns its allocation id and
// address.
func (tn *tenant) allocate() (allocID, publicIP string) {
	tn.t.Helper()
	f := strings.Fields(tn.ec2("allocate-address", "--domain", "vpc", "--query", "[AllocationId,PublicIp]"))
	if len(f) != 2 {
		tn.t.Fatalf("allocate-address: %v", f)
	}
	return f[0], f[1]
}
