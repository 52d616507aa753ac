package ec2_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestModifyInstanceAttribute: DisableApiTermination and DisableApiStop,
// set by ModifyInstanceAttribute (in both of the SDK's forms: the
// attribute's own field, and Attribute + Value as `aws ec2
// modify-instance-attribute --attribute … --value …` sends it), refuse
// TerminateInstances and StopInstances with OperationNotPermitted and leave
// the instance as it was; cleared, the same calls work.
// InstanceInitiatedShutdownBehavior and MetadataOptions read back as set.
func TestModifyInstanceAttribute(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "us-east-1a", true)
	c := ctx(t)
	out := must[*ec2.RunInstancesOutput](t)(e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub),
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorStop,
		MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpEndpoint: types.InstanceMetadataEndpointStateDisabled,
			HttpPutResponseHopLimit: aws.Int32(3)}}))
	id := *out.Instances[0].InstanceId
	if md := out.Instances[0].MetadataOptions; md == nil || md.HttpEndpoint != types.InstanceMetadataEndpointStateDisabled || aws.ToInt32(md.HttpPutResponseHopLimit) != 3 || md.HttpTokens != types.HttpTokensStateOptional {
		t.Errorf("RunInstances answered metadata options %+v, want endpoint disabled, hop limit 3, tokens optional", md)
	}
	if md := e.describe(id).MetadataOptions; md == nil || md.HttpEndpoint != types.InstanceMetadataEndpointStateDisabled || aws.ToInt32(md.HttpPutResponseHopLimit) != 3 {
		t.Errorf("DescribeInstances: metadata options %+v", md)
	}
	for _, bad := range []*types.InstanceMetadataOptionsRequest{
		{HttpPutResponseHopLimit: aws.Int32(65)}, {HttpPutResponseHopLimit: aws.Int32(0)}, {HttpEndpoint: "off"},
	} {
		if _, err := e.run(&ec2.RunInstancesInput{SubnetId: aws.String(e.sub), MetadataOptions: bad}); code(err) != "InvalidParameterValue" {
			t.Errorf("metadata options %+v: %v, want InvalidParameterValue", bad, err)
		}
	}
	inst := e.describe(id)
	e.report(inst)
	e.waitState(id, types.InstanceStateNameRunning)

	attr := func(name types.InstanceAttributeName) *ec2.DescribeInstanceAttributeOutput {
		t.Helper()
		return must[*ec2.DescribeInstanceAttributeOutput](t)(e.cli.DescribeInstanceAttribute(c, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: name}))
	}
	if got := aws.ToString(attr(types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value); got != "stop" {
		t.Errorf("shutdown behaviour at launch: %q, want stop", got)
	}
	must[*ec2.ModifyInstanceAttributeOutput](t)(e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String("terminate")}}))
	if got := aws.ToString(attr(types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value); got != "terminate" {
		t.Errorf("shutdown behaviour after the change: %q, want terminate", got)
	}
	if _, err := e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		InstanceInitiatedShutdownBehavior: &types.AttributeValue{Value: aws.String("hibernate")}}); code(err) != "InvalidParameterValue" {
		t.Errorf("shutdown behaviour hibernate: %v, want InvalidParameterValue", err)
	}
	// The Attribute + Value form.
	must[*ec2.ModifyInstanceAttributeOutput](t)(e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		Attribute: types.InstanceAttributeNameInstanceInitiatedShutdownBehavior, Value: aws.String("stop")}))
	if got := aws.ToString(attr(types.InstanceAttributeNameInstanceInitiatedShutdownBehavior).InstanceInitiatedShutdownBehavior.Value); got != "stop" {
		t.Errorf("shutdown behaviour set by Attribute+Value: %q, want stop", got)
	}
	if _, err := e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		Attribute: types.InstanceAttributeNameKernel, Value: aws.String("aki-12345678")}); code(err) != "UnsupportedOperation" {
		t.Errorf("Attribute kernel: %v, want UnsupportedOperation", err)
	}

	// Protection on: terminate and stop are refused, and change nothing.
	must[*ec2.ModifyInstanceAttributeOutput](t)(e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}}))
	must[*ec2.ModifyInstanceAttributeOutput](t)(e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		Attribute: types.InstanceAttributeNameDisableApiStop, Value: aws.String("true")}))
	if !aws.ToBool(attr(types.InstanceAttributeNameDisableApiTermination).DisableApiTermination.Value) || !aws.ToBool(attr(types.InstanceAttributeNameDisableApiStop).DisableApiStop.Value) {
		t.Fatal("protection attributes do not read true")
	}
	before := e.dump()
	if _, err := e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); code(err) != "OperationNotPermitted" {
		t.Errorf("terminate with DisableApiTermination: %v, want OperationNotPermitted", err)
	}
	if _, err := e.cli.StopInstances(c, &ec2.StopInstancesInput{InstanceIds: []string{id}}); code(err) != "OperationNotPermitted" {
		t.Errorf("stop with DisableApiStop: %v, want OperationNotPermitted", err)
	}
	if after := e.dump(); after != before {
		t.Errorf("a refused terminate or stop changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if s := e.describe(id).State.Name; s != types.InstanceStateNameRunning {
		t.Errorf("after the refused calls the instance is %s", s)
	}
	// Reboot is neither a stop nor a termination.
	must[*ec2.RebootInstancesOutput](t)(e.cli.RebootInstances(c, &ec2.RebootInstancesInput{InstanceIds: []string{id}}))

	// Protection off: stop, then (from stopped) terminate.
	must[*ec2.ModifyInstanceAttributeOutput](t)(e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		DisableApiStop: &types.AttributeBooleanValue{Value: aws.Bool(false)}}))
	must[*ec2.StopInstancesOutput](t)(e.cli.StopInstances(c, &ec2.StopInstancesInput{InstanceIds: []string{id}}))
	e.unreport(id)
	e.waitState(id, types.InstanceStateNameStopped)

	// DescribeInstanceStatus: a stopped instance only with
	// IncludeAllInstances, as not-applicable.
	st := must[*ec2.DescribeInstanceStatusOutput](t)(e.cli.DescribeInstanceStatus(c, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}}))
	if len(st.InstanceStatuses) != 0 {
		t.Errorf("a stopped instance is listed without IncludeAllInstances: %+v", st.InstanceStatuses)
	}
	st = must[*ec2.DescribeInstanceStatusOutput](t)(e.cli.DescribeInstanceStatus(c, &ec2.DescribeInstanceStatusInput{IncludeAllInstances: aws.Bool(true)}))
	if len(st.InstanceStatuses) != 1 {
		t.Fatalf("IncludeAllInstances: %d statuses, want 1", len(st.InstanceStatuses))
	}
	if s := st.InstanceStatuses[0]; aws.ToString(s.InstanceId) != id || s.InstanceState.Name != types.InstanceStateNameStopped ||
		s.InstanceStatus.Status != types.SummaryStatusNotApplicable || s.SystemStatus.Status != types.SummaryStatusNotApplicable {
		t.Errorf("stopped instance's status: %s %s system %s instance %s", aws.ToString(s.InstanceId), s.InstanceState.Name, s.SystemStatus.Status, s.InstanceStatus.Status)
	}

	if _, err := e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); code(err) != "OperationNotPermitted" {
		t.Errorf("terminate a stopped instance with DisableApiTermination: %v, want OperationNotPermitted", err)
	}
	must[*ec2.ModifyInstanceAttributeOutput](t)(e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		Attribute: types.InstanceAttributeNameDisableApiTermination, Value: aws.String("false")}))
	// ModifyNetworkInterfaceAttribute DeleteOnTermination=false: the
	// primary interface outlives the instance, detached and available,
	// with its address.
	ni := e.describe(id).NetworkInterfaces[0]
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(e.cli.ModifyNetworkInterfaceAttribute(c, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: ni.NetworkInterfaceId,
		Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: ni.Attachment.AttachmentId, DeleteOnTermination: aws.Bool(false)}}))
	if got := e.describe(id).NetworkInterfaces[0].Attachment.DeleteOnTermination; aws.ToBool(got) {
		t.Error("DeleteOnTermination still true after ModifyNetworkInterfaceAttribute")
	}
	must[*ec2.TerminateInstancesOutput](t)(e.cli.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}))
	e.waitState(id, types.InstanceStateNameTerminated)
	enis := must[*ec2.DescribeNetworkInterfacesOutput](t)(e.cli.DescribeNetworkInterfaces(c, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*ni.NetworkInterfaceId}}))
	if len(enis.NetworkInterfaces) != 1 || enis.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusAvailable ||
		aws.ToString(enis.NetworkInterfaces[0].PrivateIpAddress) != aws.ToString(ni.PrivateIpAddress) {
		t.Errorf("the kept interface after termination: %+v", enis.NetworkInterfaces)
	}
	if _, err := e.cli.ModifyInstanceAttribute(c, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id),
		DisableApiTermination: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); code(err) != "IncorrectInstanceState" {
		t.Errorf("modifying a terminated instance: %v, want IncorrectInstanceState", err)
	}
}

