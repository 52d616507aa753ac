package ec2_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/canopy-sdn/canopy/internal/controller"
	canopyec2 "github.com/canopy-sdn/canopy/internal/ec2"
	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/translate"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

const (
	hostA = "7d3c0c1e-0000-4000-8000-0000000000a1"
	hostB = "7d3c0c1e-0000-4000-8000-0000000000a2"
	hostC = "7d3c0c1e-0000-4000-8000-0000000000a3"
	image = "ami-0deb1a12c0ffee001"
)

// instEnv is an EC2 server and a controller with its life cycles running,
// an account, a VPC with a subnet in us-east-1a, and the hosts the test
// registers.
type instEnv struct {
	*env
	ctl    *controller.Controller
	cli    *ec2.Client
	vpcID  string
	sub    string // 10.0.1.0/24 in us-east-1a
	sub2   string // 10.0.2.0/24 in us-east-1a
	sgID   string
	leases map[string]*nsdb.Lease
}

func newInstEnv(t *testing.T, mod func(*canopyec2.Config)) *instEnv {
	t.Helper()
	return newInstEnvLife(t, mod, controller.LifecycleConfig{})
}

// newInstEnvLife is newInstEnv with the controller's life cycles
// configured by lc.
func newInstEnvLife(t *testing.T, mod func(*canopyec2.Config), lc controller.LifecycleConfig) *instEnv {
	t.Helper()
	e := newEnv(t, mod)
	ctl := controller.New(e.store, translate.CloudConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil))).WithLifecycle(e.vpcs, lc)
	if err := ctl.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	cli, _ := e.account("alice")
	c := ctx(t)
	v := must[*ec2.CreateVpcOutput](t)(cli.CreateVpc(c, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}))
	ie := &instEnv{env: e, ctl: ctl, cli: cli, vpcID: *v.Vpc.VpcId, leases: map[string]*nsdb.Lease{}}
	for i, cidr := range []string{"10.0.1.0/24", "10.0.2.0/24"} {
		s := must[*ec2.CreateSubnetOutput](t)(cli.CreateSubnet(c, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String(cidr), AvailabilityZone: aws.String("us-east-1a")}))
		if i == 0 {
			ie.sub = *s.Subnet.SubnetId
		} else {
			ie.sub2 = *s.Subnet.SubnetId
		}
	}
	sg := must[*ec2.CreateSecurityGroupOutput](t)(cli.CreateSecurityGroup(c, &ec2.CreateSecurityGroupInput{VpcId: v.Vpc.VpcId, GroupName: aws.String("web"), Description: aws.String("web")}))
	ie.sgID = *sg.GroupId
	return ie
}

// host registers a host (a topology Host, zone label when zone != "") and,
// when alive, keeps its liveness lease as an agent does.
func (e *instEnv) host(id, zone string, alive bool) {
	e.t.Helper()
	h := &topology.Host{Meta: topology.Meta{ID: id, Name: "h-" + id[len(id)-2:]}}
	if zone != "" {
		h.Labels = map[string]string{canopyec2.ZoneLabel: zone}
	}
	if _, err := e.store.Create(context.Background(), h); err != nil {
		e.t.Fatal(err)
	}
	if alive {
		e.keepAlive(id)
	}
}

func (e *instEnv) keepAlive(id string) {
	e.t.Helper()
	l, err := e.store.KeepHostAlive(context.Background(), id, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.leases[id] = l
	e.t.Cleanup(func() { _ = l.Revoke(context.Background()) })
}

// report writes the instance's state key as the agent of its host does.
func (e *instEnv) report(inst types.Instance) {
	e.t.Helper()
	r := vpc.InstanceReport{HostID: e.hostOf(*inst.InstanceId), State: "running", Netns: vpc.InstanceNetns(*inst.InstanceId),
		Interfaces: map[string]vpc.InterfaceReport{}}
	for _, ni := range inst.NetworkInterfaces {
		r.Interfaces[*ni.NetworkInterfaceId] = vpc.InterfaceReport{Ifname: vpc.HostInterfaceName(*ni.NetworkInterfaceId), IP: *ni.PrivateIpAddress}
	}
	b, _ := json.Marshal(r)
	l := e.leases[r.HostID]
	if l == nil {
		e.t.Fatalf("host %s of %s is not alive", r.HostID, *inst.InstanceId)
	}
	if err := e.store.PutInstanceState(context.Background(), r.HostID, *inst.InstanceId, b, l); err != nil {
		e.t.Fatal(err)
	}
}

func (e *instEnv) unreport(id string) {
	e.t.Helper()
	if err := e.store.DeleteInstanceState(context.Background(), e.hostOf(id), id); err != nil {
		e.t.Fatal(err)
	}
}

// hostOf reads the host the scheduler placed an instance on.
func (e *instEnv) hostOf(id string) string {
	var h string
	e.vpcs.Read(func(st *vpc.State) {
		if i := st.Instances[id]; i != nil {
			h = i.HostID
		}
	})
	return h
}

func (e *instEnv) run(in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	if in.ImageId == nil {
		in.ImageId = aws.String(image)
	}
	if in.MinCount == nil {
		in.MinCount, in.MaxCount = aws.Int32(1), aws.Int32(1)
	}
	return e.cli.RunInstances(ctx(e.t), in)
}

func (e *instEnv) describe(id string) types.Instance {
	e.t.Helper()
	out := must[*ec2.DescribeInstancesOutput](e.t)(e.cli.DescribeInstances(ctx(e.t), &ec2.DescribeInstancesInput{InstanceIds: []string{id}}))
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		e.t.Fatalf("describe %s: %d reservations", id, len(out.Reservations))
	}
	return out.Reservations[0].Instances[0]
}

