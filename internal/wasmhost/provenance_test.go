package wasmhost_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/wasmhost"
)

func TestExpectSHA256(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	m, err := rt.Load(ctx, "testdata/fail.wasm", wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Load(ctx, "testdata/fail.wasm", wasmhost.NewLoadConfig().WithSHA256(strings.ToUpper(m.SHA256))); err != nil {
		t.Fatalf("matching hash refused: %v", err)
	}
	wrong := strings.Repeat("0", 64)
	_, err = rt.Load(ctx, "testdata/fail.wasm", wasmhost.NewLoadConfig().WithSHA256(wrong))
	want := "rule testdata/fail.wasm: sha256 mismatch: expected " + wrong + ", actual " + m.SHA256
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

func TestProvenanceColumns(t *testing.T) {
	ctx := context.Background()
	m, err := newRuntime(t).Load(ctx, "testdata/fail.wasm", wasmhost.NewLoadConfig())
	if err != nil {
		t.Fatal(err)
	}
	inst, err := m.NewInstance(ctx, wasmhost.NewInstanceConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close(ctx)
	for _, dict := range []bool{false, true} {
		t.Run(map[bool]string{false: "utf8", true: "dictionary"}[dict], func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := int32Record(mem, "x", 1, 2, 3)
			defer rec.Release()
			plain, err := m.Bind(rec.Schema(), wasmhost.NewBindConfig())
			if err != nil {
				t.Fatal(err)
			}
			if plain.OutputSchema().HasField(wasmhost.ColRuleName) {
				t.Error("provenance columns without the option")
			}
			b, err := m.Bind(rec.Schema(), wasmhost.NewBindConfig().WithProvenanceColumns(dict))
			if err != nil {
				t.Fatal(err)
			}
			out, err := inst.EvalMap(ctx, b, rec, mem)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Release()
			if !out.Schema().Equal(b.OutputSchema()) {
				t.Fatalf("schema %s, want %s", out.Schema(), b.OutputSchema())
			}
			md := out.Schema().Metadata()
			if v, _ := md.GetValue(wasmhost.MetaRuleSHA256); v != m.SHA256 {
				t.Errorf("metadata sha256 = %q", v)
			}
			for name, want := range map[string]string{wasmhost.ColRuleName: "hostile", wasmhost.ColRuleVersion: "0.0.1", wasmhost.ColRuleSHA256: m.SHA256} {
				col := out.Column(out.Schema().FieldIndices(name)[0])
				if dict != (col.DataType().ID() == arrow.DICTIONARY) {
					t.Errorf("%s is %s", name, col.DataType())
				}
				for r := range col.Len() {
					if got := col.ValueStr(r); got != want {
						t.Errorf("%s[%d] = %q, want %q", name, r, got, want)
					}
				}
			}
		})
	}
	// A map rule's provenance column may not shadow an upstream column.
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int32}, {Name: wasmhost.ColRuleName, Type: arrow.BinaryTypes.String}}, nil)
	if _, err := m.Bind(schema, wasmhost.NewBindConfig().WithProvenanceColumns(false)); err == nil ||
		!strings.Contains(err.Error(), `output column "rule_name" clashes with an upstream column`) {
		t.Errorf("clash err = %v", err)
	}
}

func TestCacheDirEnv(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv(wasmhost.CacheDirEnv, dir)
	rt, err := wasmhost.NewRuntime(ctx, wasmhost.NewRuntimeConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	if _, err := rt.Load(ctx, "testdata/fail.wasm", wasmhost.NewLoadConfig()); err != nil {
		t.Fatal(err)
	}
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Errorf("nothing cached in $%s = %s", wasmhost.CacheDirEnv, dir)
	}
}
