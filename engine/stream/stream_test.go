package stream

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var schema = arrow.NewSchema([]arrow.Field{{Name: "seq", Type: arrow.PrimitiveTypes.Int64}}, nil)

// counter emits n batches of rows rows each, numbered consecutively.
func counter(mem memory.Allocator, n, rows int) SourceFunc {
	return func(ctx context.Context, st *Stage, out *Outbox) error {
		seq := int64(0)
		for range n {
			b := array.NewInt64Builder(mem)
			for range rows {
				b.Append(seq)
				seq++
			}
			col := b.NewArray()
			b.Release()
			rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(rows))
			col.Release()
			if err := out.Send(ctx, rec); err != nil {
				return err
			}
		}
		return nil
	}
}

// passThrough forwards every batch.
var passThrough TransformFunc = func(ctx context.Context, st *Stage, in *Inbox, out *Outbox) error {
	for {
		rec, err := in.Recv(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := out.Send(ctx, rec); err != nil {
			return err
		}
	}
}

// collector records the seq values it receives.
type collector struct {
	mu     sync.Mutex
	seqs   []int64
	delay  time.Duration
	failAt int64 // fail when this seq arrives, if > 0
}

func (c *collector) Run(ctx context.Context, st *Stage, in *Inbox) error {
	for {
		rec, err := in.Recv(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		col := rec.Column(0).(*array.Int64)
		c.mu.Lock()
		for i := range col.Len() {
			c.seqs = append(c.seqs, col.Value(i))
		}
		c.mu.Unlock()
		last := col.Value(col.Len() - 1)
		rec.Release()
		if c.failAt > 0 && last >= c.failAt {
			return errors.New("disk full")
		}
		if c.delay > 0 {
			time.Sleep(c.delay)
		}
	}
}

func (c *collector) got() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.seqs...)
}

func checkSeq(t *testing.T, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d rows, want %d", len(got), n)
	}
	for i, v := range got {
		if v != int64(i) {
			t.Fatalf("row %d has seq %d: order not preserved", i, v)
		}
	}
}

