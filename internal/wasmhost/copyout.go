package wasmhost

import (
	"fmt"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/tetratelabs/wazero/api"

	"github.com/vigie-edu/vigie/internal/arrowmem"
	"github.com/vigie-edu/vigie/rules/abi"
)

// outColumn is an output column descriptor as the guest left it, with its
// buffers resolved to views of guest memory.
type outColumn struct {
	spec     abi.Column
	validity []byte // nil: no nulls
	data     []byte
	offsets  []byte // utf8 only
	nulls    int
}

// readOutputs checks the output descriptor at ptr and copies its n-row
// columns into Arrow arrays allocated from alloc, once the total size is
// known to be within MaxOutputBytes. The caller releases the arrays, which
// stay valid until the next call.
func (i *Instance) readOutputs(ptr uint32, n int, alloc memory.Allocator) ([]arrow.Array, error) {
	m := i.mod.Memory()
	specs := i.module.Manifest.Outputs
	desc, ok := m.Read(ptr, uint32(abi.DescriptorSize(len(specs))))
	if !ok {
		return nil, fmt.Errorf("output descriptor at %d is outside memory", ptr)
	}
	if got := int(le.Uint32(desc[abi.BatchNumRows:])); got != n {
		return nil, fmt.Errorf("output descriptor: num_rows changed to %d, want %d", got, n)
	}
	if got := int(le.Uint32(desc[abi.BatchNumColumns:])); got != len(specs) {
		return nil, fmt.Errorf("output descriptor: num_columns changed to %d, want %d", got, len(specs))
	}
	cols := i.outs[:0]
	var total int64
	for j, s := range specs {
		c, err := checkOutput(m, desc[abi.DescriptorSize(j):], s, n)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", s.Name, err)
		}
		total += c.size()
		cols = append(cols, c)
	}
	i.outs = cols
	defer clear(cols) // no view of guest memory is kept past the call
	if total > i.limits.MaxOutputBytes {
		return nil, i.limits.outputError(total)
	}
	if err := checkUtf8Columns(cols, n); err != nil {
		return nil, err
	}
	arrs := i.arrs[:0]
	for j := range cols {
		arrs = append(arrs, cols[j].toArrow(alloc, n))
	}
	i.arrs = arrs
	return arrs, nil
}

// size returns the bytes that copying the column out would produce.
func (c *outColumn) size() int64 {
	s := int64(len(c.data))
	if c.nulls > 0 {
		s += int64(len(c.validity))
	}
	if c.offsets != nil {
		s += int64(len(c.offsets))
		first, last := le.Uint32(c.offsets), le.Uint32(c.offsets[len(c.offsets)-4:])
		if last >= first {
			s = s - int64(len(c.data)) + int64(last-first)
		}
	}
	return s
}

// checkUtf8Columns checks the utf8 columns (after the output limit, so
// that a huge output is not scanned first).
func checkUtf8Columns(cols []outColumn, n int) error {
	for j := range cols {
		if cols[j].spec.Type != abi.Utf8 {
			continue
		}
		if err := cols[j].checkUtf8(n); err != nil {
			return fmt.Errorf("output %q: %w", cols[j].spec.Name, err)
		}
	}
	return nil
}

// view returns the n bytes at ptr, or an error naming what when they are
// not inside memory. A zero pointer is refused unless n is 0.
func view(m api.Memory, what string, ptr uint32, n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	b, ok := m.Read(ptr, uint32(n))
	if ptr == 0 || !ok || uint64(n) > uint64(^uint32(0)) {
		return nil, fmt.Errorf("%s at %d (%d bytes) is outside memory (%d bytes)", what, ptr, n, m.Size())
	}
	return b, nil
}

// checkOutput validates one output column descriptor.
func checkOutput(m api.Memory, d []byte, s abi.Column, n int) (outColumn, error) {
	c := outColumn{spec: s}
	if t := abi.Type(le.Uint32(d[abi.ColType:])); t != s.Type {
		return c, fmt.Errorf("type changed to %s, want %s", t, s.Type)
	}
	validity, data, offsets := le.Uint32(d[abi.ColValidity:]), le.Uint32(d[abi.ColData:]), le.Uint32(d[abi.ColOffsets:])
	dataLen, nulls := int(le.Uint32(d[abi.ColDataLen:])), int(le.Uint32(d[abi.ColNullCount:]))
	var err error
	if validity != 0 {
		if c.validity, err = view(m, "validity", validity, abi.BitmapLen(n)); err != nil {
			return c, err
		}
		c.nulls = n - bitutil.CountSetBits(c.validity, 0, n)
	}
	if nulls != c.nulls {
		return c, fmt.Errorf("null_count is %d, the validity bitmap has %d nulls", nulls, c.nulls)
	}
	if s.Type != abi.Utf8 {
		want := s.Type.DataLen(n)
		if dataLen < want {
			return c, fmt.Errorf("data_len is %d, want %d for %d rows", dataLen, want, n)
		}
		c.data, err = view(m, "data", data, want)
		return c, err
	}
	if c.offsets, err = view(m, "offsets", offsets, 4*(n+1)); err != nil {
		return c, err
	}
	c.data, err = view(m, "data", data, dataLen)
	return c, err
}

// checkUtf8 checks that offsets are non-decreasing and within data, and that
// every valid value is UTF-8.
func (c *outColumn) checkUtf8(n int) error {
	prev := int64(int32(le.Uint32(c.offsets)))
	if prev < 0 {
		return fmt.Errorf("offset 0 is negative (%d)", prev)
	}
	for i := range n {
		next := int64(int32(le.Uint32(c.offsets[4*(i+1):])))
		if next < prev || next > int64(len(c.data)) {
			return fmt.Errorf("offset %d is %d, after %d, with data_len %d", i+1, next, prev, len(c.data))
		}
		if (c.validity == nil || bitutil.BitIsSet(c.validity, i)) && !utf8.Valid(c.data[prev:next]) {
			return fmt.Errorf("row %d is not valid UTF-8", i)
		}
		prev = next
	}
	return nil
}

// toArrow copies the column into a new Arrow array.
func (c *outColumn) toArrow(alloc memory.Allocator, n int) arrow.Array {
	var validity *memory.Buffer
	if c.nulls > 0 {
		validity = arrowmem.Copy(alloc, c.validity)
	}
	buffers := []*memory.Buffer{validity, nil}
	if c.spec.Type == abi.Utf8 {
		first := le.Uint32(c.offsets)
		offsets := memory.NewResizableBuffer(alloc)
		offsets.Resize(4 * (n + 1))
		dst := offsets.Bytes()
		if first == 0 {
			copy(dst, c.offsets)
		} else {
			for i := range n + 1 {
				le.PutUint32(dst[4*i:], le.Uint32(c.offsets[4*i:])-first)
			}
		}
		buffers = append(buffers[:1], offsets, arrowmem.Copy(alloc, c.data[first:le.Uint32(c.offsets[4*n:])]))
	} else {
		buffers[1] = arrowmem.Copy(alloc, c.data)
	}
	data := array.NewData(ArrowType(c.spec.Type), n, buffers, nil, c.nulls, 0)
	for _, b := range buffers {
		if b != nil {
			b.Release()
		}
	}
	defer data.Release()
	return array.MakeFromData(data)
}
