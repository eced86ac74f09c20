package wasmhost

import (
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// ErrLimit is wrapped by the error of a call that went past one of an
// instance's Limits. The message names the limit and its value, for example
// "limit exceeded: time limit of 10s per call". Test with errors.Is.
var ErrLimit = errors.New("limit exceeded")

// Limits bound what one instance of a rule may use. A zero field takes its
// default (DefaultLimits). Past a limit the call fails with an error that
// wraps ErrLimit: an error of that batch, never a hang or a crash of the
// engine.
type Limits struct {
	// MemoryPages caps the instance's linear memory, in 64 KiB pages. A
	// module whose memory starts larger is refused by NewInstance; a
	// memory.grow past it returns -1 to the guest, and if the call then
	// fails, the error is a memory limit error.
	MemoryPages uint32
	// Timeout caps the wall time of one call into the guest (vigie_eval,
	// and likewise _initialize, vigie_init and each vigie_alloc). The
	// instance is closed when it expires (wazero's CloseOnContextDone) and
	// transparently re-instantiated before its next call.
	Timeout time.Duration
	// MaxOutputBytes caps the bytes of output of one batch (validity
	// bitmaps, values and utf8 offsets of every output column), checked
	// before anything is copied out of the guest.
	MaxOutputBytes int64
	// MaxLogBytes caps the bytes a rule may log during one cycle: vigie.log
	// messages plus stdout and stderr. The call that goes past it is
	// stopped.
	MaxLogBytes int64
}

// Default limits; see DefaultLimits.
const (
	DefaultMemoryPages    = 4096 // 256 MiB
	DefaultTimeout        = 10 * time.Second
	DefaultMaxOutputBytes = 256 << 20 // 256 MiB
	DefaultMaxLogBytes    = 64 << 10  // 64 KiB
)

// DefaultLimits returns the limits used for zero fields: 4096 pages
// (256 MiB) of memory, 10 s per call, 256 MiB of output per batch and
// 64 KiB of log per cycle. They leave room for 64K-row batches of dozens of
// columns while stopping runaway rules quickly.
func DefaultLimits() Limits {
	return Limits{
		MemoryPages:    DefaultMemoryPages,
		Timeout:        DefaultTimeout,
		MaxOutputBytes: DefaultMaxOutputBytes,
		MaxLogBytes:    DefaultMaxLogBytes,
	}
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxLogBytes == 0 {
		l.MaxLogBytes = d.MaxLogBytes
	}
	return l
}

const pageSize = 64 << 10

func (l Limits) memoryError() error {
	return fmt.Errorf("%w: memory limit of %d pages (%s)", ErrLimit, l.MemoryPages, byteSize(uint64(l.MemoryPages)*pageSize))
}

func (l Limits) timeError() error {
	return fmt.Errorf("%w: time limit of %s per call", ErrLimit, l.Timeout)
}

func (l Limits) outputError(n int64) error {
	return fmt.Errorf("%w: output limit of %d bytes per batch (the rule produced %d bytes)", ErrLimit, l.MaxOutputBytes, n)
}

func (l Limits) logError() error {
	return fmt.Errorf("%w: log limit of %d bytes per batch", ErrLimit, l.MaxLogBytes)
}

func byteSize(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// linearMemory backs one instance's linear memory (wazero's experimental
// MemoryAllocator), refusing to grow past limit bytes. wazero's own memory
// limit is per runtime; this one is per instance, so that modules with
// different limits share one runtime and one compilation cache.
//
// Where the platform has mmap (memory_unix.go), the memory is one mapping
// reserved up front, off the Go heap: it grows in place (no copy, the same
// address), only the pages the guest touches are resident, and it goes back
// to the system when the instance closes rather than at some later garbage
// collection. The garbage collector neither counts it nor paces itself by
// it, so N instances of a module whose memory grew to M bytes cost N x M,
// not up to twice that. Elsewhere it is a Go slice (memory_other.go).
type linearMemory struct {
	buf    []byte // the whole reservation (mmap) or the slice grown so far
	size   uint64 // bytes in use by the guest
	limit  uint64
	denied bool // a grow was refused since the flag was last cleared
	mapped bool // buf is a mapping to unmap
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// Reallocate implements experimental.LinearMemory. Memory never shrinks.
// The slice returned has no capacity past size, so that no code can reach
// the bytes the guest has not grown into.
func (l *linearMemory) Reallocate(size uint64) []byte {
	if size > l.limit {
		l.denied = true
		return nil
	}
	if !l.grow(size) {
		l.denied = true
		return nil
	}
	l.size = max(l.size, size)
	return l.buf[:size:size]
}

// Free implements experimental.LinearMemory.
func (l *linearMemory) Free() {
	l.release()
	l.buf, l.size, l.mapped = nil, 0, false
}

// growSlice is the Go heap fallback of grow: a new slice, doubled, with
// the old contents. The bytes past them are the zeros of make, which the
// guest expects of memory it grows into.
func (l *linearMemory) growSlice(size uint64) {
	if size <= uint64(len(l.buf)) {
		return
	}
	c := max(size, min(2*uint64(len(l.buf)), l.limit))
	b := make([]byte, c)
	copy(b, l.buf[:l.size])
	l.buf = b
}
