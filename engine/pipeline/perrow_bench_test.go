package pipeline_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/replay"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/engine/state"
	"github.com/vigie-edu/vigie/internal/wasmhost/hosttest"
)

// Figure 2 of docs/design/streaming.md: the early-warning group rule with
// emit = "per_row" over 100K students' timelines preloaded into the state
// dir; events/s over new events (micro-batches of benchBatch events, each
// touching about as many students). Nothing is asserted.
//
//	go test ./engine/pipeline -run '^$' -bench PerRowEarlyWarning -benchtime 20x
const (
	benchStudents = 100_000
	benchRowsPer  = 30 // preloaded rows per student: sessions, absences, T1 marks
	benchBatch    = 4096
)

var (
	benchOnce  sync.Once
	benchDir   string
	benchErr   error
	benchNext  int64 // next offset
	benchStart = time.Date(2025, 9, 1, 8, 0, 0, 0, time.UTC)
)

// preload writes benchStudents timelines of benchRowsPer rows each
// (September to January) straight into a state dir, as the group stage
// would have stored them.
func preload() (string, error) {
	dir, err := os.MkdirTemp("", "vigie-bench-perrow-")
	if err != nil {
		return "", err
	}
	st, err := state.Open(filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		return "", err
	}
	defer st.Close()
	stored := arrow.NewSchema(replay.Schema.Fields()[:11], nil)
	arr, err := st.Arrivals(state.Spec{Stage: "early_warning", Schema: stored, Keys: []int{0}, Order: 10})
	if err != nil {
		return "", err
	}
	mem := memory.NewGoAllocator()
	rng := rand.New(rand.NewPCG(1, 2))
	span := 150 * 24 * time.Hour
	total := benchStudents * benchRowsPer
	var mark int64
	for lo := 0; lo < total; lo += 65536 {
		b := array.NewRecordBuilder(mem, replay.Schema)
		n := min(65536, total-lo)
		for i := range n {
			seq := lo + i
			at := benchStart.Add(time.Duration(seq) * span / time.Duration(total))
			benchRowOnce(b, rng, rng.IntN(benchStudents), at, int64(seq))
		}
		rec := b.NewRecordBatch()
		b.Release()
		proj := rec.NewSlice(0, rec.NumRows())
		cols := proj.Columns()[:11]
		projected := array.NewRecordBatch(stored, cols, proj.NumRows())
		w := state.Write{}
		for i := range n {
			g, o, r := arr.Encode(projected, i)
			w.Put = append(w.Put, state.Entry{Group: g, Order: o, Seq: uint64(lo + i), Row: r})
			if v, _ := arr.OrderValue(o); v > mark {
				mark = v
			}
		}
		w.Progress = map[uint32]state.Progress{0: {Mark: mark, Marked: true, Seq: uint64(lo + n - 1), Any: true}}
		err := arr.Commit(w)
		projected.Release()
		proj.Release()
		rec.Release()
		if err != nil {
			return "", err
		}
	}
	benchNext = int64(total)
	// Compact now, so that the background compactions of the bulk load do
	// not run (and count) while the benchmark is timed.
	return dir, st.Compact()
}

