package vpc

// Code is an EC2 error code as clients see it in <Code>. Every code Canopy
// answers is declared here, once; internal/ec2/errors.go maps them to HTTP
// statuses (a code it does not list is a client error, 400). test/arch
// fails when a code is spelled as a string literal anywhere else.
type Code string

// Request and parameter errors.
const (
	CodeInvalidParameterValue       Code = "InvalidParameterValue"
	CodeInvalidParameterCombination Code = "InvalidParameterCombination"
	CodeMissingParameter            Code = "MissingParameter"
	CodeInvalidAction               Code = "InvalidAction"
	CodeUnsupportedOperation        Code = "UnsupportedOperation"
	CodeDryRunOperation             Code = "DryRunOperation"
	CodeInvalidPaginationToken      Code = "InvalidPaginationToken"
	CodeInvalidID                   Code = "InvalidID"
	CodeVPCIDNotSpecified           Code = "VPCIdNotSpecified"
)

// Authentication errors (SigV4).
const (
	CodeAuthFailure                Code = "AuthFailure"
	CodeSignatureDoesNotMatch      Code = "SignatureDoesNotMatch"
	CodeRequestExpired             Code = "RequestExpired"
	CodeMissingAuthenticationToken Code = "MissingAuthenticationToken"
)

// Server errors.
const (
	CodeInternalError      Code = "InternalError"
	CodeServiceUnavailable Code = "ServiceUnavailable"
)

// Ids that are malformed or name nothing (see IDKind).
const (
	CodeInvalidVpcIDNotFound                Code = "InvalidVpcID.NotFound"
	CodeInvalidVpcIDMalformed               Code = "InvalidVpcID.Malformed"
	CodeInvalidSubnetIDNotFound             Code = "InvalidSubnetID.NotFound"
	CodeInvalidSubnetIDMalformed            Code = "InvalidSubnetID.Malformed"
	CodeInvalidInternetGatewayIDNotFound    Code = "InvalidInternetGatewayID.NotFound"
	CodeInvalidInternetGatewayIDMalformed   Code = "InvalidInternetGatewayID.Malformed"
	CodeInvalidRouteTableIDNotFound         Code = "InvalidRouteTableID.NotFound"
	CodeInvalidRouteTableIDMalformed        Code = "InvalidRouteTableID.Malformed"
	CodeInvalidAssociationIDNotFound        Code = "InvalidAssociationID.NotFound"
	CodeInvalidAssociationIDMalformed       Code = "InvalidAssociationID.Malformed"
	CodeInvalidGroupNotFound                Code = "InvalidGroup.NotFound"
	CodeInvalidGroupIDMalformed             Code = "InvalidGroupId.Malformed"
	CodeInvalidSecurityGroupRuleIDNotFound  Code = "InvalidSecurityGroupRuleId.NotFound"
	CodeInvalidSecurityGroupRuleIDMalformed Code = "InvalidSecurityGroupRuleId.Malformed"
	CodeInvalidNetworkACLIDNotFound         Code = "InvalidNetworkAclID.NotFound"
	CodeInvalidNetworkACLIDMalformed        Code = "InvalidNetworkAclID.Malformed"
	CodeInvalidNetworkInterfaceIDNotFound   Code = "InvalidNetworkInterfaceID.NotFound"
	CodeInvalidNetworkInterfaceIDMalformed  Code = "InvalidNetworkInterfaceID.Malformed"
	CodeInvalidAttachmentIDNotFound         Code = "InvalidAttachmentID.NotFound"
	CodeInvalidAttachmentIDMalformed        Code = "InvalidAttachmentID.Malformed"
	CodeInvalidAllocationIDNotFound         Code = "InvalidAllocationID.NotFound"
	CodeInvalidAllocationIDMalformed        Code = "InvalidAllocationID.Malformed"
	CodeNatGatewayNotFound                  Code = "NatGatewayNotFound"
	CodeNatGatewayMalformed                 Code = "NatGatewayMalformed"
	CodeInvalidDhcpOptionIDNotFound         Code = "InvalidDhcpOptionID.NotFound"
	CodeInvalidDhcpOptionsIDMalformed       Code = "InvalidDhcpOptionsId.Malformed"
	CodeInvalidInstanceIDNotFound           Code = "InvalidInstanceID.NotFound"
	CodeInvalidInstanceIDMalformed          Code = "InvalidInstanceID.Malformed"
	CodeInvalidReservationIDNotFound        Code = "InvalidReservationID.NotFound"
	CodeInvalidReservationIDMalformed       Code = "InvalidReservationID.Malformed"
	CodeInvalidAMIIDNotFound                Code = "InvalidAMIID.NotFound"
	CodeInvalidAMIIDMalformed               Code = "InvalidAMIID.Malformed"
	CodeInvalidVolumeNotFound               Code = "InvalidVolume.NotFound"
	CodeInvalidVolumeIDMalformed            Code = "InvalidVolumeID.Malformed"
	CodeInvalidGatewayIDNotFound            Code = "InvalidGatewayID.NotFound"
	CodeInvalidAddressNotFound              Code = "InvalidAddress.NotFound"
	CodeInvalidInstanceID                   Code = "InvalidInstanceID"
	CodeInvalidInstanceType                 Code = "InvalidInstanceType"
	CodeIncorrectInstanceState              Code = "IncorrectInstanceState"
	CodeUnsupportedHibernationConfiguration Code = "UnsupportedHibernationConfiguration"
	CodeInsufficientInstanceCapacity        Code = "InsufficientInstanceCapacity"
	CodeInsufficientAddressCapacity         Code = "InsufficientAddressCapacity"
	CodeInvalidKeyPairNotFound              Code = "InvalidKeyPair.NotFound"
	CodeInvalidKeyPairMalformed             Code = "InvalidKeyPair.Malformed"
	CodeInvalidKeyPairDuplicate             Code = "InvalidKeyPair.Duplicate"
	CodeInvalidKeyFormat                    Code = "InvalidKey.Format"
)

