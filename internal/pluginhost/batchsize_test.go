package pluginhost_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
	"github.com/vigie-edu/vigie/internal/pluginhost"
	"github.com/vigie-edu/vigie/rules/host/hosttest"
)

// sizeSink ("sizes") appends the row count of every batch it is given to
// the file of its path option, one a line: what a sink received, readable
// by the test whatever process the sink ran in.
type sizeSink struct{}

func (sizeSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "sizes", Kind: protocol.KindSink, Version: "1", Doc: "logs batch sizes", Options: []protocol.Option{
		{Name: "path", Type: protocol.TypeString, Required: true, Doc: "file the sizes are appended to"},
	}}
}

func (sizeSink) Validate(context.Context, protocol.Config) error { return nil }

func (sizeSink) Open(_ context.Context, cfg protocol.Config, mem memory.Allocator, _ *arrow.Schema) (protocol.Writer, error) {
	f, err := os.OpenFile(cfg.String("path"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &sizeWriter{f: f}, nil
}

type sizeWriter struct{ f *os.File }

func (w *sizeWriter) Write(_ context.Context, rec arrow.RecordBatch) error {
	_, err := fmt.Fprintln(w.f, rec.NumRows())
	return err
}
func (w *sizeWriter) Close(context.Context) error { return w.f.Close() }
func (w *sizeWriter) Abort(context.Context) error { return w.f.Close() }

// TestPluginRunKeepsBatchSizes runs csv -> rule -> sink with batch_rows =
// 65536 over 200,000 rows, with the connectors in-process and in plugin
// processes: the rule and the sink get the same batches either way (the
// plugin boundary used to cut them into about 3 MB slices, which the rule
// was then called on one by one).
func TestPluginRunKeepsBatchSizes(t *testing.T) {
	const rows = 200_000
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "att.csv"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "student_id,date,half_days,absent_half_days,comment")
	for i := range rows {
		// A long comment makes the batches bigger than a gRPC message.
		fmt.Fprintf(w, "S%06d,2025-%02d-%02d,40,%d,%s\n", i%5000, 9+i%4, 1+i%28, i%12, strings.Repeat("x", 40+i%20))
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		t.Fatal(err)
	}
	wasm := hosttest.BuildGoRule(t, filepath.Join("..", "..", "examples", "rules", "absence"))
	toml := fmt.Sprintf(`
[pipeline]
name = "sizes"
batch_rows = 65536

[[source]]
name = "att"
connector = "csv"
[source.options]
path = "att.csv"
columns = { half_days = "int32", absent_half_days = "int32" }

[[rule]]
name = "r"
input = "att"
module = %q

[[sink]]
name = "raw"
input = "att"
connector = "sizes"
[sink.options]
path = %q

[[sink]]
name = "out"
input = "r"
connector = "sizes"
[sink.options]
path = %q
`, wasm, filepath.Join(dir, "raw.sizes"), filepath.Join(dir, "out.sizes"))
	if err := os.WriteFile(filepath.Join(dir, "pipeline.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(filepath.Join(dir, "pipeline.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{65536, 65536, 65536, rows - 3*65536}
	got := map[string]map[string][]int64{}
	for _, mode := range []string{"in-process", "plugins"} {
		t.Run(mode, func(t *testing.T) {
			for _, name := range []string{"raw.sizes", "out.sizes"} {
				os.Remove(filepath.Join(dir, name))
			}
			opts := pluginhost.Options{Builtins: testRegistry()}
			if mode == "plugins" {
				opts.BuiltinCommand = serveCommand(t)
			}
			h := pluginhost.NewHost(opts)
			defer h.Close()
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx := context.Background()
			plan, err := pipeline.Prepare(ctx, cfg, pipeline.Env{Connectors: h, Rules: hosttest.NewRuntime(t), Mem: mem})
			if err != nil {
				t.Fatal(err)
			}
			defer plan.Close(ctx)
			sum, err := plan.Run(ctx, pipeline.RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if st, _ := sum.Stage("r"); st.Batches != int64(len(want)) || st.RowsIn != rows {
				t.Errorf("the rule was called on %d batches, %d rows; want %d batches", st.Batches, st.RowsIn, len(want))
			}
			got[mode] = map[string][]int64{}
			for _, sink := range []string{"raw", "out"} {
				sizes := readSizes(t, filepath.Join(dir, sink+".sizes"))
				got[mode][sink] = sizes
				if !slices.Equal(sizes, want) {
					t.Errorf("sink %s got batches of %v rows, want %v", sink, sizes, want)
				}
			}
		})
	}
	if !t.Failed() && fmt.Sprint(got["in-process"]) != fmt.Sprint(got["plugins"]) {
		t.Errorf("in-process %v, through plugins %v", got["in-process"], got["plugins"])
	}
}

func readSizes(t *testing.T, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, l := range strings.Fields(string(b)) {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}
