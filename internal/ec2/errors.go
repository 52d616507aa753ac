package ec2

import (
	"errors"
	"net/http"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// httpStatus is the one table from EC2 error codes (declared in package vpc)
// to HTTP statuses, for EC2 and for STS, which answers an authentication
// failure with 403 where EC2 says 401. A code not in it is a client error:
// 400 on both.
var httpStatus = map[vpc.Code]struct{ ec2, sts int }{
	vpc.CodeDryRunOperation:            {http.StatusPreconditionFailed, http.StatusPreconditionFailed},
	vpc.CodeAuthFailure:                {http.StatusUnauthorized, http.StatusForbidden},
	vpc.CodeSignatureDoesNotMatch:      {http.StatusUnauthorized, http.StatusForbidden},
	vpc.CodeRequestExpired:             {http.StatusUnauthorized, http.StatusForbidden},
	vpc.CodeMissingAuthenticationToken: {http.StatusUnauthorized, http.StatusForbidden},
	vpc.CodeInternalError:              {http.StatusInternalServerError, http.StatusInternalServerError},
	vpc.CodeServiceUnavailable:         {http.StatusServiceUnavailable, http.StatusServiceUnavailable},
}

// statusOf is code's HTTP status on EC2 (sts false) or STS.
func statusOf(code vpc.Code, sts bool) int {
	st, ok := httpStatus[code]
	switch {
	case !ok:
		return http.StatusBadRequest
	case sts:
		return st.sts
	}
	return st.ec2
}

// writeError answers err: a *vpc.Error with its code, nsdb.ErrUnavailable
// (no etcd quorum, or no answer in time) as ServiceUnavailable, anything else
// as InternalError (logged once here); httpStatus gives the HTTP status.
func (s *Server) writeError(w http.ResponseWriter, reqID string, sts bool, err error) {
	var ve *vpc.Error
	var code vpc.Code
	var msg string
	switch {
	case errors.As(err, &ve):
		code, msg = ve.Code, ve.Message
	case errors.Is(err, nsdb.ErrUnavailable):
		code, msg = vpc.CodeServiceUnavailable, "The service is unavailable: its network state database (etcd) did not answer. Please retry."
		s.log.Warn("ec2: store unavailable", "request_id", reqID, "err", err)
	default:
		code, msg = vpc.CodeInternalError, "An internal error has occurred."
		s.log.Error("ec2: internal error", "request_id", reqID, "err", err)
	}
	status := statusOf(code, sts)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	if sts {
		_, _ = w.Write(stsErrorDocument(code, msg, reqID))
		return
	}
	_, _ = w.Write(errorDocument(code, msg, reqID))
}
