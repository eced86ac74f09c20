package wasmhost_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

var tsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// echoFields are the exact types of the echo rule's inputs.
var echoFields = []arrow.Field{
	{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "l", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "ts", Type: tsUTC, Nullable: true},
	{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
}

func loadEcho(t *testing.T) *wasmhost.Module {
	t.Helper()
	m, err := newRuntime(t).Load(context.Background(), hosttest.BuildGoRule(t, "testdata/echo"), wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// echoSchema returns the echo inputs with field name changed to type dt
// (or removed when dt is nil), plus extra fields.
func echoSchema(name string, dt arrow.DataType, extra ...arrow.Field) *arrow.Schema {
	var fields []arrow.Field
	for _, f := range echoFields {
		if f.Name == name {
			if dt == nil {
				continue
			}
			f.Type = dt
		}
		fields = append(fields, f)
	}
	return arrow.NewSchema(append(fields, extra...), nil)
}

func TestBind(t *testing.T) {
	m := loadEcho(t)
	dict := func(v arrow.DataType) arrow.DataType {
		return &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: v}
	}
	tests := []struct {
		name    string
		schema  *arrow.Schema
		wantErr string
	}{
		{"exact", echoSchema("", nil), ""},
		{"int32 to int64", echoSchema("l", arrow.PrimitiveTypes.Int32), ""},
		{"int32 to float64", echoSchema("f", arrow.PrimitiveTypes.Int32), ""},
		{"int64 to float64", echoSchema("f", arrow.PrimitiveTypes.Int64), ""},
		{"date32 to timestamp_us", echoSchema("ts", arrow.FixedWidthTypes.Date32), ""},
		{"timestamp without zone", echoSchema("ts", &arrow.TimestampType{Unit: arrow.Microsecond}), ""},
		{"dictionary of strings", echoSchema("s", dict(arrow.BinaryTypes.String)), ""},
		{"dictionary of int32 to int64", echoSchema("l", dict(arrow.PrimitiveTypes.Int32)), ""},
		{"int64 to int32 refused", echoSchema("i", arrow.PrimitiveTypes.Int64),
			`rule "echo": input column "i": declared type int32, found int64 (not a safe widening)`},
		{"float64 to int64 refused", echoSchema("l", arrow.PrimitiveTypes.Float64),
			`rule "echo": input column "l": declared type int64, found float64 (not a safe widening)`},
		{"timestamp ms refused", echoSchema("ts", &arrow.TimestampType{Unit: arrow.Millisecond}),
			`rule "echo": input column "ts": declared type timestamp_us, found timestamp[ms] (not a safe widening)`},
		{"int32 to utf8 refused", echoSchema("s", arrow.PrimitiveTypes.Int32),
			`rule "echo": input column "s": declared type utf8, found int32 (not a safe widening)`},
		{"missing", echoSchema("d", nil),
			`rule "echo": input column "d" not found upstream (available: b, i, l, f, s, ts)`},
		{"clash", echoSchema("", nil, arrow.Field{Name: "s_out", Type: arrow.BinaryTypes.String}),
			`rule "echo": output column "s_out" clashes with an upstream column (list it in the rule's replace key to replace it)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := m.Bind(tt.schema, wasmhost.NewBindConfig())
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v\nwant  %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out := b.OutputSchema()
			if out.NumFields() != tt.schema.NumFields()+7 {
				t.Fatalf("output schema %v", out)
			}
			if f := out.Field(out.NumFields() - 2); f.Name != "ts_out" || !arrow.TypeEqual(f.Type, tsUTC) || !f.Nullable {
				t.Errorf("ts_out field %v", f)
			}
			if v, ok := out.Metadata().GetValue(wasmhost.MetaRuleVersion); !ok || v != "0.1.0" {
				t.Errorf("metadata %v", out.Metadata())
			}
		})
	}
}

// echoRows renders n rows as JSON, with nulls at different rows in each
// column; widened selects the upstream encodings of TestEchoWidened.
func echoRows(n int, widened bool) string {
	var sb strings.Builder
	sb.WriteString("[")
	for r := range n {
		if r > 0 {
			sb.WriteString(",")
		}
		val := func(col int, v string) string {
			if (r+col)%5 == 0 {
				return "null"
			}
			return v
		}
		ts := fmt.Sprint(int64(r) * 86_400_000_000)
		if widened {
			ts = fmt.Sprint(r)
		}
		fmt.Fprintf(&sb, `{"b":%s,"i":%s,"l":%s,"f":%s,"s":%s,"ts":%s,"d":%s}`,
			val(0, fmt.Sprint(r%3 == 0)), val(1, fmt.Sprint(r-7)), val(2, fmt.Sprint(int64(r)<<20)),
			val(3, fmt.Sprint(r*3)), val(4, fmt.Sprintf(`"é%d"`, r%4)),
			val(5, ts), val(6, fmt.Sprint(19000+r)))
	}
	sb.WriteString("]")
	return sb.String()
}

func recordFromJSON(t *testing.T, mem memory.Allocator, schema *arrow.Schema, js string) arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// runEcho evaluates rec sliced at [off, off+n) and checks that each output
// equals the matching column of want, sliced the same way.
func runEcho(t *testing.T, m *wasmhost.Module, mem memory.Allocator, rec, want arrow.RecordBatch, off, n int64) {
	t.Helper()
	ctx := context.Background()
	b, inst := bindInstance(t, m, rec.Schema(), nil, wasmhost.Limits{})
	defer inst.Close(ctx)
	for range 3 { // several cycles on one instance
		in := rec.NewSlice(off, off+n)
		out, err := inst.EvalMap(ctx, b, in, mem)
		in.Release()
		if err != nil {
			t.Fatal(err)
		}
		exp := want.NewSlice(off, off+n)
		for k := range 7 {
			got := out.Column(int(rec.NumCols()) + k)
			if !array.Equal(got, exp.Column(k)) {
				t.Errorf("%s: got %v\nwant %v", echoFields[k].Name, got, exp.Column(k))
			}
		}
		exp.Release()
		out.Release()
	}
}

func TestEchoAllTypes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	m := loadEcho(t)
	rec := recordFromJSON(t, mem, arrow.NewSchema(echoFields, nil), echoRows(40, false))
	defer rec.Release()
	for _, off := range []int64{0, 3, 9, 13} {
		t.Run(fmt.Sprint("offset ", off), func(t *testing.T) { runEcho(t, m, mem, rec, rec, off, 21) })
	}
	t.Run("empty", func(t *testing.T) { runEcho(t, m, mem, rec, rec, 5, 0) })
}

func TestEchoWidened(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	m := loadEcho(t)
	// Upstream: l int32, f int64, ts date32, s dictionary of strings.
	plain := recordFromJSON(t, mem, arrow.NewSchema([]arrow.Field{
		echoFields[0], echoFields[1],
		{Name: "l", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		echoFields[4],
		{Name: "ts", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		echoFields[6],
	}, nil), echoRows(30, true))
	defer plain.Release()
	want := recordFromJSON(t, mem, arrow.NewSchema(echoFields, nil), echoRows(30, false))
	defer want.Release()

	db := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
	defer db.Release()
	strs := plain.Column(4).(*array.String)
	for r := range strs.Len() {
		if strs.IsNull(r) {
			db.AppendNull()
		} else if err := db.AppendString(strs.Value(r)); err != nil {
			t.Fatal(err)
		}
	}
	dictArr := db.NewArray()
	defer dictArr.Release()
	cols := append([]arrow.Array(nil), plain.Columns()...)
	cols[4] = dictArr
	fields := append([]arrow.Field(nil), plain.Schema().Fields()...)
	fields[4].Type = dictArr.DataType()
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, plain.NumRows())
	defer rec.Release()

	for _, off := range []int64{0, 5} {
		t.Run(fmt.Sprint("offset ", off), func(t *testing.T) { runEcho(t, m, mem, rec, want, off, 17) })
	}
}
