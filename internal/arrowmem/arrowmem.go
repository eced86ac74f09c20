// Package arrowmem copies bytes into Arrow buffers, the last step of every
// batch that leaves a rule or crosses the plugin boundary, and estimates
// the memory behind a batch.
package arrowmem

import (
	"bytes"

	"github.com/apache/arrow-go/v18/arrow"
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

// BatchBytes estimates the bytes of Arrow data behind rec. Sliced arrays
// count their whole buffers, which errs on the safe side.
func BatchBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, col := range rec.Columns() {
		n += dataBytes(col.Data())
	}
	return n
}

// ArrayBytes is BatchBytes for one array.
func ArrayBytes(a arrow.Array) int64 { return dataBytes(a.Data()) }

func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}
