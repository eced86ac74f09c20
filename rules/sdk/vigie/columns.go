package vigie

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/vigie-edu/vigie/rules/abi"
)

// memory is the guest's view of its linear memory: pointers are u32 offsets.
type memory interface {
	// bytes returns the n bytes at ptr; it panics when they are outside
	// memory.
	bytes(ptr, n uint32) []byte
	// alloc returns a pointer to n zeroed bytes, 8-byte aligned, valid until
	// the next cycle, or 0.
	alloc(n uint32) uint32
}

var le = binary.LittleEndian

// column is one column of a batch: its type and its buffers.
type column struct {
	typ      abi.Type
	n        int
	validity []byte // nil: no nulls
	data     []byte
	offsets  []byte // utf8: n+1 little-endian i32
}

func (c *column) isNull(row int) bool {
	return c.validity != nil && c.validity[row/8]&(1<<(row%8)) == 0
}

// Input is the input batch of one evaluation: the manifest's inputs, in
// their order, already converted to their declared types. It is valid only
// during the Eval call.
type Input struct {
	n      int
	cols   []column
	specs  []abi.Column
	groups []byte // group rule: num_groups+1 little-endian u32 row offsets
}

func readInput(m memory, ptr uint32, specs []abi.Column) (*Input, error) {
	n, cols, err := readBatch(m, ptr, len(specs))
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	in := &Input{n: n, cols: make([]column, len(specs)), specs: specs}
	h := m.bytes(ptr, abi.BatchHeaderSize)
	if g, p := le.Uint32(h[abi.BatchNumGroups:]), le.Uint32(h[abi.BatchGroupOffsets:]); p != 0 {
		in.groups = m.bytes(p, 4*(g+1))
	}
	for i, s := range specs {
		d := cols[i*abi.ColumnSize:]
		c := column{typ: abi.Type(le.Uint32(d[abi.ColType:])), n: n}
		if c.typ != s.Type {
			return nil, fmt.Errorf("input %q: host sent %s, manifest says %s", s.Name, c.typ, s.Type)
		}
		dataLen := le.Uint32(d[abi.ColDataLen:])
		if p := le.Uint32(d[abi.ColValidity:]); p != 0 {
			c.validity = m.bytes(p, uint32(abi.BitmapLen(n)))
		}
		if p := le.Uint32(d[abi.ColOffsets:]); p != 0 && c.typ == abi.Utf8 {
			c.offsets = m.bytes(p, uint32(4*(n+1)))
		}
		if p := le.Uint32(d[abi.ColData:]); p != 0 {
			c.data = m.bytes(p, dataLen)
		}
		in.cols[i] = c
	}
	return in, nil
}

// readBatch reads a batch header and returns num_rows and the column
// descriptors.
func readBatch(m memory, ptr uint32, numCols int) (int, []byte, error) {
	h := m.bytes(ptr, abi.BatchHeaderSize)
	n, nc := int(le.Uint32(h[abi.BatchNumRows:])), int(le.Uint32(h[abi.BatchNumColumns:]))
	if nc != numCols {
		return 0, nil, fmt.Errorf("batch has %d columns, manifest declares %d", nc, numCols)
	}
	return n, m.bytes(ptr+abi.BatchHeaderSize, uint32(nc*abi.ColumnSize)), nil
}

// Len returns the number of rows.
func (in *Input) Len() int { return in.n }

// NumGroups returns the number of groups of a group rule's input (the
// number of output rows), 0 for a map rule.
func (in *Input) NumGroups() int {
	if in.groups == nil {
		return 0
	}
	return len(in.groups)/4 - 1
}

// GroupBounds returns the rows of group g: start (included) to end
// (excluded). The rows of a group are contiguous, in the order the
// pipeline declares; a group may be empty.
func (in *Input) GroupBounds(g int) (start, end int) {
	if g < 0 || g >= in.NumGroups() {
		panic(fmt.Sprintf("group %d does not exist (the batch has %d groups)", g, in.NumGroups()))
	}
	return int(le.Uint32(in.groups[4*g:])), int(le.Uint32(in.groups[4*g+4:]))
}

// Index returns the position of the input called name, or -1.
func (in *Input) Index(name string) int {
	for i, s := range in.specs {
		if s.Name == name {
			return i
		}
	}
	return -1
}

func (in *Input) col(i int, t abi.Type) *column {
	if i < 0 || i >= len(in.cols) {
		panic(fmt.Sprintf("input %d does not exist (the rule has %d inputs)", i, len(in.cols)))
	}
	c := &in.cols[i]
	if c.typ != t {
		panic(fmt.Sprintf("input %q is %s, not %s", in.specs[i].Name, c.typ, t))
	}
	return c
}

