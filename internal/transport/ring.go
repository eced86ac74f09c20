package transport

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/arrowmem"
)

// Arrow bodies through shared memory, metadata through gRPC.
//
// The host creates a ring for a DoGet or a DoPut: a file in /dev/shm
// (else os.TempDir()), mode 0600, mapped by both processes, and names it in
// the call's gRPC metadata (ringMetadataKey). A plugin that knows the
// capability maps it, unlinks it and says so in its response header. The
// writer (the plugin for a DoGet; the host for a DoPut, once it has that
// answer) puts each Arrow body into the ring; the FlightData it sends
// carries the data header and app_metadata {"ring":{"off":…,"len":…}}
// with an empty body. The reader copies the body out once, into its own
// allocator's memory (batches outlive calls; nothing points into the
// ring), then advances its head. When the ring is full the message goes
// inline, as before; a peer without the capability ignores the metadata
// and everything is inline. Rings are kept for later calls (ringpool.go).
//
// Layout: a header page (magic, capacity, the producer's tail, the
// consumer's head, monotonic byte counts updated with sync/atomic), then
// capacity bytes of data. A body never wraps: when it does not fit before
// the end, the producer skips to the start.
//
// The peer is not trusted: the receiver checks every offset and length
// against its own head and the capacity before reading, and reads the
// mapping with debug.SetPanicOnFault, so that a peer truncating the file
// (SIGBUS) yields an error, not a crash.

const (
	ringMagic       = 0x31474e5249474956 // "VIGIRNG1", little-endian
	ringHeaderBytes = 4096
	ringAlign       = 64
	ringPrefix      = "vigie-ring-"
	// ringMetadataKey is the gRPC metadata naming the ring (request) and
	// saying whether it is used ("1") or not ("0") (response header).
	ringMetadataKey = "vigie-ring"
	// ringInPlaceKey ("1", request of a DoPut offering a ring) says that
	// the host reuses the ring for another stream only if the plugin's
	// trailer lacks ringHeldKey, so the plugin may read its bodies in
	// place (inplace.go): the host is trusted by its plugins.
	ringInPlaceKey = "vigie-ring-in-place"
	// ringHeldKey ("1", DoPut trailer) says that bodies read in place
	// were still held when the handler returned.
	ringHeldKey  = "vigie-ring-held"
	maxRingBytes = 1 << 30

	hdrMagic = 0
	hdrCap   = 8
	hdrTail  = 64  // written by the producer only
	hdrHead  = 128 // written by the consumer only
	// hdrRead is where the consumer has read up to (written by the
	// consumer only; 0 from a consumer that predates it). It runs ahead
	// of hdrHead while bodies read in place are held (inplace.go), and
	// tells the producer whether a full ring is a consumer behind in its
	// reading (wait for it) or one holding all it read (do not).
	hdrRead = 192
)

// ringBytes is the data capacity of the ring of one stream: a few of the
// slices batches are cut into (messageTargetBytes).
var ringBytes = 32 << 20

// inPlaceRingBytes is the data capacity of the ring of a stream read in
// place (inplace.go): it holds the batches the engine's stages keep in
// flight, not only those not yet read. On the 10M-row attendance benchmark
// (batches of 1.8 MB) the engine held more than 32 MiB while its sink was
// busy, and 42 % of the bodies went inline through a 32 MiB ring; none
// through 64 MiB. Only the pages used count in memory.
var inPlaceRingBytes = 64 << 20

// ring is one mapping of a ring file.
type ring struct {
	mem  []byte // the whole mapping
	data []byte // mem[ringHeaderBytes:]
	cap  uint64

	name string // the file's path, kept after it is unlinked

	mu   sync.Mutex
	path string // the file, until unlinked (creator side)

	holds ringHolds // bodies read in place (inplace.go)

	// drop (under holds.mu) frees the ring's pages when it is unmapped:
	// set by the creator once the peer is done with it (ringPool.put).
	drop bool
	// idle counts the ring's stays in a pool (under the pool's mu), so
	// that an idle drop does not hit a ring used again meanwhile.
	idle uint64

	unmapped atomic.Bool // tests
}