// TestMain removes the benchmarks' preloaded state dir.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchRowOnce appends exactly one value to each column.
func benchRowOnce(b *array.RecordBuilder, rng *rand.Rand, student int, at time.Time, offset int64) {
	f := b.Fields()
	f[0].(*array.StringBuilder).Append(fmt.Sprintf("S%06d", student))
	f[1].(*array.Date32Builder).Append(arrow.Date32(at.Unix() / 86400))
	kind := rng.IntN(10)
	null := func(ks ...int) {
		for _, k := range ks {
			f[k].AppendNull()
		}
	}
	switch {
	case kind < 2: // an absent half-day
		f[2].(*array.StringBuilder).Append([]string{"AM", "PM"}[rng.IntN(2)])
		f[3].(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
		null(4, 5, 6, 7, 8, 9)
	case kind < 3: // a mark of T1
		null(2, 3, 4, 5)
		f[6].(*array.StringBuilder).Append([]string{"maths", "francais", "anglais"}[rng.IntN(3)])
		f[7].(*array.StringBuilder).Append("T1")
		f[8].(*array.Float64Builder).Append(float64(rng.IntN(200)) / 10)
		f[9].(*array.StringBuilder).Append("ok")
	default: // a platform session
		null(2, 3, 4, 5, 6, 7, 8, 9)
	}
	f[10].(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
	f[11].(*array.Int64Builder).Append(offset)
}

// benchSource emits batches of new events: random students, event times
// after the preloaded ones, offsets after theirs.
type benchSource struct{ batches int }

func (s *benchSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "bench_events", Kind: protocol.KindSource, Version: "1", Doc: "bench"}
}
func (s *benchSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return replay.Schema, nil
}
func (s *benchSource) Read(ctx context.Context, _ protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	rng := rand.New(rand.NewPCG(uint64(benchNext), 3))
	at := benchStart.Add(151 * 24 * time.Hour).Add(time.Duration(benchNext) * time.Second)
	for range s.batches {
		b := array.NewRecordBuilder(mem, replay.Schema)
		for range benchBatch {
			at = at.Add(time.Second)
			benchRowOnce(b, rng, rng.IntN(benchStudents), at, benchNext)
			benchNext++
		}
		rec := b.NewRecordBatch()
		b.Release()
		err := out.Emit(ctx, rec, nil)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// discard counts rows.
type discard struct{ rows int64 }

func (d *discard) Spec() protocol.Spec {
	return protocol.Spec{Name: "discard", Kind: protocol.KindSink, Version: "1", Doc: "bench"}
}
func (d *discard) Validate(context.Context, protocol.Config) error { return nil }
func (d *discard) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return d, nil
}
func (d *discard) Write(_ context.Context, rec arrow.RecordBatch) error {
	d.rows += rec.NumRows()
	return nil
}
func (d *discard) Close(context.Context) error { return nil }
func (d *discard) Abort(context.Context) error { return nil }

func BenchmarkPerRowEarlyWarning(b *testing.B) {
	benchPerRow(b, hosttest.BuildGoRule(b, filepath.Join("..", "..", "examples", "rules", "early_warning")), "[rule.params]\nas_of = \"latest\"")
}

// BenchmarkPerRowEngine is BenchmarkPerRowEarlyWarning with a rule that
// does nearly nothing (testdata/rowcount, the pack's inputs, one count
// per group): what is left is the engine's per-row path, reading the
// touched keys' timelines, building the prefixes, calling the rule,
// assembling the outputs and storing the rows and progress.
//
//	go test ./engine/pipeline -run '^$' -bench PerRowEngine -benchtime 20x
func BenchmarkPerRowEngine(b *testing.B) {
	benchPerRow(b, hosttest.BuildGoRule(b, filepath.Join("testdata", "rowcount")), "")
}

func benchPerRow(b *testing.B, wasm, params string) {
	benchOnce.Do(func() {
		start := time.Now()
		benchDir, benchErr = preload()
		b.Logf("preloaded %d students x %d rows in %s", benchStudents, benchRowsPer, time.Since(start).Round(time.Millisecond))
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	toml := fmt.Sprintf(`
[pipeline]
name = "bench"
batch_rows = %d
state_dir = "state"
%s

[[source]]
name = "events"
connector = "bench_events"

[[rule]]
name = "early_warning"
input = "events"
module = %q
group_by = ["student_id"]
order_by = "event_time"
emit = "per_row"
offset_column = "offset"
keep_state = true
%s

[[sink]]
name = "out"
input = "early_warning"
connector = "discard"
`, benchBatch, stateMemory(), wasm, params)
	cfg, err := config.Parse(filepath.Join(benchDir, "pipeline.toml"), []byte(toml))
	if err != nil {
		b.Fatal(err)
	}
	sink := &discard{}
	ctx := context.Background()
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{
		Connectors: connectors{map[string]protocol.Connector{"bench_events": &benchSource{batches: b.N}, "discard": sink}},
		Rules:      hosttest.NewRuntime(b),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer plan.Close(ctx)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	if _, err := plan.Run(ctx, pipeline.RunOptions{}); err != nil {
		b.Fatal(err)
	}
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	if sink.rows != int64(b.N*benchBatch) {
		b.Fatalf("%d output rows, want %d", sink.rows, b.N*benchBatch)
	}
	b.ReportMetric(float64(b.N*benchBatch)/el.Seconds(), "events/s")
	// On a shared machine the wall clock measures the load as much as the
	// code: the process's CPU time per event says what the code costs.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchBatch), "cpu-µs/event")
}

// stateMemory is the state_memory_mb line VIGIE_BENCH_STATE_MB asks for
// (the store's block cache is half of it), or none (the default, 256).
func stateMemory() string {
	if mb := os.Getenv("VIGIE_BENCH_STATE_MB"); mb != "" {
		return "state_memory_mb = " + mb
	}
	return ""
}

// cpuTime is the process's CPU time so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
