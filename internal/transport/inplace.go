package transport

import (
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Bodies read in place (issue 18).
//
// A ring reader normally copies each body out of the ring into its own
// memory and frees its place at once: nothing in the reader points into
// memory the peer can write, so an untrusted plugin cannot change data the
// engine already checked. A built-in connector runs from the engine's own
// binary and is trusted (Client.Trust): the engine then reads its bodies
// in place. The Arrow buffers of a batch point into the ring, and the
// ring's head (what the writer may overwrite) advances past a body only
// once every buffer over it is released, in ring order: the data lives
// once, in the shared mapping, instead of once there and once in the
// engine's heap (with the garbage each copy leaves behind), and the copy
// is saved.
//
// A body held long (a batch a stage keeps) holds back the head, so the
// writer finds the ring full, waits maxRingWait without progress and then
// sends inline: slower, never wrong. Dictionary bodies are copied: the Arrow
// IPC reader keeps a dictionary for the whole stream. A ring with bodies
// still held when its stream ends is not used again, and is unmapped when
// the last is released.

// ringHolds tracks the bodies of a ring handed out in place.
type ringHolds struct {
	mu      sync.Mutex
	spans   []heldSpan // in ring order, oldest first
	held    int        // spans not yet released
	closing bool       // close was asked while spans were held
}

type heldSpan struct {
	off, end uint64
	freed    bool
}

// inUse reports whether buffers over the ring are still held.
func (r *ring) inUse() bool {
	r.holds.mu.Lock()
	defer r.holds.mu.Unlock()
	return r.holds.held > 0
}

// hold returns a buffer over [off, off+n) of the ring's data, which holds
// back the ring's head until it is released.
func (r *ring) hold(off, n uint64) *memory.Buffer {
	r.holds.mu.Lock()
	r.holds.spans = append(r.holds.spans, heldSpan{off: off, end: off + n})
	r.holds.held++
	r.holds.mu.Unlock()
	heldBodies.Add(1)
	inPlaceBodies.Add(1)
	return memory.NewBufferWithAllocator(r.data[off%r.cap:][:n], &spanFree{r: r, off: off})
}

// skip records that [off, off+n) was read by copy: the head may pass it
// once the bodies before it are released.
func (r *ring) skip(off, n uint64) {
	r.holds.mu.Lock()
	defer r.holds.mu.Unlock()
	if len(r.holds.spans) == 0 {
		atomic.StoreUint64(r.word(hdrHead), off+n)
		return
	}
	r.holds.spans = append(r.holds.spans, heldSpan{off: off, end: off + n, freed: true})
}

// release frees the span at off and moves the head past every freed span
// at the front.
func (r *ring) release(off uint64) {
	heldBodies.Add(-1)
	h := &r.holds
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.spans {
		if h.spans[i].off == off && !h.spans[i].freed {
			h.spans[i].freed = true
			h.held--
			break
		}
	}
	n := 0
	for n < len(h.spans) && h.spans[n].freed {
		n++
	}
	if n == 0 {
		return
	}
	head := h.spans[n-1].end
	h.spans = append(h.spans[:0], h.spans[n:]...)
	if h.closing {
		if h.held == 0 {
			r.unmap()
		}
		return
	}
	atomic.StoreUint64(r.word(hdrHead), head)
}

// closeWhenReleased unmaps r now if nothing is held, else when the last
// held body is released; it reports whether it unmapped now.
func (r *ring) closeWhenReleased() bool {
	r.holds.mu.Lock()
	defer r.holds.mu.Unlock()
	if r.holds.held > 0 {
		r.holds.closing = true
		return false
	}
	r.unmap()
	return true
}

// spanFree is the memory.Allocator of a buffer over a ring: Free (the
// buffer's last release) frees its span.
type spanFree struct {
	r    *ring
	off  uint64
	once atomic.Bool
}

func (s *spanFree) Allocate(int) []byte { panic("transport: a ring body cannot grow") }
func (s *spanFree) Reallocate(int, []byte) []byte {
	panic("transport: a ring body cannot grow")
}

func (s *spanFree) Free([]byte) {
	if s.once.CompareAndSwap(false, true) {
		s.r.release(s.off)
	}
}

// heldBodies counts the bodies read in place and not yet released, and
// inPlaceBodies all those read in place, in this process (tests).
var heldBodies, inPlaceBodies atomic.Int64
