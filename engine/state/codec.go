package state

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Supported reports whether columns of type t can be kept in state.
func Supported(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.BOOL, arrow.INT32, arrow.INT64, arrow.FLOAT64, arrow.STRING, arrow.DATE32, arrow.TIMESTAMP:
		return true
	case arrow.DICTIONARY:
		return t.(*arrow.DictionaryType).ValueType.ID() == arrow.STRING
	}
	return false
}

// storedType is the type a column has when read back: dictionaries of
// strings come back as plain strings.
func storedType(t arrow.DataType) arrow.DataType {
	if t.ID() == arrow.DICTIONARY {
		return arrow.BinaryTypes.String
	}
	return t
}

// appendOrdered appends an encoding of row i of col whose byte order is the
// value order (nulls first), and which no other encoding is a prefix of.
func appendOrdered(b []byte, col arrow.Array, i int) []byte {
	if col.IsNull(i) {
		return append(b, 0)
	}
	b = append(b, 1)
	switch c := col.(type) {
	case *array.String:
		return appendOrderedString(b, c.Value(i))
	case *array.Dictionary:
		return appendOrderedString(b, c.Dictionary().(*array.String).Value(c.GetValueIndex(i)))
	case *array.Int32:
		return appendOrderedInt(b, int64(c.Value(i)))
	case *array.Int64:
		return appendOrderedInt(b, c.Value(i))
	case *array.Date32:
		return appendOrderedInt(b, int64(c.Value(i)))
	case *array.Timestamp:
		return appendOrderedInt(b, int64(c.Value(i)))
	case *array.Float64:
		bits := math.Float64bits(c.Value(i))
		if bits>>63 == 1 {
			bits = ^bits
		} else {
			bits |= 1 << 63
		}
		return binary.BigEndian.AppendUint64(b, bits)
	case *array.Boolean:
		if c.Value(i) {
			return append(b, 1)
		}
		return append(b, 0)
	}
	panic(fmt.Sprintf("state: unsupported type %s", col.DataType()))
}

func appendOrderedInt(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(v)^(1<<63))
}

// appendOrderedString escapes 0x00 as 0x00 0xFF and ends with 0x00 0x01.
func appendOrderedString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = append(b, s[i])
		if s[i] == 0 {
			b = append(b, 0xFF)
		}
	}
	return append(b, 0, 1)
}

// skipOrdered returns the length of the ordered encoding of one value of
// type t at the start of b, or -1 if b is malformed.
func skipOrdered(b []byte, t arrow.DataType) int {
	if len(b) == 0 {
		return -1
	}
	if b[0] == 0 {
		return 1
	}
	switch storedType(t).ID() {
	case arrow.STRING:
		for i := 1; i+1 < len(b); i++ {
			if b[i] == 0 {
				if b[i+1] == 1 {
					return i + 2
				}
				i++ // escaped 0x00
			}
		}
		return -1
	case arrow.BOOL:
		if len(b) < 2 {
			return -1
		}
		return 2
	default: // 8-byte big-endian
		if len(b) < 9 {
			return -1
		}
		return 9
	}
}

// orderedInt64 decodes an ordered integer encoding (without null marker).
func orderedInt64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// rowCodec encodes whole rows compactly: a null bitmap, then each non-null
// value (fixed width little-endian, strings length-prefixed).
type rowCodec struct {
	types []arrow.DataType // as stored
}

func newRowCodec(schema *arrow.Schema) (*rowCodec, error) {
	c := &rowCodec{}
	for _, f := range schema.Fields() {
		if !Supported(f.Type) {
			return nil, fmt.Errorf("column %q has type %s, which cannot be kept in state (supported: bool, int32, int64, float64, utf8, date32, timestamp)", f.Name, f.Type)
		}
		c.types = append(c.types, storedType(f.Type))
	}
	return c, nil
}

func (c *rowCodec) encode(b []byte, cols []arrow.Array, i int) []byte {
	nb := (len(cols) + 7) / 8
	start := len(b)
	b = append(b, make([]byte, nb)...)
	for k, col := range cols {
		if col.IsNull(i) {
			b[start+k/8] |= 1 << (k % 8)
			continue
		}
		switch col := col.(type) {
		case *array.Boolean:
			if col.Value(i) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case *array.Int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(col.Value(i)))
		case *array.Date32:
			b = binary.LittleEndian.AppendUint32(b, uint32(col.Value(i)))
		case *array.Int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(col.Value(i)))
		case *array.Timestamp:
			b = binary.LittleEndian.AppendUint64(b, uint64(col.Value(i)))
		case *array.Float64:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(col.Value(i)))
		case *array.String:
			v := col.Value(i)
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case *array.Dictionary:
			v := col.Dictionary().(*array.String).Value(col.GetValueIndex(i))
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

// decode appends the row encoded in v to the builders.
func (c *rowCodec) decode(v []byte, bs []array.Builder) error {
	nb := (len(c.types) + 7) / 8
	if len(v) < nb {
		return errCorrupt
	}
	nulls, p := v[:nb], nb
	for k, t := range c.types {
		if nulls[k/8]&(1<<(k%8)) != 0 {
			bs[k].AppendNull()
			continue
		}
		need := 8
		switch t.ID() {
		case arrow.BOOL:
			need = 1
		case arrow.INT32, arrow.DATE32:
			need = 4
		case arrow.STRING:
			n, w := binary.Uvarint(v[p:])
			if w <= 0 || p+w+int(n) > len(v) {
				return errCorrupt
			}
			// The bytes are copied into the builder's buffer: no string.
			bs[k].(*array.StringBuilder).BinaryBuilder.Append(v[p+w : p+w+int(n)])
			p += w + int(n)
			continue
		}
		if p+need > len(v) {
			return errCorrupt
		}
		x := v[p : p+need]
		switch b := bs[k].(type) {
		case *array.BooleanBuilder:
			b.Append(x[0] == 1)
		case *array.Int32Builder:
			b.Append(int32(binary.LittleEndian.Uint32(x)))
		case *array.Date32Builder:
			b.Append(arrow.Date32(binary.LittleEndian.Uint32(x)))
		case *array.Int64Builder:
			b.Append(int64(binary.LittleEndian.Uint64(x)))
		case *array.TimestampBuilder:
			b.Append(arrow.Timestamp(binary.LittleEndian.Uint64(x)))
		case *array.Float64Builder:
			b.Append(math.Float64frombits(binary.LittleEndian.Uint64(x)))
		}
		p += need
	}
	return nil
}
