package protocol

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error kinds that keep their identity across the process boundary: a
// connector returns an error wrapping one of them and the engine, on the
// other side of gRPC, gets an error that errors.Is the same sentinel.
var (
	// ErrConfig: the configuration is wrong; retrying will not help.
	ErrConfig = errors.New("configuration error")
	// ErrNotFound: a connector, file or object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTemporary: the failure may pass; the operation can be retried.
	ErrTemporary = errors.New("temporary failure")
)

// kindError keeps the message of an error and adds a kind to it.
type kindError struct {
	msg   string
	kind  error
	cause error // nil for errors rebuilt from a gRPC status
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// WithKind marks err as being of kind (ErrConfig, ErrNotFound,
// ErrTemporary) without adding the kind's text to its message.
func WithKind(err, kind error) error {
	if err == nil {
		return nil
	}
	return &kindError{msg: err.Error(), kind: kind, cause: err}
}

// toStatus turns a connector's error into a gRPC status with a code that
// says its kind.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrConfig):
		code = codes.InvalidArgument
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrTemporary):
		code = codes.Unavailable
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Error(code, err.Error())
}

// fromStatus rebuilds an error's kind from a gRPC status.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	var kind error
	switch s.Code() {
	case codes.InvalidArgument:
		kind = ErrConfig
	case codes.NotFound:
		kind = ErrNotFound
	case codes.Unavailable:
		kind = ErrTemporary
	case codes.Canceled:
		kind = context.Canceled
	case codes.DeadlineExceeded:
		kind = context.DeadlineExceeded
	default:
		return errors.New(s.Message())
	}
	return &kindError{msg: s.Message(), kind: kind}
}
