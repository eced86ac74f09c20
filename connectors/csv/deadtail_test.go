package csv

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
)

// positions records batches and dead letters in order, and the last
// position.
type positions struct {
	log  []string
	last protocol.Position
}

func (p *positions) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	p.log = append(p.log, fmt.Sprintf("batch %d", rec.NumRows()))
	p.last = pos
	return nil
}

func (p *positions) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	for _, d := range rows {
		p.log = append(p.log, fmt.Sprintf("dead %d", d.Line))
	}
	return nil
}

// TestDeadLetterTailIsCovered: bad rows after the last full batch are
// covered by a position (an empty batch after them), so that a read
// resumed from it does not report them again.
func TestDeadLetterTailIsCovered(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	cfg := config(writeFile(t, "id,n\n1,2\n2,x\n3,y\n"), 1, map[string]any{"columns": map[string]any{"n": "int32"}})
	got := &positions{}
	if err := (Source{}).Read(ctx, cfg, mem, got); err != nil {
		t.Fatal(err)
	}
	if s, want := strings.Join(got.log, "; "), "batch 1; dead 3; dead 4; batch 0"; s != want {
		t.Errorf("read: %s, want %s", s, want)
	}
	cfg.Resume = got.last
	again := &positions{}
	if err := (Source{}).Read(ctx, cfg, mem, again); err != nil {
		t.Fatal(err)
	}
	if len(again.log) != 0 {
		t.Errorf("read resumed from %s: %v, want nothing", got.last, again.log)
	}
}
