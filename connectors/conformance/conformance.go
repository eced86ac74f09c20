// Package conformance is the acceptance suite of Vigie connectors, in the
// spirit of Airbyte's connector acceptance tests. Any connector, built-in
// or third-party, runs it from its own tests with a few lines:
//
//	func TestConformance(t *testing.T) {
//		conformance.TestSource(t, mySource{}, conformance.SourceCase{
//			Options:  map[string]any{"path": "testdata/small.csv"},
//			WantRows: []string{"1|Ada", "2|(null)"},
//			Bad:      []conformance.BadCase{{Options: map[string]any{"path": 3}, Want: "expected a path"}},
//		})
//	}
//
// TestSource checks: the spec is valid; bad options are rejected with a
// configuration error that says what is wrong; the schema is discovered and
// matches the batches; reading yields the expected rows; every batch has a
// position and resuming from any of them neither skips nor repeats a row.
// TestSink checks: the spec is valid; bad options are rejected; what is
// written reads back exactly; after a crash (a writer abandoned without
// Close), opening again from the last flush and replaying what followed
// gives the same output, no row lost or duplicated.
//
// ThroughPlugin serves a connector through the engine's plugin transport,
// in-process, so that the same checks cover the boundary.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-plugin"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/internal/transport"
)

// BadCase is options a connector must reject.
type BadCase struct {
	Options map[string]any
	// Want is a piece of the expected error message.
	Want string
}

// SourceCase is one configuration of a source to test.
type SourceCase struct {
	Options map[string]any
	// BatchRows is the batch size to read with (default 3, so that small
	// inputs give several batches and positions).
	BatchRows int
	// WantRows are the expected rows, each rendered by Row. Nil checks
	// only that there is at least one row.
	WantRows []string
	// Bad are option sets the source must reject.
	Bad []BadCase
}

// SinkCase is one configuration of a sink to test.
type SinkCase struct {
	Options map[string]any
	Schema  *arrow.Schema
	// Batches are the input, each a JSON array of row objects (as
	// array.RecordFromJSON reads them). Give at least 3.
	Batches []string
	// ReadBack returns the rows of the sink's output, rendered by Row.
	ReadBack func(t *testing.T) []string
	// Bad are option sets the sink must reject (in Spec.Check or Validate).
	Bad []BadCase
}

// Row renders row i of rec as its values joined by "|", nulls as "(null)".
func Row(rec arrow.RecordBatch, i int) string {
	vals := make([]string, rec.NumCols())
	for c, col := range rec.Columns() {
		if col.IsNull(i) {
			vals[c] = "(null)"
		} else {
			vals[c] = col.ValueStr(i)
		}
	}
	return strings.Join(vals, "|")
}

// Rows renders every row of rec.
func Rows(rec arrow.RecordBatch) []string {
	out := make([]string, rec.NumRows())
	for i := range out {
		out[i] = Row(rec, i)
	}
	return out
}

// TestSpec checks that a connector's spec is complete and its defaults
// pass its own checks.
func TestSpec(t *testing.T, c protocol.Connector, kind protocol.Kind) {
	t.Helper()
	spec := c.Spec()
	if spec.Name == "" || spec.Version == "" || len(spec.Doc) < 20 {
		t.Errorf("spec needs a name, a version and a doc of a sentence or more: %+v", spec)
	}
	if spec.Kind != kind {
		t.Errorf("spec kind %q, want %q", spec.Kind, kind)
	}
	seen := map[string]bool{}
	for _, o := range spec.Options {
		if o.Name == "" || o.Doc == "" || o.Type == "" {
			t.Errorf("option %+v needs a name, a type and a doc", o)
		}
		if seen[o.Name] {
			t.Errorf("option %q declared twice", o.Name)
		}
		seen[o.Name] = true
		if o.Required && o.Default != nil {
			t.Errorf("option %q is required and has a default", o.Name)
		}
		if o.Default != nil {
			if _, err := spec.Check(map[string]any{o.Name: o.Default}); err != nil {
				var oes protocol.OptionErrors
				if errors.As(err, &oes) {
					for _, oe := range oes {
						if oe.Option == o.Name {
							t.Errorf("default of option %q fails its own check: %v", o.Name, oe)
						}
					}
				}
			}
		}
	}
	_, err := spec.Check(map[string]any{"no_such_option_zz": true})
	if !errors.Is(err, protocol.ErrConfig) || !strings.Contains(fmt.Sprint(err), "no_such_option_zz") {
		t.Errorf("an unknown option is not rejected by name: %v", err)
	}
}

