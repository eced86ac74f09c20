package wasmhost

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/rules/abi"
)

// Schema metadata keys set on a rule's output schema, so that every row can
// be traced to the rule that produced it.
const (
	MetaRuleName    = "vigie.rule.name"
	MetaRuleVersion = "vigie.rule.version"
	MetaRuleSHA256  = "vigie.rule.sha256"
)

// Names of the provenance columns added by BindConfig.WithProvenanceColumns.
const (
	ColRuleName    = "rule_name"
	ColRuleVersion = "rule_version"
	ColRuleSHA256  = "rule_sha256"
)

// Binding ties a module's inputs to the columns of an upstream schema. It
// is immutable and safe for concurrent use by several instances.
type Binding struct {
	module   *Module
	upstream *arrow.Schema
	inputs   []boundInput
	output   *arrow.Schema
	outputs  []arrow.Field // the rule's outputs, then the provenance columns
	meta     *arrow.Metadata
	prov     provenance
	// keep lists the upstream columns a map result carries, in order: all
	// of them but those an output replaces.
	keep []int
}

// provenance builds the provenance columns of a result.
type provenance struct {
	values []string // name, version, sha256; nil: no columns
	dict   bool
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
// It refuses a missing column, any other type, and, for a map rule, an
// output (or provenance column) named like an upstream column. A group
// rule's outputs follow the group key columns, not the upstream ones:
// GroupOutputSchema checks them against the keys.
//
// cfg says which outputs may replace upstream columns and whether results
// carry provenance columns (NewBindConfig for neither).
func (m *Module) Bind(upstream *arrow.Schema, cfg BindConfig) (*Binding, error) {
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
	for _, out := range man.Outputs {
		b.outputs = append(b.outputs, arrow.Field{Name: out.Name, Type: ArrowType(out.Type), Nullable: true})
	}
	if cfg.provColumns {
		b.prov = provenance{values: []string{man.Name, man.Version, m.SHA256}, dict: cfg.provDict}
		typ := arrow.DataType(arrow.BinaryTypes.String)
		if cfg.provDict {
			typ = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
		}
		for _, name := range []string{ColRuleName, ColRuleVersion, ColRuleSHA256} {
			for _, out := range man.Outputs {
				if out.Name == name {
					return nil, fmt.Errorf("rule %q: output column %q clashes with a provenance column", man.Name, name)
				}
			}
			b.outputs = append(b.outputs, arrow.Field{Name: name, Type: typ})
		}
	}
	meta := upstream.Metadata()
	keys := append(meta.Keys(), MetaRuleName, MetaRuleVersion, MetaRuleSHA256)
	vals := append(meta.Values(), man.Name, man.Version, m.SHA256)
	b.meta = withoutDuplicateKeys(keys, vals)
	if man.Kind == abi.KindGroup {
		b.output = arrow.NewSchema(b.outputs, b.meta)
		return b, nil
	}
	replaced := map[string]bool{}
	for _, name := range cfg.replace {
		isOut := false
		for _, f := range b.outputs {
			isOut = isOut || f.Name == name
		}
		if !isOut || !upstream.HasField(name) {
			return nil, fmt.Errorf("rule %q: cannot replace %q: it must be both an output of the rule and an upstream column", man.Name, name)
		}
		replaced[name] = true
	}
	for _, f := range b.outputs {
		if upstream.HasField(f.Name) && !replaced[f.Name] {
			return nil, fmt.Errorf("rule %q: output column %q clashes with an upstream column (list it in the rule's replace key to replace it)", man.Name, f.Name)
		}
	}
	var fields []arrow.Field
	for i, f := range upstream.Fields() {
		if !replaced[f.Name] {
			b.keep = append(b.keep, i)
			fields = append(fields, f)
		}
	}
	fields = append(fields, b.outputs...)
	b.output = arrow.NewSchema(fields, b.meta)
	return b, nil
}

// GroupOutputSchema returns the schema of a group rule's result once the
// engine has prepended the group key columns to what EvalGroup returns:
// keys, then the outputs (then the provenance columns), with the rule's
// metadata. It refuses an output named like a key. For a map rule it
// returns OutputSchema and ignores keys.
func (b *Binding) GroupOutputSchema(keys []arrow.Field) (*arrow.Schema, error) {
	if b.module.Manifest.Kind != abi.KindGroup {
		return b.output, nil
	}
	fields := append([]arrow.Field(nil), keys...)
	for _, f := range b.outputs {
		for _, k := range keys {
			if k.Name == f.Name {
				return nil, fmt.Errorf("rule %q: output column %q clashes with a group key column", b.module.Manifest.Name, f.Name)
			}
		}
		fields = append(fields, f)
	}
	return arrow.NewSchema(fields, b.meta), nil
}

// appendProvenance appends the provenance columns of n rows to cols, when
// the binding asks for them. The caller releases them.
func (b *Binding) appendProvenance(cols []arrow.Array, n int, mem memory.Allocator) []arrow.Array {
	for _, v := range b.prov.values {
		cols = append(cols, constantString(mem, v, n, b.prov.dict))
	}
	return cols
}

// constantString returns n rows of v, as utf8 or as a dictionary of one
// value.
func constantString(mem memory.Allocator, v string, n int, dict bool) arrow.Array {
	if dict {
		idx := memory.NewResizableBuffer(mem)
		idx.Resize(4 * n)
		clear(idx.Bytes())
		defer idx.Release()
		values := constantString(mem, v, 1, false)
		defer values.Release()
		typ := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
		data := array.NewData(typ, n, []*memory.Buffer{nil, idx}, nil, 0, 0)
		data.SetDictionary(values.Data())
		defer data.Release()
		return array.MakeFromData(data)
	}
	offsets := memory.NewResizableBuffer(mem)
	offsets.Resize(4 * (n + 1))
	defer offsets.Release()
	o := arrow.Int32Traits.CastFromBytes(offsets.Bytes())
	for i := range o {
		o[i] = int32(i * len(v))
	}
	values := memory.NewResizableBuffer(mem)
	values.Resize(n * len(v))
	defer values.Release()
	vb := values.Bytes()
	for i := range n {
		copy(vb[i*len(v):], v)
	}
	data := array.NewData(arrow.BinaryTypes.String, n, []*memory.Buffer{nil, offsets, values}, nil, 0, 0)
	defer data.Release()
	return array.MakeFromData(data)
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

// OutputSchema returns the schema of the records that the binding's
// evaluations return. For a map rule (EvalMap): the upstream fields
// followed by the rule's outputs (all nullable). For a group rule
// (EvalGroup): the rule's outputs only, one row per group; the engine
// prepends the key columns (see GroupOutputSchema). The provenance
// columns follow when asked for (BindConfig.WithProvenanceColumns); the metadata
// always holds the rule's name, version and SHA-256.
func (b *Binding) OutputSchema() *arrow.Schema { return b.output }

// Upstream returns the schema the binding was made for.
func (b *Binding) Upstream() *arrow.Schema { return b.upstream }

// arrowRecord builds a record; it retains cols.
func arrowRecord(s *arrow.Schema, cols []arrow.Array, n int64) arrow.RecordBatch {
	return array.NewRecordBatch(s, cols, n)
}
