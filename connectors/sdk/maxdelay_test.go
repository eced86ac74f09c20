package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// batchSizes sends the row count of every batch emitted.
type batchSizes chan int64

func (b batchSizes) Emit(_ context.Context, rec arrow.RecordBatch, _ protocol.Position) error {
	b <- rec.NumRows()
	return nil
}

func (batchSizes) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

// stream is an unbounded SDK source reading numbers from in until it is
// closed; with due, its read loop also selects on Reader.Due.
func stream(in <-chan int64, due bool) protocol.Source {
	spec := protocol.Spec{Name: "stream", Version: "1", Doc: "test source", Unbounded: true}
	schema := func(context.Context, protocol.Config) (*arrow.Schema, error) { return numSchema, nil }
	read := func(ctx context.Context, _ protocol.Config, r *sdk.Reader) error {
		var last int64
		for {
			var dueC <-chan time.Time
			if due {
				dueC = r.Due()
			}
			select {
			case v, ok := <-in:
				if !ok {
					return r.Flush(ctx, last)
				}
				last = v
				r.Builder().Field(0).(*array.Int64Builder).Append(v)
				if err := r.Next(ctx, v); err != nil {
					return err
				}
			case <-dueC:
				if err := r.Flush(ctx, last); err != nil {
					return err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return sdk.NewSource(spec, schema, read)
}

// TestReaderMaxDelay: an unbounded SDK source sends a partial batch on
// once max_delay has passed since its first row, with its read loop on
// Reader.Due when the input goes quiet, and from Next when a row comes
// after the delay.
func TestReaderMaxDelay(t *testing.T) {
	const delay = 10 * time.Millisecond
	for _, tc := range []struct {
		name string
		due  bool
		feed func(in chan<- int64)
		want int64 // rows sent on before the input closes
	}{
		{"quiet input: Due", true, func(in chan<- int64) { in <- 1; in <- 2; in <- 3 }, 3},
		{"row after the delay: Next", false, func(in chan<- int64) {
			in <- 1
			time.Sleep(3 * delay) // the first row is then older than max_delay
			in <- 2
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			in := make(chan int64)
			got := make(batchSizes, 10)
			done := make(chan error, 1)
			go func() {
				cfg := protocol.Config{Connector: "stream", BatchRows: 1000, MaxDelay: delay}
				done <- stream(in, tc.due).Read(ctx, cfg, mem, got)
			}()
			tc.feed(in)
			// The input stays open: only max_delay can send the rows on
			// (in one batch, or more if the machine is slow enough to
			// let max_delay pass between two rows).
			for rows := int64(0); rows < tc.want; {
				select {
				case n := <-got:
					rows += n
				case <-ctx.Done():
					t.Fatalf("%d of %d rows sent on while the input stayed open", rows, tc.want)
				}
			}
			close(in)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 {
				t.Errorf("%d more batches, want none (nothing pending at the end)", len(got))
			}
		})
	}
}