// checkBad checks that bad options are rejected with a clear message.
func checkBad(t *testing.T, spec protocol.Spec, bad []BadCase, call func(protocol.Config) error) {
	t.Helper()
	for _, b := range bad {
		cfg := protocol.Config{Connector: spec.Name, Stage: "conformance", BatchRows: 3}
		opts, err := spec.Check(b.Options)
		if err == nil {
			cfg.Options = opts
			err = call(cfg)
		}
		switch {
		case err == nil:
			t.Errorf("options %v accepted, want an error with %q", b.Options, b.Want)
		case !errors.Is(err, protocol.ErrConfig) && !errors.Is(err, protocol.ErrNotFound):
			t.Errorf("options %v: error %q is neither a configuration error nor not found", b.Options, err)
		case !strings.Contains(err.Error(), b.Want):
			t.Errorf("options %v: error %q does not say %q", b.Options, err, b.Want)
		}
	}
}

// batch is one emitted batch, rendered.
type batch struct {
	rows []string
	pos  protocol.Position
}

type collector struct {
	schema  *arrow.Schema
	batches []batch
	err     error
}

func (c *collector) Emit(ctx context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	if c.err == nil && c.schema != nil && !rec.Schema().Equal(c.schema) {
		c.err = fmt.Errorf("batch schema %s differs from the discovered schema %s", rec.Schema(), c.schema)
	}
	c.batches = append(c.batches, batch{rows: Rows(rec), pos: append(protocol.Position(nil), pos...)})
	return nil
}

func (c *collector) DeadLetter(context.Context, []protocol.DeadLetter) error { return nil }

func (c *collector) rows(from int) []string {
	var out []string
	for _, b := range c.batches[from:] {
		out = append(out, b.rows...)
	}
	return out
}

// TestSource runs the source suite for one case.
func TestSource(t *testing.T, src protocol.Source, c SourceCase) {
	t.Helper()
	ctx := context.Background()
	spec := src.Spec()
	t.Run("spec", func(t *testing.T) { TestSpec(t, src, protocol.KindSource) })
	t.Run("bad config rejected", func(t *testing.T) {
		checkBad(t, spec, c.Bad, func(cfg protocol.Config) error {
			if _, err := src.Schema(ctx, cfg); err != nil {
				return err
			}
			return src.Read(ctx, cfg, memory.NewGoAllocator(), &collector{})
		})
	})
	opts, err := spec.Check(c.Options)
	if err != nil {
		t.Fatalf("options of the case: %v", err)
	}
	cfg := protocol.Config{Connector: spec.Name, Stage: "conformance", BatchRows: c.BatchRows, Options: opts}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 3
	}
	var all *collector
	t.Run("schema and rows", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		schema, err := src.Schema(ctx, cfg)
		if err != nil || schema == nil {
			t.Fatalf("schema: %v, %v", schema, err)
		}
		all = &collector{schema: schema}
		if err := src.Read(ctx, cfg, mem, all); err != nil {
			t.Fatal(err)
		}
		if all.err != nil {
			t.Error(all.err)
		}
		got := all.rows(0)
		if c.WantRows == nil && len(got) == 0 {
			t.Error("the source read no rows")
		}
		if c.WantRows != nil && !equal(got, c.WantRows) {
			t.Errorf("rows differ:\n got %q\nwant %q", got, c.WantRows)
		}
		for i, b := range all.batches {
			if len(b.rows) > cfg.BatchRows {
				t.Errorf("batch %d has %d rows, batch_rows is %d", i, len(b.rows), cfg.BatchRows)
			}
		}
	})
	t.Run("resume neither skips nor repeats", func(t *testing.T) {
		if all == nil || len(all.batches) == 0 {
			t.Skip("no batches read")
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		for i, b := range all.batches {
			if b.pos == nil {
				t.Fatalf("batch %d has no position: the engine cannot resume this source after a crash", i)
			}
			rc := cfg
			rc.Resume = b.pos
			rest := &collector{}
			if err := src.Read(ctx, rc, mem, rest); err != nil {
				t.Fatalf("resume from batch %d (%s): %v", i, b.pos, err)
			}
			if want := all.rows(i + 1); !equal(rest.rows(0), want) {
				t.Fatalf("resume from batch %d (%s):\n got %q\nwant %q", i, b.pos, rest.rows(0), want)
			}
		}
	})
}

