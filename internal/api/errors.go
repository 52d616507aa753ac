package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/topology"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong; Field is empty when no single field is to
// blame.
type ErrorDetail struct {
	Status  int    `json:"status"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// httpError is an error this package raises itself, with its status decided
// where it arises (authentication, routing, request size).
type httpError struct {
	status int
	field  string
	reason string
}

func (e *httpError) Error() string {
	if e.field == "" {
		return e.reason
	}
	return e.field + ": " + e.reason
}

// notFound is the error for an object named in the path that does not exist.
func notFound(what, id string) error {
	return fmt.Errorf("%s %s: %w", what, id, nsdb.ErrNotFound)
}

// classify is the one table from errors to HTTP answers. A 500 hides its
// detail from the client; the caller logs it.
func classify(err error) ErrorDetail {
	var (
		he *httpError
		fe *topology.FieldError
		re *nsdb.RevisionError
		ce *topology.ConflictError
		ve *vpc.Error
	)
	switch {
	case errors.As(err, &he):
		return ErrorDetail{Status: he.status, Field: he.field, Reason: he.reason, Message: err.Error()}
	case errors.As(err, &fe):
		return ErrorDetail{Status: http.StatusBadRequest, Field: fe.Field, Reason: fe.Reason, Message: err.Error()}
	case errors.Is(err, nsdb.ErrNotFound):
		return ErrorDetail{Status: http.StatusNotFound, Reason: err.Error(), Message: err.Error()}
	case errors.As(err, &re):
		reason := fmt.Sprintf("%s is at revision %d, not %d", re.Key, re.Current, re.Want)
		return ErrorDetail{Status: http.StatusConflict, Field: "revision", Reason: reason, Message: "revision: " + reason}
	case errors.As(err, &ce):
		return ErrorDetail{Status: http.StatusConflict, Field: ce.Field, Reason: ce.Reason, Message: err.Error()}
	case errors.As(err, &ve):
		// The EC2 side's validation, reached through the accounts routes.
		return ErrorDetail{Status: http.StatusBadRequest, Reason: ve.Message, Message: err.Error()}
	case errors.Is(err, nsdb.ErrConflict):
		return ErrorDetail{Status: http.StatusConflict, Reason: err.Error(), Message: err.Error()}
	case errors.Is(err, nsdb.ErrUnavailable):
		// Transient: the client may retry. A write answered so may still
		// commit once etcd is back (a timeout is an unknown outcome).
		reason := "the network state database (etcd) is unavailable; retry later"
		return ErrorDetail{Status: http.StatusServiceUnavailable, Reason: reason, Message: err.Error()}
	}
	return ErrorDetail{Status: http.StatusInternalServerError, Reason: "internal server error", Message: "internal server error"}
}

// writeError answers err. It is the only place errors are logged, once.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	d := classify(err)
	if d.Status == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	switch d.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="canopy"`)
	case http.StatusServiceUnavailable:
		s.log.Warn("store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, d.Status, ErrorBody{Error: d})
}
