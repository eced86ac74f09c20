// Package sdk is what a third party needs to write a Vigie connector: a
// source or a sink in its own executable, found by the engine in a plugin
// directory.
//
// A source declares its options once, in a protocol.Spec (types, defaults,
// docs: they serve validation, `vigie plugins describe` and the generated
// reference), and two functions: Schema says what it will emit, Read emits
// batches with a position after each. The executable's main calls Serve:
//
//	func main() {
//		sdk.Serve(sdk.NewSource(spec, schema, read))
//	}
//
// and is installed as vigie-connector-NAME in the pipeline's plugins_dir,
// $VIGIE_PLUGIN_DIR or ./plugins. examples/connectors/roster is a complete
// source in about 80 lines.
//
// Positions make crashes harmless: Read receives the position of the last
// batch the engine got (Resume) and must emit exactly the rows after it. A
// sink is a protocol.Sink whose Writer also implements protocol.Flusher if
// it can make its output durable before Close; see protocol.Sink.
//
// Sources that build their own batches use the same helpers as the
// built-in connectors (csv, jsonl, xapi, pronote, oneroster, parquet all
// do): Batcher turns parsed records (Cells) into batches of at most
// Config.BatchRows rows, and Out sends dead letters and batches in the
// order positions need, including the empty batch that covers a tail of
// dead letters.
//
// A source that reads until stopped (a message queue) sets Spec.Unbounded
// and bounds how long a row waits for its batch by Config.MaxDelay, the
// pipeline's max_delay: see Reader.Due and Batcher.Due.
//
// Test a connector with connectors/conformance, which checks all of this.
package sdk

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/transport"
)

// Serve runs the plugin process serving connectors until the engine stops
// it. Call it from main; it does not return. Anything written to stderr or
// logged with slog.Default reaches the engine's log, tagged with the
// connector's name. Stopping the process is the engine's job: it ignores
// SIGINT and SIGTERM while the engine lives and exits when the engine dies.
// Batches the connectors read or receive come from a Go allocator.
func Serve(connectors ...protocol.Connector) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	transport.Serve(protocol.NewRegistry(connectors...), memory.NewGoAllocator(), log)
}

// SchemaFunc returns the schema a source emits for cfg.
type SchemaFunc func(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error)

// ReadFunc reads a source's input and emits it through r.
type ReadFunc func(ctx context.Context, cfg protocol.Config, r *Reader) error

// NewSource returns a source made of spec (its Kind is set to source),
// schema and read. Options are checked against spec, defaults filled in,
// before schema and read see them.
func NewSource(spec protocol.Spec, schema SchemaFunc, read ReadFunc) protocol.Source {
	spec.Kind = protocol.KindSource
	return &source{spec: spec, schema: schema, read: read}
}

type source struct {
	spec   protocol.Spec
	schema SchemaFunc
	read   ReadFunc
}

func (s *source) Spec() protocol.Spec { return s.spec }

func (s *source) check(cfg protocol.Config) (protocol.Config, error) {
	opts, err := s.spec.Check(cfg.Options)
	cfg.Options = opts
	return cfg, err
}

func (s *source) Schema(ctx context.Context, cfg protocol.Config) (*arrow.Schema, error) {
	cfg, err := s.check(cfg)
	if err != nil {
		return nil, err
	}
	return s.schema(ctx, cfg)
}

func (s *source) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	cfg, err := s.check(cfg)
	if err != nil {
		return err
	}
	schema := cfg.Schema // the one the engine prepared the stage with
	if schema == nil {
		if schema, err = s.schema(ctx, cfg); err != nil {
			return err
		}
	}
	r := &Reader{cfg: cfg, out: NewOut(out), rows: cfg.BatchRows, b: array.NewRecordBuilder(mem, schema),
		maxDelay: cfg.MaxDelay, unbounded: s.spec.Unbounded}
	if r.rows <= 0 {
		r.rows = protocol.DefaultBatchRows
	}
	if r.maxDelay <= 0 {
		r.maxDelay = protocol.DefaultMaxDelay
	}
	defer r.b.Release()
	defer r.stopTimer()
	if err := s.read(ctx, cfg, r); err != nil {
		return err
	}
	// A ReadFunc that did not Flush at the end loses no dead letter (they
	// go without a position covering them, as rows of it would be lost).
	return r.out.SendDead(ctx)
}

