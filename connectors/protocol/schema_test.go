package protocol

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// emptySource reads nothing; it counts its Schema calls (inferences) and
// keeps the schema its Read was given.
type emptySource struct {
	inferred atomic.Int64
	given    atomic.Pointer[arrow.Schema]
}

var emptySchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "Europe/Paris"}, Nullable: true},
}, nil)

func (s *emptySource) Spec() Spec {
	return Spec{Name: "empty", Kind: KindSource, Version: "1", Doc: "test source"}
}

func (s *emptySource) Schema(context.Context, Config) (*arrow.Schema, error) {
	s.inferred.Add(1)
	return emptySchema, nil
}

func (s *emptySource) Read(_ context.Context, cfg Config, _ memory.Allocator, _ Emitter) error {
	if cfg.Schema != nil {
		s.given.Store(cfg.Schema)
	}
	return nil
}

// TestPreparedSchemaCrossesTheBoundary: Config.Schema reaches a plugin's
// Read, and a source that read nothing is not asked its schema again to
// start the stream.
func TestPreparedSchemaCrossesTheBoundary(t *testing.T) {
	src := &emptySource{}
	_, conn := dialPlugin(t, &GRPCPlugin{Registry: NewRegistry(src)}, "empty")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	got := &sizes{}
	if err := conn.(Source).Read(context.Background(), Config{Connector: "empty", Schema: emptySchema}, mem, got); err != nil {
		t.Fatal(err)
	}
	if len(got.rows) != 0 {
		t.Errorf("got batches %v from an empty source", got.rows)
	}
	if g := src.given.Load(); g == nil || !g.Equal(emptySchema) {
		t.Errorf("Read was given schema %v, want %v", g, emptySchema)
	}
	if n := src.inferred.Load(); n != 0 {
		t.Errorf("the server asked the source its schema %d times; the host gave it", n)
	}
}
