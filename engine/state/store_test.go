package state

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var schema = arrow.NewSchema([]arrow.Field{
	{Name: "student", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
}, nil)

type row struct {
	student string
	day     int32
	score   float64
}

func record(mem memory.Allocator, rows []row) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.student)
		b.Field(1).(*array.Date32Builder).Append(arrow.Date32(r.day))
		if i%4 == 3 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(r.score)
		}
		b.Field(3).(*array.Int32Builder).Append(int32(i))
		b.Field(4).(*array.BooleanBuilder).Append(i%2 == 0)
	}
	return b.NewRecordBatch()
}

// scanText renders every group of a scan as "student:day,day,... |" and
// checks that no call split a group or exceeded batchRows (unless one
// group is larger).
func scanText(t *testing.T, tl *Timelines, mem memory.Allocator, opts ScanOptions) string {
	t.Helper()
	var out []string
	err := tl.Scan(context.Background(), mem, opts, func(rec arrow.RecordBatch, starts []int) error {
		if starts[len(starts)-1] != int(rec.NumRows()) {
			t.Fatalf("starts %v do not end at %d rows", starts, rec.NumRows())
		}
		if opts.BatchRows > 0 && rec.NumRows() > int64(opts.BatchRows) && len(starts) > 2 {
			t.Errorf("a call got %d rows in %d groups, over %d", rec.NumRows(), len(starts)-1, opts.BatchRows)
		}
		st := rec.Column(0).(*array.String)
		day := rec.Column(1).(*array.Date32)
		for g := range len(starts) - 1 {
			var days []string
			for r := starts[g]; r < starts[g+1]; r++ {
				if st.Value(r) != st.Value(starts[g]) {
					t.Fatalf("group %d mixes students", g)
				}
				days = append(days, fmt.Sprint(day.Value(r)))
			}
			out = append(out, st.Value(starts[g])+":"+strings.Join(days, ","))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func spec() Spec {
	return Spec{Stage: "risk", Schema: schema, Keys: []int{0}, Order: 1}
}

func TestTimelinesGroupOrderAndIdempotence(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := s.Timelines(spec())
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for st := range 30 {
		for d := range 1 + st%7 {
			rows = append(rows, row{fmt.Sprintf("S%02d", st), int32(20000 + d*3), float64(d)})
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	for _, part := range [][]row{rows[:40], rows[40:]} {
		rec := record(mem, part)
		if err := tl.Append(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	var want []string
	for st := range 30 {
		var days []string
		for d := range 1 + st%7 {
			days = append(days, fmt.Sprint(20000+d*3))
		}
		want = append(want, fmt.Sprintf("S%02d:%s", st, strings.Join(days, ",")))
	}
	got := scanText(t, tl, mem, ScanOptions{BatchRows: 10})
	if got != strings.Join(want, " ") {
		t.Fatalf("scan:\n got %s\nwant %s", got, strings.Join(want, " "))
	}

	// Appending the same rows again (a rerun) changes nothing; the state
	// survives a reopen.
	rec := record(mem, rows[:40])
	if err := tl.Append(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tl, err = s.Timelines(spec())
	if err != nil {
		t.Fatal(err)
	}
	if again := scanText(t, tl, mem, ScanOptions{}); again != got {
		t.Errorf("after rerun and reopen:\n got %s\nwant %s", again, got)
	}

	// Another schema for the same stage is refused.
	other := spec()
	other.Keys = []int{0, 3}
	if _, err := s.Timelines(other); err == nil || !strings.Contains(err.Error(), `state of stage "risk" was kept for other columns or keys`) {
		t.Errorf("schema change: err = %v", err)
	}
}

func TestTimelinesTouchedRetentionAndCap(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s, err := OpenTemp(Options{MemoryBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sp := spec()
	sp.Retention = 10 * 24 * time.Hour
	sp.MaxRowsPerKey = 3
	tl, err := s.Timelines(sp)
	if err != nil {
		t.Fatal(err)
	}
	add := func(rows ...row) {
		rec := record(mem, rows)
		defer rec.Release()
		if err := tl.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	add(row{"A", 100, 1}, row{"A", 101, 1}, row{"B", 105, 1})
	if got := scanText(t, tl, mem, ScanOptions{TouchedOnly: true}); got != "A:100,101 B:105" {
		t.Fatalf("first touched scan: %s", got)
	}
	if got := scanText(t, tl, mem, ScanOptions{TouchedOnly: true}); got != "" {
		t.Fatalf("nothing touched since, got %s", got)
	}
	// B gets 4 more rows (cap 3); the watermark moves to 112, so rows
	// before day 102 go (retention 10 days): A's two rows.
	add(row{"B", 106, 1}, row{"B", 107, 1}, row{"B", 108, 1}, row{"B", 112, 1})
	if got := scanText(t, tl, mem, ScanOptions{TouchedOnly: true}); got != "B:107,108,112" {
		t.Fatalf("touched after cap: %s", got)
	}
	if got := scanText(t, tl, mem, ScanOptions{}); got != "B:107,108,112" {
		t.Fatalf("full scan after retention: %s", got)
	}
}

func TestUnsupportedColumn(t *testing.T) {
	s, err := OpenTemp(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bad := arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.BinaryTypes.String}, {Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)}}, nil)
	if _, err := s.Timelines(Spec{Stage: "x", Schema: bad, Keys: []int{0}, Order: -1}); err == nil || !strings.Contains(err.Error(), `column "l" has type list`) {
		t.Errorf("err = %v", err)
	}
}

func TestOrderedEncoding(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sb := array.NewStringBuilder(mem)
	defer sb.Release()
	vals := []string{"", "a", "a\x00", "a\x00b", "ab", "b"}
	sb.AppendNull()
	sb.AppendValues(vals, nil)
	arr := sb.NewArray()
	defer arr.Release()
	var prev []byte
	for i := range arr.Len() {
		enc := appendOrdered(nil, arr, i)
		if w := skipOrdered(append(enc, 9, 9), arrow.BinaryTypes.String); w != len(enc) {
			t.Errorf("skip of %q = %d, want %d", arr.ValueStr(i), w, len(enc))
		}
		if prev != nil && string(prev) >= string(enc) {
			t.Errorf("encoding of %q does not sort after the previous value", arr.ValueStr(i))
		}
		prev = enc
	}
	fb := array.NewFloat64Builder(mem)
	defer fb.Release()
	fb.AppendValues([]float64{-1e9, -1, -0.5, 0, 0.5, 3, 1e9}, nil)
	fa := fb.NewArray()
	defer fa.Release()
	prev = nil
	for i := range fa.Len() {
		enc := appendOrdered(nil, fa, i)
		if prev != nil && string(prev) >= string(enc) {
			t.Errorf("float %v does not sort after the previous value", fa.ValueStr(i))
		}
		prev = enc
	}
}

// TestWriteThenScan fills a default store and a WriteThenScan one with the
// same rows, enough for several memtable flushes, and checks that both
// scans see the same timelines, and that the WriteThenScan store ran no
// compaction: its flushed tables stay in level 0 for the scan to merge.
func TestWriteThenScan(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(7, 7))
	var batches [][]row
	for range 8 {
		rows := make([]row, 40_000)
		for i := range rows {
			rows[i] = row{student: fmt.Sprintf("S%05d", rng.IntN(20_000)), day: int32(20_000 + rng.IntN(300)), score: rng.Float64()}
		}
		batches = append(batches, rows)
	}
	scans := map[bool]string{}
	for _, wts := range []bool{false, true} {
		t.Run(fmt.Sprintf("WriteThenScan=%v", wts), func(t *testing.T) {
			s, err := OpenTemp(Options{MemoryBytes: 8 << 20, WriteThenScan: wts})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tl, err := s.Timelines(spec())
			if err != nil {
				t.Fatal(err)
			}
			for _, rows := range batches {
				rec := record(mem, rows)
				err := tl.Append(rec)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
			}
			scans[wts] = scanText(t, tl, mem, ScanOptions{BatchRows: 5000})
			m := s.db.Metrics()
			if wts {
				if m.Compact.Count != 0 || m.Levels[0].NumFiles < 2 {
					t.Errorf("%d compactions, %d tables in level 0; want none and several", m.Compact.Count, m.Levels[0].NumFiles)
				}
			}
		})
	}
	if scans[false] == "" || scans[false] != scans[true] {
		t.Errorf("the two stores scanned differently (%d and %d bytes of text)", len(scans[false]), len(scans[true]))
	}
}
