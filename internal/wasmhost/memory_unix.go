//go:build unix

package wasmhost

import "syscall"

// grow makes the first size bytes of l's memory usable: on the first call
// it reserves limit bytes of address space (PROT_NONE: no memory, no
// commit charge), then opens the pages up to size for reading and writing.
// Anonymous pages read as zeros until written. A failed mapping falls back
// to the Go heap.
func (l *linearMemory) grow(size uint64) bool {
	if l.buf == nil && l.limit > 0 && l.limit <= maxReserve {
		b, err := syscall.Mmap(-1, 0, int(l.limit), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err == nil {
			l.buf, l.mapped = b, true
		}
	}
	if !l.mapped {
		l.growSlice(size)
		return true
	}
	if size <= l.size {
		return true
	}
	// wasm pages (64 KiB) are whole OS pages: size is page-aligned.
	return syscall.Mprotect(l.buf[l.size:size], syscall.PROT_READ|syscall.PROT_WRITE) == nil
}

// release unmaps a mapping.
func (l *linearMemory) release() {
	if l.mapped {
		_ = syscall.Munmap(l.buf)
	}
}

// maxReserve is the largest reservation: a wasm32 memory's 4 GiB.
const maxReserve = 1 << 32
