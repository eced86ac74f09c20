package academy

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Kind is the type of a column.
type Kind uint8

// Column kinds. Float columns may be null (NaN in a Batch).
const (
	String Kind = iota
	Int
	Float
	Bool
)

// Column describes a column of a table.
type Column struct {
	Name string
	Kind Kind
	Prec int  // decimals of a Float column in text formats (-1: shortest)
	Null bool // the column may be null (Float: NaN, String: "")
}

// Table describes one of the generated tables.
type Table struct {
	Name    string
	Columns []Column
	schema  *arrow.Schema
}

// Schema returns the Arrow schema of the table (Parquet output).
func (t *Table) Schema() *arrow.Schema {
	if t.schema == nil {
		fs := make([]arrow.Field, len(t.Columns))
		for i, c := range t.Columns {
			var dt arrow.DataType
			switch c.Kind {
			case String:
				dt = arrow.BinaryTypes.String
			case Int:
				dt = arrow.PrimitiveTypes.Int32
			case Float:
				dt = arrow.PrimitiveTypes.Float64
			case Bool:
				dt = arrow.FixedWidthTypes.Boolean
			}
			fs[i] = arrow.Field{Name: c.Name, Type: dt, Nullable: c.Null}
		}
		t.schema = arrow.NewSchema(fs, nil)
	}
	return t.schema
}

// The tables written in CSV, Parquet and JSON Lines.
var (
	StudentsTable = &Table{Name: "students", Columns: []Column{
		{Name: "student_id"}, {Name: "school_id"}, {Name: "class_id"}, {Name: "level"}, {Name: "birth_year", Kind: Int},
	}}
	// AttendanceTable is the monthly summary, with the columns the default
	// pipeline and its tests expect.
	AttendanceTable = &Table{Name: "attendance", Columns: []Column{
		{Name: "student_id"}, {Name: "class_id"}, {Name: "month"},
		{Name: "half_days", Kind: Int}, {Name: "absent_half_days", Kind: Int}, {Name: "unjustified_half_days", Kind: Int},
	}}
	// AbsencesTable has one row per absent half-day as recorded, and one
	// more row when a record is corrected later (corrects = the id of the
	// corrected row, recorded_at later).
	AbsencesTable = &Table{Name: "absences", Columns: []Column{
		{Name: "event_id"}, {Name: "student_id"}, {Name: "class_id"}, {Name: "date"}, {Name: "half"},
		{Name: "justified", Kind: Bool}, {Name: "reason"}, {Name: "recorded_at"}, {Name: "corrects", Null: true},
	}}
	// GradesTable: mark is null when status is not "ok" (absent from the
	// test, exempt, not graded).
	GradesTable = &Table{Name: "grades", Columns: []Column{
		{Name: "student_id"}, {Name: "subject"}, {Name: "period"}, {Name: "mark", Kind: Float, Prec: 1, Null: true}, {Name: "status"},
	}}
	GroundTruthTable = &Table{Name: "ground_truth", Columns: []Column{
		{Name: "student_id"}, {Name: "school_id"}, {Name: "track"}, {Name: "drifts", Kind: Bool},
		{Name: "drift_start", Null: true}, {Name: "drift_end", Null: true}, {Name: "signals", Null: true}, {Name: "outcome"}, {Name: "outcome_date", Null: true},
		{Name: "noise", Null: true},
	}}
	tables = []*Table{StudentsTable, AttendanceTable, AbsencesTable, GradesTable, GroundTruthTable}
)

// Tables returns the tables written in CSV, Parquet and JSON Lines.
func Tables() []*Table { return tables }

// batch holds rows of one table, column by column.
type batch struct {
	t    *Table
	rows int
	str  [][]string
	num  [][]float64 // Int, Float (NaN = null) and Bool (0/1) columns
	col  int         // next column of the row being appended
}

func newBatch(t *Table) *batch {
	b := &batch{t: t, str: make([][]string, len(t.Columns)), num: make([][]float64, len(t.Columns))}
	return b
}

func (b *batch) reset() {
	b.rows, b.col = 0, 0
	for i := range b.str {
		b.str[i] = b.str[i][:0]
		b.num[i] = b.num[i][:0]
	}
}