// waitState polls DescribeInstances until the instance reads want.
func (e *instEnv) waitState(id string, want types.InstanceStateName) types.Instance {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		i := e.describe(id)
		if i.State.Name == want {
			return i
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: state %s, want %s", id, i.State.Name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled returns once the life cycle loop has run a round after every
// write made so far. It moves the marker instance m one step (pending or
// stopped → running, running → stopped) and waits for the step: the round
// that made it read every instance and agent report written before, so an
// instance it left alone had no transition due. This replaces a sleep
// before asserting that something did not happen.
func (e *instEnv) settled(m types.Instance) {
	e.t.Helper()
	id := *m.InstanceId
	c := ctx(e.t)
	switch s := e.describe(id).State.Name; s {
	case types.InstanceStateNameRunning:
		must[*ec2.StopInstancesOutput](e.t)(e.cli.StopInstances(c, &ec2.StopInstancesInput{InstanceIds: []string{id}}))
		e.unreport(id)
		e.waitState(id, types.InstanceStateNameStopped)
	case types.InstanceStateNameStopped:
		must[*ec2.StartInstancesOutput](e.t)(e.cli.StartInstances(c, &ec2.StartInstancesInput{InstanceIds: []string{id}}))
		fallthrough
	case types.InstanceStateNamePending:
		e.report(m)
		e.waitState(id, types.InstanceStateNameRunning)
	default:
		e.t.Fatalf("marker %s is %s", id, s)
	}
}

func TestRunInstancesWithSubnet(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "us-east-1a", true)
	c := ctx(t)
	ud := base64.StdEncoding.EncodeToString([]byte("#cloud-config\nhostname: a\n"))
	must[*ec2.CreateKeyPairOutput](t)(e.cli.CreateKeyPair(c, &ec2.CreateKeyPairInput{KeyName: aws.String("ops"), KeyType: types.KeyTypeEd25519}))
	out, err := e.run(&ec2.RunInstancesInput{InstanceType: types.InstanceTypeT3Small, SubnetId: aws.String(e.sub),
		CreditSpecification: &types.CreditSpecificationRequest{CpuCredits: aws.String("standard")},
		SecurityGroupIds:    []string{e.sgID}, PrivateIpAddress: aws.String("10.0.1.10"), UserData: aws.String(ud), KeyName: aws.String("ops"),
		MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpTokens: types.HttpTokensStateRequired},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("web-1")}}},
			{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("primary")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 1 || out.ReservationId == nil {
		t.Fatalf("reservation: %+v", out)
	}
	i := out.Instances[0]
	if i.State.Name != types.InstanceStateNamePending || *i.State.Code != 0 {
		t.Errorf("state %v", i.State)
	}
	if *i.PrivateIpAddress != "10.0.1.10" || *i.SubnetId != e.sub || *i.VpcId != e.vpcID || *i.ImageId != image || i.InstanceType != types.InstanceTypeT3Small {
		t.Errorf("instance: ip %s subnet %s vpc %s image %s type %s", *i.PrivateIpAddress, *i.SubnetId, *i.VpcId, *i.ImageId, i.InstanceType)
	}
	if *i.Placement.AvailabilityZone != "us-east-1a" || *i.PrivateDnsName != "ip-10-0-1-10.ec2.internal" || *i.KeyName != "ops" {
		t.Errorf("placement %s dns %s key %s", *i.Placement.AvailabilityZone, *i.PrivateDnsName, *i.KeyName)
	}
	if len(i.SecurityGroups) != 1 || *i.SecurityGroups[0].GroupId != e.sgID || *i.SecurityGroups[0].GroupName != "web" {
		t.Errorf("groups %+v", i.SecurityGroups)
	}
	if i.MetadataOptions.HttpTokens != types.HttpTokensStateRequired || len(i.NetworkInterfaces) != 1 || *i.NetworkInterfaces[0].Attachment.DeleteOnTermination != true {
		t.Errorf("metadata %v / interfaces %+v", i.MetadataOptions.HttpTokens, i.NetworkInterfaces)
	}
	if i.PublicIpAddress != nil {
		t.Errorf("public IP %s on a subnet without MapPublicIpOnLaunch", *i.PublicIpAddress)
	}
	if e.hostOf(*i.InstanceId) != hostA {
		t.Errorf("placed on %q, want %s", e.hostOf(*i.InstanceId), hostA)
	}
	id := *i.InstanceId
	// The ENI, as DescribeNetworkInterfaces shows it.
	enis := must[*ec2.DescribeNetworkInterfacesOutput](t)(e.cli.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}}))
	if len(enis.NetworkInterfaces) != 1 || enis.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusInUse || len(enis.NetworkInterfaces[0].TagSet) != 1 {
		t.Fatalf("ENIs of the instance: %+v", enis.NetworkInterfaces)
	}
	// The calls terraform makes around an instance.
	attr := must[*ec2.DescribeInstanceAttributeOutput](t)(e.cli.DescribeInstanceAttribute(c, &ec2.DescribeInstanceAttributeInput{InstanceId: &id, Attribute: types.InstanceAttributeNameUserData}))
	if *attr.UserData.Value != ud {
		t.Errorf("userData %q", *attr.UserData.Value)
	}
	attr = must[*ec2.DescribeInstanceAttributeOutput](t)(e.cli.DescribeInstanceAttribute(c, &ec2.DescribeInstanceAttributeInput{InstanceId: &id, Attribute: types.InstanceAttributeNameGroupSet}))
	if len(attr.Groups) != 1 || *attr.Groups[0].GroupId != e.sgID {
		t.Errorf("groupSet %+v", attr.Groups)
	}
	attr = must[*ec2.DescribeInstanceAttributeOutput](t)(e.cli.DescribeInstanceAttribute(c, &ec2.DescribeInstanceAttributeInput{InstanceId: &id, Attribute: types.InstanceAttributeNameInstanceType}))
	if *attr.InstanceType.Value != "t3.small" {
		t.Errorf("instanceType %q", *attr.InstanceType.Value)
	}
	vols := must[*ec2.DescribeVolumesOutput](t)(e.cli.DescribeVolumes(c, &ec2.DescribeVolumesInput{Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}}))
	if len(vols.Volumes) != 1 || vols.Volumes[0].State != types.VolumeStateInUse || *vols.Volumes[0].Attachments[0].InstanceId != id || *vols.Volumes[0].VolumeId != *i.BlockDeviceMappings[0].Ebs.VolumeId {
		t.Errorf("volumes %+v", vols.Volumes)
	}
	cs := must[*ec2.DescribeInstanceCreditSpecificationsOutput](t)(e.cli.DescribeInstanceCreditSpecifications(c, &ec2.DescribeInstanceCreditSpecificationsInput{InstanceIds: []string{id}}))
	if len(cs.InstanceCreditSpecifications) != 1 || *cs.InstanceCreditSpecifications[0].CpuCredits != "standard" {
		t.Errorf("credit specifications %+v", cs.InstanceCreditSpecifications)
	}
	tags := must[*ec2.DescribeTagsOutput](t)(e.cli.DescribeTags(c, &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{id}}}}))
	if len(tags.Tags) != 1 || *tags.Tags[0].Value != "web-1" || tags.Tags[0].ResourceType != types.ResourceTypeInstance {
		t.Errorf("tags %+v", tags.Tags)
	}
	imgs := must[*ec2.DescribeImagesOutput](t)(e.cli.DescribeImages(c, &ec2.DescribeImagesInput{Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"canopy-debian-12-*"}}}}))
	if len(imgs.Images) != 2 || imgs.Images[0].State != types.ImageStateAvailable || imgs.Images[0].Architecture != types.ArchitectureValuesX8664 {
		t.Errorf("images %+v", imgs.Images)
	}
	its := must[*ec2.DescribeInstanceTypesOutput](t)(e.cli.DescribeInstanceTypes(c, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{types.InstanceTypeT3Micro}}))
	if len(its.InstanceTypes) != 1 || *its.InstanceTypes[0].VCpuInfo.DefaultVCpus != 2 || *its.InstanceTypes[0].MemoryInfo.SizeInMiB != 1024 || *its.InstanceTypes[0].NetworkInfo.MaximumNetworkInterfaces != 2 {
		t.Errorf("instance types %+v", its.InstanceTypes)
	}
	// Filters on DescribeInstances.
	byIP := must[*ec2.DescribeInstancesOutput](t)(e.cli.DescribeInstances(c, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("private-ip-address"), Values: []string{"10.0.1.10"}}, {Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}}))
	if len(byIP.Reservations) != 1 || *byIP.Reservations[0].Instances[0].InstanceId != id {
		t.Errorf("filter by private IP: %+v", byIP.Reservations)
	}
}

