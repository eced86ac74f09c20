// Package jsonrow decodes JSON objects into rows of declared columns: what
// the `columns`, `order` and `strict` options of the jsonl source and of
// the Kafka source's JSON message values mean, defined once.
package jsonrow

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// Option names shared by the sources that declare JSON columns.
const (
	OptColumns = "columns"
	OptOrder   = "order"
	OptStrict  = "strict"
)

// ColumnsDoc and OrderDoc document the options in a connector's spec.
const (
	ColumnsDoc = "column name (or dotted path) -> type: utf8, int32, int64, float64, bool, date32, timestamp_us"
	OrderDoc   = "order of the columns in the output (default: by name); must list every declared column"
	StrictDoc  = "a field that is not declared makes its record bad"
)

// TypesDoc says how JSON values decode, for a connector's doc.
const TypesDoc = `A column named with dots ("actor.name") reads a nested field when the
object has no key of that exact name. Types are strict: a utf8 column takes
a JSON string, int32/int64 an integral number, float64 a number, bool true
or false, date32 a string yyyy-mm-dd, timestamp_us an ISO 8601 string; null
or a missing field is a null.`

// column is one declared column.
type column struct {
	name string
	typ  colType
	path []string // the dotted path, when name has dots
}

// Columns is a checked declaration of columns. It is immutable and safe
// for concurrent use.
type Columns struct {
	cols   []column
	top    map[string]bool // top-level keys that declared columns read
	strict bool
	fields []arrow.Field
}

// New checks the declared columns (name → type name), in the given order
// (nil: by name). Errors wrap protocol.ErrConfig and name connector and
// the option at fault.
func New(connector string, declared map[string]string, order []string, strict bool) (*Columns, error) {
	if len(declared) == 0 {
		return nil, fmt.Errorf("connector %q: option %q: declare at least one column: %w", connector, OptColumns, protocol.ErrConfig)
	}
	names := make([]string, 0, len(declared))
	for n := range declared {
		names = append(names, n)
	}
	sort.Strings(names)
	if order != nil {
		sorted := slices.Clone(order)
		sort.Strings(sorted)
		if !slices.Equal(sorted, names) {
			return nil, fmt.Errorf("connector %q: option %q: %q must list each declared column once (%s): %w",
				connector, OptOrder, order, strings.Join(names, ", "), protocol.ErrConfig)
		}
		names = order
	}
	c := &Columns{strict: strict, top: map[string]bool{}}
	for _, n := range names {
		t, err := lookupType(n, declared[n])
		if err != nil {
			return nil, fmt.Errorf("connector %q: option %q: %w", connector, OptColumns, err)
		}
		col := column{name: n, typ: t}
		c.top[n] = true
		if strings.Contains(n, ".") {
			col.path = strings.Split(n, ".")
			c.top[col.path[0]] = true
		}
		c.cols = append(c.cols, col)
		c.fields = append(c.fields, arrow.Field{Name: n, Type: t.arrow, Nullable: true})
	}
	return c, nil
}

// Fields returns the columns' Arrow fields, in order.
func (c *Columns) Fields() []arrow.Field { return slices.Clone(c.fields) }

// Len is the number of columns.
func (c *Columns) Len() int { return len(c.cols) }

// Decode decodes one JSON value (surrounding space trimmed, not empty)
// into vals, one cell per column. It returns "" and "" on success, else
// the offending field ("" for the whole value) and what is wrong.
func (c *Columns) Decode(raw []byte, vals []sdk.Cell) (field, reason string) {
	if raw[0] != '{' {
		if !json.Valid(raw) {
			return "", "not JSON: " + JSONError(raw)
		}
		return "", "expected a JSON object, got " + Describe(raw)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", "not JSON: " + JSONError(raw)
	}
	if c.strict {
		var keys []string
		for k := range obj {
			if !c.top[k] {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			sort.Strings(keys)
			return keys[0], "field is not declared (strict = true)"
		}
	}
	for i, col := range c.cols {
		v, bad := lookup(obj, col)
		vals[i] = sdk.Cell{}
		if bad != "" {
			return col.name, bad
		}
		if v == nil || string(v) == "null" {
			vals[i].Null = true
			continue
		}
		if !col.typ.decode(v, &vals[i]) {
			return col.name, fmt.Sprintf("expected %s (%s), got %s", col.typ.name, col.typ.want, Describe(v))
		}
	}
	return "", ""
}

// lookup returns the raw value of column c in obj, nil if absent, or what
// is wrong with the path.
func lookup(obj map[string]json.RawMessage, c column) (json.RawMessage, string) {
	if raw, ok := obj[c.name]; ok || c.path == nil {
		return raw, ""
	}
	cur := obj
	for i, seg := range c.path {
		raw, ok := cur[seg]
		if !ok || string(raw) == "null" {
			return nil, ""
		}
		if i == len(c.path)-1 {
			return raw, ""
		}
		if raw[0] != '{' {
			return nil, fmt.Sprintf("expected %q to be an object, got %s", strings.Join(c.path[:i+1], "."), Describe(raw))
		}
		cur = nil
		if err := json.Unmarshal(raw, &cur); err != nil {
			return nil, "not JSON: " + err.Error()
		}
	}
	return nil, ""
}

// JSONError says where and why b is not JSON.
func JSONError(b []byte) string {
	var v any
	err := json.Unmarshal(b, &v)
	if err == nil {
		return "unexpected content"
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("%s at byte %d", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
