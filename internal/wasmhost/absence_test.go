package wasmhost_test

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

const absenceDir = "../../examples/rules/absence"

// cacheDir is the compilation cache shared by the package's tests.
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigie-host-test-")
	if err != nil {
		panic(err)
	}
	cacheDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newRuntime(t testing.TB) *wasmhost.Runtime {
	t.Helper()
	ctx := context.Background()
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig().WithCacheDir(cacheDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close(ctx) })
	return rt
}

// bindInstance binds m to schema and instantiates it with params and
// limits; the caller closes the instance.
func bindInstance(tb testing.TB, m *wasmhost.Module, schema *arrow.Schema, params map[string]any, limits wasmhost.Limits) (*wasmhost.Binding, *wasmhost.Instance) {
	tb.Helper()
	b, err := m.Bind(schema, wasmhost.NewBindConfig())
	if err != nil {
		tb.Fatal(err)
	}
	inst, err := m.NewInstance(context.Background(), wasmhost.NewInstanceConfig().WithParams(params).WithLimits(limits))
	if err != nil {
		tb.Fatal(err)
	}
	return b, inst
}

func loadAbsence(t *testing.T, rt *wasmhost.Runtime) *wasmhost.Module {
	t.Helper()
	m, err := rt.Load(context.Background(), hosttest.BuildGoRule(t, absenceDir), wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// student rows: id, absent, half_days (nil = null).
type row struct {
	id             string
	absent, halves *int32
}

func i32(v int32) *int32 { return &v }

func absenceRecord(mem memory.Allocator, rows []row) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student", Type: arrow.BinaryTypes.String},
		{Name: "absent_half_days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "half_days", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.id)
		for k, v := range []*int32{r.absent, r.halves} {
			if v == nil {
				b.Field(1 + k).AppendNull()
			} else {
				b.Field(1 + k).(*array.Int32Builder).Append(*v)
			}
		}
	}
	return b.NewRecordBatch()
}

// want is an expected output row; rate < 0 means null, flag 0 null 1
// false 2 true, reason "" null.
type want struct {
	rate   float64
	flag   int
	reason string
}

func checkAbsence(t *testing.T, out arrow.RecordBatch, ids []string, wants []want) {
	t.Helper()
	if got := out.Schema().NumFields(); got != 6 {
		t.Fatalf("output has %d fields, want 6: %v", got, out.Schema())
	}
	student := out.Column(0).(*array.String)
	rate := out.Column(3).(*array.Float64)
	flag := out.Column(4).(*array.Boolean)
	reason := out.Column(5).(*array.String)
	if int(out.NumRows()) != len(wants) {
		t.Fatalf("%d rows, want %d", out.NumRows(), len(wants))
	}
	for i, w := range wants {
		if student.Value(i) != ids[i] {
			t.Errorf("row %d: student %q, want %q", i, student.Value(i), ids[i])
		}
		if w.rate < 0 != rate.IsNull(i) || (w.rate >= 0 && math.Abs(rate.Value(i)-w.rate) > 1e-12) {
			t.Errorf("row %d (%s): rate %v (null %v), want %v", i, ids[i], rate.Value(i), rate.IsNull(i), w.rate)
		}
		gotFlag := 0
		if flag.IsValid(i) {
			gotFlag = 1
			if flag.Value(i) {
				gotFlag = 2
			}
		}
		if gotFlag != w.flag {
			t.Errorf("row %d (%s): flag %d, want %d", i, ids[i], gotFlag, w.flag)
		}
		gotReason := ""
		if reason.IsValid(i) {
			gotReason = reason.Value(i)
			if gotReason == "" {
				t.Errorf("row %d: empty reason", i)
			}
		}
		if gotReason != w.reason {
			t.Errorf("row %d (%s): reason %q, want %q", i, ids[i], gotReason, w.reason)
		}
	}
}

var absenceRows = []row{
	{"ana", i32(7), i32(40)},  // 17.5 % flagged
	{"ben", i32(2), i32(40)},  // 5 %
	{"cleo", nil, i32(40)},    // absent null
	{"dan", i32(3), nil},      // half_days null
	{"eve", i32(0), i32(0)},   // zero half-days
	{"fay", i32(4), i32(40)},  // exactly 10 %: flagged
	{"gus", i32(40), i32(40)}, // 100 %
	{"hal", i32(0), i32(38)},  // 0 %
	{"ida", i32(5), i32(20)},  // 25 %
	{"jo", i32(1), i32(3)},    // 33.3 %
	{"kim", nil, nil},
}

var absenceWants = []want{
	{0.175, 2, "absent 7 of 40 half-days (17.5 %) >= 10 % threshold"},
	{0.05, 1, ""},
	{-1, 0, ""},
	{-1, 0, ""},
	{-1, 0, ""},
	{0.1, 2, "absent 4 of 40 half-days (10 %) >= 10 % threshold"},
	{1, 2, "absent 40 of 40 half-days (100 %) >= 10 % threshold"},
	{0, 1, ""},
	{0.25, 2, "absent 5 of 20 half-days (25 %) >= 10 % threshold"},
	{1.0 / 3, 2, "absent 1 of 3 half-days (33.3 %) >= 10 % threshold"},
	{-1, 0, ""},
}

func ids(rows []row) []string {
	s := make([]string, len(rows))
	for i, r := range rows {
		s[i] = r.id
	}
	return s
}

func TestAbsence(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	m := loadAbsence(t, newRuntime(t))
	if m.Manifest.Name != "absence" || m.Manifest.Version != "1.0.0" || len(m.SHA256) != 64 {
		t.Fatalf("manifest %+v sha %q", m.Manifest, m.SHA256)
	}
	rec := absenceRecord(mem, absenceRows)
	defer rec.Release()
	b, inst := bindInstance(t, m, rec.Schema(), nil, wasmhost.Limits{})
	defer inst.Close(ctx)

	out, err := inst.EvalMap(ctx, b, rec, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if !out.Schema().Equal(b.OutputSchema()) {
		t.Errorf("schema %v, want %v", out.Schema(), b.OutputSchema())
	}
	md := out.Schema().Metadata()
	if v, _ := md.GetValue(wasmhost.MetaRuleName); v != "absence" {
		t.Errorf("metadata %v", md)
	}
	if v, _ := md.GetValue(wasmhost.MetaRuleSHA256); v != m.SHA256 {
		t.Errorf("metadata sha256 %q, want %q", v, m.SHA256)
	}
	checkAbsence(t, out, ids(absenceRows), absenceWants)
}

func TestAbsenceThresholdParam(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	m := loadAbsence(t, newRuntime(t))
	rec := absenceRecord(mem, absenceRows[:2])
	defer rec.Release()
	b, inst := bindInstance(t, m, rec.Schema(), map[string]any{"threshold": 0.2}, wasmhost.Limits{})
	defer inst.Close(ctx)
	out, err := inst.EvalMap(ctx, b, rec, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	checkAbsence(t, out, ids(absenceRows[:2]), []want{{0.175, 1, ""}, {0.05, 1, ""}})

	_, err = m.NewInstance(ctx, wasmhost.NewInstanceConfig().WithParams(map[string]any{"threshold": 2}))
	if err == nil || !strings.Contains(err.Error(), "vigie_init returned 1: threshold 2 is not between 0 and 1") {
		t.Errorf("init error %v", err)
	}
	_, err = m.NewInstance(ctx, wasmhost.NewInstanceConfig().WithParams(map[string]any{"treshold": 0.2}))
	if err == nil || !strings.Contains(err.Error(), `did you mean "threshold"?`) {
		t.Errorf("param error %v", err)
	}
}

// TestAbsenceSlicedAndRepeated runs slices at offsets that are not multiples
// of 8 through one instance, many times, and checks that the instance's
// memory stops growing.
func TestAbsenceSlicedAndRepeated(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	m := loadAbsence(t, newRuntime(t))

	// 3 copies of the rows, so that slices cross byte boundaries.
	var rows []row
	var wants []want
	for range 3 {
		rows = append(rows, absenceRows...)
		wants = append(wants, absenceWants...)
	}
	full := absenceRecord(mem, rows)
	defer full.Release()
	b, inst := bindInstance(t, m, full.Schema(), nil, wasmhost.Limits{})
	defer inst.Close(ctx)

	var sizes []uint32
	for iter := range 40 {
		off := int64(iter%7*3 + 1) // 1, 4, 7, 10, ...: rarely a multiple of 8
		end := off + 13
		rec := full.NewSlice(off, end)
		out, err := inst.EvalMap(ctx, b, rec, mem)
		rec.Release()
		if err != nil {
			t.Fatalf("batch %d: %v", iter, err)
		}
		checkAbsence(t, out, ids(rows[off:end]), wants[off:end])
		out.Release()
		sizes = append(sizes, inst.MemorySize())
	}
	if sizes[len(sizes)-1] != sizes[9] {
		t.Errorf("memory grew from %d after 10 batches to %d after %d", sizes[9], sizes[len(sizes)-1], len(sizes))
	}
}