// Reader is what a ReadFunc fills: append a row's values to the Builder's
// fields, and call Next after each row with the position after it. Not
// safe for concurrent use.
//
// A source whose Spec is Unbounded (it reads until stopped) also bounds how
// long a row waits for its batch: Next emits the batch once max_delay
// (Config.MaxDelay) has passed since its first row, and a ReadFunc that
// waits for input selects on Due and then calls Flush, so that a quiet
// input still sends its last rows on:
//
//	select {
//	case m := <-messages:
//		// append m's values, then r.Next(ctx, m.pos)
//	case <-r.Due():
//		err = r.Flush(ctx, last)
//	case <-ctx.Done():
//		return ctx.Err()
//	}
type Reader struct {
	cfg       protocol.Config
	out       *Out // dead letters held until the batch whose position covers them
	b         *array.RecordBuilder
	rows      int
	n         int
	maxDelay  time.Duration
	unbounded bool        // Next flushes by age too
	first     time.Time   // when the pending batch's first row ended
	timer     *time.Timer // Due's timer for the pending batch; nil when none
}

// Deadline returns when the pending batch is due: max_delay after its
// first row. ok is false when no row is pending.
func (r *Reader) Deadline() (due time.Time, ok bool) {
	if r.n == 0 {
		return time.Time{}, false
	}
	return r.first.Add(r.maxDelay), true
}

// Due returns a channel that receives when the pending batch is due (see
// Deadline), nil (blocking for ever in a select) when no row is pending.
// Call it anew on each turn of the read loop; Flush ends the timer.
func (r *Reader) Due() <-chan time.Time {
	due, ok := r.Deadline()
	if !ok {
		return nil
	}
	if r.timer == nil {
		r.timer = time.NewTimer(time.Until(due))
	}
	return r.timer.C
}

func (r *Reader) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// Resume decodes the position to resume from into v and reports whether
// there is one; without one, read from the beginning.
func (r *Reader) Resume(v any) (bool, error) {
	if r.cfg.Resume == nil {
		return false, nil
	}
	return true, protocol.DecodePosition(r.cfg.Resume, v)
}

// Builder is where the current row's values go, one field per column.
func (r *Reader) Builder() *array.RecordBuilder { return r.b }

// Next ends the current row; pos is the position after it (anything that
// encodes to JSON, given back by Resume). When the batch is full, or for an
// Unbounded source max_delay after its first row, it is emitted with pos.
func (r *Reader) Next(ctx context.Context, pos any) error {
	if r.n == 0 {
		r.first = time.Now()
	}
	if r.n++; r.n < r.rows && !(r.unbounded && time.Since(r.first) >= r.maxDelay) {
		return nil
	}
	return r.Flush(ctx, pos)
}

// Flush emits the rows appended so far with pos. Call it at the end of the
// input. When no row is pending but dead letters were reported since the
// last batch, it emits an empty batch: pos must cover them too, or a
// resumed read would report them again.
func (r *Reader) Flush(ctx context.Context, pos any) error {
	n := r.n
	r.n = 0
	r.stopTimer()
	return r.out.Emit(ctx, r.b, n, pos)
}

// DeadLetter reports rows that could not be read. Send them before the
// Next (or Flush) that ends the batch they belong to: they are held and
// sent just before that batch, whose position covers them.
func (r *Reader) DeadLetter(ctx context.Context, rows ...protocol.DeadLetter) error {
	for _, d := range rows {
		if err := r.out.DeadLetter(ctx, d); err != nil {
			return err
		}
	}
	return nil
}