// TestRunInstancesTerraformShape: subnet, groups and private IP only inside
// NetworkInterface.1, with an empty Placement.AvailabilityZone, as
// terraform sends them when private_ip is set.
func TestRunInstancesTerraformShape(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "", true)
	out, err := e.run(&ec2.RunInstancesInput{Placement: &types.Placement{AvailabilityZone: aws.String("")},
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(e.sub),
			PrivateIpAddress: aws.String("10.0.1.20"), Groups: []string{e.sgID}}}})
	if err != nil {
		t.Fatal(err)
	}
	i := e.describe(*out.Instances[0].InstanceId)
	if *i.PrivateIpAddress != "10.0.1.20" || *i.SubnetId != e.sub || len(i.SecurityGroups) != 1 || *i.SecurityGroups[0].GroupId != e.sgID {
		t.Errorf("terraform shape: ip %s subnet %s groups %+v", *i.PrivateIpAddress, *i.SubnetId, i.SecurityGroups)
	}
	// Mixing the two forms is refused, as on AWS.
	_, err = e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub),
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(e.sub)}}})
	if code(err) != "InvalidParameterCombination" {
		t.Errorf("SubnetId with NetworkInterface.1: %s", code(err))
	}
}

// TestRunInstancesSeveralInterfaces: a new primary, a new second interface
// in another subnet of the zone, and an existing ENI; on termination the
// new ones are deleted and the existing one is detached.
func TestRunInstancesSeveralInterfaces(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "", true)
	c := ctx(t)
	pre := must[*ec2.CreateNetworkInterfaceOutput](t)(e.cli.CreateNetworkInterface(c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.sub2)}))
	preID := *pre.NetworkInterface.NetworkInterfaceId
	out, err := e.run(&ec2.RunInstancesInput{InstanceType: types.InstanceTypeT3Small, NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
		{DeviceIndex: aws.Int32(0), SubnetId: aws.String(e.sub), Groups: []string{e.sgID}},
		{DeviceIndex: aws.Int32(1), SubnetId: aws.String(e.sub2), PrivateIpAddress: aws.String("10.0.2.50")},
		{DeviceIndex: aws.Int32(2), NetworkInterfaceId: aws.String(preID)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	inst := e.describe(*out.Instances[0].InstanceId)
	if len(inst.NetworkInterfaces) != 3 {
		t.Fatalf("%d interfaces", len(inst.NetworkInterfaces))
	}
	byIndex := map[int32]types.InstanceNetworkInterface{}
	for _, ni := range inst.NetworkInterfaces {
		byIndex[*ni.Attachment.DeviceIndex] = ni
	}
	if *byIndex[1].PrivateIpAddress != "10.0.2.50" || *byIndex[2].NetworkInterfaceId != preID || *byIndex[2].Attachment.DeleteOnTermination || !*byIndex[0].Attachment.DeleteOnTermination {
		t.Errorf("interfaces: %+v", byIndex)
	}
	// The second interface got the VPC's default group (none was named).
	if len(byIndex[1].Groups) != 1 || *byIndex[1].Groups[0].GroupName != "default" {
		t.Errorf("second interface groups %+v", byIndex[1].Groups)
	}
	// A route to an instance with several interfaces is refused (AWS: name the interface).
	rt := must[*ec2.CreateRouteTableOutput](t)(e.cli.CreateRouteTable(c, &ec2.CreateRouteTableInput{VpcId: &e.vpcID}))
	if _, err := e.cli.CreateRoute(c, &ec2.CreateRouteInput{RouteTableId: rt.RouteTable.RouteTableId, DestinationCidrBlock: aws.String("192.168.0.0/16"), InstanceId: inst.InstanceId}); code(err) != "InvalidInstanceID" {
		t.Errorf("route to a multi-interface instance: %s", code(err))
	}
	must[*ec2.TerminateInstancesOutput](t)(e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.InstanceId}}))
	e.waitState(*inst.InstanceId, types.InstanceStateNameTerminated)
	enis := must[*ec2.DescribeNetworkInterfacesOutput](t)(e.cli.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{}))
	if len(enis.NetworkInterfaces) != 1 || *enis.NetworkInterfaces[0].NetworkInterfaceId != preID || enis.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusAvailable || enis.NetworkInterfaces[0].Attachment != nil {
		t.Errorf("after terminate, ENIs: %+v", enis.NetworkInterfaces)
	}
}

