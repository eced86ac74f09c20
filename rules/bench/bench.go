// Package bench measures a rule's throughput on generated input that
// matches its manifest (Input): what `vigie rule bench` prints. The figures
// are of this machine and this run; they are for comparing versions of a
// rule, not for asserting speed in tests.
package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/internal/arrowmem"
	"github.com/vigie-edu/vigie/rules/abi"
	"github.com/vigie-edu/vigie/rules/host"
)

// Options says how much to run.
type Options struct {
	Rows      int           // rows to evaluate; the run stops at Rows or Duration, whichever comes first
	BatchRows int           // rows per batch (at most Rows)
	Duration  time.Duration // longest time to run; 0: no limit
	GroupRows int           // rows per group, for a group rule
	Seed      uint64        // seed of the generated input
	Params    map[string]any
	// Allocator builds the input and the outputs; nil is
	// memory.NewGoAllocator().
	Allocator memory.Allocator
}

// Result is what a run measured.
type Result struct {
	Path      string
	Manifest  *abi.Manifest
	SHA256    string
	BatchRows int
	Seed      uint64
	Rows      int64 // rows evaluated
	Batches   int64
	Elapsed   time.Duration
	Worst     time.Duration // the slowest batch
	InBytes   int64         // input bytes evaluated (Arrow buffers)
	OutBytes  int64         // bytes of the rule's output columns
}

// Run loads the rule at path in rt, instantiates it with o.Params (the
// manifest's defaults fill the others) and evaluates batches of Input
// until o.Rows rows or o.Duration, after one batch of warm-up that is not
// counted.
func Run(ctx context.Context, rt *host.Runtime, path string, o Options) (*Result, error) {
	if o.Rows <= 0 || o.BatchRows <= 0 || o.GroupRows <= 0 || o.Duration < 0 {
		return nil, fmt.Errorf("rows (%d), batch rows (%d) and group rows (%d) must be positive, duration (%s) not negative",
			o.Rows, o.BatchRows, o.GroupRows, o.Duration)
	}
	mem := o.Allocator
	if mem == nil {
		mem = memory.NewGoAllocator()
	}
	m, err := rt.Load(ctx, path)
	if err != nil {
		return nil, err
	}
	defer m.Close(ctx)
	man := m.Manifest
	batch := min(o.BatchRows, o.Rows)
	rec := Input(mem, man.Inputs, batch, o.Seed)
	defer rec.Release()
	b, err := m.Bind(rec.Schema())
	if err != nil {
		return nil, err
	}
	inst, err := m.NewInstance(ctx, o.Params, host.DefaultLimits())
	if err != nil {
		return nil, err
	}
	defer inst.Close(ctx)
	var offsets []uint32
	if man.Kind == abi.KindGroup {
		for r := 0; r < batch; r += o.GroupRows {
			offsets = append(offsets, uint32(r))
		}
		offsets = append(offsets, uint32(batch))
	}
	eval := func() (int64, error) {
		var out arrow.RecordBatch
		var err error
		if man.Kind == abi.KindGroup {
			out, err = inst.EvalGroup(ctx, b, rec, offsets, mem)
		} else {
			out, err = inst.EvalMap(ctx, b, rec, mem)
		}
		if err != nil {
			return 0, err
		}
		defer out.Release()
		return outputBytes(out, len(out.Columns())-len(man.Outputs)), nil
	}
	// One batch to warm up (first allocations of the guest), not counted.
	if _, err := eval(); err != nil {
		return nil, err
	}
	r := &Result{Path: path, Manifest: man, SHA256: m.SHA256, BatchRows: batch, Seed: o.Seed}
	inBytes := arrowmem.BatchBytes(rec)
	start := time.Now()
	for r.Rows < int64(o.Rows) {
		t := time.Now()
		n, err := eval()
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", r.Batches, err)
		}
		r.Worst = max(r.Worst, time.Since(t))
		r.Rows += int64(batch)
		r.Batches++
		r.InBytes += inBytes
		r.OutBytes += n
		if o.Duration > 0 && time.Since(start) >= o.Duration {
			break
		}
	}
	r.Elapsed = time.Since(start)
	return r, nil
}