// Conflicts with the state of the VPC.
const (
	CodeInvalidVpcRange            Code = "InvalidVpc.Range"
	CodeInvalidSubnetRange         Code = "InvalidSubnet.Range"
	CodeInvalidSubnetConflict      Code = "InvalidSubnet.Conflict"
	CodeInvalidIPAddressInUse      Code = "InvalidIPAddress.InUse"
	CodeInsufficientFreeAddresses  Code = "InsufficientFreeAddressesInSubnet"
	CodeDependencyViolation        Code = "DependencyViolation"
	CodeInvalidPermissionDuplicate Code = "InvalidPermission.Duplicate"
	CodeInvalidPermissionNotFound  Code = "InvalidPermission.NotFound"
	CodeInvalidGroupDuplicate      Code = "InvalidGroup.Duplicate"
	CodeCannotDelete               Code = "CannotDelete"
	CodeRouteAlreadyExists         Code = "RouteAlreadyExists"
	CodeInvalidRouteNotFound       Code = "InvalidRoute.NotFound"
	CodeNetworkACLEntryExists      Code = "NetworkAclEntryAlreadyExists"
	CodeNetworkACLEntryNotFound    Code = "InvalidNetworkAclEntry.NotFound"
	CodeResourceAlreadyAssociated  Code = "Resource.AlreadyAssociated"
	CodeGatewayNotAttached         Code = "Gateway.NotAttached"
	CodeInvalidNetworkInterfaceUse Code = "InvalidNetworkInterface.InUse"
	CodeOperationNotPermitted      Code = "OperationNotPermitted"
	CodeDefaultVpcAlreadyExists    Code = "DefaultVpcAlreadyExists"
)

// Limits.
const (
	CodeVpcLimitExceeded                        Code = "VpcLimitExceeded"
	CodeSubnetLimitExceeded                     Code = "SubnetLimitExceeded"
	CodeRouteTableLimitExceeded                 Code = "RouteTableLimitExceeded"
	CodeRouteLimitExceeded                      Code = "RouteLimitExceeded"
	CodeSecurityGroupLimitExceeded              Code = "SecurityGroupLimitExceeded"
	CodeRulesPerSecurityGroupLimitExceeded      Code = "RulesPerSecurityGroupLimitExceeded"
	CodeSecurityGroupsPerInterfaceLimitExceeded Code = "SecurityGroupsPerInterfaceLimitExceeded"
	CodeNetworkACLLimitExceeded                 Code = "NetworkAclLimitExceeded"
	CodeNetworkACLEntryLimitExceeded            Code = "NetworkAclEntryLimitExceeded"
	CodeAddressLimitExceeded                    Code = "AddressLimitExceeded"
	CodeNatGatewayLimitExceeded                 Code = "NatGatewayLimitExceeded"
	CodeInternetGatewayLimitExceeded            Code = "InternetGatewayLimitExceeded"
	CodePrivateIPLimitExceeded                  Code = "PrivateIpAddressLimitExceeded"
	CodeInstanceLimitExceeded                   Code = "InstanceLimitExceeded"
	CodeTagLimitExceeded                        Code = "TagLimitExceeded"
)
