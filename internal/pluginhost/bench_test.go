package pluginhost_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/builtin"
	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/pluginhost"
	"github.com/vigie-edu/vigie/internal/transport"
)

// blobSource emits the same batch (int64, float64 and utf8 columns,
// "rows" rows) "batches" times: Arrow data at the speed of the transport.
type blobSource struct{}

var blobSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "name", Type: arrow.BinaryTypes.String},
}, nil)

func (blobSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "blob", Kind: protocol.KindSource, Version: "1", Doc: "benchmark source", Options: []protocol.Option{
		{Name: "rows", Type: protocol.TypeInt, Default: int64(65536), Doc: "rows per batch"},
		{Name: "batches", Type: protocol.TypeInt, Default: int64(1), Doc: "batches"},
	}}
}

func (blobSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	return blobSchema, nil
}

func blobBatch(mem memory.Allocator, rows int) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, blobSchema)
	defer b.Release()
	for i := range rows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Float64Builder).Append(float64(i) / 3)
		b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("student %07d", i))
	}
	return b.NewRecordBatch()
}

// blobCache holds the batch of the last size asked for, so that the
// benchmark measures moving batches, not building them.
var blobCache struct {
	sync.Mutex
	rows int
	rec  arrow.RecordBatch
}

func (blobSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	blobCache.Lock()
	if rows := int(cfg.Int("rows")); blobCache.rec == nil || blobCache.rows != rows {
		if blobCache.rec != nil {
			blobCache.rec.Release()
		}
		blobCache.rec, blobCache.rows = blobBatch(memory.NewGoAllocator(), rows), rows
	}
	rec := blobCache.rec
	rec.Retain()
	blobCache.Unlock()
	defer rec.Release()
	for i := range cfg.Int("batches") {
		pos, _ := protocol.NewPosition(i + 1)
		if err := out.Emit(ctx, rec, pos); err != nil {
			return err
		}
	}
	return nil
}

// discard counts what it receives.
type discard struct{ rows, batches int64 }

func (d *discard) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	d.rows += rec.NumRows()
	d.batches++
	return nil
}
func (d *discard) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

// BenchmarkArrowBoundary moves Arrow batches from a source to the engine
// in-process and through a real plugin subprocess (Arrow Flight over
// go-plugin's gRPC), in batches of 65536 rows (2.3 MB, one gRPC message)
// and of 262144 rows (9 MB: sliced when they go inline). MB/s is Arrow
// buffer bytes; batches/read is what the engine received per read (64 when
// batches keep their size).
func BenchmarkArrowBoundary(b *testing.B) {
	const batches = 64
	for _, rows := range []int{65536, 262144} {
		probe := blobBatch(memory.NewGoAllocator(), rows)
		var size int64
		for _, c := range probe.Columns() {
			for _, buf := range c.Data().Buffers() {
				if buf != nil {
					size += int64(buf.Len())
				}
			}
		}
		probe.Release()
		for _, mode := range []string{"in-process", "subprocess"} {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, mode), func(b *testing.B) {
				opts := pluginhost.Options{Builtins: testRegistry()}
				if mode == "subprocess" {
					opts.BuiltinCommand = serveCommand(b)
				}
				h := pluginhost.NewHost(opts)
				defer h.Close()
				c, err := h.Connector(context.Background(), "blob")
				if err != nil {
					b.Fatal(err)
				}
				src := c.(protocol.Source)
				cfg := protocol.Config{Connector: "blob", BatchRows: rows, Options: map[string]any{"rows": int64(rows), "batches": int64(batches)}}
				b.SetBytes(size * batches)
				b.ResetTimer()
				stats0 := transport.ReceivedStats()
				cpu0 := cpuTime()
				var received int64
				for b.Loop() {
					d := &discard{}
					if err := src.Read(context.Background(), cfg, memory.DefaultAllocator, d); err != nil {
						b.Fatal(err)
					}
					if d.rows != int64(rows*batches) {
						b.Fatalf("got %d rows", d.rows)
					}
					received += d.batches
				}
				b.ReportMetric(float64(received)/float64(b.N), "batches/read")
				// The machine is shared: CPU time of the engine side (this
				// process) per byte says more than wall time.
				if cpu := (cpuTime() - cpu0).Seconds(); cpu > 0 {
					b.ReportMetric(float64(size*batches)*float64(b.N)/1e6/cpu, "host-MB/cpu-s")
				}
				// Share of the Arrow bytes that came through the shared
				// memory ring rather than inline in gRPC messages.
				if st := transport.ReceivedStats(); mode == "subprocess" {
					ring, inline := st.RingBytes-stats0.RingBytes, st.InlineBytes-stats0.InlineBytes
					if ring+inline > 0 {
						b.ReportMetric(100*float64(ring)/float64(ring+inline), "%ring")
					}
				}
			})
		}
	}
}

