package wasmhost

import (
	"encoding/binary"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"

	"github.com/vigie-edu/vigie/rules/abi"
)

var le = binary.LittleEndian

// cycle is the layout of one evaluation's host-written memory, allocated
// with a single vigie_alloc: the input descriptor, the group offsets (group
// rules), the output descriptor, then every input buffer, each 8-byte
// aligned. Offsets are relative to the start of the allocation.
type cycle struct {
	size      int
	headerEnd int // end of the descriptors and group offsets
	inPtr     uint32
	groupsPtr uint32
	outPtr    uint32
	numOut    int
	cols      []colLayout
}

// colLayout places one input column. validity is 0 when the column has no
// nulls, offsets is 0 for types other than utf8 (0 is never a buffer: the
// input descriptor comes first).
type colLayout struct {
	src                     source
	validity, data, offsets uint32
	dataLen, nulls          int
}

// source reads the rows of an input column, looking through a dictionary.
type source struct {
	outer  arrow.Array // the upstream array
	values arrow.Array // outer, or its dictionary
	dict   *array.Dictionary
}

func newSource(a arrow.Array) source {
	if d, ok := a.(*array.Dictionary); ok {
		return source{outer: a, values: d.Dictionary(), dict: d}
	}
	return source{outer: a, values: a}
}

// index returns the row of values that holds row i, or -1 when it is null.
func (s source) index(i int) int {
	if s.outer.IsNull(i) {
		return -1
	}
	if s.dict == nil {
		return i
	}
	j := s.dict.GetValueIndex(i)
	if s.values.IsNull(j) {
		return -1
	}
	return j
}

func (s source) nulls() int {
	if s.dict == nil {
		return s.outer.NullN()
	}
	n := 0
	for i := range s.outer.Len() {
		if s.index(i) < 0 {
			n++
		}
	}
	return n
}

// direct reports whether the column can be copied buffer to buffer (no
// dictionary, no conversion).
func (s source) direct(declared abi.Type) bool {
	return s.dict == nil && ArrowType(declared).ID() == s.values.DataType().ID()
}

func align(n int) int { return (n + abi.Alignment - 1) &^ (abi.Alignment - 1) }

// layout lays out the memory of one cycle, reusing c's column slice.
func (c *cycle) layout(b *Binding, rec arrow.RecordBatch, groups []uint32, numOut int) {
	n := int(rec.NumRows())
	*c = cycle{numOut: numOut, cols: c.cols[:0]}
	at := align(abi.DescriptorSize(len(b.inputs)))
	if groups != nil {
		c.groupsPtr = uint32(at)
		at = align(at + 4*len(groups))
	}
	c.outPtr = uint32(at)
	at = align(at + abi.DescriptorSize(len(b.module.Manifest.Outputs)))
	c.headerEnd = at
	place := func(size int) uint32 {
		p := uint32(at)
		at = align(at + size)
		return p
	}
	for _, in := range b.inputs {
		c.cols = append(c.cols, colLayout{src: newSource(rec.Column(in.index))})
		l := &c.cols[len(c.cols)-1]
		l.nulls = l.src.nulls()
		if l.nulls > 0 {
			l.validity = place(abi.BitmapLen(n))
		}
		l.dataLen = in.spec.Type.DataLen(n)
		if in.spec.Type == abi.Utf8 {
			l.offsets = place(4 * (n + 1))
			l.dataLen = utf8Len(l.src, n)
		}
		l.data = place(l.dataLen)
	}
	c.size = at
}

// release drops the references to the record's arrays.
func (c *cycle) release() {
	clear(c.cols)
}

func utf8Len(s source, n int) int {
	if s.dict == nil {
		offs := s.values.(*array.String).ValueOffsets()
		return int(offs[n] - offs[0])
	}
	total := 0
	str := s.values.(*array.String)
	for i := range n {
		if j := s.index(i); j >= 0 {
			total += str.ValueLen(j)
		}
	}
	return total
}

// write fills buf (the allocation at base) with the descriptors and the
// input data.
func (c *cycle) write(buf []byte, base uint32, b *Binding, rec arrow.RecordBatch, groups []uint32) {
	// Descriptors are zeroed; each buffer is cleared where copyIn does not
	// overwrite it all, padding included: no byte of a previous cycle is
	// left in what the host hands over.
	clear(buf[:c.headerEnd])
	n := int(rec.NumRows())
	ptr := func(rel uint32) uint32 {
		if rel == 0 {
			return 0
		}
		return base + rel
	}
	writeBatchHeader(buf[c.inPtr:], n, len(b.inputs), groups, ptr(c.groupsPtr))
	for i, g := range groups {
		le.PutUint32(buf[int(c.groupsPtr)+4*i:], g)
	}
	for k, in := range b.inputs {
		l := &c.cols[k]
		writeColumn(buf[int(c.inPtr)+abi.DescriptorSize(k):], in.spec.Type,
			ptr(l.validity), ptr(l.data), ptr(l.offsets), l.dataLen, l.nulls)
		l.copyIn(buf, in.spec.Type, n)
	}
	outs := b.module.Manifest.Outputs
	writeBatchHeader(buf[c.outPtr:], c.numOut, len(outs), nil, 0)
	for j, o := range outs {
		writeColumn(buf[int(c.outPtr)+abi.DescriptorSize(j):], o.Type, 0, 0, 0, 0, 0)
	}
}