func TestRunOrderAndFanOut(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	g := NewGraph("t")
	a, b := &collector{}, &collector{}
	must(t, g.AddSource("src", counter(mem, 100, 37)))
	must(t, g.AddTransform("mid", "src", passThrough))
	must(t, g.AddSink("a", "mid", a))
	must(t, g.AddSink("b", "mid", b))
	sum, err := g.Run(context.Background(), RunOptions{Buffer: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkSeq(t, a.got(), 3700)
	checkSeq(t, b.got(), 3700)
	st, _ := sum.Stage("mid")
	if st.RowsIn != 3700 || st.RowsOut != 3700 || st.Batches != 100 {
		t.Errorf("mid summary = %+v", st)
	}
	if sum.SourceRows() != 3700 || sum.Status() != "ok" {
		t.Errorf("summary: %s", sum.Line())
	}
}

func TestBackpressureBoundsInFlight(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	// The source counts sends; the slow sink checks that the source is
	// never more than the channel buffers ahead of it.
	var sent atomic.Int64
	const buffer = 2
	src := SourceFunc(func(ctx context.Context, st *Stage, out *Outbox) error {
		inner := counter(mem, 1, 1)
		for range 40 {
			sent.Add(1)
			if err := inner(ctx, st, out); err != nil {
				return err
			}
		}
		return nil
	})
	var maxAhead atomic.Int64
	received := int64(0)
	sink := SinkFunc(func(ctx context.Context, st *Stage, in *Inbox) error {
		for {
			rec, err := in.Recv(ctx)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			rec.Release()
			received++
			time.Sleep(time.Millisecond)
			if ahead := sent.Load() - received; ahead > maxAhead.Load() {
				maxAhead.Store(ahead)
			}
		}
	})
	g := NewGraph("t")
	must(t, g.AddSource("src", src))
	must(t, g.AddSink("slow", "src", sink))
	if _, err := g.Run(context.Background(), RunOptions{Buffer: buffer}); err != nil {
		t.Fatal(err)
	}
	// At most: the buffer, plus one batch blocked in Send.
	if m := maxAhead.Load(); m > buffer+1 {
		t.Errorf("source ran %d batches ahead of the sink, buffer is %d", m, buffer)
	}
}

func TestFirstErrorStopsRunAndNamesStage(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	g := NewGraph("t")
	must(t, g.AddSource("src", counter(mem, 1000, 10)))
	must(t, g.AddTransform("mid", "src", passThrough))
	must(t, g.AddSink("ok", "mid", &collector{}))
	must(t, g.AddSink("broken", "mid", &collector{failAt: 500}))
	sum, err := g.Run(context.Background(), RunOptions{})
	if err == nil || !strings.Contains(err.Error(), `stage "broken": disk full`) {
		t.Fatalf("err = %v, want the failing stage named", err)
	}
	if sum.Status() != "failed" {
		t.Errorf("status %q", sum.Status())
	}
	if st, _ := sum.Stage("src"); st.RowsOut >= 10000 {
		t.Errorf("source read everything (%d rows) despite the failure", st.RowsOut)
	}
}

func TestCancellationReleasesEverything(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	ctx, cancel := context.WithCancel(context.Background())
	slow := &collector{delay: 5 * time.Millisecond}
	g := NewGraph("t")
	must(t, g.AddSource("src", counter(mem, 1_000_000, 10)))
	must(t, g.AddTransform("mid", "src", passThrough))
	must(t, g.AddSink("slow", "mid", slow))
	must(t, g.AddSink("other", "src", &collector{}))
	time.AfterFunc(30*time.Millisecond, cancel)
	done := make(chan error)
	go func() {
		_, err := g.Run(ctx, RunOptions{Buffer: 8})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancellation")
	}
}

func TestGracefulStopDrainsAndFlushes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	stop := make(chan struct{})
	var flushed atomic.Bool
	sink := &collector{delay: time.Millisecond}
	g := NewGraph("t")
	must(t, g.AddSource("src", counter(mem, 1_000_000, 10)))
	must(t, g.AddTransform("mid", "src", passThrough))
	must(t, g.AddSink("out", "mid", SinkFunc(func(ctx context.Context, st *Stage, in *Inbox) error {
		err := sink.Run(ctx, st, in)
		flushed.Store(err == nil)
		return err
	})))
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	sum, err := g.Run(context.Background(), RunOptions{Stop: stop})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if !flushed.Load() {
		t.Error("sink did not end normally after a graceful stop")
	}
	// Everything the source sent reached the sink: nothing in flight lost.
	src, _ := sum.Stage("src")
	checkSeq(t, sink.got(), int(src.RowsOut))
	if sum.Status() != "interrupted" {
		t.Errorf("status %q", sum.Status())
	}
}

func TestStageReturningEarlyIsAnError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	g := NewGraph("t")
	must(t, g.AddSource("src", counter(mem, 50, 10)))
	must(t, g.AddSink("lazy", "src", SinkFunc(func(ctx context.Context, st *Stage, in *Inbox) error {
		rec, err := in.Recv(ctx)
		if err != nil {
			return err
		}
		rec.Release()
		return nil
	})))
	_, err := g.Run(context.Background(), RunOptions{})
	if err == nil || !strings.Contains(err.Error(), `stage "lazy": stage returned before its input "src" ended`) {
		t.Fatalf("err = %v", err)
	}
}

func TestPanicInStageIsAnError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	g := NewGraph("t")
	must(t, g.AddSource("src", counter(mem, 50, 10)))
	must(t, g.AddTransform("bad", "src", TransformFunc(func(ctx context.Context, st *Stage, in *Inbox, out *Outbox) error {
		panic("boom")
	})))
	must(t, g.AddSink("out", "bad", &collector{}))
	_, err := g.Run(context.Background(), RunOptions{})
	if err == nil || !strings.Contains(err.Error(), `stage "bad": panic: boom`) {
		t.Fatalf("err = %v", err)
	}
}

type memDL struct{ rows []DeadLetter }

func (m *memDL) WriteDeadLetters(rows []DeadLetter) error {
	m.rows = append(m.rows, rows...)
	return nil
}

func TestDeadLettersCountedAndWritten(t *testing.T) {
	g := NewGraph("t")
	must(t, g.AddSource("src", SourceFunc(func(ctx context.Context, st *Stage, out *Outbox) error {
		return st.DeadLetter(DeadLetter{Origin: "a.csv", Line: 3, Reason: "bad"}, DeadLetter{Origin: "a.csv", Line: 9, Reason: "worse"})
	})))
	must(t, g.AddSink("out", "src", &collector{}))
	dl := &memDL{}
	sum, err := g.Run(context.Background(), RunOptions{DeadLetters: dl})
	if err != nil {
		t.Fatal(err)
	}
	if len(dl.rows) != 2 || dl.rows[0].Stage != "src" || dl.rows[1].Line != 9 {
		t.Errorf("dead letters = %+v", dl.rows)
	}
	if sum.DeadLettered() != 2 || sum.SourceRows() != 2 {
		t.Errorf("summary: %s", sum.Line())
	}
}

