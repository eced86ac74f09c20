//go:build !unix

package wasmhost

// grow makes the first size bytes of l's memory usable, in a Go slice.
func (l *linearMemory) grow(size uint64) bool {
	l.growSlice(size)
	return true
}

// release has nothing to do: the garbage collector frees the slice.
func (l *linearMemory) release() {}
