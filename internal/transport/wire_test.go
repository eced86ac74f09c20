package transport

import (
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// countingAllocator counts the allocations made through it.
type countingAllocator struct {
	memory.Allocator
	n atomic.Int64
}

func (c *countingAllocator) Allocate(size int) []byte {
	c.n.Add(1)
	return c.Allocator.Allocate(size)
}

// TestConfigUsesTheCallersAllocator: the schema of a config crosses the
// boundary with the allocator it is given, not a global one.
func TestConfigUsesTheCallersAllocator(t *testing.T) {
	checked := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer checked.AssertSize(t, 0)
	mem := &countingAllocator{Allocator: checked}
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil)
	raw, err := encodeConfig(protocol.Config{Stage: "s", Schema: schema}, mem)
	if err != nil {
		t.Fatal(err)
	}
	if mem.n.Load() == 0 {
		t.Error("encodeConfig allocated nothing from the allocator it was given")
	}
	cfg, err := decodeConfig(raw, mem)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Schema.Equal(schema) {
		t.Errorf("schema %v, want %v", cfg.Schema, schema)
	}
}