// Column is a read-only input column of values of type T. It is valid only
// during the Eval call.
type Column[T any] struct {
	c   *column
	get func(c *column, row int) T
}

// Len returns the number of rows.
func (c Column[T]) Len() int { return c.c.n }

// IsNull reports whether row is null.
func (c Column[T]) IsNull(row int) bool { return c.c.isNull(row) }

// Value returns the value at row; for a null row it is meaningless.
func (c Column[T]) Value(row int) T { return c.get(c.c, row) }

// Bytes returns a utf8 row's bytes without copying them: they alias the
// batch, are valid only during the Eval call and must not be modified. It
// is Value without the allocation of a string, for rules that only look at
// a value (compare it, parse it) or keep few of them. A comparison such as
// string(c.Bytes(r)) == "PM" does not allocate. It panics for other types.
func (c Column[T]) Bytes(row int) []byte {
	if c.c.typ != abi.Utf8 {
		panic(fmt.Sprintf("Bytes: a %s column is not utf8", c.c.typ))
	}
	lo, hi := le.Uint32(c.c.offsets[4*row:]), le.Uint32(c.c.offsets[4*row+4:])
	return c.c.data[lo:hi:hi]
}

// HasNulls reports whether any row is null.
func (c Column[T]) HasNulls() bool { return c.c.validity != nil }

// Values returns the column's values as a slice that aliases the batch,
// the fastest way to read them (no call per row); the values of null rows
// are meaningless. It panics for bool and utf8 columns. Do not modify it.
func (c Column[T]) Values() []T { return values[T](c.c) }

// values views c's data as n values of T (little-endian, as wasm and the
// ABI are; buffers are 8-byte aligned).
func values[T any](c *column) []T {
	var zero T
	if w := int(unsafe.Sizeof(zero)); c.typ.Width() == 0 || w != c.typ.Width() {
		panic(fmt.Sprintf("Values: a %s column has no %d-byte values", c.typ, w))
	}
	if c.n == 0 || len(c.data) < c.n*c.typ.Width() {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(c.data))), c.n)
}

func getBool(c *column, row int) bool   { return c.data[row/8]&(1<<(row%8)) != 0 }
func getInt32(c *column, row int) int32 { return int32(le.Uint32(c.data[4*row:])) }
func getInt64(c *column, row int) int64 { return int64(le.Uint64(c.data[8*row:])) }
func getFloat64(c *column, row int) float64 {
	return math.Float64frombits(le.Uint64(c.data[8*row:]))
}
func getString(c *column, row int) string {
	lo, hi := le.Uint32(c.offsets[4*row:]), le.Uint32(c.offsets[4*row+4:])
	return string(c.data[lo:hi])
}

// Bool returns input i, which must be of type bool.
func (in *Input) Bool(i int) Column[bool] { return Column[bool]{in.col(i, abi.Bool), getBool} }

// Int32 returns input i, which must be of type int32.
func (in *Input) Int32(i int) Column[int32] { return Column[int32]{in.col(i, abi.Int32), getInt32} }

// Date32 returns input i, which must be of type date32 (days since the
// Unix epoch).
func (in *Input) Date32(i int) Column[int32] { return Column[int32]{in.col(i, abi.Date32), getInt32} }

// Int64 returns input i, which must be of type int64.
func (in *Input) Int64(i int) Column[int64] { return Column[int64]{in.col(i, abi.Int64), getInt64} }

// TimestampUS returns input i, which must be of type timestamp_us
// (microseconds since the Unix epoch, UTC).
func (in *Input) TimestampUS(i int) Column[int64] {
	return Column[int64]{in.col(i, abi.TimestampUS), getInt64}
}

// Float64 returns input i, which must be of type float64.
func (in *Input) Float64(i int) Column[float64] {
	return Column[float64]{in.col(i, abi.Float64), getFloat64}
}

// Utf8 returns input i, which must be of type utf8. Value copies the
// string out of the batch.
func (in *Input) Utf8(i int) Column[string] { return Column[string]{in.col(i, abi.Utf8), getString} }

// Output holds the output columns of one evaluation, in manifest order.
// Every row of every column starts null.
type Output struct {
	n     int
	ptr   uint32
	cols  []outColumn
	specs []abi.Column
}

// outColumn is an output column being built. Fixed-width columns (and
// bool) are written in place in arena memory; utf8 values are appended to a
// reusable Go buffer and copied into the arena by finish.
type outColumn struct {
	column
	validityPtr, dataPtr uint32
	str                  *[]byte // utf8 bytes so far
	ends                 []uint32
}

