package csv

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/internal/coltypes"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// A value is one parsed CSV field, held until the whole row has parsed so
// that a bad field leaves the builders untouched.
type value = sdk.Cell

// A colType is a column type that the source can declare or infer: its name
// in the `columns` option, its Arrow type and how a field parses into it.
type colType struct {
	name  string
	arrow arrow.DataType
	// parse reads s (never a null marker) into v, with the read's formats.
	parse func(f *formats, s string, v *value) bool
}

// Column type names accepted in the `columns` option.
const (
	typeUTF8        = "utf8"
	typeInt32       = "int32"
	typeInt64       = "int64"
	typeFloat64     = "float64"
	typeBool        = "bool"
	typeDate32      = "date32"
	typeTimestampUS = "timestamp_us"
)

// isoTimestampLayouts are the forms a timestamp_us field may take when no
// timestamp_format is set. A time without a zone is in the `timezone`
// option's zone (UTC by default). The second form is what the csv_file sink
// writes.
var isoTimestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

// formats says how the values of one read are written: the decimal mark,
// the date and timestamp layouts (Go layouts) and the zone of timestamps
// written without one.
type formats struct {
	decimalComma bool
	dateLayout   string
	tsLayouts    []string
	loc          *time.Location
}

// defaultFormats are ISO 8601 dates and timestamps, a decimal point, UTC.
func defaultFormats() *formats {
	return &formats{dateLayout: time.DateOnly, tsLayouts: isoTimestampLayouts, loc: time.UTC}
}

