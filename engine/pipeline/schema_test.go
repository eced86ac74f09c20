package pipeline_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/engine/config"
	"github.com/vigie-edu/vigie/engine/pipeline"
)

// inferSource stands for a source that infers its schema from its input:
// it counts the inferences (Schema calls) and the Reads that got the
// prepared schema. With option drift, Read emits a batch of another schema
// than Schema said (the input changed between Prepare and Run).
type inferSource struct {
	inferred, given atomic.Int64
}

var inferSchema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)

func (s *inferSource) Spec() protocol.Spec {
	return protocol.Spec{Name: "infer", Kind: protocol.KindSource, Version: "1", Doc: "test", Options: []protocol.Option{
		{Name: "drift", Type: protocol.TypeBool, Default: false, Doc: "emit another schema"},
	}}
}

func (s *inferSource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	s.inferred.Add(1)
	return inferSchema, nil
}

func (s *inferSource) Read(ctx context.Context, cfg protocol.Config, mem memory.Allocator, out protocol.Emitter) error {
	if cfg.Schema != nil && cfg.Schema.Equal(inferSchema) {
		s.given.Add(1)
	}
	schema := inferSchema
	if cfg.Bool("drift") {
		schema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	switch f := b.Field(0).(type) {
	case *array.Int64Builder:
		f.Append(1)
	case *array.StringBuilder:
		f.Append("1")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return out.Emit(ctx, rec, nil)
}

// countSink counts the rows it is given.
type countSink struct{ rows atomic.Int64 }

func (s *countSink) Spec() protocol.Spec {
	return protocol.Spec{Name: "count", Kind: protocol.KindSink, Version: "1", Doc: "test"}
}
func (s *countSink) Validate(context.Context, protocol.Config) error { return nil }
func (s *countSink) Open(context.Context, protocol.Config, memory.Allocator, *arrow.Schema) (protocol.Writer, error) {
	return s, nil
}
func (s *countSink) Write(_ context.Context, rec arrow.RecordBatch) error {
	s.rows.Add(rec.NumRows())
	return nil
}
func (s *countSink) Close(context.Context) error { return nil }
func (s *countSink) Abort(context.Context) error { return nil }

// TestSourceSchemaInferredOnceAndChecked: the schema a source is prepared
// with is what its Read gets (no second inference), and a batch of another
// schema stops the run with an error naming the stage.
func TestSourceSchemaInferredOnceAndChecked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drift bool
		err   string
	}{
		{"the prepared schema reaches Read", false, ""},
		{"a batch of another schema fails the run", true, `source "src" emitted a batch whose schema differs`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			toml := `
[pipeline]
name = "t"

[[source]]
name = "src"
connector = "infer"
[source.options]
drift = ` + map[bool]string{false: "false", true: "true"}[tc.drift] + `

[[sink]]
name = "out"
input = "src"
connector = "count"
`
			cfg, err := config.Parse(filepath.Join(t.TempDir(), "pipeline.toml"), []byte(toml))
			if err != nil {
				t.Fatal(err)
			}
			src, snk := &inferSource{}, &countSink{}
			plan := prepare(t, cfg, mem, map[string]protocol.Connector{"infer": src, "count": snk})
			defer plan.Close(context.Background())
			_, err = plan.Run(context.Background(), pipeline.RunOptions{})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if snk.rows.Load() != 1 {
					t.Errorf("sink got %d rows, want 1", snk.rows.Load())
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
			if n := src.inferred.Load(); n != 1 {
				t.Errorf("schema inferred %d times, want once (at Prepare)", n)
			}
			if src.given.Load() != 1 {
				t.Error("Read did not get the schema the stage was prepared with")
			}
		})
	}
}
