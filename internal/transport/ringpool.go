package transport

import (
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Rings are kept and used again by later streams between the same two
// processes: creating, faulting in and unmapping 32 MiB for every call
// cost more than the copies it saves on short streams. The host keeps a
// few rings per plugin connection (ringPool, in Client); the plugin keeps
// its mappings by name (ringCache, in flightServer), so a ring it already maps
// is found again after its file was unlinked. A ring goes back to the
// pool only after a stream that used it ended cleanly (the server's
// handler returned, so it no longer writes to it); after an error or a
// cancelled call it is unmapped.

const keptRings = 2

// ringIdleDrop is how long a kept ring may stay unused before its pages
// are given back (dropPages): a run's sources end long before its sinks,
// and their rings, a few tens of MiB each, would otherwise stay resident
// in both processes until the run ends. A stream that then takes the ring
// faults its pages in again.
var ringIdleDrop = 2 * time.Second

var errRingInUse = errors.New("ring in use by another stream")

func debugLog(msg string, args ...any) { slog.Debug(msg, args...) }

// ringPool is the host's rings for one plugin connection.
type ringPool struct {
	size   int // bytes of data of its rings; 0: ringBytes
	mu     sync.Mutex
	free   []*ring
	closed bool
	// unsupported is set when the peer ignored an offer (it has no ring
	// support), declined maxDeclines offers in a row (it cannot map our
	// rings: another /dev/shm, a sandbox) or no ring could be created
	// here: no more offers are made.
	unsupported atomic.Bool
	declines    atomic.Int32 // in a row
}

// maxDeclines is how many offers in a row a peer may decline before it is
// offered no more rings: one decline may be passing (a ring still in use),
// a run of them is not, and each offer is a ring file created for
// nothing.
const maxDeclines = 3

// answered records the peer's answer to an offer (the ringMetadataKey
// values of its response header) and reports whether it uses the ring.
func (p *ringPool) answered(v []string) bool {
	switch {
	case len(v) == 0:
		p.unsupported.Store(true) // an older peer
	case v[0] == "1":
		p.declines.Store(0)
		return true
	default:
		if p.declines.Add(1) >= maxDeclines {
			p.unsupported.Store(true)
			debugLog("peer declined shared memory rings", "times", maxDeclines)
		}
	}
	return false
}

// get returns a ring ready for a new stream, or nil (then everything goes
// inline).
func (p *ringPool) get() *ring {
	if p.unsupported.Load() {
		return nil
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	if n := len(p.free); n > 0 {
		r := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		r.setDrop(false) // the next stream decides
		r.reset()
		return r
	}
	p.mu.Unlock()
	size := p.size
	if size == 0 {
		size = ringBytes
	}
	r, err := createRing("", size)
	if err != nil {
		// Not supported here, or /dev/shm and the temp dir are unusable:
		// not worth trying again for every call.
		p.unsupported.Store(true)
		debugLog("shared memory ring not offered, Arrow bodies go inline", "err", err)
		return nil
	}
	return r
}

// put gives r back after a stream: kept when reusable, else unmapped
// (once the bodies read in place from it are released).
//
// reusable also says that the peer is done with the ring: its handler
// returned, and a sink holds no body in place (the held-ring trailer).
// Then the ring's pages are freed when it is unmapped, or when it stayed
// unused in the pool for ringIdleDrop: the peer's mapping (a plugin keeps
// a few by name, ringCache) would otherwise keep them resident. Without
// that, a peer may still read bodies there: its mapping keeps the pages.
func (p *ringPool) put(r *ring, reusable bool) {
	r.unlink()
	if reusable {
		r.setDrop(true)
	}
	if reusable && !r.inUse() {
		p.mu.Lock()
		if !p.closed && len(p.free) < keptRings {
			p.free = append(p.free, r)
			r.idle++
			stay := r.idle
			p.mu.Unlock()
			time.AfterFunc(ringIdleDrop, func() { p.dropIdle(r, stay) })
			return
		}
		p.mu.Unlock()
	}
	r.close()
}

// dropIdle frees the pages of r if it is still in the pool since the stay
// put counted (get takes rings under p.mu, so none is taken meanwhile).
func (p *ringPool) dropIdle(r *ring, stay uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.idle == stay && slices.Contains(p.free, r) {
		_ = guard(func() { dropPages(r.data) })
	}
}

// setDrop sets whether r's pages are freed when it is unmapped.
func (r *ring) setDrop(drop bool) {
	r.holds.mu.Lock()
	r.drop = drop
	r.holds.mu.Unlock()
}

// close unmaps the kept rings; later streams go inline.
func (p *ringPool) close() {
	p.mu.Lock()
	free := p.free
	p.free, p.closed = nil, true
	p.mu.Unlock()
	for _, r := range free {
		r.close()
	}
}

// reset empties a ring nobody uses.
func (r *ring) reset() {
	_ = guard(func() {
		atomic.StoreUint64(r.word(hdrHead), 0)
		atomic.StoreUint64(r.word(hdrTail), 0)
		atomic.StoreUint64(r.word(hdrRead), 0)
	})
}

// ringCache is a plugin's mappings of the rings its host offered.
type ringCache struct {
	mu    sync.Mutex
	rings []*cachedRing // most recently used last
}

type cachedRing struct {
	r     *ring
	inUse bool
}

// acquire returns the ring named name for a stream, mapping it if it is
// not mapped yet; nil when it is in use by another stream.
func (c *ringCache) acquire(name string) (*ring, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, cr := range c.rings {
		if cr.r.name != name {
			continue
		}
		if cr.inUse {
			return nil, errRingInUse
		}
		cr.inUse = true
		c.rings = append(append(c.rings[:i:i], c.rings[i+1:]...), cr)
		return cr.r, nil
	}
	r, err := openRing(name)
	if err != nil {
		return nil, err
	}
	// Unmap the least recently used idle rings beyond the few a host
	// keeps.
	idle := 0
	for _, cr := range c.rings {
		if !cr.inUse {
			idle++
		}
	}
	kept := c.rings[:0]
	for _, cr := range c.rings {
		if !cr.inUse && idle >= keptRings {
			cr.r.close()
			idle--
			continue
		}
		kept = append(kept, cr)
	}
	c.rings = append(kept, &cachedRing{r: r, inUse: true})
	return r, nil
}

// release marks r free for the next stream.
func (c *ringCache) release(r *ring) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cr := range c.rings {
		if cr.r == r {
			cr.inUse = false
		}
	}
}

// close unmaps every ring not in use.
func (c *ringCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.rings[:0]
	for _, cr := range c.rings {
		if cr.inUse {
			kept = append(kept, cr)
			continue
		}
		cr.r.close()
	}
	c.rings = kept
}
