package postgres

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgtype"
)

// PostgreSQL's epoch (2000-01-01) in Unix days and microseconds: dates and
// timestamps travel as offsets from it in the binary format.
const (
	pgEpochDays   = 10957
	pgEpochMicros = pgEpochDays * 86400 * 1_000_000
)

// createType is the column type the sink creates for a field of Arrow type
// dt, "" when it has none.
func createType(dt arrow.DataType) string {
	switch t := dt.(type) {
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Uint8Type:
		return "smallint"
	case *arrow.Int32Type, *arrow.Uint16Type:
		return "integer"
	case *arrow.Int64Type, *arrow.Uint32Type:
		return "bigint"
	case *arrow.Uint64Type:
		return "numeric(20,0)"
	case *arrow.Float32Type:
		return "real"
	case *arrow.Float64Type:
		return "double precision"
	case *arrow.StringType, *arrow.LargeStringType:
		return "text"
	case *arrow.BooleanType:
		return "boolean"
	case *arrow.Date32Type:
		return "date"
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return "timestamp with time zone"
		}
		return "timestamp without time zone"
	case *arrow.Decimal128Type:
		return fmt.Sprintf("numeric(%d,%d)", t.Precision, t.Scale)
	}
	return ""
}

// accepts lists, for each kind of Arrow type, the column types (by OID) an
// existing table may have for it: the one the sink would create and the
// ones that hold every value of it (wider integers, numeric, any text).
func accepts(dt arrow.DataType, oid uint32) bool {
	switch dt.(type) {
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Uint8Type:
		return oneOf(oid, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID)
	case *arrow.Int32Type, *arrow.Uint16Type:
		return oneOf(oid, pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID)
	case *arrow.Int64Type, *arrow.Uint32Type:
		return oneOf(oid, pgtype.Int8OID, pgtype.NumericOID)
	case *arrow.Uint64Type, *arrow.Decimal128Type:
		return oid == pgtype.NumericOID
	case *arrow.Float32Type:
		return oneOf(oid, pgtype.Float4OID, pgtype.Float8OID)
	case *arrow.Float64Type:
		return oid == pgtype.Float8OID
	case *arrow.StringType, *arrow.LargeStringType:
		return oneOf(oid, pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID)
	case *arrow.BooleanType:
		return oid == pgtype.BoolOID
	case *arrow.Date32Type:
		return oid == pgtype.DateOID
	case *arrow.TimestampType:
		return oneOf(oid, pgtype.TimestampOID, pgtype.TimestamptzOID)
	}
	return false
}

func oneOf(oid uint32, oids ...uint32) bool {
	for _, o := range oids {
		if o == oid {
			return true
		}
	}
	return false
}

// encoder appends the value of row i of one column in PostgreSQL's binary
// COPY format (length, then bytes) to buf. Nulls are handled by the
// caller.
type encoder func(buf []byte, i int) ([]byte, error)

// newEncoder returns the encoder of col for a column of type oid (one that
// accepts allowed). name is the column's, for messages.
func newEncoder(col arrow.Array, oid uint32, name string, m *pgtype.Map) (encoder, error) {
	if ints, ok := intValues(col); ok {
		return intEncoder(ints, oid, name, m), nil
	}
	switch c := col.(type) {
	case *array.Uint64:
		return uint64Encoder(c, name, m), nil
	case *array.Float32:
		if oid == pgtype.Float8OID {
			return func(buf []byte, i int) ([]byte, error) {
				return appendU64(buf, math.Float64bits(float64(c.Value(i)))), nil
			}, nil
		}
		return func(buf []byte, i int) ([]byte, error) { return appendU32(buf, math.Float32bits(c.Value(i))), nil }, nil
	case *array.Float64:
		return func(buf []byte, i int) ([]byte, error) { return appendU64(buf, math.Float64bits(c.Value(i))), nil }, nil
	case *array.String:
		return func(buf []byte, i int) ([]byte, error) {
			s := c.Value(i)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
			return append(buf, s...), nil
		}, nil
	case *array.LargeString:
		return func(buf []byte, i int) ([]byte, error) {
			s := c.Value(i)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
			return append(buf, s...), nil
		}, nil
	case *array.Boolean:
		return func(buf []byte, i int) ([]byte, error) {
			b := byte(0)
			if c.Value(i) {
				b = 1
			}
			return append(buf, 0, 0, 0, 1, b), nil
		}, nil
	case *array.Date32:
		return func(buf []byte, i int) ([]byte, error) {
			return appendU32(buf, uint32(int32(c.Value(i))-pgEpochDays)), nil
		}, nil
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		return func(buf []byte, i int) ([]byte, error) {
			return appendU64(buf, uint64(micros(int64(c.Value(i)), unit)-pgEpochMicros)), nil
		}, nil
	case *array.Decimal128:
		scale := c.DataType().(*arrow.Decimal128Type).Scale
		return func(buf []byte, i int) ([]byte, error) {
			return appendNumeric(buf, m, pgtype.Numeric{Int: c.Value(i).BigInt(), Exp: -scale, Valid: true}, name)
		}, nil
	}
	return nil, fmt.Errorf("column %q: no encoder for Arrow type %s", name, col.DataType())
}

