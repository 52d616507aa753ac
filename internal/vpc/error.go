package vpc

import "fmt"

// Error is a client error with the EC2 error code AWS answers for it. The
// EC2 server renders it as <Response><Errors><Error><Code>… with the HTTP
// status its one table (internal/ec2/errors.go) gives the code.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is makes errors.Is match any *Error with the same code, so callers can
// test errors.Is(err, &vpc.Error{Code: vpc.CodeDependencyViolation}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
