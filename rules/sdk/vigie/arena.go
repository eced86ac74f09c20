package vigie

import (
	"unsafe"

	"github.com/vigie-edu/vigie/rules/abi"
)

// arena is a bump allocator over Go memory, reset at the start of every
// evaluation cycle. Memory obtained from it stays reachable (and, Go's
// garbage collector being non-moving, in place) until the next reset.
type arena struct {
	chunks [][]uint64 // []uint64 so that every chunk is 8-byte aligned
	cur    int        // chunk being filled
	off    int        // bytes used in chunks[cur]
}

const minChunk = 64 << 10

// alloc returns n zeroed bytes, 8-byte aligned.
func (a *arena) alloc(n int) []byte {
	b := a.allocRaw(n)
	clear(b)
	return b
}

// allocRaw returns n bytes, 8-byte aligned, holding whatever an earlier
// cycle left there: for memory that the caller overwrites whole (the host
// writes every byte it asks for).
func (a *arena) allocRaw(n int) []byte {
	size := (n + abi.Alignment - 1) &^ (abi.Alignment - 1)
	for ; a.cur < len(a.chunks); a.cur, a.off = a.cur+1, 0 {
		if b := a.take(size); b != nil {
			return b[:n:n]
		}
	}
	grow := minChunk
	if len(a.chunks) > 0 {
		grow = 16 * cap(a.chunks[len(a.chunks)-1]) // double the last chunk
	}
	a.chunks = append(a.chunks, make([]uint64, max(size, grow)/8))
	a.cur, a.off = len(a.chunks)-1, 0
	return a.take(size)[:n:n]
}

func (a *arena) take(size int) []byte {
	c := a.chunks[a.cur]
	if a.off+size > 8*len(c) {
		return nil
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c))), 8*len(c))[a.off : a.off+size]
	a.off += size
	return b
}

// reset frees everything allocated. When the last cycle needed several
// chunks, they are replaced by one chunk as large as all of them, so that
// a steady workload settles on one chunk.
func (a *arena) reset() {
	if len(a.chunks) > 1 {
		total := 0
		for _, c := range a.chunks {
			total += len(c)
		}
		a.chunks = [][]uint64{make([]uint64, total)}
	}
	a.cur, a.off = 0, 0
}