// TestRunInstancesCountSpread: MinCount=MaxCount=3 make one reservation of
// three instances, spread least-loaded-first over two alive hosts.
func TestRunInstancesCountSpread(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "us-east-1a", true)
	e.host(hostB, "us-east-1a", true)
	e.host(hostC, "us-east-1b", true) // another zone: never chosen
	out, err := e.run(&ec2.RunInstancesInput{MinCount: aws.Int32(3), MaxCount: aws.Int32(3), SubnetId: aws.String(e.sub)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 3 {
		t.Fatalf("%d instances", len(out.Instances))
	}
	perHost := map[string]int{}
	ips := map[string]bool{}
	for k, i := range out.Instances {
		perHost[e.hostOf(*i.InstanceId)]++
		ips[*i.PrivateIpAddress] = true
		if *i.AmiLaunchIndex != int32(k) {
			t.Errorf("launch index %d, want %d", *i.AmiLaunchIndex, k)
		}
	}
	if perHost[hostA]+perHost[hostB] != 3 || perHost[hostA] == 0 || perHost[hostB] == 0 || len(ips) != 3 {
		t.Errorf("placement %v, addresses %v", perHost, ips)
	}
	d := must[*ec2.DescribeInstancesOutput](t)(e.cli.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{}))
	if len(d.Reservations) != 1 || len(d.Reservations[0].Instances) != 3 || *d.Reservations[0].ReservationId != *out.ReservationId {
		t.Errorf("describe: %d reservations", len(d.Reservations))
	}
}

func TestRunInstancesPublicIP(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "", true)
	c := ctx(t)
	out, err := e.run(&ec2.RunInstancesInput{NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
		{DeviceIndex: aws.Int32(0), SubnetId: aws.String(e.sub), AssociatePublicIpAddress: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	i := e.describe(*out.Instances[0].InstanceId)
	if i.PublicIpAddress == nil || *i.PublicIpAddress != "198.51.100.1" {
		t.Fatalf("public IP %v, want the pool's first address", i.PublicIpAddress)
	}
	if a := i.NetworkInterfaces[0].Association; a == nil || *a.PublicIp != "198.51.100.1" {
		t.Errorf("interface association %+v", a)
	}
	must[*ec2.TerminateInstancesOutput](t)(e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{*i.InstanceId}}))
	e.waitState(*i.InstanceId, types.InstanceStateNameTerminated)
	// The address went back to the pool: the next instance gets it again.
	out, err = e.run(&ec2.RunInstancesInput{NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
		{DeviceIndex: aws.Int32(0), SubnetId: aws.String(e.sub), AssociatePublicIpAddress: aws.Bool(true)}}})
	if err != nil {
		t.Fatal(err)
	}
	if *out.Instances[0].PublicIpAddress != "198.51.100.1" {
		t.Errorf("second instance's public IP %s", *out.Instances[0].PublicIpAddress)
	}
	if n := e.vpcKeys()["addresses"]; n != 1 {
		t.Errorf("%d addresses stored, want 1", n)
	}
}