func (b *batch) s(v string) *batch  { b.str[b.col] = append(b.str[b.col], v); b.col++; return b }
func (b *batch) f(v float64) *batch { b.num[b.col] = append(b.num[b.col], v); b.col++; return b }
func (b *batch) i(v int) *batch     { return b.f(float64(v)) }
func (b *batch) b(v bool) *batch {
	if v {
		return b.f(1)
	}
	return b.f(0)
}
func (b *batch) end() {
	if b.col != len(b.t.Columns) {
		panic("academy: row of " + b.t.Name + " has " + strconv.Itoa(b.col) + " values")
	}
	b.col = 0
	b.rows++
}

// appendCSV appends the rows as CSV (RFC 4180, \n line ends).
func (b *batch) appendCSV(dst []byte) []byte {
	for r := range b.rows {
		for c, col := range b.t.Columns {
			if c > 0 {
				dst = append(dst, ',')
			}
			switch col.Kind {
			case String:
				dst = appendCSVField(dst, b.str[c][r], ',')
			case Int:
				dst = strconv.AppendInt(dst, int64(b.num[c][r]), 10)
			case Float:
				if v := b.num[c][r]; !math.IsNaN(v) {
					dst = strconv.AppendFloat(dst, v, 'f', col.Prec, 64)
				}
			case Bool:
				dst = strconv.AppendBool(dst, b.num[c][r] != 0)
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

func appendCSVField(dst []byte, s string, comma byte) []byte {
	quote := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == comma || c == '"' || c == '\n' || c == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func csvHeader(t *Table) []byte {
	var dst []byte
	for i, c := range t.Columns {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, c.Name...)
	}
	return append(dst, '\n')
}

// appendJSONL appends one JSON object per row.
func (b *batch) appendJSONL(dst []byte) []byte {
	for r := range b.rows {
		dst = append(dst, '{')
		for c, col := range b.t.Columns {
			if c > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, col.Name)
			dst = append(dst, ':')
			switch col.Kind {
			case String:
				if v := b.str[c][r]; v == "" && col.Null {
					dst = append(dst, "null"...)
				} else {
					dst = appendJSONString(dst, v)
				}
			case Int:
				dst = strconv.AppendInt(dst, int64(b.num[c][r]), 10)
			case Float:
				if v := b.num[c][r]; math.IsNaN(v) {
					dst = append(dst, "null"...)
				} else {
					dst = strconv.AppendFloat(dst, v, 'f', col.Prec, 64)
				}
			case Bool:
				dst = strconv.AppendBool(dst, b.num[c][r] != 0)
			}
		}
		dst = append(dst, '}', '\n')
	}
	return dst
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// record builds an Arrow record of the rows. The caller releases it.
func (b *batch) record(mem memory.Allocator) arrow.RecordBatch {
	rb := array.NewRecordBuilder(mem, b.t.Schema())
	defer rb.Release()
	for c, col := range b.t.Columns {
		switch col.Kind {
		case String:
			fb := rb.Field(c).(*array.StringBuilder)
			fb.Reserve(b.rows)
			for _, v := range b.str[c] {
				if v == "" && col.Null {
					fb.AppendNull()
				} else {
					fb.Append(v)
				}
			}
		case Int:
			fb := rb.Field(c).(*array.Int32Builder)
			fb.Reserve(b.rows)
			for _, v := range b.num[c] {
				fb.UnsafeAppend(int32(v))
			}
		case Float:
			fb := rb.Field(c).(*array.Float64Builder)
			fb.Reserve(b.rows)
			for _, v := range b.num[c] {
				if math.IsNaN(v) {
					fb.UnsafeAppendBoolToBitmap(false)
				} else {
					fb.UnsafeAppend(v)
				}
			}
		case Bool:
			fb := rb.Field(c).(*array.BooleanBuilder)
			fb.Reserve(b.rows)
			for _, v := range b.num[c] {
				fb.UnsafeAppend(v != 0)
			}
		}
	}
	return rb.NewRecordBatch()
}

// day formats a date as ISO 8601 (2025-09-01).
func day(t time.Time) string { return t.Format(time.DateOnly) }
