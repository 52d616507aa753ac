package ec2

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/canopy-sdn/canopy/internal/nsdb"
	"github.com/canopy-sdn/canopy/internal/vpc"
)

// TestWriteError: the one table from error to code and HTTP status, for EC2
// and for STS (which answers authentication failures with 403).
func TestWriteError(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	unavailable := fmt.Errorf("reading access key: %w", fmt.Errorf("%w: context deadline exceeded", nsdb.ErrUnavailable))
	for _, tc := range []struct {
		err    error
		sts    bool
		status int
		code   string
	}{
		{&vpc.Error{Code: vpc.CodeInvalidParameterValue, Message: "bad"}, false, 400, "InvalidParameterValue"},
		{errDryRun, false, 412, "DryRunOperation"},
		{authFailure("no"), false, 401, "AuthFailure"},
		{authFailure("no"), true, 403, "AuthFailure"},
		{unavailable, false, 503, "ServiceUnavailable"},
		{unavailable, true, 503, "ServiceUnavailable"},
		{errors.New("boom"), false, 500, "InternalError"},
	} {
		w := httptest.NewRecorder()
		s.writeError(w, "req", tc.sts, tc.err)
		body := w.Body.String()
		if w.Code != tc.status || !strings.Contains(body, "<Code>"+tc.code+"</Code>") {
			t.Errorf("%v (sts %v): %d %s, want %d %s", tc.err, tc.sts, w.Code, body, tc.status, tc.code)
		}
		if (w.Code == http.StatusServiceUnavailable) != (w.Header().Get("Retry-After") != "") {
			t.Errorf("%v: Retry-After %q with status %d", tc.err, w.Header().Get("Retry-After"), w.Code)
		}
	}
}