func TestGraphConstruction(t *testing.T) {
	g := NewGraph("t")
	must(t, g.AddSource("src", counter(nil, 0, 0)))
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"duplicate", g.AddSource("src", counter(nil, 0, 0)), `duplicate stage "src"`},
		{"unknown input", g.AddSink("out", "nope", &collector{}), `stage "out": unknown input "nope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", tc.err, tc.want)
			}
		})
	}
	must(t, g.AddSink("out", "src", &collector{}))
	if err := g.AddSink("again", "out", &collector{}); err == nil || !strings.Contains(err.Error(), "is a sink") {
		t.Errorf("sink fed by a sink: err = %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMergeReadsSeveralInputs(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	// Both inputs come from one producer: a merge that read them one after
	// the other would deadlock once the second edge's buffer is full.
	merge := MergeFunc(func(ctx context.Context, st *Stage, ins []*Inbox, out *Outbox) error {
		errs := make(chan error, len(ins))
		for _, in := range ins {
			go func() {
				for {
					rec, err := in.Recv(ctx)
					if err == io.EOF {
						errs <- nil
						return
					}
					if err != nil {
						errs <- err
						return
					}
					if err := out.Send(ctx, rec); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for range ins {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	})
	g := NewGraph("t")
	sink := &collector{}
	must(t, g.AddSource("src", counter(mem, 50, 10)))
	must(t, g.AddTransform("mid", "src", passThrough))
	must(t, g.AddMerge("both", "union", []string{"src", "mid"}, merge))
	must(t, g.AddSink("out", "both", sink))
	sum, err := g.Run(context.Background(), RunOptions{Buffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(sink.got()); got != 1000 {
		t.Errorf("merge delivered %d rows, want 1000", got)
	}
	if st, _ := sum.Stage("both"); st.RowsIn != 1000 || st.Kind != "union" {
		t.Errorf("merge summary %+v", st)
	}
	// The kind column is what users read: its words are fixed.
	var buf strings.Builder
	sum.Print(&buf)
	for name, kind := range map[string]string{"src": "source", "mid": "rule", "both": "union", "out": "sink"} {
		if !regexp.MustCompile(`(?m)^\s*` + name + `\s+` + kind + `\s`).MatchString(buf.String()) {
			t.Errorf("summary does not print %s as a %s:\n%s", name, kind, buf.String())
		}
	}
}

func TestFailedUpstreamIsNotACleanEnd(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// Repeat: the race between "upstream closed" and "run cancelled" must
	// always resolve as cancelled.
	for range 200 {
		var sawEOF atomic.Bool
		g := NewGraph("t")
		must(t, g.AddSource("src", counter(mem, 1, 1)))
		must(t, g.AddTransform("bad", "src", TransformFunc(func(ctx context.Context, st *Stage, in *Inbox, out *Outbox) error {
			for {
				rec, err := in.Recv(ctx)
				if err != nil {
					return errors.New("broken")
				}
				rec.Release()
			}
		})))
		must(t, g.AddSink("out", "bad", SinkFunc(func(ctx context.Context, st *Stage, in *Inbox) error {
			_, err := in.Recv(ctx)
			if err == io.EOF {
				sawEOF.Store(true)
			}
			return err
		})))
		if _, err := g.Run(context.Background(), RunOptions{}); err == nil {
			t.Fatal("run succeeded")
		}
		if sawEOF.Load() {
			t.Fatal("the sink saw a clean end of input from a failed stage")
		}
	}
}

// TestSummaryPrintsLateRows: a stage's late rows (Stats.Late) reach its
// summary and a line of the printed summary; none, no line.
func TestSummaryPrintsLateRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	g := NewGraph("t")
	must(t, g.AddSource("src", counter(mem, 3, 1)))
	must(t, g.AddTransform("ew", "src", TransformFunc(func(ctx context.Context, st *Stage, in *Inbox, out *Outbox) error {
		for {
			rec, err := in.Recv(ctx)
			if err != nil {
				return nil
			}
			st.Stats.Late.Add(rec.NumRows())
			if err := out.Send(ctx, rec); err != nil {
				return err
			}
		}
	})))
	must(t, g.AddSink("out", "ew", SinkFunc(func(ctx context.Context, st *Stage, in *Inbox) error {
		for {
			rec, err := in.Recv(ctx)
			if err != nil {
				return nil
			}
			rec.Release()
		}
	})))
	sum, err := g.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := sum.Stage("ew"); st.Late != 3 {
		t.Errorf("late rows in the summary: %d, want 3", st.Late)
	}
	var buf strings.Builder
	sum.Print(&buf)
	if !strings.Contains(buf.String(), `stage "ew": 3 late rows`) || strings.Contains(buf.String(), `stage "src"`) {
		t.Errorf("summary:\n%s", buf.String())
	}
}