// cpuTimeWithChildren is cpuTime plus that of the child processes that
// ended and were waited for.
func cpuTimeWithChildren() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return cpuTime()
	}
	return cpuTime() + time.Duration(ru.Utime.Nano()+ru.Stime.Nano())
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCSVToParquet runs the default pipeline's shape (csv source ->
// parquet sink) with built-ins in-process, in a plugin process each
// (plugins) and in one plugin process for both (plugins-shared, vigie
// run's default), on 10 rows (what starting and stopping plugin processes
// costs: nearly all of the difference there), 500k rows (13.8 MB) and 2M
// rows (55 MB; the per-row cost of the boundary shows), so that fixed and
// per-row costs can be told apart. cpu-ms/op counts the plugin processes
// too (they are waited for, so their time is the test's children's).
func BenchmarkCSVToParquet(b *testing.B) {
	toml := `
[pipeline]
name = "bench"

[[source]]
name = "att"
connector = "csv"
[source.options]
path = "att.csv"

[[sink]]
name = "out"
input = "att"
connector = "parquet"
[sink.options]
path = "out.parquet"
`
	for _, rows := range []int{10, 500_000, 2_000_000} {
		dir := b.TempDir()
		f, err := os.Create(filepath.Join(dir, "att.csv"))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(f)
		fmt.Fprintln(w, "student_id,date,half_days,absent_half_days,score")
		for i := range rows {
			fmt.Fprintf(w, "S%06d,2025-%02d-%02d,%d,%d,%d.%d\n", i%5000, 9+i%4, 1+i%28, 2, i%3, i%20, i%10)
		}
		if err := errors.Join(w.Flush(), f.Close()); err != nil {
			b.Fatal(err)
		}
		st, _ := os.Stat(filepath.Join(dir, "att.csv"))
		if err := os.WriteFile(filepath.Join(dir, "pipeline.toml"), []byte(toml), 0o644); err != nil {
			b.Fatal(err)
		}
		cfg, err := config.Load(filepath.Join(dir, "pipeline.toml"))
		if err != nil {
			b.Fatal(err)
		}
		for _, mode := range []string{"in-process", "plugins", "plugins-shared"} {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, mode), func(b *testing.B) {
				b.SetBytes(st.Size())
				cpu0 := cpuTimeWithChildren()
				for b.Loop() {
					opts := pluginhost.Options{Builtins: builtin.Registry(), ShareBuiltins: mode == "plugins-shared"}
					if mode != "in-process" {
						opts.BuiltinCommand = serveCommand(b)
					}
					h := pluginhost.NewHost(opts)
					ctx := context.Background()
					plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: h})
					if err != nil {
						b.Fatal(err)
					}
					sum, err := plan.Run(ctx, pipeline.RunOptions{})
					if err != nil || sum.SourceRows() != int64(rows) {
						b.Fatalf("%v, %d rows", err, sum.SourceRows())
					}
					plan.Close(ctx)
					h.Close()
				}
				b.ReportMetric(float64((cpuTimeWithChildren()-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
			})
		}
	}
}