func (r *ring) word(off int) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }

// guard runs f, turning a fault on the mapping (the peer truncated the
// file) into an error.
func guard(f func()) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if e := recover(); e != nil {
			if _, ok := e.(interface{ Addr() uintptr }); !ok {
				panic(e)
			}
			err = fmt.Errorf("shared memory ring: %v", e)
		}
	}()
	f()
	return nil
}

// unlink removes the file, once (the creator's side).
func (r *ring) unlink() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path != "" {
		os.Remove(r.path)
		r.path = ""
	}
}

// close unlinks the file if still there and unmaps it, at once or, while
// bodies read in place are held, when the last is released. Nothing may
// use the ring after.
func (r *ring) close() {
	r.unlink()
	r.closeWhenReleased()
}

// unmap unmaps the ring (holds.mu held, or no body ever held).
func (r *ring) unmap() {
	if r.mem != nil {
		if r.drop {
			dropPages(r.data)
		}
		munmap(r.mem)
		r.mem, r.data = nil, nil
		r.unmapped.Store(true)
	}
}

// ringWriter is the producer side of a ring.
type ringWriter struct {
	r    *ring
	tail uint64 // where the next body may start (aligned)
	end  uint64 // the end of the last body written
	off  bool   // the consumer misbehaved: everything inline from now on
}

// write copies the n bytes of parts into the ring and returns their
// offset, or false when they do not fit now (the caller sends them inline).
func (w *ringWriter) write(parts [][]byte, n int) (uint64, bool) {
	if w.off || n <= 0 || uint64(n) > w.r.cap {
		return 0, false
	}
	size := uint64(n)
	var off uint64
	ok := false
	err := guard(func() {
		head := atomic.LoadUint64(w.r.word(hdrHead))
		if !w.sane(head) {
			w.off = true
			return
		}
		if off, ok = w.place(head, size); !ok {
			return // full
		}
		dst := w.r.data[off%w.r.cap:][:size]
		for _, p := range parts {
			dst = dst[copy(dst, p):]
		}
		w.end = off + size
		w.tail = (w.end + ringAlign - 1) &^ (ringAlign - 1)
		atomic.StoreUint64(w.r.word(hdrTail), off+size)
	})
	if err != nil {
		w.off = true
		return 0, false
	}
	return off, ok
}

// fits says whether a body of n bytes would be written now. The consumer
// only frees space, so a body of at most n bytes written next fits too
// (writeChunked relies on it to send a batch whole).
func (w *ringWriter) fits(n int) bool {
	if w.off || n <= 0 || uint64(n) > w.r.cap {
		return false
	}
	ok := false
	err := guard(func() {
		head := atomic.LoadUint64(w.r.word(hdrHead))
		if w.sane(head) {
			_, ok = w.place(head, uint64(n))
		}
	})
	return err == nil && ok
}

// head returns the consumer's head and how far it has read, false when
// the mapping faults.
func (w *ringWriter) head() (head, read uint64, ok bool) {
	err := guard(func() {
		head = atomic.LoadUint64(w.r.word(hdrHead))
		read = atomic.LoadUint64(w.r.word(hdrRead))
	})
	return head, read, err == nil
}

// sane says whether the consumer's head is where a consumer can be:
// tail is off+size rounded up to ringAlign, up to ringAlign-1 past
// head+cap.
func (w *ringWriter) sane(head uint64) bool {
	return head <= w.tail && w.tail-head < w.r.cap+ringAlign
}

// place returns where a body of size bytes goes with the consumer at head,
// or false when the ring has no room for it now.
func (w *ringWriter) place(head, size uint64) (uint64, bool) {
	off := w.tail
	switch pos := off % w.r.cap; {
	case pos+size > w.r.cap:
		off += w.r.cap - pos // skip to the start: bodies never wrap
	case head == w.end && pos >= max(size+ringAlign, w.r.cap/4):
		// The consumer has read everything: start again at the start,
		// where the pages are mapped and warm. A consumer that keeps up
		// then touches a quarter of the ring, not all of it. Until it
		// reads this body the skipped space counts as used, so the start
		// is taken only when that leaves room (pos >= size+ringAlign
		// keeps the body within cap of head; pos >= cap/4 leaves a
		// quarter of the ring for the next).
		off += w.r.cap - pos
	}
	if off+size-head > w.r.cap {
		return 0, false
	}
	return off, true
}