func TestRunInstancesErrors(t *testing.T) {
	e := newInstEnv(t, func(c *canopyec2.Config) { c.Limits.InstancesPerAccount = 2 })
	e.host(hostA, "", true)
	must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub), PrivateIpAddress: aws.String("10.0.1.10")}))
	before := e.dump()
	cases := []struct {
		name string
		in   ec2.RunInstancesInput
		want string
	}{
		{"ip in use", ec2.RunInstancesInput{SubnetId: aws.String(e.sub), PrivateIpAddress: aws.String("10.0.1.10")}, "InvalidIPAddress.InUse"},
		{"malformed ami", ec2.RunInstancesInput{ImageId: aws.String("ami-xyz"), SubnetId: aws.String(e.sub)}, "InvalidAMIID.Malformed"},
		{"unknown ami", ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), SubnetId: aws.String(e.sub)}, "InvalidAMIID.NotFound"},
		{"unknown type", ec2.RunInstancesInput{InstanceType: "x9.huge", SubnetId: aws.String(e.sub)}, "InvalidParameterValue"},
		{"unknown subnet", ec2.RunInstancesInput{SubnetId: aws.String("subnet-12345678")}, "InvalidSubnetID.NotFound"},
		{"zone mismatch", ec2.RunInstancesInput{SubnetId: aws.String(e.sub), Placement: &types.Placement{AvailabilityZone: aws.String("us-east-1b")}}, "InvalidParameterValue"},
		{"limit", ec2.RunInstancesInput{SubnetId: aws.String(e.sub), MinCount: aws.Int32(2), MaxCount: aws.Int32(2)}, "InstanceLimitExceeded"},
		{"ip with count", ec2.RunInstancesInput{SubnetId: aws.String(e.sub), PrivateIpAddress: aws.String("10.0.1.30"), MinCount: aws.Int32(1), MaxCount: aws.Int32(2)}, "InvalidParameterCombination"},
		{"bad user data", ec2.RunInstancesInput{SubnetId: aws.String(e.sub), UserData: aws.String("%%%")}, "InvalidParameterValue"},
		{"ip outside subnet", ec2.RunInstancesInput{SubnetId: aws.String(e.sub), PrivateIpAddress: aws.String("10.0.2.10")}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		if _, err := e.run(&tc.in); code(err) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, code(err), tc.want)
		}
	}
	if after := e.dump(); after != before {
		t.Errorf("refused calls changed the store:\n%s\n---\n%s", before, after)
	}
	// MaxCount above the room left launches what fits (AWS: as many as possible ≥ MinCount).
	out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub), MinCount: aws.Int32(1), MaxCount: aws.Int32(5)}))
	if len(out.Instances) != 1 {
		t.Errorf("launched %d with one slot left", len(out.Instances))
	}
	c := ctx(t)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"describe unknown", func() error {
			_, err := e.cli.DescribeInstances(c, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
			return err
		}(), "InvalidInstanceID.NotFound"},
		{"describe malformed", func() error {
			_, err := e.cli.DescribeInstances(c, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-zz"}})
			return err
		}(), "InvalidInstanceID.Malformed"},
		{"terminate unknown", func() error {
			_, err := e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-01234567"}})
			return err
		}(), "InvalidInstanceID.NotFound"},
		{"attach to unknown", func() error {
			eni := must[*ec2.CreateNetworkInterfaceOutput](t)(e.cli.CreateNetworkInterface(c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(e.sub)}))
			_, err := e.cli.AttachNetworkInterface(c, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: eni.NetworkInterface.NetworkInterfaceId, InstanceId: aws.String("i-0123456789abcdef0"), DeviceIndex: aws.Int32(1)})
			return err
		}(), "InvalidInstanceID.NotFound"},
	} {
		if code(tc.err) != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, code(tc.err), tc.want)
		}
	}
}

// TestScheduler: an instance goes to an alive host of the subnet's zone (or
// one without a zone); none → InsufficientInstanceCapacity.
func TestScheduler(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostC, "us-east-1b", true) // alive, wrong zone
	e.host(hostA, "us-east-1a", false)
	_, err := e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub)})
	if code(err) != "InsufficientInstanceCapacity" {
		t.Fatalf("no alive host in the zone: %s", code(err))
	}
	e.keepAlive(hostA)
	out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub)}))
	if h := e.hostOf(*out.Instances[0].InstanceId); h != hostA {
		t.Errorf("placed on %s, want %s", h, hostA)
	}
	// A dead host is passed over: hostA's lease revoked, hostB (no zone) takes it.
	if err := e.leases[hostA].Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.host(hostB, "", true)
	out = must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub)}))
	if h := e.hostOf(*out.Instances[0].InstanceId); h != hostB {
		t.Errorf("placed on %s, want %s", h, hostB)
	}
}

