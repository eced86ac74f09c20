package wasmhost_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// The benchmark rule, in three forms: plain Go over Arrow arrays
// (mapNative), hand-written WAT and Go with the SDK:
//
//	score = 0.5*a + 0.3*b + 0.2*c; flag = score > 0.5; null where an input is.
const (
	benchWAT   = "../../examples/rules/bench_map_wat/bench_map.wasm"
	benchC     = "../../examples/rules/bench_map_c/bench_map.wasm"
	benchGoDir = "../../examples/rules/bench_map"
	benchRows  = 64 << 10
)

// benchRecord returns n rows of a, b, c in [0, 1); every nullEvery-th row
// of b is null, and of c every (nullEvery+2)-th from row 1 (0: no nulls).
func benchRecord(mem memory.Allocator, n, nullEvery int) arrow.RecordBatch {
	rng := rand.New(rand.NewPCG(1, 2))
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "c", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	cols := make([]arrow.Array, 3)
	for k := range cols {
		bld := array.NewFloat64Builder(mem)
		for i := range n {
			if nullEvery > 0 && (k == 1 && i%nullEvery == 0 || k == 2 && i%(nullEvery+2) == 1) {
				bld.AppendNull()
				continue
			}
			bld.Append(rng.Float64())
		}
		cols[k] = bld.NewArray()
		bld.Release()
		defer cols[k].Release()
	}
	return array.NewRecordBatch(schema, cols, int64(n))
}

// mapNative is the benchmark rule in plain Go over Arrow arrays: it
// returns the score and flag columns, allocated from mem.
func mapNative(rec arrow.RecordBatch, mem memory.Allocator) (score, flag arrow.Array) {
	n := int(rec.NumRows())
	ca, cb, cc := rec.Column(0).(*array.Float64), rec.Column(1).(*array.Float64), rec.Column(2).(*array.Float64)
	a, b, c := ca.Float64Values(), cb.Float64Values(), cc.Float64Values()
	sBuf, fBuf := memory.NewResizableBuffer(mem), memory.NewResizableBuffer(mem)
	sBuf.Resize(8 * n)
	fBuf.Resize(int(bitutil.BytesForBits(int64(n))))
	s, f := arrow.Float64Traits.CastFromBytes(sBuf.Bytes()), fBuf.Bytes()
	b, c = b[:len(a)], c[:len(a)]
	var bits byte
	for r := range a {
		v := 0.5*a[r] + 0.3*b[r] + 0.2*c[r]
		s[r] = v
		bits |= b2u8(v > 0.5) << (r & 7)
		if r&7 == 7 {
			f[r>>3], bits = bits, 0
		}
	}
	if n&7 != 0 {
		f[n>>3] = bits
	}
	var valid *memory.Buffer
	nulls := 0
	if ca.NullN()+cb.NullN()+cc.NullN() > 0 {
		valid = memory.NewResizableBuffer(mem)
		valid.Resize(int(bitutil.BytesForBits(int64(n))))
		vb := valid.Bytes()
		for r := range n {
			ok := ca.IsValid(r) && cb.IsValid(r) && cc.IsValid(r)
			bitutil.SetBitTo(vb, r, ok)
			if !ok {
				nulls++
			}
		}
		defer valid.Release()
	}
	sd := array.NewData(arrow.PrimitiveTypes.Float64, n, []*memory.Buffer{valid, sBuf}, nil, nulls, 0)
	fd := array.NewData(arrow.FixedWidthTypes.Boolean, n, []*memory.Buffer{valid, fBuf}, nil, nulls, 0)
	sBuf.Release()
	fBuf.Release()
	defer sd.Release()
	defer fd.Release()
	return array.MakeFromData(sd), array.MakeFromData(fd)
}

// b2u8 converts without a branch (the comparison is unpredictable).
func b2u8(b bool) byte {
	var x byte
	if b {
		x = 1
	}
	return x
}