// TestSink runs the sink suite for one case.
func TestSink(t *testing.T, snk protocol.Sink, c SinkCase) {
	t.Helper()
	ctx := context.Background()
	spec := snk.Spec()
	t.Run("spec", func(t *testing.T) { TestSpec(t, snk, protocol.KindSink) })
	t.Run("bad config rejected", func(t *testing.T) {
		checkBad(t, spec, c.Bad, func(cfg protocol.Config) error { return snk.Validate(ctx, cfg) })
	})
	opts, err := spec.Check(c.Options)
	if err != nil {
		t.Fatalf("options of the case: %v", err)
	}
	cfg := protocol.Config{Connector: spec.Name, Stage: "conformance", Options: opts}
	if len(c.Batches) < 3 {
		t.Fatal("a sink case needs at least 3 batches")
	}
	load := func(t *testing.T, mem memory.Allocator) ([]arrow.RecordBatch, []string) {
		var recs []arrow.RecordBatch
		var rows []string
		for i, js := range c.Batches {
			rec, _, err := array.RecordFromJSON(mem, c.Schema, strings.NewReader(js))
			if err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
			recs = append(recs, rec)
			rows = append(rows, Rows(rec)...)
		}
		return recs, rows
	}
	release := func(recs []arrow.RecordBatch) {
		for _, r := range recs {
			r.Release()
		}
	}
	write := func(t *testing.T, w protocol.Writer, recs []arrow.RecordBatch) {
		t.Helper()
		for _, r := range recs {
			if err := w.Write(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("writes read back", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		recs, want := load(t, mem)
		defer release(recs)
		if err := snk.Validate(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		w, err := snk.Open(ctx, cfg, mem, c.Schema)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, recs)
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.ReadBack(t); !equal(got, want) {
			t.Errorf("read back:\n got %q\nwant %q", got, want)
		}
	})
	t.Run("replay after a crash", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		recs, want := load(t, mem)
		defer release(recs)
		cut := len(recs) / 2
		w, err := snk.Open(ctx, cfg, mem, c.Schema)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, recs[:cut])
		var pos protocol.Position
		if f, ok := w.(protocol.Flusher); ok {
			if pos, err = f.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// Written after the flush, then the process "dies": the writer is
		// abandoned without Close or Abort.
		write(t, w, recs[cut:cut+1])
		rc := cfg
		rc.Resume = pos
		w2, err := snk.Open(ctx, rc, mem, c.Schema)
		if err != nil {
			t.Fatalf("open from %s: %v", pos, err)
		}
		from := cut
		if pos == nil {
			from = 0 // durable only at Close: the engine replays everything
		}
		write(t, w2, recs[from:])
		if err := w2.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.ReadBack(t); !equal(got, want) {
			t.Errorf("after a crash and a replay from %s:\n got %q\nwant %q", pos, got, want)
		}
		if abandoned, ok := w.(interface{ Abort(context.Context) error }); ok {
			abandoned.Abort(ctx) // frees what the "dead" writer held (an in-process test only)
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ThroughPlugin returns c as the engine sees a plugin's connector: served
// and called through the same transport as a plugin process, over a real
// connection within the test's process. The connection is closed when the
// test ends.
func ThroughPlugin(t *testing.T, c protocol.Connector) protocol.Connector {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		transport.PluginName: &transport.GRPCPlugin{Registry: protocol.NewRegistry(c)},
	})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(transport.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := raw.(*transport.Client).Connector(context.Background(), c.Spec().Name)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}