// TestInstanceLifecycle: the agent's state key moves an instance to
// running; terminate → shutting-down until the key goes → terminated, its
// ENI deleted and its address reusable; stop/start; ClientToken.
func TestInstanceLifecycle(t *testing.T) {
	e := newInstEnvLife(t, nil, controller.LifecycleConfig{TerminatedRetention: 3 * time.Second})
	e.host(hostA, "", true)
	c := ctx(t)
	in := ec2.RunInstancesInput{SubnetId: aws.String(e.sub), PrivateIpAddress: aws.String("10.0.1.10"), ClientToken: aws.String("tok-1")}
	out := must[*ec2.RunInstancesOutput](t)(e.run(&in))
	id := *out.Instances[0].InstanceId
	// The same ClientToken answers the same reservation.
	again := must[*ec2.RunInstancesOutput](t)(e.run(&in))
	if *again.ReservationId != *out.ReservationId || *again.Instances[0].InstanceId != id {
		t.Errorf("ClientToken retry made %s/%s", *again.ReservationId, *again.Instances[0].InstanceId)
	}
	// The marker proves the life cycle loop ran after each change below.
	marker := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub2)})).Instances[0]
	e.settled(marker)
	if s := e.describe(id).State.Name; s != types.InstanceStateNamePending {
		t.Fatalf("before the agent reports: %s", s)
	}
	e.report(out.Instances[0])
	running := e.waitState(id, types.InstanceStateNameRunning)
	if *running.State.Code != 16 {
		t.Errorf("running code %d", *running.State.Code)
	}
	st := must[*ec2.DescribeInstanceStatusOutput](t)(e.cli.DescribeInstanceStatus(c, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}}))
	if len(st.InstanceStatuses) != 1 || st.InstanceStatuses[0].InstanceStatus.Status != types.SummaryStatusOk {
		t.Errorf("status %+v", st.InstanceStatuses)
	}
	// Start on a running instance is a no-op answering its state, as AWS does.
	s := must[*ec2.StartInstancesOutput](t)(e.cli.StartInstances(c, &ec2.StartInstancesInput{InstanceIds: []string{id}}))
	if s.StartingInstances[0].CurrentState.Name != types.InstanceStateNameRunning {
		t.Errorf("start running: %v", s.StartingInstances[0].CurrentState.Name)
	}
	must[*ec2.RebootInstancesOutput](t)(e.cli.RebootInstances(c, &ec2.RebootInstancesInput{InstanceIds: []string{id}}))

	// Stop: stopping while the agent still reports it, stopped once it is torn down.
	so := must[*ec2.StopInstancesOutput](t)(e.cli.StopInstances(c, &ec2.StopInstancesInput{InstanceIds: []string{id}}))
	if so.StoppingInstances[0].CurrentState.Name != types.InstanceStateNameStopping || so.StoppingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Errorf("stop: %+v", so.StoppingInstances[0])
	}
	e.settled(marker)
	if s := e.describe(id).State.Name; s != types.InstanceStateNameStopping {
		t.Errorf("while the agent still reports it: %s", s)
	}
	e.unreport(id)
	e.waitState(id, types.InstanceStateNameStopped)
	if e.hostOf(id) != "" {
		t.Errorf("a stopped instance keeps host %s", e.hostOf(id))
	}
	if _, err := e.cli.RebootInstances(c, &ec2.RebootInstancesInput{InstanceIds: []string{id}}); code(err) != "IncorrectInstanceState" {
		t.Errorf("reboot stopped: %s", code(err))
	}
	must[*ec2.StartInstancesOutput](t)(e.cli.StartInstances(c, &ec2.StartInstancesInput{InstanceIds: []string{id}}))
	if s := e.describe(id).State.Name; s != types.InstanceStateNamePending || e.hostOf(id) != hostA {
		t.Errorf("started: %s on %q", s, e.hostOf(id))
	}
	e.report(out.Instances[0])
	e.waitState(id, types.InstanceStateNameRunning)

	// Terminate.
	to := must[*ec2.TerminateInstancesOutput](t)(e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}))
	if to.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameShuttingDown {
		t.Errorf("terminate: %v", to.TerminatingInstances[0].CurrentState.Name)
	}
	e.settled(marker)
	if s := e.describe(id).State.Name; s != types.InstanceStateNameShuttingDown {
		t.Errorf("while the agent still reports it: %s", s)
	}
	e.unreport(id)
	term := e.waitState(id, types.InstanceStateNameTerminated)
	if term.StateReason == nil || *term.StateReason.Code != "Client.UserInitiatedShutdown" || len(term.NetworkInterfaces) != 0 {
		t.Errorf("terminated: reason %+v, %d interfaces", term.StateReason, len(term.NetworkInterfaces))
	}
	if n := e.vpcKeys()["network_interfaces"]; n != 1 {
		t.Errorf("%d ENIs left after termination, want 1 (the marker's)", n)
	}
	if _, err := e.cli.StartInstances(c, &ec2.StartInstancesInput{InstanceIds: []string{id}}); code(err) != "IncorrectInstanceState" {
		t.Errorf("start terminated: %s", code(err))
	}
	// The address is free again.
	out2 := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub), PrivateIpAddress: aws.String("10.0.1.10")}))
	if *out2.Instances[0].PrivateIpAddress != "10.0.1.10" {
		t.Errorf("reused address %s", *out2.Instances[0].PrivateIpAddress)
	}
	// After the retention the terminated instance is gone.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := e.cli.DescribeInstances(c, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if code(err) == "InvalidInstanceID.NotFound" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminated instance still described after its retention: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestInstancePortBound: with the controller running, the ENI's port of a
