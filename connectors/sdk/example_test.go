package sdk_test

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/vigie-edu/vigie/connectors/protocol"
	"github.com/vigie-edu/vigie/connectors/sdk"
)

// printer is an Emitter that prints what a source emits.
type printer struct{}

func (printer) Emit(_ context.Context, rec arrow.RecordBatch, pos protocol.Position) error {
	fmt.Printf("batch of %d rows, position %s\n", rec.NumRows(), pos)
	return nil
}

func (printer) DeadLetter(_ context.Context, rows []protocol.DeadLetter) error {
	for _, d := range rows {
		fmt.Println("dead letter:", d)
	}
	return nil
}

// A source that parses lines itself hands each record's cells to a
// Batcher, with the position after the record; bad records go to the dead
// letters, and the last Flush covers them with a position even when no
// row follows.
func ExampleBatcher() {
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "student_id", Type: arrow.BinaryTypes.String},
		{Name: "grade", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := sdk.NewBatcher(memory.NewGoAllocator(), schema, 2, printer{}, 0)
	defer b.Release()
	_ = b.Record(ctx, [][]sdk.Cell{{sdk.Str("S1"), {F: 12.5}}}, 1)
	_ = b.Record(ctx, [][]sdk.Cell{{sdk.Str("S2"), {Null: true}}}, 2)
	_ = b.Record(ctx, [][]sdk.Cell{{sdk.Str("S3"), {F: 9}}}, 3)
	_ = b.DeadLetter(ctx, protocol.DeadLetter{Origin: "grades.txt", Line: 4, Reason: "grade: not a number"}, 4)
	_ = b.Flush(ctx)
	// Output:
	// batch of 2 rows, position 2
	// dead letter: grades.txt:4: grade: not a number
	// batch of 1 rows, position 4
}
