package metrics_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/stream"
	"github.com/vigie-edu/vigie/metrics"
)

// TestInputRows: the default pipeline reads four CSV files whose lines,
// less their headers, are the rows its run reads (29273: 600 students,
// 7805 absences, 10716 marks, 10152 sessions).
func TestInputRows(t *testing.T) {
	cfg, err := config.Load(filepath.Join("..", "pipeline.toml"))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := metrics.InputRows(context.Background(), cfg)
	if !ok || n != 600+7805+10716+10152 {
		t.Errorf("InputRows = %d, %v; want 29273, true", n, ok)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte("x\n1\n2\n3"), 0o644) // no final newline
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "p.toml")
	for _, tc := range []struct {
		name, source string
		want         int64
		ok           bool
	}{
		{"csv without a final newline", `connector = "csv"
[source.options]
path = "a.csv"`, 3, true},
		{"csv without header", `connector = "csv"
[source.options]
path = "a.csv"
header = false`, 4, true},
		{"a glob is unknown", `connector = "csv"
[source.options]
path = "*.csv"`, 0, false},
		{"a missing file is unknown", `connector = "csv"
[source.options]
path = "b.csv"`, 0, false},
		// Reading a FIFO would block, and take its rows from the run.
		{"a fifo is unknown", `connector = "csv"
[source.options]
path = "fifo.csv"`, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(file, []byte("[pipeline]\nname = \"p\"\n[[source]]\nname = \"s\"\n"+tc.source+"\n[[sink]]\nname = \"o\"\ninput = \"s\"\nconnector = \"csv_file\"\n[sink.options]\npath = \"o.csv\"\n"), 0o644)
			cfg, err := config.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			n, ok := metrics.InputRows(context.Background(), cfg)
			if n != tc.want || ok != tc.ok {
				t.Errorf("InputRows = %d, %v; want %d, %v", n, ok, tc.want, tc.ok)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runHeld runs a source that sends 40 rows, then waits until the progress
// output holds want (or fails after a while), then sends 60 more.
func runHeld(t *testing.T, p *metrics.Progress, out *syncBuffer, want string) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g := stream.NewGraph("p")
	g.AddSource("src", stream.SourceFunc(func(ctx context.Context, st *stream.Stage, o *stream.Outbox) error {
		if err := o.Send(ctx, batch(mem, 40)); err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Errorf("progress never showed %q; it showed:\n%s", want, out.String())
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		return o.Send(ctx, batch(mem, 60))
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
	p.Start()
	if _, err := g.Run(context.Background(), stream.RunOptions{Observer: p}); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if p.Rows() != 100 {
		t.Errorf("Rows = %d after the run, want 100", p.Rows())
	}
}

func TestProgressLog(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	p := metrics.NewProgress(metrics.ProgressOptions{Total: 100, Log: log, LogEvery: 20 * time.Millisecond})
	runHeld(t, p, &out, "rows=40 ")
	if !strings.Contains(out.String(), "percent=40 ") || !strings.Contains(out.String(), "eta=") {
		t.Errorf("no percent or eta in:\n%s", out.String())
	}
}

func TestProgressBar(t *testing.T) {
	var out syncBuffer
	p := metrics.NewProgress(metrics.ProgressOptions{Total: 100, Terminal: true, W: &out})
	runHeld(t, p, &out, " 40% ")
	if !strings.Contains(out.String(), "40/100") {
		t.Errorf("no count in the bar:\n%q", out.String())
	}
}

func TestProgressBarUnknownTotal(t *testing.T) {
	var out syncBuffer
	p := metrics.NewProgress(metrics.ProgressOptions{Terminal: true, W: &out})
	runHeld(t, p, &out, "(40/-")
	if strings.Contains(out.String(), "%") {
		t.Errorf("a percentage with an unknown total:\n%q", out.String())
	}
}

// TestProgressTotalLater: a bar started without a total (a spinner) shows
// a percentage once SetTotal gives one.
func TestProgressTotalLater(t *testing.T) {
	var out syncBuffer
	p := metrics.NewProgress(metrics.ProgressOptions{Terminal: true, W: &out})
	go func() {
		for !strings.Contains(out.String(), "(40/-") {
			time.Sleep(10 * time.Millisecond)
		}
		p.SetTotal(100)
	}()
	runHeld(t, p, &out, " 40% ")
}