// Print writes the figures for a reader: what `vigie rule bench` prints.
func (r *Result) Print(w io.Writer) {
	man, el := r.Manifest, r.Elapsed
	secs := el.Seconds()
	fmt.Fprintf(w, "rule %q %s (%s, %s), %s\n", man.Name, man.Version, man.Kind, r.Path, r.SHA256[:12])
	fmt.Fprintf(w, "input: %d columns (%s), %d rows per batch, ~5%% nulls, seed %d\n",
		len(man.Inputs), columnList(man.Inputs), r.BatchRows, r.Seed)
	fmt.Fprintf(w, "%d rows in %d batches in %s\n", r.Rows, r.Batches, el.Round(time.Millisecond))
	fmt.Fprintf(w, "%.0f rows/s\n", float64(r.Rows)/secs)
	fmt.Fprintf(w, "%.1f MB/s in (%.1f MB/s out)\n", float64(r.InBytes)/secs/1e6, float64(r.OutBytes)/secs/1e6)
	fmt.Fprintf(w, "%.1f ns/row, %s per batch on average, %s at most\n",
		float64(el.Nanoseconds())/float64(r.Rows), (el / time.Duration(r.Batches)).Round(time.Microsecond), r.Worst.Round(time.Microsecond))
}

func columnList(cols []abi.Column) string {
	if len(cols) == 0 {
		return "none"
	}
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = c.Name + " " + c.Type.String()
	}
	return strings.Join(s, ", ")
}

// outputBytes returns the bytes of out's columns from index from on.
func outputBytes(out arrow.RecordBatch, from int) int64 {
	var n int64
	for _, c := range out.Columns()[max(from, 0):] {
		n += arrowmem.ArrayBytes(c)
	}
	return n
}

// Input returns n rows of a manifest's inputs, deterministic for a seed,
// with about 5 % nulls in every column. The caller releases it.
func Input(mem memory.Allocator, inputs []abi.Column, n int, seed uint64) arrow.RecordBatch {
	rng := newSplitMix(seed)
	fields := make([]arrow.Field, len(inputs))
	cols := make([]arrow.Array, len(inputs))
	const (
		epochDay2024 = 19723 // 2024-01-01
		usPerDay     = 86400 * 1_000_000
	)
	for i, in := range inputs {
		fields[i] = arrow.Field{Name: in.Name, Type: host.ArrowType(in.Type), Nullable: true}
		bld := array.NewBuilder(mem, fields[i].Type)
		bld.Reserve(n)
		for range n {
			if rng.next()%20 == 0 {
				bld.AppendNull()
				continue
			}
			r := rng.next()
			switch in.Type {
			case abi.Bool:
				bld.(*array.BooleanBuilder).Append(r&1 == 1)
			case abi.Int32:
				bld.(*array.Int32Builder).Append(int32(r % 1000))
			case abi.Int64:
				bld.(*array.Int64Builder).Append(int64(r % 1_000_000))
			case abi.Float64:
				bld.(*array.Float64Builder).Append(float64(r>>11) / (1 << 53))
			case abi.Utf8:
				bld.(*array.StringBuilder).Append(randomWord(r))
			case abi.TimestampUS:
				us := (epochDay2024*86400 + int64(r%(366*86400))) * 1_000_000
				bld.(*array.TimestampBuilder).Append(arrow.Timestamp(us))
			case abi.Date32:
				bld.(*array.Date32Builder).Append(arrow.Date32(epochDay2024 + int32(r%366)))
			}
		}
		cols[i] = bld.NewArray()
		bld.Release()
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// randomWord returns a lower-case word of 3 to 12 letters drawn from r.
func randomWord(r uint64) string {
	n := 3 + int(r%10)
	r /= 10
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(r%26)
		r /= 26
		if r == 0 {
			r = 0x9e3779b97f4a7c15
		}
	}
	return string(b)
}

// splitMix is SplitMix64: a small, fast, deterministic generator.
type splitMix struct{ s uint64 }

func newSplitMix(seed uint64) *splitMix { return &splitMix{seed} }

func (g *splitMix) next() uint64 {
	g.s += 0x9e3779b97f4a7c15
	z := g.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
