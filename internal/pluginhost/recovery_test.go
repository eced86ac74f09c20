package pluginhost_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/pluginhost"
	"github.com/vigie-edu/vigie/internal/readback"
)

// TestSIGKILLedPluginsLoseAndDuplicateNothing runs csv -> (csv_file,
// parquet) with every connector in its own plugin process, then with all
// three in one shared process (Options.ShareBuiltins: a kill interrupts
// every stage at once), SIGKILLs those processes repeatedly mid-run, and
// checks that both outputs equal the input exactly.
func TestSIGKILLedPluginsLoseAndDuplicateNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills plugin processes for several seconds")
	}
	const rows = 300_000
	dir := t.TempDir()
	var in strings.Builder
	in.WriteString("id,name,grade\n")
	for i := range rows {
		fmt.Fprintf(&in, "%d,student %d,%d\n", i, i, i%20)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.csv"), []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	toml := `
[pipeline]
name = "kill"
batch_rows = 500

[[source]]
name = "in"
connector = "csv"
[source.options]
path = "in.csv"
columns = { id = "int64", name = "utf8", grade = "int64" }

[[sink]]
name = "csv_out"
input = "in"
connector = "csv_file"
[sink.options]
path = "out/out.csv"

[[sink]]
name = "pq_out"
input = "in"
connector = "parquet"
[sink.options]
path = "out/out.parquet"
row_group_rows = 20000
`
	if err := os.WriteFile(filepath.Join(dir, "pipeline.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}

	for run := 1; run <= 5; run++ {
		shared := run > 3
		t.Run(fmt.Sprintf("run %d shared=%t", run, shared), func(t *testing.T) {
			os.RemoveAll(filepath.Join(dir, "out"))
			cfg, err := config.Load(filepath.Join(dir, "pipeline.toml"))
			if err != nil {
				t.Fatal(err)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			h := pluginhost.NewHost(pluginhost.Options{
				Builtins:       testRegistry(),
				BuiltinCommand: serveCommand(t),
				MaxRestarts:    50,
				Logger:         slog.New(slog.DiscardHandler),
				ShareBuiltins:  shared,
			})
			defer h.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: h, Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close(ctx)

			// Kill a random plugin process every 25-75 ms while the run
			// lasts, at most 12 times.
			done := make(chan struct{})
			killed := make(chan map[string]int, 1)
			go func() {
				k := map[string]int{}
				defer func() { killed <- k }()
				rng := rand.New(rand.NewPCG(uint64(run), 7))
				for n := 0; n < 12; n++ {
					select {
					case <-done:
						return
					case <-time.After(time.Duration(25+rng.IntN(50)) * time.Millisecond):
					}
					procs := h.Processes()
					if len(procs) == 0 {
						continue
					}
					p := procs[rng.IntN(len(procs))]
					if syscall.Kill(p.Pid, syscall.SIGKILL) == nil {
						k[p.Name]++
					}
				}
			}()
			sum, err := plan.Run(ctx, pipeline.RunOptions{})
			close(done)
			kills := <-killed
			t.Logf("SIGKILLs: %v", kills)
			if err != nil {
				t.Fatalf("run failed after kills %v: %v", kills, err)
			}
			total := 0
			for _, n := range kills {
				total += n
			}
			if total < 3 {
				t.Errorf("only %d kills landed during the run (%v): the test proves little", total, kills)
			}
			if got := sum.SourceRows(); got != rows {
				t.Errorf("source rows = %d, want %d", got, rows)
			}

			out, err := os.ReadFile(filepath.Join(dir, "out", "out.csv"))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != in.String() {
				gl, wl := strings.Count(string(out), "\n"), strings.Count(in.String(), "\n")
				t.Errorf("out.csv differs from the input: %d lines, want %d", gl, wl)
			}
			checkParquetIDs(t, filepath.Join(dir, "out", "out.parquet"), rows)
			// Killed sinks leave temporary files; the stage's next writer
			// or its commit sweeps them.
			if leftovers, _ := filepath.Glob(filepath.Join(dir, "out", ".*.tmp-*")); len(leftovers) > 0 {
				t.Errorf("temporary files left by killed sinks: %q", leftovers)
			}
		})
	}
}

// checkParquetIDs checks that the id column holds 0..rows-1 in order.
func checkParquetIDs(t *testing.T, path string, rows int) {
	t.Helper()
	tbl := readback.Parquet(t, path)
	if tbl.NumRows() != int64(rows) {
		t.Fatalf("parquet has %d rows, want %d", tbl.NumRows(), rows)
	}
	next := int64(0)
	for _, chunk := range tbl.Column(0).Data().Chunks() {
		for _, v := range chunk.(*array.Int64).Int64Values() {
			if v != next {
				t.Fatalf("parquet row %d has id %d", next, v)
			}
			next++
		}
	}
}

// TestStoppedPluginIsDetectedAndReplaced SIGSTOPs the sink's plugin
// process mid-run: it does not die, it stops answering. gRPC keepalive
// breaks its connection, the engine restarts it and replays, and the
// output is still exact.
func TestStoppedPluginIsDetectedAndReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for keepalive to notice a stopped process (about 15 s)")
	}
	const rows = 50_000
	dir := t.TempDir()
	var in strings.Builder
	in.WriteString("id,name\n")
	for i := range rows {
		fmt.Fprintf(&in, "%d,student %d\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.csv"), []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	toml := `
[pipeline]
name = "stop"
batch_rows = 100

[[source]]
name = "in"
connector = "csv"
[source.options]
path = "in.csv"
columns = { id = "int64", name = "utf8" }

[[sink]]
name = "out"
input = "in"
connector = "csv_file"
[sink.options]
path = "out.csv"
`
	if err := os.WriteFile(filepath.Join(dir, "pipeline.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "pipeline.toml"))
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	h := pluginhost.NewHost(pluginhost.Options{Builtins: testRegistry(), BuiltinCommand: serveCommand(t)})
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: h, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close(ctx)
	var stopped int
	for _, p := range h.Processes() {
		if p.Name == "csv_file" {
			stopped = p.Pid
		}
	}
	if stopped == 0 {
		t.Fatal("no csv_file plugin process")
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		syscall.Kill(stopped, syscall.SIGSTOP)
	}()
	start := time.Now()
	if _, err := plan.Run(ctx, pipeline.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("run with a stopped sink plugin took %s", time.Since(start).Round(time.Millisecond))
	for _, p := range h.Processes() {
		if p.Pid == stopped {
			t.Errorf("the stopped process %d is still the sink's", stopped)
		}
	}
	out, err := os.ReadFile(filepath.Join(dir, "out.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in.String() {
		t.Errorf("out.csv differs from the input (%d bytes, want %d)", len(out), in.Len())
	}
}
