package host

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/vigie-edu/vigie/rules/abi"
)

// Schema metadata keys set on a rule's output schema, so that every row can
// be traced to the rule that produced it.
const (
	MetaRuleName    = "vigie.rule.name"
	MetaRuleVersion = "vigie.rule.version"
	MetaRuleSHA256  = "vigie.rule.sha256"
)

// Binding ties a module's inputs to the columns of an upstream schema. It
// is immutable and safe for concurrent use by several instances.
type Binding struct {
	module   *Module
	upstream *arrow.Schema
	inputs   []boundInput
	output   *arrow.Schema
}

// boundInput is a manifest input and the upstream column that feeds it.
type boundInput struct {
	spec  abi.Column
	index int            // upstream column
	found arrow.DataType // upstream type
}

// ArrowType returns the Arrow type of an ABI type.
func ArrowType(t abi.Type) arrow.DataType {
	switch t {
	case abi.Bool:
		return arrow.FixedWidthTypes.Boolean
	case abi.Int32:
		return arrow.PrimitiveTypes.Int32
	case abi.Int64:
		return arrow.PrimitiveTypes.Int64
	case abi.Float64:
		return arrow.PrimitiveTypes.Float64
	case abi.Utf8:
		return arrow.BinaryTypes.String
	case abi.TimestampUS:
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case abi.Date32:
		return arrow.FixedWidthTypes.Date32
	}
	return nil
}

// Bind binds the module's inputs by name to the columns of upstream,
// accepting the exact type or a safe widening (int32 to int64 or float64,
// int64 to float64, date32 to timestamp_us, a dictionary to its value type).
// It refuses a missing column, any other type, and an output named like an
// upstream column.
func (m *Module) Bind(upstream *arrow.Schema) (*Binding, error) {
	man := m.Manifest
	b := &Binding{module: m, upstream: upstream}
	for _, in := range man.Inputs {
		idx := upstream.FieldIndices(in.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("rule %q: input column %q not found upstream (available: %s)",
				man.Name, in.Name, fieldNames(upstream))
		}
		if len(idx) > 1 {
			return nil, fmt.Errorf("rule %q: input column %q is ambiguous: %d upstream columns have that name",
				man.Name, in.Name, len(idx))
		}
		found := upstream.Field(idx[0]).Type
		if !bindable(in.Type, found) {
			return nil, fmt.Errorf("rule %q: input column %q: declared type %s, found %s (not a safe widening)",
				man.Name, in.Name, in.Type, found)
		}
		b.inputs = append(b.inputs, boundInput{spec: in, index: idx[0], found: found})
	}
	fields := append([]arrow.Field(nil), upstream.Fields()...)
	for _, out := range man.Outputs {
		if upstream.HasField(out.Name) {
			return nil, fmt.Errorf("rule %q: output column %q clashes with an upstream column", man.Name, out.Name)
		}
		fields = append(fields, arrow.Field{Name: out.Name, Type: ArrowType(out.Type), Nullable: true})
	}
	meta := upstream.Metadata()
	keys := append(meta.Keys(), MetaRuleName, MetaRuleVersion, MetaRuleSHA256)
	vals := append(meta.Values(), man.Name, man.Version, m.SHA256)
	b.output = arrow.NewSchema(fields, withoutDuplicateKeys(keys, vals))
	return b, nil
}

// withoutDuplicateKeys builds metadata where later keys win (a rule
// downstream of another rule records itself).
func withoutDuplicateKeys(keys, vals []string) *arrow.Metadata {
	pos := map[string]int{}
	var k, v []string
	for i, key := range keys {
		if p, ok := pos[key]; ok {
			v[p] = vals[i]
			continue
		}
		pos[key] = len(k)
		k, v = append(k, key), append(v, vals[i])
	}
	md := arrow.NewMetadata(k, v)
	return &md
}

func fieldNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// bindable reports whether values of type found can be passed as declared.
func bindable(declared abi.Type, found arrow.DataType) bool {
	if d, ok := found.(*arrow.DictionaryType); ok {
		found = d.ValueType
	}
	switch found.ID() {
	case arrow.BOOL:
		return declared == abi.Bool
	case arrow.INT32:
		return declared == abi.Int32 || declared == abi.Int64 || declared == abi.Float64
	case arrow.INT64:
		return declared == abi.Int64 || declared == abi.Float64
	case arrow.FLOAT64:
		return declared == abi.Float64
	case arrow.STRING:
		return declared == abi.Utf8
	case arrow.TIMESTAMP:
		return declared == abi.TimestampUS && found.(*arrow.TimestampType).Unit == arrow.Microsecond
	case arrow.DATE32:
		return declared == abi.Date32 || declared == abi.TimestampUS
	}
	return false
}

// OutputSchema returns the schema of the records EvalMap returns: the
// upstream fields followed by the rule's outputs (all nullable), with the
// rule's name, version and SHA-256 in the metadata.
func (b *Binding) OutputSchema() *arrow.Schema { return b.output }

// Upstream returns the schema the binding was made for.
func (b *Binding) Upstream() *arrow.Schema { return b.upstream }

// arrowRecord builds a record; it retains cols.
func arrowRecord(s *arrow.Schema, cols []arrow.Array, n int64) arrow.RecordBatch {
	return array.NewRecordBatch(s, cols, n)
}
