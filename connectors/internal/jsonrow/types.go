package jsonrow

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/vigie-edu/vigie/connectors/internal/coltypes"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// A value is one decoded field, held until the whole object has decoded
// so that a bad field leaves the builders untouched.
type value = sdk.Cell

// A colType is a type that the `columns` option can declare: its Arrow
// type and how a JSON value (never null) decodes into it. decode returns
// "" on success, else what was expected.
type colType struct {
	name   string
	arrow  arrow.DataType
	decode func(raw []byte, v *value) bool
	want   string
}

// Column type names accepted in the `columns` option (as for the csv source).
const (
	typeUTF8        = "utf8"
	typeInt32       = "int32"
	typeInt64       = "int64"
	typeFloat64     = "float64"
	typeBool        = "bool"
	typeDate32      = "date32"
	typeTimestampUS = "timestamp_us"
)

// timestampLayouts are the forms a timestamp_us string may take; a time
// without a zone is UTC.
var timestampLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
}

var colTypes = map[string]colType{
	typeUTF8: {typeUTF8, arrow.BinaryTypes.String, func(raw []byte, v *value) bool {
		return jsonString(raw, &v.S)
	}, "a JSON string"},
	typeInt32: {typeInt32, arrow.PrimitiveTypes.Int32, func(raw []byte, v *value) bool {
		return jsonInt(raw, 32, &v.I)
	}, "an integer from -2147483648 to 2147483647"},
	typeInt64: {typeInt64, arrow.PrimitiveTypes.Int64, func(raw []byte, v *value) bool {
		return jsonInt(raw, 64, &v.I)
	}, "an integer"},
	typeFloat64: {typeFloat64, arrow.PrimitiveTypes.Float64, func(raw []byte, v *value) bool {
		if !isNumber(raw) {
			return false
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		v.F = f
		return err == nil && !math.IsInf(f, 0)
	}, "a JSON number"},
	typeBool: {typeBool, arrow.FixedWidthTypes.Boolean, func(raw []byte, v *value) bool {
		switch string(raw) {
		case "true":
			v.B = true
		case "false":
			v.B = false
		default:
			return false
		}
		return true
	}, "true or false"},
	typeDate32: {typeDate32, arrow.FixedWidthTypes.Date32, func(raw []byte, v *value) bool {
		var s string
		if !jsonString(raw, &s) {
			return false
		}
		t, err := time.Parse(time.DateOnly, s)
		v.I = int64(arrow.Date32FromTime(t))
		return err == nil
	}, `a date as a string "yyyy-mm-dd"`},
	typeTimestampUS: {typeTimestampUS, arrow.FixedWidthTypes.Timestamp_us, func(raw []byte, v *value) bool {
		var s string
		if !jsonString(raw, &s) {
			return false
		}
		for _, layout := range timestampLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				v.I = t.UnixMicro()
				return true
			}
		}
		return false
	}, "an ISO 8601 timestamp string like 2025-09-01T08:30:00Z"},
}

func jsonString(raw []byte, s *string) bool {
	if len(raw) == 0 || raw[0] != '"' {
		return false
	}
	return json.Unmarshal(raw, s) == nil
}

// isNumber reports whether raw is a JSON number (json.Valid was checked
// for the whole line, so its first byte is enough).
func isNumber(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// jsonInt reads an integral JSON number (3, -4, 5.0, 1e3) of bits bits.
func jsonInt(raw []byte, bits int, i *int64) bool {
	if !isNumber(raw) {
		return false
	}
	if n, err := strconv.ParseInt(string(raw), 10, bits); err == nil {
		*i = n
		return true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	lim := math.Ldexp(1, bits-1)
	if err != nil || f != math.Trunc(f) || f < -lim || f >= lim {
		return false
	}
	*i = int64(f)
	return true
}

// Describe names the JSON type of raw for a message, with the value when
// it is short.
func Describe(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	kind := "a value"
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '"':
		kind = "a string"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case raw[0] == 't' || raw[0] == 'f':
		kind = "a boolean"
	case isNumber(raw):
		kind = "a number"
	}
	if len(raw) > 40 {
		return kind
	}
	return kind + " " + string(raw)
}

// lookupType returns the column type called name, or an error wrapping
// protocol.ErrConfig that suggests the closest name.
func lookupType(column, name string) (colType, error) {
	return coltypes.Lookup(colTypes, column, name)
}