// TestRunInstancesWithoutDefaultVpc: with no subnet given and no default
// VPC, RunInstances answers VPCIdNotSpecified and makes nothing.
func TestRunInstancesWithoutDefaultVpc(t *testing.T) {
	e := newInstEnv(t, nil)
	e.host(hostA, "", true)
	c := ctx(t)
	bob, _ := e.account("bob")
	v := must[*ec2.DescribeVpcsOutput](t)(bob.DescribeVpcs(c, &ec2.DescribeVpcsInput{}))
	if len(v.Vpcs) != 1 || !aws.ToBool(v.Vpcs[0].IsDefault) {
		t.Fatalf("bob's VPCs: %+v", v.Vpcs)
	}
	def := v.Vpcs[0].VpcId
	// Without a subnet it goes to the default subnet of the zone ...
	r := must[*ec2.RunInstancesOutput](t)(bob.RunInstances(c, &ec2.RunInstancesInput{ImageId: aws.String(image), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}))
	if aws.ToString(r.Instances[0].VpcId) != aws.ToString(def) {
		t.Errorf("instance without a subnet is in %s, want the default VPC %s", aws.ToString(r.Instances[0].VpcId), aws.ToString(def))
	}
	must[*ec2.TerminateInstancesOutput](t)(bob.TerminateInstances(c, &ec2.TerminateInstancesInput{InstanceIds: []string{*r.Instances[0].InstanceId}}))
	e.waitStateOf(bob, *r.Instances[0].InstanceId, types.InstanceStateNameTerminated)
	// ... and with the default VPC gone, nowhere.
	subs := must[*ec2.DescribeSubnetsOutput](t)(bob.DescribeSubnets(c, &ec2.DescribeSubnetsInput{}))
	for _, s := range subs.Subnets {
		must[*ec2.DeleteSubnetOutput](t)(bob.DeleteSubnet(c, &ec2.DeleteSubnetInput{SubnetId: s.SubnetId}))
	}
	igws := must[*ec2.DescribeInternetGatewaysOutput](t)(bob.DescribeInternetGateways(c, &ec2.DescribeInternetGatewaysInput{}))
	for _, g := range igws.InternetGateways {
		must[*ec2.DetachInternetGatewayOutput](t)(bob.DetachInternetGateway(c, &ec2.DetachInternetGatewayInput{InternetGatewayId: g.InternetGatewayId, VpcId: def}))
		must[*ec2.DeleteInternetGatewayOutput](t)(bob.DeleteInternetGateway(c, &ec2.DeleteInternetGatewayInput{InternetGatewayId: g.InternetGatewayId}))
	}
	must[*ec2.DeleteVpcOutput](t)(bob.DeleteVpc(c, &ec2.DeleteVpcInput{VpcId: def}))
	before := e.dump()
	_, err := bob.RunInstances(c, &ec2.RunInstancesInput{ImageId: aws.String(image), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if code(err) != "VPCIdNotSpecified" {
		t.Errorf("RunInstances with no subnet and no default VPC: %v, want VPCIdNotSpecified", err)
	}
	if after := e.dump(); after != before {
		t.Errorf("the refused RunInstances changed the store")
	}
	// Alice, who still has hers, is not affected.
	if _, err := e.run(&ec2.RunInstancesInput{}); err != nil {
		t.Errorf("alice without a subnet: %v", err)
	}
}

// waitStateOf is waitState for another account's client.
func (e *instEnv) waitStateOf(cli *ec2.Client, id string, want types.InstanceStateName) {
	e.t.Helper()
	saved := e.cli
	e.cli = cli
	defer func() { e.cli = saved }()
	e.waitState(id, want)
}
