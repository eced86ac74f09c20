package privacy

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testKey(t testing.TB, s string) *Key {
	t.Helper()
	k, err := NewKey([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPseudonym(t *testing.T) {
	k := testKey(t, secret)
	other := testKey(t, strings.Repeat("z", 64))
	a, b := k.Pseudonym("S0001"), k.Pseudonym("S0002")
	if a != k.Pseudonym("S0001") {
		t.Error("the same value gets two pseudonyms")
	}
	if a == b || a == other.Pseudonym("S0001") {
		t.Errorf("pseudonyms collide: %s %s %s", a, b, other.Pseudonym("S0001"))
	}
	if len(a) != PseudonymLen || !IsPseudonym(a) || IsPseudonym("S0001") || IsPseudonym("ps_S0001") {
		t.Errorf("pseudonym %q: length %d, IsPseudonym %v", a, len(a), IsPseudonym(a))
	}
	if strings.Contains(a, "S0001") {
		t.Errorf("pseudonym %q holds the value", a)
	}
	if k.ID() == other.ID() || !strings.HasPrefix(k.ID(), "k") || len(k.ID()) != 9 {
		t.Errorf("key ids %q %q", k.ID(), other.ID())
	}
	if strings.Contains(secret, k.ID()[1:]) {
		t.Errorf("key id %q is part of the key", k.ID())
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "key")
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tooshort"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIE_TEST_KEY", secret)
	want := testKey(t, secret).ID()
	tests := []struct {
		name, env, file string
		noKey           bool
		errText         string
	}{
		{name: "env", env: "VIGIE_TEST_KEY"},
		{name: "file, newline trimmed", file: good},
		{name: "unset env", env: "VIGIE_TEST_UNSET", noKey: true},
		{name: "missing file", file: filepath.Join(dir, "nope"), noKey: true},
		{name: "neither", noKey: true},
		{name: "short", file: short, errText: "at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKey(tt.env, tt.file)
			switch {
			case tt.noKey:
				if !errors.Is(err, ErrNoKey) {
					t.Fatalf("err = %v, want ErrNoKey", err)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want %q", err, tt.errText)
				}
			case err != nil:
				t.Fatal(err)
			case k.ID() != want:
				t.Errorf("key id %s, want %s", k.ID(), want)
			}
		})
	}
}

func batch(mem memory.Allocator) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "mark", Type: arrow.PrimitiveTypes.Float64},
		{Name: "ine", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"S0001", "S0002", "S0001", ""}, []bool{true, true, true, false})
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{12, 14, 9, 10}, nil)
	b.Field(2).(*array.Int64Builder).AppendValues([]int64{42, 43, 42, 0}, []bool{true, true, true, false})
	return b.NewRecordBatch()
}

func TestPseudonymiserApply(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	k := testKey(t, secret)
	rec := batch(mem)
	defer rec.Release()
	ps, err := NewPseudonymiser(k, rec.Schema(), []string{"student_id", "ine", "absent_column"})
	if err != nil {
		t.Fatal(err)
	}
	l := NewLookup(nil)
	ps.RecordTo(l)
	out, err := ps.Apply(mem, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	if !out.Schema().Equal(ps.Schema()) || out.Schema().Field(2).Type.ID() != arrow.STRING {
		t.Fatalf("schema %s", out.Schema())
	}
	if v, _ := out.Schema().Metadata().GetValue(MetaKeyID); v != k.ID() {
		t.Errorf("metadata key id %q, want %q", v, k.ID())
	}
	ids := out.Column(0).(*array.String)
	ine := out.Column(2).(*array.String)
	if ids.Value(0) != k.Pseudonym("S0001") || ids.Value(1) != k.Pseudonym("S0002") || ids.Value(2) != ids.Value(0) || !ids.IsNull(3) {
		t.Errorf("student_id = %v", ids)
	}
	if ine.Value(0) != k.Pseudonym("42") || !ine.IsNull(3) {
		t.Errorf("ine = %v", ine)
	}
	if c, ok := l.Clear(ids.Value(1)); !ok || c != "S0002" {
		t.Errorf("lookup %q = %q, %v", ids.Value(1), c, ok)
	}
	if out.Column(1) != rec.Column(1) {
		t.Error("an untouched column was copied")
	}

	none, err := NewPseudonymiser(k, rec.Schema(), []string{"other"})
	if none != nil || err != nil {
		t.Errorf("no column to pseudonymise: %v, %v", none, err)
	}
	if _, err := NewPseudonymiser(k, rec.Schema(), []string{"mark"}); err == nil {
		t.Error("a float column was accepted")
	}
}

func TestLookupRotation(t *testing.T) {
	old, cur := testKey(t, strings.Repeat("o", 40)), testKey(t, secret)
	l := NewLookup(old)
	ps, err := NewPseudonymiser(cur, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil), []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	ps.RecordTo(l)
	ps.Pseudonym([]byte("S0009"))
	for _, p := range []string{cur.Pseudonym("S0009"), old.Pseudonym("S0009")} {
		if c, ok := l.Clear(p); !ok || c != "S0009" {
			t.Errorf("lookup %s = %q, %v", p, c, ok)
		}
	}
	ks := Keys{Current: cur, Previous: old}
	if got := ks.Pseudonyms("S0009"); len(got) != 2 || got[1] != old.Pseudonym("S0009") {
		t.Errorf("Pseudonyms = %v", got)
	}
}

// BenchmarkApply measures pseudonymisation of one 64Ki-row batch with
// 600 distinct identifiers (the bundled academy: every value repeats),
// and with every value distinct (no cache hit). Rows/s = rows/op ÷ time.
func BenchmarkApply(b *testing.B) {
	for _, distinct := range []int{600, 1 << 16} {
		b.Run(map[int]string{600: "600ids", 1 << 16: "alldistinct"}[distinct], func(b *testing.B) {
			mem := memory.NewGoAllocator()
			schema := arrow.NewSchema([]arrow.Field{{Name: "student_id", Type: arrow.BinaryTypes.String}}, nil)
			sb := array.NewStringBuilder(mem)
			const rows = 1 << 16
			for i := range rows {
				sb.Append("S" + strconv.Itoa(100000+i%distinct))
			}
			col := sb.NewArray()
			rec := array.NewRecordBatch(schema, []arrow.Array{col}, rows)
			col.Release()
			defer rec.Release()
			ps, err := NewPseudonymiser(testKey(b, secret), schema, []string{"student_id"})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if distinct > cacheMax/2 {
					clear(ps.cache) // measure MACs, not the cache
				}
				out, err := ps.Apply(mem, rec)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
