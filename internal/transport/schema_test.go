package transport

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
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

func (s *emptySource) Spec() protocol.Spec {
	return protocol.Spec{Name: "empty", Kind: protocol.KindSource, Version: "1", Doc: "test source"}
}

func (s *emptySource) Schema(context.Context, protocol.Config) (*arrow.Schema, error) {
	s.inferred.Add(1)
	return emptySchema, nil
}

func (s *emptySource) Read(_ context.Context, cfg protocol.Config, _ memory.Allocator, _ protocol.Emitter) error {
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
	_, conn := dialPlugin(t, &GRPCPlugin{Registry: protocol.NewRegistry(src)}, "empty")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	got := &sizes{}
	if err := conn.(protocol.Source).Read(context.Background(), protocol.Config{Connector: "empty", Schema: emptySchema}, mem, got); err != nil {
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
