#!/bin/bash
# Builds a VPC with Debian's awscli against Canopy's EC2 endpoint, reads it
# back with describe calls and filters, then tears it all down.
# Needs: EC2_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_CA_BUNDLE for an https
# endpoint whose CA the system does not trust); AWS=/usr/bin/aws.
set -euo pipefail
AWS=${AWS:-/usr/bin/aws}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} AWS_PAGER="" AWS_CONFIG_FILE=/dev/null
ec2() { "$AWS" --endpoint-url "$EC2_ENDPOINT" --output text ec2 "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { [ "$1" == "$2" ] || fail "$3: got '$1', want '$2'"; }

VPC=$(ec2 create-vpc --cidr-block 10.20.0.0/16 --tag-specifications 'ResourceType=vpc,Tags=[{Key=Name,Value=cli-vpc}]' --query Vpc.VpcId)
ec2 modify-vpc-attribute --vpc-id "$VPC" --enable-dns-hostnames '{"Value":true}'
expect "$(ec2 describe-vpc-attribute --vpc-id "$VPC" --attribute enableDnsHostnames --query EnableDnsHostnames.Value)" True "dns hostnames"
SUB1=$(ec2 create-subnet --vpc-id "$VPC" --cidr-block 10.20.1.0/24 --availability-zone us-east-1a --query Subnet.SubnetId)
SUB2=$(ec2 create-subnet --vpc-id "$VPC" --cidr-block 10.20.2.0/24 --availability-zone us-east-1b --query Subnet.SubnetId)
ec2 modify-subnet-attribute --subnet-id "$SUB1" --map-public-ip-on-launch
IGW=$(ec2 create-internet-gateway --query InternetGateway.InternetGatewayId)
ec2 attach-internet-gateway --internet-gateway-id "$IGW" --vpc-id "$VPC"
RTB=$(ec2 create-route-table --vpc-id "$VPC" --query RouteTable.RouteTableId)
ec2 create-route --route-table-id "$RTB" --destination-cidr-block 0.0.0.0/0 --gateway-id "$IGW" >/dev/null
ASSOC=$(ec2 associate-route-table --route-table-id "$RTB" --subnet-id "$SUB1" --query AssociationId)
SG=$(ec2 create-security-group --vpc-id "$VPC" --group-name web --description "web servers" --query GroupId)
ec2 authorize-security-group-ingress --group-id "$SG" --ip-permissions \
  'IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=0.0.0.0/0,Description=ssh}]' \
  'IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=10.0.0.0/8}]' >/dev/null
ec2 authorize-security-group-ingress --group-id "$SG" --protocol -1 --source-group "$SG" >/dev/null
ACL=$(ec2 create-network-acl --vpc-id "$VPC" --query NetworkAcl.NetworkAclId)
ec2 create-network-acl-entry --network-acl-id "$ACL" --rule-number 100 --protocol tcp --port-range From=443,To=443 --cidr-block 0.0.0.0/0 --rule-action allow --ingress
ec2 create-network-acl-entry --network-acl-id "$ACL" --rule-number 100 --protocol -1 --cidr-block 0.0.0.0/0 --rule-action allow --egress
OLDACLASSOC=$(ec2 describe-network-acls --filters Name=association.subnet-id,Values="$SUB2" --query 'NetworkAcls[0].Associations[?SubnetId==`'"$SUB2"'`].NetworkAclAssociationId')
ACLASSOC=$(ec2 replace-network-acl-association --association-id "$OLDACLASSOC" --network-acl-id "$ACL" --query NewAssociationId)
ENI=$(ec2 create-network-interface --subnet-id "$SUB1" --groups "$SG" --private-ip-address 10.20.1.10 --query NetworkInterface.NetworkInterfaceId)
ec2 assign-private-ip-addresses --network-interface-id "$ENI" --secondary-private-ip-address-count 1 >/dev/null
ALLOC=$(ec2 allocate-address --domain vpc --query AllocationId)
EIPASSOC=$(ec2 associate-address --allocation-id "$ALLOC" --network-interface-id "$ENI" --query AssociationId)
ec2 create-tags --resources "$SUB1" "$SUB2" --tags Key=tier,Value=app

# Read it all back.
expect "$(ec2 describe-vpcs --filters Name=tag:Name,Values=cli-* --query 'Vpcs[].VpcId')" "$VPC" "vpc by tag"
expect "$(ec2 describe-vpcs --filters Name=cidr-block,Values=10.20.0.0/16 Name=is-default,Values=false --query 'Vpcs[].VpcId')" "$VPC" "vpc by cidr"
expect "$(ec2 describe-subnets --filters Name=vpc-id,Values="$VPC" Name=tag:tier,Values=app --query 'length(Subnets)')" 2 "subnets by tag"
expect "$(ec2 describe-subnets --subnet-ids "$SUB1" --query 'Subnets[0].[CidrBlock,MapPublicIpOnLaunch,AvailableIpAddressCount]')" "10.20.1.0/24	True	249" "subnet 1"
expect "$(ec2 describe-internet-gateways --filters Name=attachment.vpc-id,Values="$VPC" --query 'InternetGateways[0].Attachments[0].State')" available "igw"
expect "$(ec2 describe-route-tables --filters Name=association.subnet-id,Values="$SUB1" --query 'RouteTables[0].RouteTableId')" "$RTB" "rtb by subnet"
expect "$(ec2 describe-route-tables --route-table-ids "$RTB" --query 'RouteTables[0].Routes[?DestinationCidrBlock==`0.0.0.0/0`].GatewayId')" "$IGW" "default route"
expect "$(ec2 describe-route-tables --filters Name=vpc-id,Values="$VPC" Name=association.main,Values=true --query 'RouteTables[0].Routes[0].GatewayId')" local "main table"
expect "$(ec2 describe-security-groups --filters Name=group-name,Values=web Name=vpc-id,Values="$VPC" --query 'SecurityGroups[0].GroupId')" "$SG" "sg by name"
expect "$(ec2 describe-security-group-rules --filters Name=group-id,Values="$SG" --query 'length(SecurityGroupRules)')" 4 "sg rules"
expect "$(ec2 describe-security-groups --group-ids "$SG" --query 'SecurityGroups[0].IpPermissions[?FromPort==`22`].IpRanges[0].Description')" ssh "rule description"
expect "$(ec2 describe-network-acls --filters Name=association.subnet-id,Values="$SUB2" --query 'NetworkAcls[0].NetworkAclId')" "$ACL" "acl by subnet"
expect "$(ec2 describe-network-acls --network-acl-ids "$ACL" --query 'length(NetworkAcls[0].Entries)')" 4 "acl entries"
expect "$(ec2 describe-network-interfaces --filters Name=subnet-id,Values="$SUB1" Name=group-id,Values="$SG" --query 'NetworkInterfaces[0].[NetworkInterfaceId,length(PrivateIpAddresses)]')" "$ENI	2" "eni"
expect "$(ec2 describe-addresses --filters Name=association-id,Values="$EIPASSOC" --query 'Addresses[0].[AllocationId,PrivateIpAddress]')" "$ALLOC	10.20.1.10" "eip"
expect "$(ec2 describe-tags --filters Name=resource-id,Values="$SUB2" Name=key,Values=tier --query 'Tags[0].Value')" app "tags"


# Change in place what was made.
ec2 replace-route --route-table-id "$RTB" --destination-cidr-block 0.0.0.0/0 --network-interface-id "$ENI"
expect "$(ec2 describe-route-tables --route-table-ids "$RTB" --query 'RouteTables[0].Routes[?DestinationCidrBlock==`0.0.0.0/0`].NetworkInterfaceId')" "$ENI" "route replaced by one to the eni"
ec2 replace-route --route-table-id "$RTB" --destination-cidr-block 0.0.0.0/0 --gateway-id "$IGW"
expect "$(ec2 describe-route-tables --route-table-ids "$RTB" --query 'RouteTables[0].Routes[?DestinationCidrBlock==`0.0.0.0/0`].[GatewayId,State]')" "$IGW	active" "route replaced back"
RTB2=$(ec2 create-route-table --vpc-id "$VPC" --query RouteTable.RouteTableId)
ASSOC=$(ec2 replace-route-table-association --association-id "$ASSOC" --route-table-id "$RTB2" --query NewAssociationId)
expect "$(ec2 describe-route-tables --filters Name=association.subnet-id,Values="$SUB1" --query 'RouteTables[].[RouteTableId,Associations[0].RouteTableAssociationId]')" "$RTB2	$ASSOC" "subnet moved to the second table"
MAINRTB=$(ec2 describe-route-tables --filters Name=vpc-id,Values="$VPC" Name=association.main,Values=true --query 'RouteTables[0].RouteTableId')
MAINASSOC=$(ec2 describe-route-tables --route-table-ids "$MAINRTB" --query 'RouteTables[0].Associations[?Main].RouteTableAssociationId')
MAINASSOC=$(ec2 replace-route-table-association --association-id "$MAINASSOC" --route-table-id "$RTB" --query NewAssociationId)
expect "$(ec2 describe-route-tables --filters Name=vpc-id,Values="$VPC" Name=association.main,Values=true --query 'RouteTables[].[RouteTableId,Associations[0].Main]')" "$RTB	True" "main association moved"
if ec2 delete-route-table --route-table-id "$RTB" 2>/tmp/ec2cli-err.$$; then fail "deleted the main route table"; fi
grep -q DependencyViolation /tmp/ec2cli-err.$$ || fail "deleting the main table: $(cat /tmp/ec2cli-err.$$)"
MAINASSOC=$(ec2 replace-route-table-association --association-id "$MAINASSOC" --route-table-id "$MAINRTB" --query NewAssociationId)
expect "$(ec2 describe-route-tables --filters Name=vpc-id,Values="$VPC" Name=association.main,Values=true --query 'RouteTables[].[RouteTableId,Associations[0].RouteTableAssociationId]')" "$MAINRTB	$MAINASSOC" "main association moved back"
ec2 replace-network-acl-entry --network-acl-id "$ACL" --rule-number 100 --protocol tcp --port-range From=80,To=80 --cidr-block 10.0.0.0/8 --rule-action deny --ingress
expect "$(ec2 describe-network-acls --network-acl-ids "$ACL" --query 'NetworkAcls[0].Entries[?RuleNumber==`100` && !Egress].[CidrBlock,PortRange.From,PortRange.To,RuleAction]')" "10.0.0.0/8	80	80	deny" "acl entry replaced"
if ec2 replace-network-acl-entry --network-acl-id "$ACL" --rule-number 101 --protocol -1 --cidr-block 0.0.0.0/0 --rule-action allow --ingress 2>/tmp/ec2cli-err.$$; then fail "replaced a rule that is not there"; fi
grep -q InvalidNetworkAclEntry.NotFound /tmp/ec2cli-err.$$ || fail "replacing rule 101: $(cat /tmp/ec2cli-err.$$)"
ec2 modify-network-interface-attribute --network-interface-id "$ENI" --description Value=frontend
ec2 modify-network-interface-attribute --network-interface-id "$ENI" --no-source-dest-check
DEFSG=$(ec2 describe-security-groups --filters Name=vpc-id,Values="$VPC" Name=group-name,Values=default --query 'SecurityGroups[0].GroupId')
ec2 modify-network-interface-attribute --network-interface-id "$ENI" --groups "$DEFSG" "$SG"
expect "$(ec2 describe-network-interfaces --network-interface-ids "$ENI" --query 'NetworkInterfaces[0].[Description,SourceDestCheck,length(Groups)]')" "frontend	False	2" "eni attributes"
SECONDARY=$(ec2 describe-network-interfaces --network-interface-ids "$ENI" --query 'NetworkInterfaces[0].PrivateIpAddresses[?!Primary].PrivateIpAddress')
ec2 unassign-private-ip-addresses --network-interface-id "$ENI" --private-ip-addresses "$SECONDARY"
expect "$(ec2 describe-network-interfaces --network-interface-ids "$ENI" --query 'NetworkInterfaces[0].PrivateIpAddresses[].PrivateIpAddress')" 10.20.1.10 "secondary address unassigned"
ec2 delete-tags --resources "$SUB1" --tags Key=tier
expect "$(ec2 describe-tags --filters Name=key,Values=tier --query 'Tags[].ResourceId')" "$SUB2" "tag deleted from one subnet only"
if ec2 create-key-pair --key-name cli-ppk --key-format ppk 2>/tmp/ec2cli-err.$$; then fail "made a ppk key pair"; fi
grep -q UnsupportedOperation /tmp/ec2cli-err.$$ || fail "ppk key pair: $(cat /tmp/ec2cli-err.$$)"

# Tear it all down.
ec2 disassociate-address --association-id "$EIPASSOC"
ec2 release-address --allocation-id "$ALLOC"
ec2 delete-network-interface --network-interface-id "$ENI"
DEFACL=$(ec2 describe-network-acls --filters Name=vpc-id,Values="$VPC" Name=default,Values=true --query 'NetworkAcls[0].NetworkAclId')
ec2 replace-network-acl-association --association-id "$ACLASSOC" --network-acl-id "$DEFACL" >/dev/null
ec2 delete-network-acl --network-acl-id "$ACL"
ec2 delete-security-group --group-id "$SG" >/dev/null
ec2 disassociate-route-table --association-id "$ASSOC"
ec2 delete-route-table --route-table-id "$RTB2"
ec2 delete-route-table --route-table-id "$RTB"
ec2 detach-internet-gateway --internet-gateway-id "$IGW" --vpc-id "$VPC"
ec2 delete-internet-gateway --internet-gateway-id "$IGW"
ec2 delete-subnet --subnet-id "$SUB1"
ec2 delete-subnet --subnet-id "$SUB2"
ec2 delete-vpc --vpc-id "$VPC"
if ec2 describe-vpcs --vpc-ids "$VPC" 2>/tmp/ec2cli-err.$$; then fail "deleted VPC still described"; fi
grep -q InvalidVpcID.NotFound /tmp/ec2cli-err.$$ || fail "deleted VPC: $(cat /tmp/ec2cli-err.$$)"
rm -f /tmp/ec2cli-err.$$
expect "$(ec2 describe-vpcs --query 'length(Vpcs)')" 1 "only the default VPC left"
echo "ec2cli: OK"
