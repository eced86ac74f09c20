package csv

import (
	"encoding/binary"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Columns: the rows of a range parsed in parallel (speculate) go straight
// into Arrow buffers, column by column, instead of through a
// RecordBuilder (see RATIONALE.md, "CSV ranges parsed into columns").
// A line without quotes is split and parsed in place (plainRow), without
// the copies of a csvrec.Record; a row that cannot be (a quote, another
// number of fields, a value that does not parse, invalid UTF-8) is taken
// back and read by the general path, whose parsed values are then
// appended (appendValues). Values are those of the general path: the
// same parse functions, the same null markers, the same UTF-8 check.

// colKind is how a column's values are stored.
type colKind uint8

const (
	kindInt64   colKind = iota // int64, timestamp_us: 8 bytes
	kindInt32                  // int32, date32: 4 bytes
	kindFloat64                // 8 bytes
	kindBool                   // bits
	kindUTF8                   // int32 offsets and bytes
)

// kindOf returns the storage of an Arrow type the source emits, false
// for one it does not.
func kindOf(t arrow.DataType) (colKind, bool) {
	switch t.ID() {
	case arrow.INT64, arrow.TIMESTAMP:
		return kindInt64, true
	case arrow.INT32, arrow.DATE32:
		return kindInt32, true
	case arrow.FLOAT64:
		return kindFloat64, true
	case arrow.BOOL:
		return kindBool, true
	case arrow.STRING:
		return kindUTF8, true
	}
	return 0, false
}

// column is one column of the batch being filled.
type column struct {
	kind  colKind
	typ   arrow.DataType
	valid *memory.Buffer // validity bits, nil while every row is valid
	vals  *memory.Buffer // values (kindUTF8: the bytes)
	offs  *memory.Buffer // kindUTF8: rows+1 offsets
	// i64, i32, f64 and bits view vals; off32 views offs; data is vals'
	// bytes for kindUTF8, used up to used.
	i64   []int64
	i32   []int32
	f64   []float64
	bits  []byte
	off32 []int32
	data  []byte
	used  int32
	// memo: for dates and timestamps, the last field parsed and its value
	// (a file's rows tend to repeat the day of the row before).
	memo     bool
	last     []byte
	lastI    int64
	haveLast bool
}

// columns is a batch being filled: up to capRows rows of schema.
type columns struct {
	mem     memory.Allocator
	schema  *arrow.Schema
	cols    []column
	rows    int
	capRows int
	// dataHint is the bytes of text per row of the last batch, to size
	// the next one's text buffers.
	dataHint []int
	v        value // plainRow's parsed value (a field: the parse functions are called indirectly)
}

// newColumns returns an empty batch of schema with room for capRows rows,
// or nil if a column has a type it cannot hold.
func newColumns(mem memory.Allocator, schema *arrow.Schema, capRows int) *columns {
	c := &columns{mem: mem, schema: schema, cols: make([]column, schema.NumFields()), capRows: capRows, dataHint: make([]int, schema.NumFields())}
	for i, f := range schema.Fields() {
		k, ok := kindOf(f.Type)
		if !ok {
			return nil
		}
		c.cols[i] = column{kind: k, typ: f.Type, memo: f.Type.ID() == arrow.DATE32 || f.Type.ID() == arrow.TIMESTAMP}
		c.dataHint[i] = 16
	}
	c.alloc()
	return c
}

// alloc gives every column new buffers for capRows rows.
func (c *columns) alloc() {
	n := c.capRows
	for i := range c.cols {
		col := &c.cols[i]
		col.valid = nil
		col.vals = memory.NewResizableBuffer(c.mem)
		switch col.kind {
		case kindInt64:
			col.vals.Resize(n * 8)
			col.i64 = arrow.Int64Traits.CastFromBytes(col.vals.Bytes())
		case kindInt32:
			col.vals.Resize(n * 4)
			col.i32 = arrow.Int32Traits.CastFromBytes(col.vals.Bytes())
		case kindFloat64:
			col.vals.Resize(n * 8)
			col.f64 = arrow.Float64Traits.CastFromBytes(col.vals.Bytes())
		case kindBool:
			col.vals.Resize(int(bitutil.BytesForBits(int64(n))))
			col.bits = col.vals.Bytes()
		case kindUTF8:
			col.offs = memory.NewResizableBuffer(c.mem)
			col.offs.Resize((n + 1) * 4)
			col.off32 = arrow.Int32Traits.CastFromBytes(col.offs.Bytes())
			col.off32[0] = 0
			col.vals.Reserve(max(64, c.dataHint[i]*n))
			col.data = col.vals.Buf()[:cap(col.vals.Buf())]
			col.used = 0
		}
	}
}

// release frees the buffers of the batch being filled.
func (c *columns) release() {
	for i := range c.cols {
		col := &c.cols[i]
		for _, b := range []*memory.Buffer{col.valid, col.vals, col.offs} {
			if b != nil {
				b.Release()
			}
		}
		*col = column{kind: col.kind, typ: col.typ, memo: col.memo}
	}
}

// setNull marks row r of col null, creating its validity bits (every
// row before it valid) the first time.
func (c *columns) setNull(col *column, r int) {
	if col.valid == nil {
		col.valid = memory.NewResizableBuffer(c.mem)
		col.valid.Resize(int(bitutil.BytesForBits(int64(c.capRows))))
		bitutil.SetBitsTo(col.valid.Bytes(), 0, int64(c.capRows), true)
	}
	bitutil.ClearBit(col.valid.Bytes(), r)
	switch col.kind {
	case kindInt64:
		col.i64[r] = 0
	case kindInt32:
		col.i32[r] = 0
	case kindFloat64:
		col.f64[r] = 0
	case kindBool:
		bitutil.ClearBit(col.bits, r)
	case kindUTF8:
		col.off32[r+1] = col.used
	}
}

// setFixed stores v in row r of a fixed-width column (utf8 columns take
// appendText).
func (col *column) setFixed(r int, v *value) {
	switch col.kind {
	case kindInt64:
		col.i64[r] = v.I
	case kindInt32:
		col.i32[r] = int32(v.I)
	case kindFloat64:
		col.f64[r] = v.F
	case kindBool:
		bitutil.SetBitTo(col.bits, r, v.B)
	}
}

// setValid marks row r of col valid (rows are valid unless set null; a
// row read again after a failed plainRow may have been set null).
func (col *column) setValid(r int) {
	if col.valid != nil {
		bitutil.SetBit(col.valid.Bytes(), r)
	}
}

// appendText appends s as the value of row r of a kindUTF8 column.
func (c *columns) appendText(col *column, r int, s []byte) {
	need := int(col.used) + len(s)
	if need > len(col.data) {
		col.vals.ResizeNoShrink(int(col.used))
		col.vals.Reserve(max(need, 2*len(col.data)))
		col.data = col.vals.Buf()[:cap(col.vals.Buf())]
	}
	copy(col.data[col.used:], s)
	col.used = int32(need)
	col.off32[r+1] = col.used
}

// plainRow parses line, a line without quotes and without its line end,
// as the next row; false (nothing appended) if the general path must read
// it: another number of fields, a value that does not parse, invalid
// UTF-8.
func (rd *reading) plainRow(c *columns, line []byte) bool {
	r := c.rows
	comma := byte(rd.comma)
	last := len(c.cols) - 1
	checkUTF8 := !ascii(line)
	for i := range c.cols {
		j := 0
		for j < len(line) && line[j] != comma {
			j++
		}
		field := line[:j]
		switch {
		case i < last && j == len(line):
			c.rollback(r)
			return false // too few fields
		case i < last:
			line = line[j+1:]
		case j < len(line):
			c.rollback(r)
			return false // too many fields
		}
		s := unsafe.String(unsafe.SliceData(field), len(field))
		col := &c.cols[i]
		if rd.isNull(s) {
			c.setNull(col, r)
			continue
		}
		if checkUTF8 && !utf8.Valid(field) {
			c.rollback(r)
			return false
		}
		col.setValid(r)
		if col.kind == kindUTF8 {
			c.appendText(col, r, field)
			continue
		}
		if !c.parse(rd, i, col, s, r) {
			c.rollback(r)
			return false
		}
	}
	c.rows++
	return true
}

// parse parses s, not null, into row r of col, column i, as the column
// type's parse function does (it is the fallback of every shortcut here:
// digits only for int64, true and false for bool, the last value again
// for a repeated date or timestamp).
func (c *columns) parse(rd *reading, i int, col *column, s string, r int) bool {
	switch col.kind {
	case kindInt64:
		if col.memo && col.haveLast && string(col.last) == s {
			col.i64[r] = col.lastI
			return true
		}
		if !col.memo {
			if n, ok := digits(s, 18); ok {
				col.i64[r] = n
				return true
			}
		}
	case kindInt32:
		if col.memo && col.haveLast && string(col.last) == s {
			col.i32[r] = int32(col.lastI)
			return true
		}
	case kindBool:
		switch s {
		case "true":
			bitutil.SetBit(col.bits, r)
			return true
		case "false":
			bitutil.ClearBit(col.bits, r)
			return true
		}
	}
	v := &c.v
	if !rd.types[i].parse(rd.formats, s, v) {
		return false
	}
	col.setFixed(r, v)
	if col.memo {
		col.last, col.lastI, col.haveLast = append(col.last[:0], s...), v.I, true
	}
	return true
}

// rollback undoes what a failed plainRow appended to row r: the text
// (fixed-width values and validity bits are set again by the row that
// takes r).
func (c *columns) rollback(r int) {
	for i := range c.cols {
		if col := &c.cols[i]; col.kind == kindUTF8 {
			col.used = col.off32[r]
		}
	}
}

// appendValues appends a row the general path parsed into vals.
func (c *columns) appendValues(vals []value) {
	r := c.rows
	for i := range vals {
		col := &c.cols[i]
		v := &vals[i]
		if v.Null {
			c.setNull(col, r)
			continue
		}
		col.setValid(r)
		if col.kind == kindUTF8 {
			c.appendText(col, r, unsafe.Slice(unsafe.StringData(v.S), len(v.S)))
			continue
		}
		col.setFixed(r, v)
	}
	c.rows++
}

// batch returns the rows filled so far as a record batch (the caller
// releases it) and starts a new batch.
func (c *columns) batch() arrow.RecordBatch {
	n := c.rows
	arrs := make([]arrow.Array, len(c.cols))
	for i := range c.cols {
		col := &c.cols[i]
		nulls := 0
		valid := col.valid
		if valid != nil {
			nulls = n - bitutil.CountSetBits(valid.Bytes(), 0, n)
			if nulls == 0 {
				valid.Release()
				valid = nil
			} else {
				valid.ResizeNoShrink(int(bitutil.BytesForBits(int64(n))))
			}
		}
		var bufs []*memory.Buffer
		switch col.kind {
		case kindInt64, kindFloat64:
			col.vals.ResizeNoShrink(n * 8)
			bufs = []*memory.Buffer{valid, col.vals}
		case kindInt32:
			col.vals.ResizeNoShrink(n * 4)
			bufs = []*memory.Buffer{valid, col.vals}
		case kindBool:
			col.vals.ResizeNoShrink(int(bitutil.BytesForBits(int64(n))))
			bufs = []*memory.Buffer{valid, col.vals}
		case kindUTF8:
			col.offs.ResizeNoShrink((n + 1) * 4)
			col.vals.ResizeNoShrink(int(col.used))
			bufs = []*memory.Buffer{valid, col.offs, col.vals}
			if n > 0 {
				c.dataHint[i] = int(col.used)/n + 1
			}
		}
		data := array.NewData(col.typ, n, bufs, nil, nulls, 0)
		arrs[i] = array.MakeFromData(data)
		data.Release()
		for _, b := range bufs {
			if b != nil {
				b.Release()
			}
		}
	}
	rec := array.NewRecordBatch(c.schema, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	c.rows = 0
	c.alloc()
	return rec
}

// ascii reports whether b holds only ASCII bytes, 8 at a time.
func ascii(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
