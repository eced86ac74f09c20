// Package arrowmem copies bytes into Arrow buffers, the last step of every
// batch that leaves a rule or crosses the plugin boundary.
package arrowmem

import (
	"bytes"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Copy returns a buffer from mem holding a copy of src (nil for an empty
// src). For Go allocators, whose memory the garbage collector reclaims and
// whose Free does nothing, the copy goes into memory that is not zeroed
// first (bytes.Clone: one pass over the bytes instead of two); other
// allocators (checked, C) are asked for the buffer, and the caller releases
// it as usual.
func Copy(mem memory.Allocator, src []byte) *memory.Buffer {
	if _, ok := mem.(*memory.GoAllocator); ok {
		return memory.NewBufferBytes(bytes.Clone(src))
	}
	buf := memory.NewResizableBuffer(mem)
	buf.Resize(len(src))
	copy(buf.Bytes(), src)
	return buf
}