// ringReader is the consumer side of a ring.
type ringReader struct {
	r    *ring
	head uint64
	// inPlace hands bodies out as buffers over the ring (a trusted
	// writer: inplace.go) instead of copies.
	inPlace bool
}

// read checks that [off, off+n) is the next body the producer published
// and copies it into a buffer from mem, or, in place, returns a buffer
// over the ring that holds its place until released.
func (rd *ringReader) read(off, n uint64, mem memory.Allocator) (*memory.Buffer, error) {
	return rd.take(off, n, mem, false)
}

// take is read; copy copies the body out even in place.
func (rd *ringReader) take(off, n uint64, mem memory.Allocator, copy bool) (*memory.Buffer, error) {
	c := rd.r.cap
	switch {
	case n == 0 || n > c:
		return nil, fmt.Errorf("shared memory ring: body length %d out of range (capacity %d)", n, c)
	case off < rd.head || off-rd.head > c:
		return nil, fmt.Errorf("shared memory ring: body offset %d out of range (head %d)", off, rd.head)
	case off%c+n > c:
		return nil, fmt.Errorf("shared memory ring: body [%d, +%d) crosses the end of the ring", off, n)
	}
	var buf *memory.Buffer
	err := guard(func() {
		if tail := atomic.LoadUint64(rd.r.word(hdrTail)); off+n > tail {
			return
		}
		switch {
		case rd.inPlace && !copy:
			buf = rd.r.hold(off, n)
		case rd.inPlace:
			buf = arrowmem.Copy(mem, rd.r.data[off%c:][:n])
			rd.r.skip(off, n)
		default:
			buf = arrowmem.Copy(mem, rd.r.data[off%c:][:n])
			atomic.StoreUint64(rd.r.word(hdrHead), off+n)
		}
		rd.head = off + n
		atomic.StoreUint64(rd.r.word(hdrRead), rd.head)
	})
	if err != nil {
		if buf != nil {
			buf.Release()
		}
		return nil, err
	}
	if buf == nil {
		return nil, fmt.Errorf("shared memory ring: body [%d, +%d) not yet published", off, n)
	}
	return buf, nil
}

// appendRingRef returns meta (a JSON object or nothing) with the ring
// reference {"off":off,"len":n} added.
func appendRingRef(meta []byte, off uint64, n int) []byte {
	b := make([]byte, 0, len(meta)+48)
	b = append(b, `{"ring":{"off":`...)
	b = strconv.AppendUint(b, off, 10)
	b = append(b, `,"len":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	b = append(b, '}')
	inner := strings.TrimSpace(string(meta))
	if len(inner) >= 2 && inner[0] == '{' && inner[len(inner)-1] == '}' {
		if rest := strings.TrimSpace(inner[1 : len(inner)-1]); rest != "" {
			b = append(b, ',')
			b = append(b, rest...)
		}
	}
	return append(b, '}')
}

// ringRef is where a body is in the ring (app_metadata "ring").
type ringRef struct {
	Off uint64 `json:"off"`
	Len uint64 `json:"len"`
}

// TransportStats counts the Arrow bodies this process received from Flight
// streams, through the shared memory ring and inline.
type TransportStats struct {
	RingBodies, RingBytes, InlineBodies, InlineBytes int64
}

var stats struct {
	ringBodies, ringBytes, inlineBodies, inlineBytes atomic.Int64
}

// ReceivedStats returns what this process received so far.
func ReceivedStats() TransportStats {
	return TransportStats{
		RingBodies:   stats.ringBodies.Load(),
		RingBytes:    stats.ringBytes.Load(),
		InlineBodies: stats.inlineBodies.Load(),
		InlineBytes:  stats.inlineBytes.Load(),
	}
}
