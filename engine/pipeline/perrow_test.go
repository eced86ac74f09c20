package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// perRowRows keeps "student:first:last:n@day#seq" of every output row of
// the trend rule with emit = "per_row".
type perRowRows struct{ rows []string }

func (s *perRowRows) Spec() protocol.Spec {
	return protocol.Spec{Name: "per_row", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (s *perRowRows) Validate(context.Context, protocol.Config) error { return nil }
func (s *perRowRows) Open(_ context.Context, _ protocol.Config, _ memory.Allocator, schema *arrow.Schema) (protocol.Writer, error) {
	if got := fieldList(schema); !strings.HasPrefix(got, "student_id first last n event_time arrival_partition arrival_seq") {
		return nil, fmt.Errorf("per-row output schema is %q", got)
	}
	return s, nil
}
func (s *perRowRows) Write(_ context.Context, rec arrow.RecordBatch) error {
	id := rec.Column(0).(*array.String)
	f, l, n := rec.Column(1).(*array.Int32), rec.Column(2).(*array.Int32), rec.Column(3).(*array.Int32)
	day, seq := rec.Column(4).(*array.Date32), rec.Column(6).(*array.Int64)
	for i := range id.Len() {
		s.rows = append(s.rows, fmt.Sprintf("%s:%d:%d:%d@%d#%d", id.Value(i), f.Value(i), l.Value(i), n.Value(i), day.Value(i), seq.Value(i)))
	}
	return nil
}
func (s *perRowRows) Close(context.Context) error { return nil }
func (s *perRowRows) Abort(context.Context) error { return nil }

type eventRow struct {
	id  string
	day int // days after 2025-09-01
	x   int
}

// perRowEvents are rows of 30 students in roughly increasing day order,
// with some rows a few days out of order (late by up to 6 days).
func perRowEvents() []eventRow {
	rng := rand.New(rand.NewPCG(3, 4))
	var rows []eventRow
	for i := range 600 {
		day := i / 6
		if rng.IntN(8) == 0 {
			day = max(0, day-1-rng.IntN(6))
		}
		rows = append(rows, eventRow{id: fmt.Sprintf("S%02d", rng.IntN(30)), day: day, x: i})
	}
	return rows
}

// expectPerRow computes what emit = "per_row" must give for rows: for each
// row kept, the trend of its student's rows up to it (arrival order), in
// day then arrival order. late(i, mark) says whether row i is dropped as
// late given the newest day before it.
func expectPerRow(rows []eventRow, lateDays int) (out []string, late int) {
	type kept struct{ day, seq, x int }
	by := map[string][]kept{}
	mark := -1
	for seq, r := range rows {
		isLate := lateDays > 0 && mark >= 0 && r.day < mark-lateDays
		mark = max(mark, r.day)
		if isLate {
			late++
			continue
		}
		by[r.id] = append(by[r.id], kept{r.day, seq, r.x})
		p := slices.Clone(by[r.id])
		slices.SortStableFunc(p, func(a, b kept) int { return a.day - b.day })
		day0 := 20332 // 2025-09-01
		out = append(out, fmt.Sprintf("%s:%d:%d:%d@%d#%d", r.id, p[0].x, p[len(p)-1].x, len(p), day0+r.day, seq))
	}
	return out, late
}

func perRowCSV(rows []eventRow) string {
	var b strings.Builder
	b.WriteString("student_id,date,x\n")
	for _, r := range rows {
		d := 20332 + r.day
		fmt.Fprintf(&b, "%s,%s,%d\n", r.id, arrow.Date32(d).FormattedString(), r.x)
	}
	return b.String()
}

func perRowPipeline(t *testing.T, dir string, batchRows int, extra string) *config.Pipeline {
	t.Helper()
	toml := fmt.Sprintf(`
[pipeline]
name = "p"
batch_rows = %d
state_dir = "state"

[[source]]
name = "events"
connector = "csv"
[source.options]
path = "events.csv"
columns = { x = "int32", date = "date32" }

[[rule]]
name = "trend"
input = "events"
module = %q
group_by = ["student_id"]
order_by = "date"
emit = "per_row"
%s
[[sink]]
name = "out"
input = "trend"
connector = "per_row"
`, batchRows, hosttest.BuildGoRule(t, filepath.Join("testdata", "trend")), extra)
	cfg, err := config.Parse(filepath.Join(dir, "pipeline.toml"), []byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runPerRow(t *testing.T, cfg *config.Pipeline) ([]string, int64, int64) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	got := &perRowRows{}
	plan := prepare(t, cfg, mem, map[string]protocol.Connector{"per_row": got})
	defer plan.Close(context.Background())
	sum, err := plan.Run(context.Background(), pipeline.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sum.Stage("trend")
	return got.rows, st.Late, sum.DeadLettered()
}

// TestPerRowDeterministic: emit = "per_row" gives, for every input row,
// the rule's result over its key's rows up to it in event-time order,
// whatever the micro-batch cuts (one batch, batches of 7 rows, of 1 row).
func TestPerRowDeterministic(t *testing.T) {
	rows := perRowEvents()
	want, _ := expectPerRow(rows, 0)
	for _, batch := range []int{1000, 7, 1} {
		t.Run(fmt.Sprint("batch_rows=", batch), func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"events.csv": perRowCSV(rows)})
			got, late, _ := runPerRow(t, perRowPipeline(t, dir, batch, ""))
			if late != 0 {
				t.Errorf("%d late rows without allowed_lateness", late)
			}
			if !slices.Equal(got, want) {
				for i := range min(len(got), len(want)) {
					if got[i] != want[i] {
						t.Fatalf("row %d: got %s, want %s (%d rows, want %d)", i, got[i], want[i], len(got), len(want))
					}
				}
				t.Fatalf("got %d rows, want %d", len(got), len(want))
			}
		})
	}
}

// TestPerRowLate: rows more than allowed_lateness behind the newest event
// time are counted as late; "dead_letter" sends them to the dead letters
// (and leaves them out of the timelines), "rescore" keeps them.
func TestPerRowLate(t *testing.T) {
	rows := perRowEvents()
	for _, policy := range []string{"dead_letter", "rescore"} {
		t.Run(policy, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"events.csv": perRowCSV(rows)})
			got, late, dead := runPerRow(t, perRowPipeline(t, dir, 50, fmt.Sprintf("allowed_lateness = \"2d\"\nlate = %q\n", policy)))
			want, wantLate := expectPerRow(rows, 2)
			if policy == "rescore" {
				want, _ = expectPerRow(rows, 0)
			}
			if wantLate == 0 {
				t.Fatal("no late row in the data")
			}
			if late != int64(wantLate) {
				t.Errorf("late rows: %d, want %d", late, wantLate)
			}
			if wantDead := map[string]int64{"dead_letter": int64(wantLate), "rescore": 0}[policy]; dead != wantDead {
				t.Errorf("dead-lettered %d, want %d", dead, wantDead)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %d rows, want %d\n got %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}
}

// TestPerRowReplayIsIdempotent: with an offset column, feeding rows
// already stored again (a replay after a crash) stores nothing twice and
// gives the same outputs; rows stored past a row's offset do not enter
// its prefix.
func TestPerRowReplayIsIdempotent(t *testing.T) {
	rows := perRowEvents()
	want, _ := expectPerRow(rows, 0)
	withOffset := func(rows []eventRow, from int) string {
		var b strings.Builder
		b.WriteString("student_id,date,x,offset\n")
		for i, r := range rows[from:] {
			fmt.Fprintf(&b, "%s,%s,%d,%d\n", r.id, arrow.Date32(20332+r.day).FormattedString(), r.x, from+i)
		}
		return b.String()
	}
	dir := writeFiles(t, map[string]string{"events.csv": withOffset(rows, 0)})
	extra := "keep_state = true\noffset_column = \"offset\"\n"
	cfg := perRowPipeline(t, dir, 64, extra)
	first, _, _ := runPerRow(t, cfg)
	if !slices.Equal(first, want) {
		t.Fatalf("first run: %d rows differ from the expected %d", len(first), len(want))
	}
	// The whole input again: same outputs (no row counted twice).
	again, _, _ := runPerRow(t, cfg)
	if !slices.Equal(again, want) {
		t.Errorf("replay of every row: outputs differ\n got %v\nwant %v", again[:5], want[:5])
	}
	// A replay from offset 400: the rows before are stored, those after
	// too (from the first run), yet each row's prefix stops at its offset.
	if err := os.WriteFile(filepath.Join(dir, "events.csv"), []byte(withOffset(rows, 400)), 0o644); err != nil {
		t.Fatal(err)
	}
	tail, _, _ := runPerRow(t, cfg)
	if !slices.Equal(tail, want[400:]) {
		t.Errorf("replay from offset 400: outputs differ\n got %v\nwant %v", tail[:3], want[400:403])
	}
}

// unboundedSource is a source whose spec says it reads until stopped.
type unboundedSource struct{}

func (unboundedSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "endless", Kind: protocol.KindSource, Version: "1", Doc: "test", Unbounded: true}
}
func (unboundedSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "date", Type: arrow.FixedWidthTypes.Date32},
		{Name: "x", Type: arrow.PrimitiveTypes.Int32},
	}, nil), nil
}
func (unboundedSource) Read(ctx context.Context, _ protocol.Config, _ memory.Allocator, _ protocol.Emitter) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestValidateRefusesAtEndOnUnboundedSource: emit = "at_end" (the
// default) behind an unbounded source is an error at the rule's line (or
// its emit key's); "per_row" is accepted.
func TestValidateRefusesAtEndOnUnboundedSource(t *testing.T) {
	wasm := hosttest.BuildGoRule(t, filepath.Join("testdata", "trend"))
	for _, tc := range []struct{ emit, want string }{
		{"", `pipeline.toml:7: rule[0].emit: emit = "at_end" waits for the end of the input, but source "events" is unbounded`},
		{`emit = "at_end"`, `pipeline.toml:13: rule[0].emit: emit = "at_end"`},
		{`emit = "per_row"`, ""},
	} {
		t.Run(tc.emit, func(t *testing.T) {
			toml := fmt.Sprintf(`[pipeline]
name = "p"
[[source]]
name = "events"
connector = "endless"

[[rule]]
name = "trend"
input = "events"
module = %q
group_by = ["student_id"]
order_by = "date"
%s
[[sink]]
name = "out"
input = "trend"
connector = "csv_file"
[sink.options]
path = "out.csv"
`, wasm, tc.emit)
			cfg, err := config.Parse(filepath.Join(t.TempDir(), "pipeline.toml"), []byte(toml))
			if err != nil {
				t.Fatal(err)
			}
			plan, err := pipeline.Prepare(context.Background(), cfg, pipeline.Env{Connectors: connectors{map[string]protocol.Connector{"endless": unboundedSource{}}}, Rules: hosttest.NewRuntime(t)})
			if plan != nil {
				plan.Close(context.Background())
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("err = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestPerRowPartitions: with a partition column, each partition has its
// own arrival sequence (its offsets) and its own watermark: a partition
// whose events lag a month behind another's is not late, and each row's
// result is what its partition alone gives.
func TestPerRowPartitions(t *testing.T) {
	rows := perRowEvents()
	var parts [2][]eventRow
	var b strings.Builder
	b.WriteString("student_id,date,x,p,o\n")
	for _, r := range rows {
		p := 0
		if r.id >= "S15" {
			p = 1
			r.day = max(0, r.day-40) // 40 days behind partition 0
		}
		fmt.Fprintf(&b, "%s,%s,%d,%d,%d\n", r.id, arrow.Date32(20332+r.day).FormattedString(), r.x, p, len(parts[p]))
		parts[p] = append(parts[p], r)
	}
	var want []string
	lateTotal := 0
	perPart := [2][]string{}
	for p := range parts {
		out, late := expectPerRow(parts[p], 2)
		perPart[p], lateTotal = out, lateTotal+late
	}
	// The expected rows in input order: a row's expected text ends with
	// "#" and its offset in its partition; late rows have none.
	byOffset := [2]map[string]string{{}, {}}
	for p := range perPart {
		for _, w := range perPart[p] {
			byOffset[p][w[strings.LastIndex(w, "#"):]] = w
		}
	}
	seen := [2]int{}
	for _, r := range rows {
		p := 0
		if r.id >= "S15" {
			p = 1
		}
		if w, ok := byOffset[p][fmt.Sprintf("#%d", seen[p])]; ok {
			want = append(want, w)
		}
		seen[p]++
	}
	dir := writeFiles(t, map[string]string{"events.csv": b.String()})
	cfg := perRowPipeline(t, dir, 37, "partition_column = \"p\"\noffset_column = \"o\"\nallowed_lateness = \"2d\"\nlate = \"dead_letter\"\n")
	for _, s := range cfg.Sources {
		s.Options["columns"] = map[string]any{"x": "int32", "date": "date32", "p": "int32", "o": "int64"}
	}
	got, late, _ := runPerRow(t, cfg)
	if late != int64(lateTotal) {
		t.Errorf("late rows: %d, want %d (per-partition watermarks)", late, lateTotal)
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d rows, want %d\n got %v\nwant %v", len(got), len(want), got[:min(8, len(got))], want[:min(8, len(want))])
	}
}

// TestPerRowIsolatesPoison: a rule that fails on a prefix holding the
// poison value is bisected down to that prefix's triggering row, which
// goes to the dead letters; every other row's result comes out as
// without the poison, whatever the batch cuts.
func TestPerRowIsolatesPoison(t *testing.T) {
	rows := perRowEvents()
	want, _ := expectPerRow(rows, 0)
	poison := -1
	for i, r := range rows {
		if r.id == "S05" && i > 100 {
			poison = i
			break
		}
	}
	rows[poison].x = -1
	// The poison row is kept in its student's timeline: every later prefix
	// of S05 holds it and fails too.
	var keep []string
	dead := 0
	for i, w := range want {
		if rows[i].id == "S05" && i >= poison {
			dead++
			continue
		}
		keep = append(keep, w)
	}
	for _, batch := range []int{1000, 7} {
		t.Run(fmt.Sprint("batch_rows=", batch), func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"events.csv": perRowCSV(rows)})
			cfg := perRowPipeline(t, dir, batch, "")
			cfg.DeadLetter = filepath.Join(dir, "dead.csv")
			got, _, dl := runPerRow(t, cfg)
			b, err := os.ReadFile(cfg.DeadLetter)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")[1:]
			if len(lines) != dead {
				t.Errorf("dead-letter file has %d rows, want %d", len(lines), dead)
			}
			for _, l := range lines {
				if !strings.Contains(l, "S05") {
					t.Errorf("dead letter of another student than S05: %s", l)
				}
			}
			if !slices.Equal(got, keep) {
				t.Errorf("got %d rows, want %d:\n got %v\nwant %v", len(got), len(keep), got, keep)
			}
			if dl != int64(dead) {
				t.Errorf("dead-lettered %d rows, want S05's %d from the poison on", dl, dead)
			}
		})
	}
}