// writeBatchHeader writes a batch header; groups is nil for a map rule.
func writeBatchHeader(d []byte, numRows, numCols int, groups []uint32, groupsPtr uint32) {
	le.PutUint32(d[abi.BatchNumRows:], uint32(numRows))
	le.PutUint32(d[abi.BatchNumColumns:], uint32(numCols))
	numGroups := 0
	if groups != nil {
		numGroups = len(groups) - 1
	}
	le.PutUint32(d[abi.BatchNumGroups:], uint32(numGroups))
	le.PutUint32(d[abi.BatchGroupOffsets:], groupsPtr)
}

// writeColumn writes a column descriptor at the start of d.
func writeColumn(d []byte, t abi.Type, validity, data, offsets uint32, dataLen, nulls int) {
	le.PutUint32(d[abi.ColType:], uint32(t))
	le.PutUint32(d[abi.ColValidity:], validity)
	le.PutUint32(d[abi.ColData:], data)
	le.PutUint32(d[abi.ColOffsets:], offsets)
	le.PutUint32(d[abi.ColDataLen:], uint32(dataLen))
	le.PutUint32(d[abi.ColNullCount:], uint32(nulls))
}

// copyIn copies the column into buf, converting it to t: buffer to buffer
// when the types match, row by row for dictionaries and widenings. It
// clears the bytes it does not write, up to the next buffer.
func (l *colLayout) copyIn(buf []byte, t abi.Type, n int) {
	s := l.src
	if l.nulls > 0 {
		bm := buf[l.validity : int(l.validity)+align(abi.BitmapLen(n))]
		if s.dict == nil {
			copyBits(bm, s.outer.NullBitmapBytes(), s.outer.Data().Offset(), n)
		} else {
			clear(bm)
			for i := range n {
				if s.index(i) >= 0 {
					bitutil.SetBit(bm, i)
				}
			}
		}
	}
	data := buf[l.data : int(l.data)+align(l.dataLen)]
	if n == 0 {
		// An empty array may have no buffers at all: write zeros (for
		// utf8, the single offset 0).
		clear(data)
		if t == abi.Utf8 {
			clear(buf[l.offsets : int(l.offsets)+align(4)])
		}
		return
	}
	switch {
	case t == abi.Utf8:
		offs := buf[l.offsets : int(l.offsets)+align(4*(n+1))]
		clear(offs[4*(n+1):])
		clear(data[l.dataLen:])
		copyUtf8(offs, data, s, n)
	case s.direct(t):
		off := s.values.Data().Offset()
		src := s.values.Data().Buffers()[1].Bytes()
		if t == abi.Bool {
			copyBits(data, src, off, n)
		} else {
			w := t.Width()
			clear(data[copy(data, src[off*w:(off+n)*w]):])
		}
	default:
		clear(data)
		for i := range n {
			if j := s.index(i); j >= 0 {
				putValue(data, t, i, s.values, j)
			}
		}
	}
}

// copyBits copies n bits of src from bit offset off to the start of dst and
// zeroes the rest of dst: bytes at a time when off is a multiple of 8.
func copyBits(dst, src []byte, off, n int) {
	if off%8 != 0 {
		clear(dst)
		bitutil.CopyBitmap(src, off, n, dst, 0)
		return
	}
	full := n / 8
	copy(dst, src[off/8:off/8+full])
	clear(dst[full:])
	if r := n % 8; r != 0 {
		dst[full] = src[off/8+full] & byte(1<<r-1)
	}
}

// copyUtf8 writes offsets starting at 0 and the string bytes.
func copyUtf8(offsets, data []byte, s source, n int) {
	if s.dict == nil {
		str := s.values.(*array.String)
		src := str.ValueOffsets()
		for i, o := range src {
			le.PutUint32(offsets[4*i:], uint32(o-src[0]))
		}
		copy(data, str.ValueBytes())
		return
	}
	str := s.values.(*array.String)
	le.PutUint32(offsets, 0)
	end := 0
	for i := range n {
		if j := s.index(i); j >= 0 {
			end += copy(data[end:], str.Value(j))
		}
		le.PutUint32(offsets[4*(i+1):], uint32(end))
	}
}

// putValue writes row j of a as value i of a column of type t, applying
// the safe widenings of Bind.
func putValue(data []byte, t abi.Type, i int, a arrow.Array, j int) {
	var v int64
	switch a := a.(type) {
	case *array.Boolean:
		bitutil.SetBitTo(data, i, a.Value(j))
		return
	case *array.Float64:
		le.PutUint64(data[8*i:], math.Float64bits(a.Value(j)))
		return
	case *array.Int32:
		v = int64(a.Value(j))
	case *array.Int64:
		v = a.Value(j)
	case *array.Date32:
		v = int64(a.Value(j))
		if t == abi.TimestampUS {
			v *= 24 * 60 * 60 * 1_000_000
		}
	case *array.Timestamp:
		v = int64(a.Value(j))
	}
	switch t {
	case abi.Float64:
		le.PutUint64(data[8*i:], math.Float64bits(float64(v)))
	case abi.Int32, abi.Date32:
		le.PutUint32(data[4*i:], uint32(v))
	default:
		le.PutUint64(data[8*i:], uint64(v))
	}
}
