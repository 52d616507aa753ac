package vpc

import "fmt"

// Error is a client error with the EC2 error code AWS answers for it. The
// EC2 server renders it as <Response><Errors><Error><Code>… with HTTP 400.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is makes errors.Is match any *Error with the same code, so callers can
// test errors.Is(err, &vpc.Error{Code: vpc.CodeDependencyViolation}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// EC2 error codes used by the validation in this package.
const (
	CodeInvalidParameterValue       = "InvalidParameterValue"
	CodeInvalidParameterCombination = "InvalidParameterCombination"
	CodeMissingParameter            = "MissingParameter"
	CodeInvalidVpcRange             = "InvalidVpc.Range"
	CodeInvalidSubnetRange          = "InvalidSubnet.Range"
	CodeInvalidSubnetConflict       = "InvalidSubnet.Conflict"
	CodeInvalidIPAddressInUse       = "InvalidIPAddress.InUse"
	CodeInsufficientFreeAddresses   = "InsufficientFreeAddressesInSubnet"
	CodeDependencyViolation         = "DependencyViolation"
	CodeInvalidPermissionDuplicate  = "InvalidPermission.Duplicate"
	CodeInvalidPermissionNotFound   = "InvalidPermission.NotFound"
	CodeInvalidGroupDuplicate       = "InvalidGroup.Duplicate"
	CodeCannotDelete                = "CannotDelete"
	CodeRouteAlreadyExists          = "RouteAlreadyExists"
	CodeInvalidRouteNotFound        = "InvalidRoute.NotFound"
	CodeNetworkACLEntryExists       = "NetworkAclEntryAlreadyExists"
	CodeNetworkACLEntryNotFound     = "InvalidNetworkAclEntry.NotFound"
	CodeResourceAlreadyAssociated   = "Resource.AlreadyAssociated"
	CodeGatewayNotAttached          = "Gateway.NotAttached"
	CodeInvalidNetworkInterfaceUse  = "InvalidNetworkInterface.InUse"
	CodeOperationNotPermitted       = "OperationNotPermitted"

	CodeVpcLimitExceeded                        = "VpcLimitExceeded"
	CodeSubnetLimitExceeded                     = "SubnetLimitExceeded"
	CodeRouteTableLimitExceeded                 = "RouteTableLimitExceeded"
	CodeRouteLimitExceeded                      = "RouteLimitExceeded"
	CodeSecurityGroupLimitExceeded              = "SecurityGroupLimitExceeded"
	CodeRulesPerSecurityGroupLimitExceeded      = "RulesPerSecurityGroupLimitExceeded"
	CodeSecurityGroupsPerInterfaceLimitExceeded = "SecurityGroupsPerInterfaceLimitExceeded"
	CodeNetworkACLLimitExceeded                 = "NetworkAclLimitExceeded"
	CodeNetworkACLEntryLimitExceeded            = "NetworkAclEntryLimitExceeded"
	CodeAddressLimitExceeded                    = "AddressLimitExceeded"
	CodeNatGatewayLimitExceeded                 = "NatGatewayLimitExceeded"
	CodeInternetGatewayLimitExceeded            = "InternetGatewayLimitExceeded"
	CodePrivateIPLimitExceeded                  = "PrivateIpAddressLimitExceeded"
)
