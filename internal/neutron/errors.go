package neutron

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// Error is a Neutron error: its HTTP status and NeutronError type.
type Error struct {
	Status  int
	Type    string
	Message string
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

func badRequest(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, "HTTPBadRequest", fmt.Sprintf(format, args...)}
}

func invalidInput(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, "InvalidInput", "Invalid input for operation: " + fmt.Sprintf(format, args...)}
}

func notFound(typ, kind, id string) *Error {
	return &Error{http.StatusNotFound, typ, fmt.Sprintf("%s %s could not be found.", kind, id)}
}

func conflict(typ, format string, args ...any) *Error {
	return &Error{http.StatusConflict, typ, fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) *Error {
	return &Error{http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf(format, args...)}
}

// vpcErrors maps the EC2 codes of the shared VPC checks to Neutron's
// answers: the one table between the two vocabularies.
var vpcErrors = map[vpc.Code]struct {
	status int
	typ    string
}{
	vpc.CodeInvalidParameterValue:              {http.StatusBadRequest, "InvalidIpForSubnet"},
	vpc.CodeInvalidIPAddressInUse:              {http.StatusConflict, "IpAddressAlreadyAllocated"},
	vpc.CodeInsufficientFreeAddresses:          {http.StatusConflict, "IpAddressGenerationFailure"},
	vpc.CodePrivateIPLimitExceeded:             {http.StatusBadRequest, "InvalidInput"},
	vpc.CodeDependencyViolation:                {http.StatusConflict, "InUse"},
	vpc.CodeVpcLimitExceeded:                   {http.StatusConflict, "OverQuota"},
	vpc.CodeInvalidPermissionDuplicate:         {http.StatusConflict, "SecurityGroupRuleExists"},
	vpc.CodeRulesPerSecurityGroupLimitExceeded: {http.StatusConflict, "OverQuota"},
}

// toError turns any error into the answer to send.
func toError(err error) *Error {
	var ne *Error
	if errors.As(err, &ne) {
		return ne
	}
	var ve *vpc.Error
	if errors.As(err, &ve) {
		if m, ok := vpcErrors[ve.Code]; ok {
			return &Error{m.status, m.typ, ve.Message}
		}
		if strings.HasSuffix(string(ve.Code), ".NotFound") {
			return &Error{http.StatusNotFound, "NotFound", ve.Message}
		}
		return &Error{http.StatusBadRequest, "BadRequest", ve.Message}
	}
	if errors.Is(err, nsdb.ErrUnavailable) {
		return &Error{http.StatusServiceUnavailable, "HTTPServiceUnavailable", "The network state database is unavailable; retry."}
	}
	return &Error{http.StatusInternalServerError, "InternalServerError", "Request failed: internal server error while processing your request."}
}

// asVPC is errors.As for the shared checks' errors.
func asVPC(err error, ve **vpc.Error) bool { return errors.As(err, ve) }