// TestBenchRules checks that the WAT and Go benchmark rules compute what
// mapNative does, nulls included.
func TestBenchRules(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	rules := benchRules(t)
	if raw, _ := buildBenchC(t); raw != "" {
		rules = append(rules, struct{ name, path string }{"c_simd_source", raw})
	}
	for _, r := range rules {
		name, path := r.name, r.path
		for _, nullEvery := range []int{0, 3} {
			t.Run(fmt.Sprintf("%s/nulls every %d", name, nullEvery), func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				m, err := rt.Load(ctx, path, wasmhost.NewLoadConfig())
				if err != nil {
					t.Fatal(err)
				}
				rec := benchRecord(mem, 1003, nullEvery)
				defer rec.Release()
				b, inst := bindInstance(t, m, rec.Schema(), nil, wasmhost.Limits{})
				defer inst.Close(ctx)
				for range 2 {
					out, err := inst.EvalMap(ctx, b, rec, mem)
					if err != nil {
						t.Fatal(err)
					}
					score, flag := mapNative(rec, mem)
					for r := range score.Len() {
						if out.Column(3).ValueStr(r) != score.ValueStr(r) || out.Column(4).ValueStr(r) != flag.ValueStr(r) {
							t.Fatalf("row %d: got %s, %s; want %s, %s", r,
								out.Column(3).ValueStr(r), out.Column(4).ValueStr(r), score.ValueStr(r), flag.ValueStr(r))
						}
					}
					if !array.Equal(out.Column(3), score) || !array.Equal(out.Column(4), flag) {
						t.Fatal("outputs differ from mapNative's")
					}
					if nullEvery > 0 && out.Column(3).NullN() == 0 {
						t.Error("no nulls")
					}
					score.Release()
					flag.Release()
					out.Release()
				}
			})
		}
	}
}

// buildBenchC compiles bench_map.c as its header says, so that the
// committed bench_map.wasm is known to come from the committed source, and
// bench_map_sdk.c with the C SDK. Without clang it returns "" for both, and
// without binaryen's wasm-opt it builds them without it (either fails the
// test when VIGIE_REQUIRE_TOOLCHAINS=1).
func buildBenchC(t testing.TB) (raw, sdk string) {
	required := os.Getenv("VIGIE_REQUIRE_TOOLCHAINS") == "1"
	if _, err := exec.LookPath("clang"); err != nil {
		if required {
			t.Fatal("clang not found (apt-get install clang lld) and VIGIE_REQUIRE_TOOLCHAINS=1")
		}
		t.Log("clang not found: bench_map.c and bench_map_sdk.c not built")
		return "", ""
	}
	_, err := exec.LookPath("wasm-opt")
	if err != nil && required {
		t.Fatal("wasm-opt not found (apt-get install binaryen) and VIGIE_REQUIRE_TOOLCHAINS=1")
	}
	dir, src := t.TempDir(), filepath.Dir(benchC)
	raw, sdk = filepath.Join(dir, "bench_map.wasm"), filepath.Join(dir, "bench_map_sdk.wasm")
	cmds := []*exec.Cmd{
		exec.Command("clang", "--target=wasm32", "-O2", "-msimd128", "-nostdlib", "-ffreestanding",
			"-Wall", "-Wextra", "-Werror", "-Wl,--no-entry", "-o", raw, filepath.Join(src, "bench_map.c")),
		exec.Command("wasm-opt", "-O3", "--low-memory-unused", "--strip-debug", "--strip-producers",
			"--strip-target-features", raw, "-o", raw),
		exec.Command("../../rules/sdk/c/build.sh", sdk, filepath.Join(src, "bench_map_sdk.c"), "-msimd128"),
	}
	if err != nil {
		t.Log("wasm-opt not found: bench_map.c built without it")
		cmds[0].Args = append(cmds[0].Args, "-Wl,--strip-all")
		cmds = append(cmds[:1], cmds[2])
	}
	for _, cmd := range cmds {
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, b)
		}
	}
	return raw, sdk
}