var colTypes = map[string]colType{
	typeUTF8: {typeUTF8, arrow.BinaryTypes.String, func(_ *formats, s string, v *value) bool {
		v.S = s
		return true
	}},
	typeInt32: {typeInt32, arrow.PrimitiveTypes.Int32, func(_ *formats, s string, v *value) bool {
		if n, ok := digits(s, 9); ok {
			v.I = n
			return true
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
		v.I = n
		return err == nil
	}},
	typeInt64: {typeInt64, arrow.PrimitiveTypes.Int64, func(_ *formats, s string, v *value) bool {
		if n, ok := digits(s, 18); ok {
			v.I = n
			return true
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		v.I = n
		return err == nil
	}},
	typeFloat64: {typeFloat64, arrow.PrimitiveTypes.Float64, parseFloat},
	typeBool: {typeBool, arrow.FixedWidthTypes.Boolean, func(_ *formats, s string, v *value) bool {
		switch s { // the usual spellings first, without trimming and folding
		case "true":
			v.B = true
			return true
		case "false":
			v.B = false
			return true
		}
		s = strings.TrimSpace(s)
		switch {
		case strings.EqualFold(s, "true"), s == "1", strings.EqualFold(s, "yes"), strings.EqualFold(s, "oui"):
			v.B = true
		case strings.EqualFold(s, "false"), s == "0", strings.EqualFold(s, "no"), strings.EqualFold(s, "non"):
			v.B = false
		default:
			return false
		}
		return true
	}},
	typeDate32: {typeDate32, arrow.FixedWidthTypes.Date32, func(f *formats, s string, v *value) bool {
		if f.dateLayout == time.DateOnly || f.dateLayout == isoPatternLayout {
			if d, ok := isoDate(s); ok {
				v.I = int64(d)
				return true
			}
		}
		t, err := time.Parse(f.dateLayout, strings.TrimSpace(s))
		v.I = int64(arrow.Date32FromTime(t))
		return err == nil
	}},
	typeTimestampUS: {typeTimestampUS, arrow.FixedWidthTypes.Timestamp_us, func(f *formats, s string, v *value) bool {
		s = strings.TrimSpace(s)
		for _, layout := range f.tsLayouts {
			if t, err := time.ParseInLocation(layout, s, f.loc); err == nil {
				v.I = t.UnixMicro()
				return true
			}
		}
		return false
	}},
}

// parseFloat accepts decimal numbers only: no NaN, infinities or hex floats,
// which would make words like "nan" or "inf" look like numbers. With a
// decimal comma, "12,5" reads as 12.5 (and "12.5" still does).
func parseFloat(f *formats, s string, v *value) bool {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "xXnNiIpP_") {
		return false
	}
	if f.decimalComma && strings.IndexByte(s, ',') >= 0 {
		if strings.IndexByte(s, '.') >= 0 {
			return false // "1.234,5": thousands separators are not read
		}
		s = strings.Replace(s, ",", ".", 1)
	}
	n, err := strconv.ParseFloat(s, 64)
	v.F = n
	return err == nil && !math.IsInf(n, 0)
}

// lookupType returns the column type called name, or an error wrapping
// protocol.ErrConfig that suggests the closest name.
func lookupType(column, name string) (colType, error) {
	return coltypes.Lookup(colTypes, column, name)
}

// inferOrder is the order in which inference tries types: the first that
// parses every non-null sample wins, utf8 otherwise.
var inferOrder = []string{typeInt64, typeFloat64, typeBool, typeDate32}

// inference narrows down the type of one column as samples arrive.
type inference struct {
	f          *formats
	candidates []string // still possible, in inferOrder
	seen       bool     // a non-null sample was seen
}

// newInference starts inferring with formats f; with inferTimestamps,
// timestamp_us is a candidate after date32.
func newInference(f *formats, inferTimestamps bool) *inference {
	in := &inference{f: f, candidates: append([]string(nil), inferOrder...)}
	if inferTimestamps {
		in.candidates = append(in.candidates, typeTimestampUS)
	}
	return in
}

// add drops the candidates that cannot hold s.
func (in *inference) add(s string) {
	in.seen = true
	var v value
	kept := in.candidates[:0]
	for _, name := range in.candidates {
		if (name == typeInt64 || name == typeFloat64) && hasLeadingZero(s) {
			continue // an identifier or a postal code, not a number
		}
		if name == typeBool && !isTrueFalse(s) {
			continue // 0/1 and yes/no are bools only when declared so
		}
		if colTypes[name].parse(in.f, s, &v) {
			kept = append(kept, name)
		}
	}
	in.candidates = kept
}

// result returns the inferred type: utf8 when nothing but nulls was seen.
func (in *inference) result() colType {
	if !in.seen || len(in.candidates) == 0 {
		return colTypes[typeUTF8]
	}
	return colTypes[in.candidates[0]]
}

// isTrueFalse reports whether s is true or false in any case.
func isTrueFalse(s string) bool {
	s = strings.TrimSpace(s)
	return strings.EqualFold(s, "true") || strings.EqualFold(s, "false")
}

// hasLeadingZero reports a number written with a superfluous leading zero,
// like "0750" or "-01" (but not "0" or "0.5").
func hasLeadingZero(s string) bool {
	s = strings.TrimLeft(strings.TrimSpace(s), "+-")
	return len(s) > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9'
}

// newBuilder returns a record builder for schema with room for n rows.
func newBuilder(mem memory.Allocator, schema *arrow.Schema, n int) *array.RecordBuilder {
	b := array.NewRecordBuilder(mem, schema)
	b.Reserve(n)
	return b
}

// digits reads s as a decimal number when it is 1 to max ASCII digits
// and nothing else (no sign, no space), which cannot overflow for max up
// to 18 (9 for int32); ok is false otherwise, and strconv decides.
func digits(s string, max int) (int64, bool) {
	if len(s) == 0 || len(s) > max {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// isoPatternLayout is the Go layout of the default date_format,
// yyyy-mm-dd (months and days of one or two digits).
const isoPatternLayout = "2006-1-2"

// isoDate reads s written yyyy-mm-dd (the default date format) as days
// since 1970-01-01, as time.Parse and arrow.Date32FromTime would, without
// their cost; ok is false for anything else (spaces, other forms, a day
// that does not exist), which time.Parse then decides.
func isoDate(s string) (arrow.Date32, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	num := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(s[:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(m, y) {
		return 0, false
	}
	// Days from civil (H. Hinnant's algorithm), proleptic Gregorian.
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return arrow.Date32(era*146097 + doe - 719468), true
}

// daysIn returns the days of month m (1-12) of year y.
func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appenders returns, per column of b, a function that appends a parsed
// value to its builder (sdk.Append without its type switch per value).
func appenders(b *array.RecordBuilder) []func(*value) {
	apps := make([]func(*value), len(b.Fields()))
	for i, f := range b.Fields() {
		switch fb := f.(type) {
		case *array.StringBuilder:
			apps[i] = func(v *value) {
				if v.Null {
					fb.AppendNull()
				} else {
					fb.Append(v.S)
				}
			}
		case *array.Int64Builder:
			apps[i] = func(v *value) {
				if v.Null {
					fb.AppendNull()
				} else {
					fb.Append(v.I)
				}
			}
		case *array.Date32Builder:
			apps[i] = func(v *value) {
				if v.Null {
					fb.AppendNull()
				} else {
					fb.Append(arrow.Date32(v.I))
				}
			}
		case *array.BooleanBuilder:
			apps[i] = func(v *value) {
				if v.Null {
					fb.AppendNull()
				} else {
					fb.Append(v.B)
				}
			}
		case *array.Float64Builder:
			apps[i] = func(v *value) {
				if v.Null {
					fb.AppendNull()
				} else {
					fb.Append(v.F)
				}
			}
		default:
			apps[i] = func(v *value) { sdk.Append(f, *v) }
		}
	}
	return apps
}
