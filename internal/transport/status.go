package transport

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

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
	case errors.Is(err, protocol.ErrConfig):
		code = codes.InvalidArgument
	case errors.Is(err, protocol.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, protocol.ErrTemporary):
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
		kind = protocol.ErrConfig
	case codes.NotFound:
		kind = protocol.ErrNotFound
	case codes.Unavailable:
		kind = protocol.ErrTemporary
	case codes.Canceled:
		kind = context.Canceled
	case codes.DeadlineExceeded:
		kind = context.DeadlineExceeded
	default:
		return errors.New(s.Message())
	}
	return protocol.WithKind(errors.New(s.Message()), kind)
}