// placed instance is bound to (host, vn…) in the topology, and unbound when
// the instance stops.
func TestInstancePortBound(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "", true)
	c := ctx(t)
	out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub)}))
	eni := *out.Instances[0].NetworkInterfaces[0].NetworkInterfaceId
	portID := translate.ObjectID(eni, "port")
	waitPort := func(wantHost, wantIf string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			var got string
			e.store.Read(func(r topology.Reader) {
				if p, ok := r.Get(topology.KindPort, portID).(*topology.Port); ok && p != nil {
					got = p.HostID + "/" + p.Interface
				} else {
					got = "(no port)"
				}
			})
			if got == wantHost+"/"+wantIf {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("port of %s: %s, want %s/%s", eni, got, wantHost, wantIf)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitPort(hostA, vpc.HostInterfaceName(eni))
	must[*ec2.StopInstancesOutput](t)(e.cli.StopInstances(c, &ec2.StopInstancesInput{InstanceIds: []string{*out.Instances[0].InstanceId}}))
	waitPort("", "")
}

// TestInstanceInterfacesAndAddresses: an instance launched with no network
// parameters lands in the default VPC's default subnet with an
// auto-assigned public IP (MapPublicIpOnLaunch), which DescribeAddresses
// does not list and an elastic IP replaces; ENIs attach to and detach from
// the instance; a route to the instance shows its id.
func TestInstanceInterfacesAndAddresses(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "", true)
	c := ctx(t)
	out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{}))
	i := out.Instances[0]
	if i.PublicIpAddress == nil || *i.Placement.AvailabilityZone != "us-east-1a" {
		t.Fatalf("default subnet launch: public %v zone %s", i.PublicIpAddress, *i.Placement.AvailabilityZone)
	}
	addrs := must[*ec2.DescribeAddressesOutput](t)(e.cli.DescribeAddresses(c, &ec2.DescribeAddressesInput{}))
	if len(addrs.Addresses) != 0 {
		t.Errorf("auto-assigned address listed: %+v", addrs.Addresses)
	}
	eip := must[*ec2.AllocateAddressOutput](t)(e.cli.AllocateAddress(c, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc}))
	must[*ec2.AssociateAddressOutput](t)(e.cli.AssociateAddress(c, &ec2.AssociateAddressInput{AllocationId: eip.AllocationId, InstanceId: i.InstanceId}))
	if got := e.describe(*i.InstanceId).PublicIpAddress; got == nil || *got != *eip.PublicIp {
		t.Errorf("public IP after associating %s: %v", *eip.PublicIp, got)
	}
	if n := e.vpcKeys()["addresses"]; n != 1 {
		t.Errorf("%d addresses stored, want the elastic IP only", n)
	}

	// Attach and detach a second interface in the instance's VPC and zone.
	sub := *i.SubnetId
	eni := must[*ec2.CreateNetworkInterfaceOutput](t)(e.cli.CreateNetworkInterface(c, &ec2.CreateNetworkInterfaceInput{SubnetId: &sub}))
	att := must[*ec2.AttachNetworkInterfaceOutput](t)(e.cli.AttachNetworkInterface(c, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: eni.NetworkInterface.NetworkInterfaceId, InstanceId: i.InstanceId, DeviceIndex: aws.Int32(1)}))
	if n := len(e.describe(*i.InstanceId).NetworkInterfaces); n != 2 {
		t.Errorf("%d interfaces after attach", n)
	}
	must[*ec2.DetachNetworkInterfaceOutput](t)(e.cli.DetachNetworkInterface(c, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	if n := len(e.describe(*i.InstanceId).NetworkInterfaces); n != 1 {
		t.Errorf("%d interfaces after detach", n)
	}

	// A route to the (single-interface) instance.
	d := must[*ec2.DescribeRouteTablesOutput](t)(e.cli.DescribeRouteTables(c, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{*i.VpcId}}}}))
	rtb := d.RouteTables[0].RouteTableId
	must[*ec2.CreateRouteOutput](t)(e.cli.CreateRoute(c, &ec2.CreateRouteInput{RouteTableId: rtb, DestinationCidrBlock: aws.String("192.168.0.0/16"), InstanceId: i.InstanceId}))
	d = must[*ec2.DescribeRouteTablesOutput](t)(e.cli.DescribeRouteTables(c, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{*rtb}}))
	found := false
	for _, r := range d.RouteTables[0].Routes {
		if r.InstanceId != nil && *r.InstanceId == *i.InstanceId {
			found = true
		}
	}
	if !found {
		t.Errorf("route to the instance not shown: %+v", d.RouteTables[0].Routes)
	}

	// Terminated instances take no interfaces.
	must[*ec2.TerminateInstancesOutput](t)(e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{*i.InstanceId}}))
	e.waitState(*i.InstanceId, types.InstanceStateNameTerminated)
	if _, err := e.cli.AttachNetworkInterface(c, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: eni.NetworkInterface.NetworkInterfaceId,
		InstanceId: i.InstanceId, DeviceIndex: aws.Int32(1)}); code(err) != "IncorrectInstanceState" {
		t.Errorf("attach to terminated: %s", code(err))
	}
	// The elastic IP stays allocated, disassociated with the deleted interface.
	addrs = must[*ec2.DescribeAddressesOutput](t)(e.cli.DescribeAddresses(c, &ec2.DescribeAddressesInput{}))
	if len(addrs.Addresses) != 1 || addrs.Addresses[0].AssociationId != nil {
		t.Errorf("elastic IP after terminate: %+v", addrs.Addresses)
	}
}

// TestInstanceStatusHostDied: a running instance whose host's agent is no
// longer alive (its lease gone) fails its system status check — impaired,
// reachability failed — while its state stays running; the filter on
// system-status.status finds it.
func TestInstanceStatusHostDied(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "", true)
	c := ctx(t)
	out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub)}))
	id := *out.Instances[0].InstanceId
	e.report(out.Instances[0])
	e.waitState(id, types.InstanceStateNameRunning)
	status := func() types.InstanceStatus {
		t.Helper()
		st := must[*ec2.DescribeInstanceStatusOutput](t)(e.cli.DescribeInstanceStatus(c, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}}))
		if len(st.InstanceStatuses) != 1 {
			t.Fatalf("statuses %+v", st.InstanceStatuses)
		}
		return st.InstanceStatuses[0]
	}
	if s := status(); s.SystemStatus.Status != types.SummaryStatusOk {
		t.Fatalf("alive host: system status %s", s.SystemStatus.Status)
	}
	if err := e.leases[hostA].Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := status()
	if s.SystemStatus.Status != types.SummaryStatusImpaired || len(s.SystemStatus.Details) != 1 || s.SystemStatus.Details[0].Status != types.StatusTypeFailed {
		t.Errorf("dead host: system status %+v", s.SystemStatus)
	}
	if s.InstanceState.Name != types.InstanceStateNameRunning {
		t.Errorf("state %s, want still running", s.InstanceState.Name)
	}
	f := must[*ec2.DescribeInstanceStatusOutput](t)(e.cli.DescribeInstanceStatus(c, &ec2.DescribeInstanceStatusInput{
		Filters: []types.Filter{{Name: aws.String("system-status.status"), Values: []string{"impaired"}}}}))
	if len(f.InstanceStatuses) != 1 || *f.InstanceStatuses[0].InstanceId != id {
		t.Errorf("filter system-status.status=impaired: %+v", f.InstanceStatuses)
	}
}

