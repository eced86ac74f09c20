package protocol

import "errors"

// Error kinds that keep their identity across the process boundary: a
// connector returns an error wrapping one of them and the engine, in
// another process, gets an error that errors.Is the same sentinel.
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
	cause error
}

func (e *kindError) Error() string   { return e.msg }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.cause} }

// WithKind marks err as being of kind (ErrConfig, ErrNotFound,
// ErrTemporary) without adding the kind's text to its message.
func WithKind(err, kind error) error {
	if err == nil {
		return nil
	}
	return &kindError{msg: err.Error(), kind: kind, cause: err}
}