// benchRules returns the wasm forms of the benchmark rule: hand-written
// WAT, C with SIMD (committed binary), C with SIMD and the C SDK (when
// clang is there) and Go with the SDK.
func benchRules(t testing.TB) []struct{ name, path string } {
	rules := []struct{ name, path string }{{"wat", benchWAT}, {"c_simd", benchC}}
	if _, sdk := buildBenchC(t); sdk != "" {
		rules = append(rules, struct{ name, path string }{"c_sdk_simd", sdk})
	}
	return append(rules, struct{ name, path string }{"go", hosttest.BuildGoRule(t, benchGoDir)})
}

// reportRows reports rows per second and sets the bytes processed per op
// (the input columns).
func reportRows(b *testing.B, rows int, bytesPerOp int64) {
	b.SetBytes(bytesPerOp)
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkMapNative(b *testing.B) {
	mem := memory.NewGoAllocator()
	rec := benchRecord(mem, benchRows, 0)
	defer rec.Release()
	for b.Loop() {
		s, f := mapNative(rec, mem)
		cols := append(rec.Columns()[:3:3], s, f)
		out := array.NewRecordBatch(arrow.NewSchema(append(rec.Schema().Fields(),
			arrow.Field{Name: "score", Type: s.DataType(), Nullable: true},
			arrow.Field{Name: "flag", Type: f.DataType(), Nullable: true}), nil), cols, rec.NumRows())
		s.Release()
		f.Release()
		out.Release()
	}
	reportRows(b, benchRows, 3*8*benchRows)
}

func BenchmarkMapWasm(b *testing.B) {
	for _, tc := range benchRules(b) {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			mem := memory.NewGoAllocator()
			m, err := newRuntime(b).Load(ctx, tc.path, wasmhost.NewLoadConfig())
			if err != nil {
				b.Fatal(err)
			}
			rec := benchRecord(mem, benchRows, 0)
			defer rec.Release()
			bind, inst := bindInstance(b, m, rec.Schema(), nil, wasmhost.Limits{})
			defer inst.Close(ctx)
			for b.Loop() {
				out, err := inst.EvalMap(ctx, bind, rec, mem)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
			reportRows(b, benchRows, 3*8*benchRows)
		})
	}
}

// BenchmarkGroupWasm runs the meanscore group rule (Go SDK) over 1M rows in
// 10K groups of 100.
func BenchmarkGroupWasm(b *testing.B) {
	const rows, groups = 1 << 20, 10_000
	ctx := context.Background()
	mem := memory.NewGoAllocator()
	m := loadMeanScore(b)
	keys := make([]string, rows)
	scores := make([]*float64, rows)
	offsets := make([]uint32, groups+1)
	for g := range groups {
		offsets[g+1] = uint32((g + 1) * rows / groups)
		for r := offsets[g]; r < offsets[g+1]; r++ {
			keys[r] = fmt.Sprint(g)
			v := float64(r % 20)
			scores[r] = &v
		}
	}
	rec := scoreRecord(mem, keys, scores)
	defer rec.Release()
	bind, inst := bindInstance(b, m, rec.Schema(), nil, wasmhost.Limits{})
	defer inst.Close(ctx)
	for b.Loop() {
		out, err := inst.EvalGroup(ctx, bind, rec, offsets, mem)
		if err != nil {
			b.Fatal(err)
		}
		out.Release()
	}
	reportRows(b, rows, 8*rows)
}

// BenchmarkInstanceStart measures NewInstance (instantiation, _initialize
// and vigie_init) once the module is loaded and its compilation cached.
func BenchmarkInstanceStart(b *testing.B) {
	for _, tc := range []struct{ name, path string }{
		{"wat", benchWAT},
		{"go", hosttest.BuildGoRule(b, benchGoDir)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			rt := newRuntime(b)
			if _, err := rt.Load(ctx, tc.path, wasmhost.NewLoadConfig()); err != nil { // warms the cache
				b.Fatal(err)
			}
			m, err := rt.Load(ctx, tc.path, wasmhost.NewLoadConfig())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
				if err != nil {
					b.Fatal(err)
				}
				_ = inst.Close(ctx)
			}
		})
	}
}
