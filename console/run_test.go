package console_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/console"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
)

// TestWatchLive: the data engineer's view follows a run while it goes,
// then shows its summary.
func TestWatchLive(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.toml")
	os.WriteFile(filepath.Join(dir, "in.csv"), []byte("x\n1\n"), 0o644)
	os.WriteFile(file, []byte("[pipeline]\nname = \"p\"\n[[source]]\nname = \"src\"\nconnector = \"csv\"\n[source.options]\npath = \"in.csv\"\n[[sink]]\nname = \"snk\"\ninput = \"src\"\nconnector = \"csv_file\"\n[sink.options]\npath = \"o.csv\"\n"), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	w := console.NewWatch(cfg, func() map[string]int { return map[string]int{"csv": 1} })
	if v := w.View(); v.Status != "not run" || len(v.Stages) != 2 {
		t.Errorf("before the run: %+v", v)
	}
	hold, resume := make(chan struct{}), make(chan struct{})
	g := stream.NewGraph("p")
	g.AddSource("src", stream.SourceFunc(func(ctx context.Context, st *stream.Stage, out *stream.Outbox) error {
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.AppendValues([]int64{1, 2, 3}, nil)
		col := b.NewArray()
		defer col.Release()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 3)
		if err := out.Send(ctx, rec); err != nil {
			return err
		}
		close(hold)
		<-resume
		return nil
	}))
	g.AddSink("snk", "src", stream.SinkFunc(func(ctx context.Context, st *stream.Stage, in *stream.Inbox) error {
		for {
			rec, err := in.Recv(ctx)
			if err != nil {
				return nil
			}
			rec.Release()
		}
	}))
	done := make(chan *stream.Summary)
	go func() {
		sum, _ := g.Run(context.Background(), stream.RunOptions{Observer: w})
		done <- sum
	}()
	<-hold
	v := w.View()
	if v.Status != "running" || v.Stages[0].RowsOut != 3 || v.Restarts["csv"] != 1 {
		t.Errorf("during the run: %+v", v)
	}
	close(resume)
	sum := <-done
	w.Done(sum)
	v = w.View()
	if v.Status != "ok" || v.Stages[1].RowsIn != 3 || v.Stages[1].Inputs[0] != "src" {
		t.Errorf("after the run: %+v", v)
	}
}