// micros converts a timestamp of unit u to microseconds (nanoseconds are
// truncated: PostgreSQL keeps microseconds).
func micros(v int64, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return v * 1_000_000
	case arrow.Millisecond:
		return v * 1_000
	case arrow.Nanosecond:
		return v / 1_000
	}
	return v
}

func appendU32(buf []byte, v uint32) []byte {
	buf = append(buf, 0, 0, 0, 4)
	return binary.BigEndian.AppendUint32(buf, v)
}

func appendU64(buf []byte, v uint64) []byte {
	buf = append(buf, 0, 0, 0, 8)
	return binary.BigEndian.AppendUint64(buf, v)
}

// appendNumeric appends n encoded by pgx's numeric codec.
func appendNumeric(buf []byte, m *pgtype.Map, n pgtype.Numeric, name string) ([]byte, error) {
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf, err := m.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, n, buf)
	if err != nil {
		return nil, fmt.Errorf("column %q: encode numeric: %w", name, err)
	}
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	return buf, nil
}

// intValues returns an accessor of an integer column as int64 (uint64
// values above MaxInt64 are not representable and go through numeric).
func intValues(col arrow.Array) (func(int) int64, bool) {
	switch c := col.(type) {
	case *array.Int8:
		return func(i int) int64 { return int64(c.Value(i)) }, true
	case *array.Int16:
		return func(i int) int64 { return int64(c.Value(i)) }, true
	case *array.Int32:
		return func(i int) int64 { return int64(c.Value(i)) }, true
	case *array.Int64:
		return c.Value, true
	case *array.Uint8:
		return func(i int) int64 { return int64(c.Value(i)) }, true
	case *array.Uint16:
		return func(i int) int64 { return int64(c.Value(i)) }, true
	case *array.Uint32:
		return func(i int) int64 { return int64(c.Value(i)) }, true
	}
	return nil, false
}

func intEncoder(v func(int) int64, oid uint32, name string, m *pgtype.Map) encoder {
	switch oid {
	case pgtype.Int2OID:
		return func(buf []byte, i int) ([]byte, error) {
			x := v(i)
			if x < math.MinInt16 || x > math.MaxInt16 {
				return nil, fmt.Errorf("column %q: %d does not fit in smallint", name, x)
			}
			buf = append(buf, 0, 0, 0, 2)
			return binary.BigEndian.AppendUint16(buf, uint16(int16(x))), nil
		}
	case pgtype.Int4OID:
		return func(buf []byte, i int) ([]byte, error) {
			x := v(i)
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("column %q: %d does not fit in integer", name, x)
			}
			return appendU32(buf, uint32(int32(x))), nil
		}
	case pgtype.NumericOID:
		return func(buf []byte, i int) ([]byte, error) {
			return appendNumeric(buf, m, pgtype.Numeric{Int: big.NewInt(v(i)), Valid: true}, name)
		}
	}
	return func(buf []byte, i int) ([]byte, error) { return appendU64(buf, uint64(v(i))), nil }
}

// uint64Encoder encodes a uint64 column as numeric.
func uint64Encoder(c *array.Uint64, name string, m *pgtype.Map) encoder {
	return func(buf []byte, i int) ([]byte, error) {
		return appendNumeric(buf, m, pgtype.Numeric{Int: new(big.Int).SetUint64(c.Value(i)), Valid: true}, name)
	}
}

// copyHeader starts a binary COPY stream: signature, flags, no extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyTrailer ends it.
var copyTrailer = []byte{0xff, 0xff}