func (g *guest) newOutput(m memory, ptr uint32) (*Output, error) {
	specs := g.manifest.Outputs
	n, descs, err := readBatch(m, ptr, len(specs))
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	if len(g.bufs) != len(specs) {
		g.bufs = make([][]byte, len(specs))
	}
	out := &Output{n: n, ptr: ptr, cols: make([]outColumn, len(specs)), specs: specs}
	for j, s := range specs {
		if t := abi.Type(le.Uint32(descs[j*abi.ColumnSize+abi.ColType:])); t != s.Type {
			return nil, fmt.Errorf("output %q: host asks for %s, manifest says %s", s.Name, t, s.Type)
		}
		c := &out.cols[j]
		c.typ, c.n = s.Type, n
		c.validityPtr, c.validity = allocBytes(m, abi.BitmapLen(n))
		if s.Type == abi.Utf8 {
			g.bufs[j] = g.bufs[j][:0]
			c.str = &g.bufs[j]
			c.ends = make([]uint32, 0, n)
		} else {
			c.dataPtr, c.data = allocBytes(m, s.Type.DataLen(n))
		}
	}
	return out, nil
}

// allocBytes allocates n zeroed bytes from m; it panics when m is full.
func allocBytes(m memory, n int) (uint32, []byte) {
	if n == 0 {
		return 0, nil
	}
	p := m.alloc(uint32(n))
	if p == 0 {
		panic(fmt.Sprintf("out of memory allocating %d bytes", n))
	}
	return p, m.bytes(p, uint32(n))
}

// finish writes the output descriptor.
func (o *Output) finish(m memory) error {
	descs := m.bytes(o.ptr+abi.BatchHeaderSize, uint32(len(o.cols)*abi.ColumnSize))
	for j := range o.cols {
		c := &o.cols[j]
		var offsetsPtr uint32
		dataLen := uint32(len(c.data))
		if c.typ == abi.Utf8 {
			c.padTo(o.n)
			var offsets []byte
			offsetsPtr, offsets = allocBytes(m, 4*(o.n+1))
			for i, e := range c.ends {
				le.PutUint32(offsets[4*(i+1):], e)
			}
			dataLen = uint32(len(*c.str))
			var data []byte
			c.dataPtr, data = allocBytes(m, len(*c.str))
			copy(data, *c.str)
		}
		nulls := o.n
		for _, b := range c.validity {
			nulls -= bits.OnesCount8(b)
		}
		validityPtr := c.validityPtr
		if nulls == 0 {
			validityPtr = 0
		}
		d := descs[j*abi.ColumnSize:]
		le.PutUint32(d[abi.ColValidity:], validityPtr)
		le.PutUint32(d[abi.ColData:], c.dataPtr)
		le.PutUint32(d[abi.ColOffsets:], offsetsPtr)
		le.PutUint32(d[abi.ColDataLen:], dataLen)
		le.PutUint32(d[abi.ColNullCount:], uint32(nulls))
	}
	return nil
}

// Len returns the number of output rows: the input's rows for a map rule,
// its groups for a group rule.
func (o *Output) Len() int { return o.n }

// Index returns the position of the output called name, or -1.
func (o *Output) Index(name string) int {
	for j, s := range o.specs {
		if s.Name == name {
			return j
		}
	}
	return -1
}

func (o *Output) col(j int, t abi.Type) *outColumn {
	if j < 0 || j >= len(o.cols) {
		panic(fmt.Sprintf("output %d does not exist (the rule has %d outputs)", j, len(o.cols)))
	}
	c := &o.cols[j]
	if c.typ != t {
		panic(fmt.Sprintf("output %q is %s, not %s", o.specs[j].Name, c.typ, t))
	}
	return c
}

func (c *outColumn) setValid(row int, valid bool) {
	if valid {
		c.validity[row/8] |= 1 << (row % 8)
	} else {
		c.validity[row/8] &^= 1 << (row % 8)
	}
}

// OutColumn is a fixed-width (or bool) output column of values of type T.
// Rows may be set in any order; a row never set is null.
type OutColumn[T any] struct {
	c   *outColumn
	put func(c *column, row int, v T)
}

// Len returns the number of rows.
func (c OutColumn[T]) Len() int { return c.c.n }

// Set sets row to v.
func (c OutColumn[T]) Set(row int, v T) {
	c.put(&c.c.column, row, v)
	c.c.setValid(row, true)
}

// SetNull sets row to null.
func (c OutColumn[T]) SetNull(row int) { c.c.setValid(row, false) }