// TestInstanceRecovery: with instance recovery on, a placed instance whose
// host's agent dies is restarted on another alive host of its zone — same
// id, interface, MAC and address; its port is bound there — unless it
// opted out (ModifyInstanceMaintenanceOptions AutoRecovery=disabled),
// which stays running on the dead host, impaired.
func TestInstanceRecovery(t *testing.T) {
	e := newInstEnvLife(t, nil, controller.LifecycleConfig{Recovery: true})
	e.host(hostA, "us-east-1a", true)
	e.host(hostB, "us-east-1a", false) // alive later: both instances land on A
	c := ctx(t)
	launch := func() types.Instance {
		t.Helper()
		out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub)}))
		e.report(out.Instances[0])
		return e.waitState(*out.Instances[0].InstanceId, types.InstanceStateNameRunning)
	}
	moving, staying := launch(), launch()
	if e.hostOf(*moving.InstanceId) != hostA || e.hostOf(*staying.InstanceId) != hostA {
		t.Fatalf("placed on %s and %s, want both on A", e.hostOf(*moving.InstanceId), e.hostOf(*staying.InstanceId))
	}
	for _, bad := range []struct{ mode, want string }{{"", "MissingParameter"}, {"sometimes", "InvalidParameterValue"}} {
		_, err := e.cli.ModifyInstanceMaintenanceOptions(c, &ec2.ModifyInstanceMaintenanceOptionsInput{InstanceId: staying.InstanceId, AutoRecovery: types.InstanceAutoRecoveryState(bad.mode)})
		if code(err) != bad.want {
			t.Errorf("AutoRecovery=%q: %v, want %s", bad.mode, err, bad.want)
		}
	}
	mo := must[*ec2.ModifyInstanceMaintenanceOptionsOutput](t)(e.cli.ModifyInstanceMaintenanceOptions(c, &ec2.ModifyInstanceMaintenanceOptionsInput{
		InstanceId: staying.InstanceId, AutoRecovery: types.InstanceAutoRecoveryStateDisabled}))
	if mo.AutoRecovery != types.InstanceAutoRecoveryStateDisabled {
		t.Errorf("modify answered %q", mo.AutoRecovery)
	}
	if got := e.describe(*staying.InstanceId).MaintenanceOptions; got == nil || got.AutoRecovery != types.InstanceAutoRecoveryStateDisabled {
		t.Errorf("described maintenance options %+v", got)
	}
	if got := e.describe(*moving.InstanceId).MaintenanceOptions; got == nil || got.AutoRecovery != types.InstanceAutoRecoveryStateDefault {
		t.Errorf("described maintenance options %+v", got)
	}

	e.keepAlive(hostB)
	if err := e.leases[hostA].Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The controller moves the instance to B: pending there until B's agent
	// reports it. The same round left the opted-out one alone.
	deadline := time.Now().Add(20 * time.Second)
	for e.hostOf(*moving.InstanceId) != hostB {
		if time.Now().After(deadline) {
			t.Fatalf("instance still on %s", e.hostOf(*moving.InstanceId))
		}
		time.Sleep(20 * time.Millisecond)
	}
	moved := e.describe(*moving.InstanceId)
	if moved.State.Name != types.InstanceStateNamePending || moved.StateReason == nil || *moved.StateReason.Code != "Server.InternalError" {
		t.Errorf("recovered: state %s, reason %+v", moved.State.Name, moved.StateReason)
	}
	if *moved.PrivateIpAddress != *moving.PrivateIpAddress || len(moved.NetworkInterfaces) != 1 ||
		*moved.NetworkInterfaces[0].NetworkInterfaceId != *moving.NetworkInterfaces[0].NetworkInterfaceId ||
		*moved.NetworkInterfaces[0].MacAddress != *moving.NetworkInterfaces[0].MacAddress {
		t.Errorf("recovered with other addresses: %+v, was %+v", moved.NetworkInterfaces, moving.NetworkInterfaces)
	}
	if h := e.hostOf(*staying.InstanceId); h != hostA {
		t.Errorf("opted-out instance moved to %s", h)
	}
	st := must[*ec2.DescribeInstanceStatusOutput](t)(e.cli.DescribeInstanceStatus(c, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{*staying.InstanceId}}))
	if len(st.InstanceStatuses) != 1 || st.InstanceStatuses[0].SystemStatus.Status != types.SummaryStatusImpaired {
		t.Errorf("opted-out instance on the dead host: %+v", st.InstanceStatuses)
	}
	// Its port follows it to B.
	portID := translate.ObjectID(*moving.NetworkInterfaces[0].NetworkInterfaceId, "port")
	for {
		var on string
		e.store.Read(func(r topology.Reader) {
			if p, ok := r.Get(topology.KindPort, portID).(*topology.Port); ok && p != nil {
				on = p.HostID
			}
		})
		if on == hostB {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port of the recovered instance bound to %q", on)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.report(moved)
	e.waitState(*moving.InstanceId, types.InstanceStateNameRunning)
	if n := e.ctl.Recoveries(); n != 1 {
		t.Errorf("%d recoveries counted, want 1", n)
	}
}