// Values returns the column's values as a writable slice over the output
// buffer, the fastest way to write them (no call per row). Writing a value
// does not make its row valid: call SetValid or SetAllValid. It panics for
// bool columns.
func (c OutColumn[T]) Values() []T { return values[T](&c.c.column) }

// Bits returns a bool column's values as its bitmap, writable, the fastest
// way to write them (no call per row): row r is bit r%8 of byte r/8, least
// significant first, and every bit starts at 0 (false). Writing a bit does
// not make its row valid: call SetValid or SetAllValid. It panics for
// other types.
func (c OutColumn[T]) Bits() []byte {
	if c.c.typ != abi.Bool {
		panic(fmt.Sprintf("Bits: a %s column is not bool", c.c.typ))
	}
	return c.c.data[:(c.c.n+7)/8]
}

// SetValid marks row valid, keeping its value.
func (c OutColumn[T]) SetValid(row int) { c.c.setValid(row, true) }

// SetAllValid marks every row valid, keeping their values; SetNull may
// then null some of them.
func (c OutColumn[T]) SetAllValid() {
	v := c.c.validity
	for i := range v {
		v[i] = 0xff
	}
	if r := c.c.n % 8; r != 0 {
		v[len(v)-1] = byte(1<<r - 1)
	}
}

func putBool(c *column, row int, v bool) {
	if v {
		c.data[row/8] |= 1 << (row % 8)
	} else {
		c.data[row/8] &^= 1 << (row % 8)
	}
}
func putInt32(c *column, row int, v int32) { le.PutUint32(c.data[4*row:], uint32(v)) }
func putInt64(c *column, row int, v int64) { le.PutUint64(c.data[8*row:], uint64(v)) }
func putFloat64(c *column, row int, v float64) {
	le.PutUint64(c.data[8*row:], math.Float64bits(v))
}

// Bool returns output j, which must be of type bool.
func (o *Output) Bool(j int) OutColumn[bool] { return OutColumn[bool]{o.col(j, abi.Bool), putBool} }

// Int32 returns output j, which must be of type int32.
func (o *Output) Int32(j int) OutColumn[int32] {
	return OutColumn[int32]{o.col(j, abi.Int32), putInt32}
}

// Date32 returns output j, which must be of type date32.
func (o *Output) Date32(j int) OutColumn[int32] {
	return OutColumn[int32]{o.col(j, abi.Date32), putInt32}
}

// Int64 returns output j, which must be of type int64.
func (o *Output) Int64(j int) OutColumn[int64] {
	return OutColumn[int64]{o.col(j, abi.Int64), putInt64}
}

// TimestampUS returns output j, which must be of type timestamp_us.
func (o *Output) TimestampUS(j int) OutColumn[int64] {
	return OutColumn[int64]{o.col(j, abi.TimestampUS), putInt64}
}

// Float64 returns output j, which must be of type float64.
func (o *Output) Float64(j int) OutColumn[float64] {
	return OutColumn[float64]{o.col(j, abi.Float64), putFloat64}
}

// Utf8Column is a utf8 output column. Values are written in row order:
// Set and SetNull take a row at or after the last one written (rows
// skipped are null), Append and AppendNull write the next row.
type Utf8Column struct{ c *outColumn }

// Utf8 returns output j, which must be of type utf8.
func (o *Output) Utf8(j int) Utf8Column { return Utf8Column{o.col(j, abi.Utf8)} }

// Len returns the number of rows.
func (c Utf8Column) Len() int { return c.c.n }

// Next returns the next row that Append would write.
func (c Utf8Column) Next() int { return len(c.c.ends) }

// Set sets row to s.
func (c Utf8Column) Set(row int, s string) {
	if row >= c.c.n {
		panic(fmt.Sprintf("utf8 output: row %d out of range (%d rows)", row, c.c.n))
	}
	c.c.padTo(row)
	*c.c.str = append(*c.c.str, s...)
	c.c.ends = append(c.c.ends, uint32(len(*c.c.str)))
	c.c.setValid(row, true)
}

// SetNull sets row to null.
func (c Utf8Column) SetNull(row int) { c.c.padTo(row + 1) }

// Append sets the next row to s.
func (c Utf8Column) Append(s string) { c.Set(c.Next(), s) }

// AppendNull sets the next row to null.
func (c Utf8Column) AppendNull() { c.SetNull(c.Next()) }

// padTo writes null rows up to, not including, row.
func (c *outColumn) padTo(row int) {
	if row < len(c.ends) || row > c.n {
		panic(fmt.Sprintf("utf8 output: row %d out of order (next is %d of %d)", row, len(c.ends), c.n))
	}
	for len(c.ends) < row {
		c.ends = append(c.ends, uint32(len(*c.str)))
	}
}
